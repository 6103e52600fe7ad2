import { referenceTarget } from '@epoch/oci';
import type { Command } from 'commander';
import { copyImage } from '../support/copy.js';
import { CliError, ExitCode, notFound } from '../support/errors.js';
import { resolveTarget } from '../support/target.js';

/** `epoch tag SRC DST`: another tag for a manifest (mounting blobs across repositories). */
export function registerTag(program: Command): void {
  program
    .command('tag')
    .description('tag a manifest under another tag (or repository of the same registry)')
    .argument('<src>', 'NAME[:TAG|@DIGEST]')
    .argument('<dst>', 'NAME:TAG (or just TAG, meaning the same repository)')
    .addHelpText(
      'after',
      `
Examples:
  epoch tag myvm:latest myvm:stable
  epoch tag myvm:latest stable
  epoch tag myvm@sha256:… team/myvm:v1`,
    )
    .action(async (srcValue: string, dstValue: string) => {
      const src = await resolveTarget(srcValue);
      const dstFull =
        dstValue.includes(':') || dstValue.includes('/') ? dstValue : `${src.ref.name}:${dstValue}`;
      const dst = await resolveTarget(
        src.ref.host && !dstFull.includes('/') ? `${src.ref.host}/${dstFull}` : dstFull,
        process.env,
        { defaultTag: null },
      );
      try {
        if (dst.client.url !== src.client.url) {
          throw new CliError(
            'tag works within one registry; use epoch copy between registries',
            ExitCode.usage,
          );
        }
        if (!dst.ref.tag) throw new CliError(`${dstValue}: a tag is required`, ExitCode.usage);
        try {
          const report = await copyImage(
            { client: src.client, repository: src.ref.name },
            referenceTarget(src.ref),
            { client: dst.client, repository: dst.ref.name },
            dst.ref.tag,
          );
          process.stdout.write(`${dst.ref.name}:${dst.ref.tag}@${report.digest}\n`);
        } catch (err) {
          notFound(err, src.display, src.client.url);
        }
      } finally {
        await Promise.all([src.client.close(), dst.client.close()]);
      }
    });
}
