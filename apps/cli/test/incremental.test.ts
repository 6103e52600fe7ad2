import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ChunkedMediaTypes, CocoonMediaTypes } from '@epoch/oci';
import type { RunningServer } from '@epoch/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cocoonRoot, epoch, fakeCocoon, startEpoch } from './support/harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];
let server: RunningServer;

beforeAll(async () => {
  server = await startEpoch(cleanups);
});
afterAll(async () => {
  for (const c of cleanups) await c();
});

const env = (root: string): NodeJS.ProcessEnv => ({
  EPOCH_SERVER: server.url,
  EPOCH_COCOON_BINARY: fakeCocoon,
  FAKE_COCOON_ROOT: root,
  HOME: root,
  XDG_CONFIG_HOME: join(root, 'config'),
});

const ENVELOPE = Buffer.from(
  `${JSON.stringify({ config: { id: 'sid', name: 'vm', cpu: 2, queue_size: 256 }, version: 1 })}\n`,
);

function files() {
  return {
    'snapshot.json': ENVELOPE,
    'config.json': Buffer.from('{"cpus":{"boot_vcpus":2}}'),
    // 32 MiB logical: data at 0, an unaligned 4 KiB-granular segment, and a tail
    'memory-ranges': {
      size: 32 * MiB,
      data: [
        [0, randomBytes(2 * MiB)],
        [9 * MiB + 4 * KiB, randomBytes(1 * MiB + 4 * KiB)],
        [32 * MiB - 4 * KiB, randomBytes(4 * KiB)],
      ] as [number, Buffer][],
    },
    'overlay.qcow2': randomBytes(2 * MiB),
  };
}

async function filesOf(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const f of (await readdir(dir)).sort()) out[f] = await readFile(join(dir, f));
  return out;
}

/** The pulled files are the original's byte for byte (snapshot.json is renamed by the import). */
async function expectSameFiles(originalDir: string, pulledDir: string) {
  const original = await filesOf(originalDir);
  const pulled = await filesOf(pulledDir);
  const names = Object.keys(original).filter((n) => n !== 'snapshot.json');
  expect(names.length).toBeGreaterThan(0);
  for (const name of names) expect(pulled[name]?.equals(original[name] as Buffer), name).toBe(true);
}

/** An export without its end-of-archive blocks: cut cleanly between entries. */
function withoutEnd(tar: Buffer): Buffer {
  let end = tar.length;
  while (end > 0 && tar.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
  return tar.subarray(0, end);
}

const exportOf = (root: string, name: string) =>
  spawnSync(fakeCocoon, ['snapshot', 'export', name, '-o', '-'], {
    env: { ...process.env, FAKE_COCOON_ROOT: root },
    maxBuffer: 256 * MiB,
  }).stdout;

/** Bytes of new packs an incremental push reports on stderr. */
function sentPackBytes(stderr: string): string {
  const m = /sent (\d+) new packs \(([^)]+)\)/.exec(stderr);
  if (!m) throw new Error(`no pack report in: ${stderr}`);
  return m[2] as string;
}

