import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  chunkedSnapshotLayout,
  classify,
  type ImageManifest,
  parseSnapshotConfig,
} from '@epoch/oci';
import type { Command } from 'commander';
import { feedCocoon } from '../snapshot/cocoon.js';
import { writeChunkedImportTar } from '../snapshot/import-chunked.js';
import { writeImportTar } from '../snapshot/import-tar.js';
import { writeCloudImage } from '../support/cloud-image.js';
import { CliError } from '../support/errors.js';
import { fetchManifest, resolvePlatform } from '../support/manifest.js';
import { resolveTarget } from '../support/target.js';

interface PullOptions {
  name?: string;
  description?: string;
  platform?: string;
  toTar?: string;
}

const CONFIG_LIMIT = 16 * 1024 * 1024;

/** `epoch pull REF`: a snapshot into `cocoon snapshot import`, a cloud image into `cocoon image import`. */
export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('pull a snapshot or cloud image into cocoon (or into a tar file)')
    .argument('<ref>', 'NAME[:TAG|@DIGEST], optionally prefixed by HOST[:PORT]/')
    .option('--name <name>', 'local name (default: the last component of the repository name)')
    .option('--description <text>', 'local description (snapshots)')
    .option('--platform <os/arch>', 'child of an image index to pull', 'linux/amd64')
    .option(
      '--to-tar <file>',
      "write the cocoon import tar (cloud images: the disk) to FILE ('-' for stdout) instead of running cocoon",
    )
    .addHelpText(
      'after',
      `
Snapshots (one blob per file, or incremental: reassembled from chunk packs, every chunk
verified, holes kept) are fed to \`cocoon snapshot import --name NAME\`, cloud images to
\`cocoon image import NAME\` (EPOCH_COCOON_BINARY, default cocoon). Every byte is digest-checked
as it streams; if the download fails, the importer is killed, so nothing truncated is imported.

Examples:
  epoch pull myvm
  epoch pull myvm:v2 --name myvm-restored
  epoch pull team/win11@sha256:4f2c… --name win11
  epoch pull 127.0.0.1:5000/myvm:v1 --to-tar myvm.tar
  epoch pull ghcr.io/cocoonstack/snapshots/base --platform linux/arm64`,
    )
    .action(async (value: string, opts: PullOptions) => {
      const target = await resolveTarget(value);
      try {
        const top = await fetchManifest(target);
        const resolved = await resolvePlatform(target, top, opts.platform);
        const kind = classify(resolved.parsed);
        const repository = target.ref.name;
        const localName = opts.name ?? repository.split('/').pop() ?? repository;
        if (
          resolved.parsed.kind !== 'manifest' ||
          (kind !== 'snapshot' && kind !== 'chunked-snapshot' && kind !== 'cloud-image')
        ) {
          throw new CliError(`${target.display} is a ${kind}, not a snapshot or cloud image`);
        }
        const manifest = resolved.parsed.manifest as ImageManifest;
        let write: (out: Writable) => Promise<void>;
        let importer: string[];
        if (kind === 'snapshot' || kind === 'chunked-snapshot') {
          const config = parseSnapshotConfig(
            await readSmallBlob(target, manifest.config.digest, manifest.config.size),
          );
          // cocoon takes --name/--description itself; the tar keeps snapshot.json verbatim
          // unless a tar file is asked for under another name or description.
          const overrides = {
            ...(opts.toTar !== undefined && opts.name !== undefined ? { name: opts.name } : {}),
            ...(opts.toTar !== undefined && opts.description !== undefined
              ? { description: opts.description }
              : {}),
          };
          const source = { client: target.client, repository, config, ...overrides };
          // Checked before cocoon starts, like every other refusal.
          const layout = kind === 'chunked-snapshot' ? chunkedSnapshotLayout(manifest) : undefined;
          write = layout
            ? (out) => writeChunkedImportTar(out, { ...source, layout })
            : (out) => writeImportTar(out, { ...source, manifest });
          importer = ['snapshot', 'import', '--name', localName];
          if (opts.description !== undefined) importer.push('--description', opts.description);
        } else {
          write = (out) => writeCloudImage(out, target.client, repository, manifest);
          importer = ['image', 'import', localName];
        }
        const where = await deliver(write, opts.toTar, importer);
        const as = opts.toTar === undefined ? ` as ${localName}` : '';
        process.stderr.write(`pulled ${target.display} (${kind}) ${where}${as}\n`);
      } finally {
        await target.client.close();
      }
    });
}

/**
 * Writes a pull to the --to-tar file (or stdout), or feeds it to cocoon's importer; returns
 * where it went, for the closing message.
 */
async function deliver(
  write: (out: Writable) => Promise<void>,
  toTar: string | undefined,
  importer: string[],
): Promise<string> {
  if (toTar === undefined) {
    await feedCocoon(importer, write, { alternative: '--to-tar FILE' });
    return 'into cocoon';
  }
  await writeTo(toTar, write);
  return toTar === '-' ? 'to stdout' : `to ${toTar}`;
}

async function readSmallBlob(
  target: Awaited<ReturnType<typeof resolveTarget>>,
  digest: string,
  size: number,
): Promise<Buffer> {
  if (size > CONFIG_LIMIT) throw new CliError(`config blob ${digest} is too large (${size} bytes)`);
  const chunks: Buffer[] = [];
  for await (const chunk of target.client.getBlob(target.ref.name, digest, { size })) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Writes to a file or stdout. A file is removed again when the transfer fails, so no truncated
 * tar is left behind looking complete.
 */
export async function writeTo(
  path: string,
  write: (out: Writable) => Promise<void>,
): Promise<void> {
  if (path === '-') {
    await write(process.stdout);
    return;
  }
  const out = createWriteStream(path);
  try {
    await write(out);
    out.end();
    await finished(out);
  } catch (err) {
    out.destroy();
    const { rm } = await import('node:fs/promises');
    await rm(path, { force: true });
    throw err;
  }
}
