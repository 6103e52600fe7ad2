import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { type Digest, parseReference } from '@epoch/oci';
import type { Command } from 'commander';
import { cocoonReader } from '../snapshot/cocoon.js';
import { readSnapshotDirectory, snapshotDirectoryTar } from '../snapshot/dir-source.js';
import { gzipped, maybeGunzip } from '../snapshot/export-tar.js';
import { choosePushFormat, type FormatChoice } from '../snapshot/push-format.js';
import { pushIncremental } from '../snapshot/push-incremental.js';
import { digestEntries, pushSnapshot } from '../snapshot/push-snapshot.js';
import { type ByteSource, fileSource, socketSource, streamSource } from '../support/byte-source.js';
import { CliError, ExitCode } from '../support/errors.js';
import { formatBytes } from '../support/progress.js';
import { resolveTarget } from '../support/target.js';

interface PushOptions {
  tag?: string;
  repo?: string;
  baseImage?: string;
  fromTar?: string;
  fromDir?: string;
  incremental?: boolean;
  base?: string[];
}

/** `epoch push NAME[:TAG]`: a local cocoon snapshot (or an export tar, or a directory). */
export function registerPush(program: Command): void {
  program
    .command('push')
    .description('push a cocoon VM snapshot, in the full or the incremental format')
    .argument('<name>', 'local snapshot name, optionally NAME:TAG or HOST[:PORT]/NAME:TAG')
    .option('-t, --tag <tag>', 'tag to push (default: the tag in NAME, else latest)')
    .option('--repo <repository>', 'registry repository to push to (default: the snapshot name)')
    .option(
      '--base-image <ref>',
      'record the base image (annotation cocoonstack.snapshot.baseimage)',
    )
    .option(
      '--from-tar <file>',
      "read a `cocoon snapshot export` tar from FILE ('-' for stdin) instead of running cocoon",
    )
    .option(
      '--from-dir <dir>',
      'push the regular files of a directory as the snapshot (no cocoon needed)',
    )
    .option(
      '--incremental',
      'push in the incremental format: 8 KiB chunks, only chunks the repository lacks are sent',
    )
    .option(
      '--no-incremental',
      'push in the full format (one blob per file), whatever the repository default',
    )
    .option(
      '--base <ref>',
      'incremental: also reuse the chunks of this snapshot (same registry; repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .addHelpText(
      'after',
      `
Runs \`cocoon snapshot export NAME -o -\` (EPOCH_COCOON_BINARY, default cocoon) and streams each
file into the registry at EPOCH_SERVER (default http://127.0.0.1:4300). Nothing is spooled to disk.
Prints NAME:TAG@DIGEST on stdout.

Without cocoon:
  --from-tar FILE  a tar as \`cocoon snapshot export\` writes it (plain or gzipped): the first
                   entry is snapshot.json, {"version": 1, "config": {...}} (cocoon's envelope:
                   name, cpu, memory, hypervisor, …); then one regular file per snapshot file,
                   at the top level (no directories). A sparse file may carry the PAX records
                   COCOON.sparse.map (JSON [{"o":OFFSET,"l":LENGTH},…]) and COCOON.sparse.size
                   (its logical size); its entry then holds only those data segments.
                   Build one by hand: tar -cf vm.tar -C DIR snapshot.json memory-ranges …
                   A tar that stops before its end-of-archive block is refused, not pushed.
                   In the full format a regular FILE is read twice: hashed first, so layers
                   the registry has are not sent (a pipe, e.g. <(…), is read once).
  --from-dir DIR   every regular file directly in DIR becomes one snapshot file (byte order of
                   names; subdirectories and links are refused). DIR/snapshot.json, if present,
                   is the envelope, kept verbatim; without one it is {"config":{"name":NAME},
                   "version":1}. Files are sent whole (holes as zeros). Read twice, like a FILE
                   (full format).

Format. The full format is upstream's: one blob per file, read by every epoch and cocoon.
The incremental format (docs/incremental-snapshots.md) cuts each file into 8 KiB chunks,
records zero chunks and holes without storing them, reuses chunks held by the repository's
three newest incremental versions (and by each --base, mounted from its repository), and sends
only new chunks, in 32 MiB packs. A retried push sends no pack twice. Readers need this version
of epoch pull; older readers refuse the artifact instead of writing wrong bytes.

--incremental or --no-incremental chooses the format. With neither, the repository's default
decides (\`epoch repo set-default\`), read from the registry's /api/ before anything is sent.
A registry without Epoch's /api/ (docker-registry, another registry), or a repository nobody
set a default for, gets the full format. Credentials that may push but not read /api/
(EPOCH_REGISTRY_TOKEN's static token) get the full format with a warning. If the registry fails
to answer (5xx, unreachable), nothing is pushed. --base needs the incremental format. The
summary on stderr says which format was used and why.

Examples:
  epoch push myvm
  epoch push myvm -t v2 --base-image ghcr.io/cocoonstack/cocoon/ubuntu:24.04
  epoch push myvm --repo team/myvm -t nightly
  epoch push myvm -t v2 --incremental
  epoch push myvm -t v3 --no-incremental
  epoch push myvm2 -t v1 --incremental --base team/myvm:v2
  cocoon snapshot export myvm -o - | epoch push myvm --from-tar -
  epoch push registry.example.com:5000/myvm:v1 --from-tar myvm.tar
  epoch push myvm -t v1 --from-dir ./myvm-files`,
    )
    .action(async (name: string, opts: PushOptions) => {
      const { target, local, repository, tag } = await pushTarget(name, opts);
      let producer: Producer | undefined;
      try {
        // Chosen before cocoon starts or anything is read: a registry that fails to answer
        // stops the push with nothing sent.
        const choice = await choosePushFormat(target.client, repository, opts);
        if (choice.warning) process.stderr.write(`epoch: ${choice.warning}\n`);
        const summary = pushedLine(repository, tag, target.client.url, choice);
        const incremental = choice.format === 'incremental';
        const opened = await openSource(opts, local, incremental);
        producer = opened.producer;
        const { source, known } = opened;
        if (incremental) {
          const bases = (opts.base ?? []).map((b) => baseSource(b, target.client.url));
          const pushed = await pushIncremental(source, {
            client: target.client,
            repository,
            tag,
            ...(opts.baseImage ? { baseImage: opts.baseImage } : {}),
            ...(producer ? { beforeManifest: producer.wait } : {}),
            bases,
          });
          const p = pushed.packs;
          process.stderr.write(
            `${summary}: ${formatBytes(pushed.logicalBytes)} logical, ${formatBytes(pushed.dataBytes)} data; sent ${p.uploaded} new packs (${formatBytes(p.bytesSent)}), ${p.existing} already there, ${p.mounted} mounted, ${p.total - p.uploaded - p.existing - p.mounted} reused, ${formatBytes(pushed.metadataBytesSent)} of indexes\n`,
          );
          process.stdout.write(`${repository}:${tag}@${pushed.digest}\n`);
          return;
        }
        const pushed = await pushSnapshot(source, {
          client: target.client,
          repository,
          tag,
          ...(opts.baseImage ? { baseImage: opts.baseImage } : {}),
          ...(producer ? { beforeManifest: producer.wait } : {}),
          ...(known ? { known } : {}),
        });
        process.stderr.write(
          `${summary}: ${pushed.layers.length} layers (${pushed.skipped} already there), ${formatBytes(pushed.totalSize)}\n`,
        );
        process.stdout.write(`${repository}:${tag}@${pushed.digest}\n`);
      } catch (err) {
        producer?.kill();
        throw err;
      } finally {
        await target.client.close();
      }
    });
}

