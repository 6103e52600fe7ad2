import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { cocoonReader } from '../snapshot/cocoon.js';
import { digestEntries, pushSnapshot } from '../snapshot/push-snapshot.js';
import { CliError, ExitCode } from '../support/errors.js';
import { formatBytes } from '../support/progress.js';
import { resolveTarget } from '../support/target.js';

interface PushOptions {
  tag?: string;
  repo?: string;
  baseImage?: string;
  fromTar?: string;
}

/** `epoch push NAME[:TAG]`: a local cocoon snapshot (or an export tar) to the registry. */
export function registerPush(program: Command): void {
  program
    .command('push')
    .description('push a cocoon VM snapshot (one blob per exported file)')
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
    .addHelpText(
      'after',
      `
Runs \`cocoon snapshot export NAME -o -\` (EPOCH_COCOON_BINARY, default cocoon) and streams each
file into the registry at EPOCH_SERVER (default http://127.0.0.1:4300). Nothing is spooled to disk.
A --from-tar FILE is read twice: hashed first, so layers the registry has are not sent again.
Prints NAME:TAG@DIGEST on stdout.

Examples:
  epoch push myvm
  epoch push myvm -t v2 --base-image ghcr.io/cocoonstack/cocoon/ubuntu:24.04
  epoch push myvm --repo team/myvm -t nightly
  cocoon snapshot export myvm -o - | epoch push myvm --from-tar -
  epoch push registry.example.com:5000/myvm:v1 --from-tar myvm.tar`,
    )
    .action(async (name: string, opts: PushOptions) => {
      const target = await resolveTarget(name, process.env, { defaultTag: null });
      const local = target.ref.name.split('/').pop() ?? target.ref.name;
      const repository = opts.repo ?? target.ref.name;
      const tag = opts.tag ?? target.ref.tag ?? 'latest';
      if (target.ref.digest) throw new CliError('push takes a tag, not a digest', ExitCode.usage);
      let input: Readable;
      let producer: ReturnType<typeof cocoonReader> | undefined;
      // A tar file can be read twice: hash it first and skip the blobs the registry has.
      const known =
        opts.fromTar !== undefined && opts.fromTar !== '-'
          ? await digestEntries(createReadStream(opts.fromTar))
          : undefined;
      if (opts.fromTar !== undefined) {
        input = opts.fromTar === '-' ? process.stdin : createReadStream(opts.fromTar);
      } else {
        producer = cocoonReader(['snapshot', 'export', local, '-o', '-']);
        input = producer.stdout;
      }
      try {
        const pushed = await pushSnapshot(input, {
          client: target.client,
          repository,
          tag,
          ...(opts.baseImage ? { baseImage: opts.baseImage } : {}),
          ...(producer ? { beforeManifest: producer.wait } : {}),
          ...(known ? { known } : {}),
        });
        process.stderr.write(
          `pushed ${repository}:${tag} to ${target.client.url}: ${pushed.layers.length} layers (${pushed.skipped} already there), ${formatBytes(pushed.totalSize)}\n`,
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
