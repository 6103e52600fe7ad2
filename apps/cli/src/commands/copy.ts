import { referenceTarget } from '@epoch/oci';
import type { Command } from 'commander';
import { copyImage } from '../support/copy.js';
import { notFound } from '../support/errors.js';
import { resolveTarget } from '../support/target.js';

/** `epoch copy SRC DST`: mirror an image or artifact between any two OCI registries. */
export function registerCopy(program: Command): void {
  program
    .command('copy')
    .alias('cp')
    .description('copy an image, index or artifact between registries (digests unchanged)')
    .argument('<src>', 'source HOST[:PORT]/NAME[:TAG|@DIGEST] (no host: EPOCH_SERVER)')
    .argument('<dst>', 'destination HOST[:PORT]/NAME[:TAG] (default tag: the source tag)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Blobs stream from source to destination (several at once), are skipped when the destination has
them, and are mounted instead of copied within one registry. Saved logins (epoch login) apply per
host; EPOCH_REGISTRY_TOKEN applies to EPOCH_SERVER.

Examples:
  epoch copy ghcr.io/cocoonstack/cocoon/ubuntu:24.04 cocoon/ubuntu:24.04
  epoch copy 127.0.0.1:5000/library/alpine:3.20 mirror/alpine
  epoch copy myvm:v1 backup.example.com/myvm:v1`,
    )
    .action(async (srcValue: string, dstValue: string, opts: { json?: boolean }) => {
      const src = await resolveTarget(srcValue);
      const dst = await resolveTarget(dstValue, process.env, { defaultTag: null });
      try {
        const dstReference = dst.ref.tag ?? src.ref.tag ?? src.ref.digest ?? 'latest';
        let report: Awaited<ReturnType<typeof copyImage>>;
        try {
          report = await copyImage(
            { client: src.client, repository: src.ref.name },
            referenceTarget(src.ref),
            { client: dst.client, repository: dst.ref.name },
            dstReference,
          );
        } catch (err) {
          notFound(err, src.display, src.client.url);
        }
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(report)}\n`);
        } else {
          const b = report.blobs;
          process.stderr.write(
            `copied ${src.display} to ${dst.client.host}/${dst.ref.name}:${dstReference}: ${b.uploaded} blobs sent, ${b.mounted} mounted, ${b.existing} already there\n`,
          );
          process.stdout.write(`${report.digest}\n`);
        }
      } finally {
        await Promise.all([src.client.close(), dst.client.close()]);
      }
    });
}