/** The registry, repository and tag a push goes to, and the local snapshot name it reads. */
async function pushTarget(name: string, opts: PushOptions) {
  if (opts.fromTar !== undefined && opts.fromDir !== undefined) {
    throw new CliError('use either --from-tar or --from-dir, not both', ExitCode.usage);
  }
  const target = await resolveTarget(name, process.env, { defaultTag: null });
  if (target.ref.digest) {
    await target.client.close();
    throw new CliError('push takes a tag, not a digest', ExitCode.usage);
  }
  return {
    target,
    local: target.ref.name.split('/').pop() ?? target.ref.name,
    repository: opts.repo ?? target.ref.name,
    tag: opts.tag ?? target.ref.tag ?? 'latest',
  };
}

/** cocoon, when it produces the export: it must exit 0 before the manifest is pushed. */
type Producer = Awaited<ReturnType<typeof cocoonReader>>;

const EXPORT_ARGS = (local: string) => ['snapshot', 'export', local, '-o', '-'];
const NO_COCOON = '--from-tar FILE (a cocoon export) or --from-dir DIR (plain files)';

/** Where a push reads the export tar from, and what it knows before reading it. */
interface SnapshotSource {
  source: ByteSource;
  producer?: Producer;
  /** The digests of a source that can be read twice, so layers the registry has are skipped. */
  known?: Map<string, Digest>;
}

