import { RegistryHttpError } from '@epoch/registry/client';
import type { Command } from 'commander';
import { notFound } from '../support/errors.js';
import { resolveTarget } from '../support/target.js';

/** `epoch rm REF`: delete a tag or a manifest. */
export function registerRm(program: Command): void {
  program
    .command('rm')
    .description('delete a tag, or a manifest by digest (blobs stay until garbage collection)')
    .argument('<ref>', 'NAME:TAG or NAME@DIGEST, optionally prefixed by HOST[:PORT]/')
    .addHelpText(
      'after',
      `
Exits 2 when the reference does not exist. Registries that cannot delete tags (distribution)
delete the manifest the tag points to instead, which removes every tag of it.

Examples:
  epoch rm myvm:old
  epoch rm myvm@sha256:…`,
    )
    .action(async (value: string) => {
      const target = await resolveTarget(value);
      const { client, ref } = target;
      try {
        const reference = ref.digest ?? (ref.tag as string);
        try {
          await client.deleteManifest(ref.name, reference);
        } catch (err) {
          const unsupported =
            err instanceof RegistryHttpError &&
            !ref.digest &&
            (err.status === 400 || err.status === 405 || err.code === 'UNSUPPORTED');
          if (!unsupported) notFound(err, target.display, client.url);
          const head = await client
            .headManifest(ref.name, reference)
            .catch((e: unknown) => notFound(e, target.display, client.url));
          if (!head.digest) throw err;
          await client.deleteManifest(ref.name, head.digest);
        }
        process.stderr.write(`deleted ${target.display}\n`);
      } finally {
        await client.close();
      }
    });
}
