import { classify, type ImageManifest } from '@epoch/oci';
import type { Command } from 'commander';
import { writeCloudImage } from '../support/cloud-image.js';
import { CliError } from '../support/errors.js';
import { fetchManifest, resolvePlatform } from '../support/manifest.js';
import { resolveTarget } from '../support/target.js';

/** `epoch get REF`: a cloud image's disk bytes to stdout. */
export function registerGet(program: Command): void {
  program
    .command('get')
    .description('write a cloud image disk to stdout (parts reassembled in title order)')
    .argument('<ref>', 'NAME[:TAG|@DIGEST], optionally prefixed by HOST[:PORT]/')
    .option('--platform <os/arch>', 'child of an image index', 'linux/amd64')
    .addHelpText(
      'after',
      `
Each part is digest-checked as it streams; on any failure the command exits non-zero.

Examples:
  epoch get win11:24h2 > win11.qcow2
  epoch get win11 | cocoon image import win11`,
    )
    .action(async (value: string, opts: { platform?: string }) => {
      const target = await resolveTarget(value);
      try {
        const resolved = await resolvePlatform(target, await fetchManifest(target), opts.platform);
        const kind = classify(resolved.parsed);
        if (kind !== 'cloud-image') {
          throw new CliError(`${target.display} is a ${kind}, not a cloud image`);
        }
        await writeCloudImage(
          process.stdout,
          target.client,
          target.ref.name,
          resolved.parsed.manifest as ImageManifest,
        );
      } finally {
        await target.client.close();
      }
    });
}