describe('epoch push --incremental and epoch pull', () => {
  it('round-trips versions byte-exact with holes; v2 sends only its changed pages', async () => {
    const a = await cocoonRoot(cleanups, { vm: files() });
    const v1 = await epoch(['push', 'vm', '-t', 'v1', '--incremental'], env(a));
    expect(v1.code, v1.stderr).toBe(0);
    expect(v1.stderr).toContain('in the incremental format (--incremental)');
    const snapshot1 = exportOf(a, 'vm');

    // version 2: three pages rewritten in place, 1 MiB appended to the disk
    const mem = await open(join(a, 'snapshots', 'vm', 'memory-ranges'), 'r+');
    for (const at of [4 * KiB, 1 * MiB, 9 * MiB + 64 * KiB])
      await mem.write(randomBytes(4 * KiB), 0, 4 * KiB, at);
    await mem.close();
    const disk = await open(join(a, 'snapshots', 'vm', 'overlay.qcow2'), 'a');
    await disk.write(randomBytes(1 * MiB));
    await disk.close();
    const v2 = await epoch(['push', 'vm', '-t', 'v2', '--incremental'], env(a));
    expect(v2.code, v2.stderr).toBe(0);
    // three 8 KiB chunks + 1 MiB: one pack of about 1.02 MiB, nothing of the 5 MiB unchanged
    expect(sentPackBytes(v2.stderr)).toMatch(/^1\.0\d? MiB$/);
    const snapshot2 = exportOf(a, 'vm');

    const inspect = await epoch(['inspect', 'vm:v2', '--json'], env(a));
    const report = JSON.parse(inspect.stdout.toString());
    expect(report.kind).toBe('chunked-snapshot');
    expect(report.manifest.artifactType).toBe(ChunkedMediaTypes.snapshotArtifact);

    for (const [tag, expected] of [
      ['v1', snapshot1],
      ['v2', snapshot2],
    ] as const) {
      const b = await cocoonRoot(cleanups);
      const pull = await epoch(['pull', `vm:${tag}`], env(b));
      expect(pull.code, pull.stderr).toBe(0);
      // the fake's export of what was pulled equals the original export: same bytes, same
      // 4 KiB-granular sparse maps (holes exactly preserved), same envelope
      expect(exportOf(b, 'vm').equals(expected), `${tag} export`).toBe(true);
      const st = await stat(join(b, 'snapshots', 'vm', 'memory-ranges'));
      expect(st.size).toBe(32 * MiB);
      expect(st.blocks * 512).toBeLessThan(6 * MiB);

      // /dl/ sends the same import tar, its length promised up front
      const dl = await fetch(`${server.url}/dl/vm:${tag}`);
      expect(dl.status).toBe(200);
      const tar = Buffer.from(await dl.arrayBuffer());
      expect(tar.length).toBe(Number(dl.headers.get('content-length')));
      const head = await fetch(`${server.url}/dl/vm:${tag}`, { method: 'HEAD' });
      expect(head.headers.get('content-length')).toBe(String(tar.length));
      const c = await cocoonRoot(cleanups);
      const imported = spawnSync(fakeCocoon, ['snapshot', 'import'], {
        env: { ...process.env, FAKE_COCOON_ROOT: c },
        input: tar,
      });
      expect(imported.status, imported.stderr.toString()).toBe(0);
      expect(exportOf(c, 'vm').equals(expected), `${tag} /dl/ export`).toBe(true);
    }
  });

  it('one-blob-per-file stays the default and still round-trips next to incremental versions', async () => {
    const a = await cocoonRoot(cleanups, { old: files() });
    expect((await epoch(['push', 'old', '-t', 'inc', '--incremental'], env(a))).code).toBe(0);
    const plain = await epoch(['push', 'old', '-t', 'plain'], env(a));
    expect(plain.code, plain.stderr).toBe(0);
    const report = JSON.parse(
      (await epoch(['inspect', 'old:plain', '--json'], env(a))).stdout.toString(),
    );
    expect(report.kind).toBe('snapshot');
    expect(report.manifest.artifactType).toBe(CocoonMediaTypes.snapshotArtifact);
    // an incremental push with a plain version among the tags ignores it
    expect((await epoch(['push', 'old', '-t', 'inc2', '--incremental'], env(a))).code).toBe(0);
    const b = await cocoonRoot(cleanups);
    const pull = await epoch(['pull', 'old:plain'], env(b));
    expect(pull.code, pull.stderr).toBe(0);
    await expectSameFiles(join(a, 'snapshots', 'old'), join(b, 'snapshots', 'old'));
  });

  it('reads the export alike from cocoon, a tar file, a gzipped one, stdin and a directory', async () => {
    const a = await cocoonRoot(cleanups, { vm: files() });
    const exported = exportOf(a, 'vm');
    const tarFile = join(a, 'src.tar');
    const gzFile = join(a, 'src.tar.gz');
    await writeFile(tarFile, exported);
    await writeFile(gzFile, gzipSync(exported));
    // cocoon's output comes through a socket in a private directory under TMPDIR, or under
    // /tmp when TMPDIR is too deep for a socket's path, or through a pipe when neither works
    const deep = join(a, 'd'.repeat(100));
    await mkdir(deep);
    const runs: [string, string[], Buffer?, NodeJS.ProcessEnv?][] = [
      ['cocoon', []],
      ['deep-tmpdir', [], undefined, { TMPDIR: deep }],
      ['pipe', [], undefined, { TMPDIR: join(a, 'missing') }],
      ['file', ['--from-tar', tarFile]],
      ['gzip', ['--from-tar', gzFile]],
      ['stdin', ['--from-tar', '-'], exported],
    ];
    const indexes: Record<string, string[]> = {};
    const indexesOf = async (tag: string): Promise<string[]> => {
      const inspect = await epoch(['inspect', `alike/vm:${tag}`, '--json'], env(a));
      return JSON.parse(inspect.stdout.toString())
        .manifest.layers.filter(
          (l: { mediaType: string }) => l.mediaType === ChunkedMediaTypes.chunkIndex,
        )
        .map((l: { digest: string }) => l.digest);
    };
    for (const [tag, args, stdin, extra] of runs) {
      const push = await epoch(
        ['push', 'vm', '--repo', 'alike/vm', '-t', tag, '--incremental', ...args],
        { ...env(a), ...extra },
        stdin,
      );
      expect(push.code, `${tag}: ${push.stderr}`).toBe(0);
      // The same files cut the same way reuse the first push's packs: identical indexes.
      indexes[tag] = await indexesOf(tag);
    }
    // a FIFO (as `--from-tar <(cocoon snapshot export …)` gives) is read once, as a stream
    const fifo = join(a, 'export.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const writer = createWriteStream(fifo);
    writer.end(exported);
    const fromFifo = await epoch(
      ['push', 'vm', '--repo', 'alike/vm', '-t', 'fifo', '--incremental', '--from-tar', fifo],
      env(a),
    );
    expect(fromFifo.code, fromFifo.stderr).toBe(0);
    runs.push(['fifo', []]);
    indexes.fifo = await indexesOf('fifo');
    expect(indexes.cocoon).toHaveLength(3);
    for (const [tag] of runs) expect(indexes[tag], tag).toEqual(indexes.cocoon);
    const b = await cocoonRoot(cleanups);
    const pull = await epoch(['pull', 'alike/vm:stdin'], env(b));
    expect(pull.code, pull.stderr).toBe(0);
    // the same export (the envelope names the snapshot vm, as the import does: alike/vm)
    expect(exportOf(b, 'vm').equals(exported)).toBe(true);

    // A directory of plain files (no sparse map): its contents come back byte for byte.
    const dir = join(a, 'snapshots', 'vm');
    const fromDir = await epoch(
      ['push', 'plain', '-t', 'dir', '--incremental', '--from-dir', dir],
      env(a),
    );
    expect(fromDir.code, fromDir.stderr).toBe(0);
    const c = await cocoonRoot(cleanups);
    expect((await epoch(['pull', 'plain:dir'], env(c))).code).toBe(0);
    await expectSameFiles(dir, join(c, 'snapshots', 'plain'));
  });

  it('pushes nothing from an export that is cut short, not a tar, or whose cocoon failed', async () => {
    const a = await cocoonRoot(cleanups, { cut: files() });
    const exported = exportOf(a, 'cut');
    const cases: [string, Buffer, RegExp][] = [
      ['inside', exported.subarray(0, 3 * MiB), /ends inside an entry \(\d+ bytes missing\)/],
      ['between', withoutEnd(exported), /without its end-of-archive block/],
      ['garbage', randomBytes(64 * KiB), /not a readable tar: .*bad checksum/],
    ];
    for (const [tag, bytes, message] of cases) {
      const path = join(a, `${tag}.tar`);
      await writeFile(path, bytes);
      const push = await epoch(
        ['push', 'cut', '-t', tag, '--incremental', '--from-tar', path],
        env(a),
      );
      expect(push.code, tag).not.toBe(0);
      expect(push.stderr, tag).toMatch(message);
    }
    const failed = await epoch(['push', 'cut', '-t', 'failed', '--incremental'], {
      ...env(a),
      FAKE_COCOON_EXPORT_EXIT: '1',
    });
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/exited with 1/);
    const tags = await fetch(`${server.url}/v2/cut/tags/list`);
    // nothing became a tag (the repository may not even exist)
    const listed = tags.status === 200 ? ((await tags.json()) as { tags: string[] }).tags : [];
    expect(listed ?? []).toEqual([]);
  });

  it('epoch get, which reads cloud images, refuses the artifact', async () => {
    const a = await cocoonRoot(cleanups, { ro: files() });
    expect((await epoch(['push', 'ro', '-t', 'v1', '--incremental'], env(a))).code).toBe(0);
    const get = await epoch(['get', 'ro:v1'], env(a));
    expect(get.code).not.toBe(0);
    expect(get.stderr).toContain('is a chunked-snapshot, not a cloud image');
    expect(get.stdout.length).toBe(0);
    const usage = await epoch(['push', 'ro', '--base', 'x:y'], env(a));
    expect(usage.code).toBe(64);
  });
});