/**
 * Opens --from-dir, --from-tar FILE, --from-tar - (stdin), or else `cocoon snapshot export`:
 * read into one reused buffer where they allow it (cocoon's output through a socket, a plain
 * tar file), else as a stream (stdin, a gzipped tar, a directory). A source that can be read
 * twice is hashed first for a one-blob-per-file push (`hashFirst`), so the blobs the registry
 * has are skipped; an incremental push finds what the registry holds from its chunk indexes.
 */
async function openSource(
  opts: PushOptions,
  local: string,
  incremental: boolean,
): Promise<SnapshotSource> {
  const twice = async (open: () => Promise<ByteSource>): Promise<SnapshotSource> => {
    const known = incremental ? undefined : await digestEntries(await open());
    return { source: await open(), ...(known ? { known } : {}) };
  };
  if (opts.fromDir !== undefined) {
    const snapshot = await readSnapshotDirectory(opts.fromDir, local);
    return twice(async () => streamSource(snapshotDirectoryTar(snapshot)));
  }
  if (opts.fromTar === '-') return { source: streamSource(await maybeGunzip(process.stdin)) };
  const path = opts.fromTar;
  if (path !== undefined) {
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'no such file' : err.message;
      throw new CliError(`--from-tar ${path}: ${why}`);
    });
    const stream = async () => streamSource(await maybeGunzip(createReadStream(path)));
    // A pipe or a device (`--from-tar <(cocoon …)`, /dev/stdin) is read once, as a stream.
    if (!info.isFile()) return { source: await stream() };
    if (await isGzip(path)) return twice(stream);
    return twice(async () => fileSource(path));
  }
  // No socket (no writable /tmp for it, say) leaves the pipe: a new buffer per read.
  const socket = await socketSource().catch(() => undefined);
  if (!socket) {
    const producer = await cocoonReader(EXPORT_ARGS(local), {
      alternative: NO_COCOON,
      stdout: 'pipe',
    });
    return { source: streamSource(producer.stdout as Readable), producer };
  }
  try {
    const producer = await cocoonReader(EXPORT_ARGS(local), {
      alternative: NO_COCOON,
      stdout: socket.peer,
    });
    // A push that fails before or while reading stops cocoon and closes the socket.
    const kill = () => {
      producer.kill();
      socket.destroy();
    };
    return { source: socket.source, producer: { ...producer, kill } };
  } catch (err) {
    socket.destroy();
    socket.peer.destroy();
    throw err;
  }
}

/** Whether a file starts with gzip's magic bytes. */
async function isGzip(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await file.read(magic, 0, 2, 0);
    return bytesRead === 2 && gzipped(magic);
  } finally {
    await file.close();
  }
}

/** The start of the summary line: what went where, in which format and why. */
function pushedLine(repository: string, tag: string, url: string, choice: FormatChoice): string {
  return `pushed ${repository}:${tag} to ${url} in the ${choice.format} format (${choice.reason})`;
}

/** A `--base` reference: a repository and tag (or digest) on the registry pushed to. */
function baseSource(value: string, registryUrl: string): { repository: string; reference: string } {
  const ref = parseReference(value, { defaultTag: 'latest' });
  if (ref.host !== undefined && !registryUrl.endsWith(`//${ref.host}`)) {
    throw new CliError(
      `--base ${value}: chunks can only be reused from the registry pushed to`,
      ExitCode.usage,
    );
  }
  return { repository: ref.name, reference: ref.digest ?? ref.tag ?? 'latest' };
}
