// Benchmark of `epoch push` and `epoch pull` with a snapshot whose memory file is 2 GiB sparse:
// wall time, throughput and the CLI process's peak RSS (VmHWM, the cocoon stand-in excluded).
// Prints a table and whether the pulled snapshot is identical; asserts nothing.
//
//   node bench/cli.mjs [--data-mib 512] [--logical-mib 2048]
//
// Needs `pnpm build`. The server is `epoch serve` (filesystem + SQLite) on loopback; cocoon is
// the tests' fake one (packages/test-support/src/fake-cocoon.mjs), which stores
// snapshots as plain sparse files and exports data segments as cocoon does.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'data-mib': { type: 'string', default: '512' },
    'logical-mib': { type: 'string', default: '2048' },
  },
});
const MiB = 1024 * 1024;
const DATA = Number(values['data-mib']) * MiB;
const LOGICAL = Number(values['logical-mib']) * MiB;
const SEGMENTS = 8;
const root = new URL('..', import.meta.url).pathname;
const main = join(root, 'apps/cli/dist/main.js');
const fakeCocoon = join(root, 'packages/test-support/src/fake-cocoon.mjs');
await mkdir(join(root, 'bench', '.results'), { recursive: true });
const work = await mkdtemp(join(root, 'bench', '.results', 'cli-'));

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs a command, sampling its VmHWM (peak RSS) from /proc until it exits. */
async function measured(args, env) {
  const started = performance.now();
  const child = spawn(process.execPath, [main, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let peakKiB = 0;
  const sampler = setInterval(async () => {
    try {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      if (hwm > peakKiB) peakKiB = hwm;
    } catch {}
  }, 20);
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`epoch ${args.join(' ')} exited ${code}`);
  return { seconds: (performance.now() - started) / 1000, peakMiB: peakKiB / 1024, stdout };
}

async function sha256(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk);
  return hash.digest('hex');
}

// The snapshot: a 2 GiB memory file with DATA bytes in SEGMENTS evenly spread segments.
const source = join(work, 'a');
const dir = join(source, 'snapshots', 'bigvm');
await mkdir(dir, { recursive: true });
await writeFile(
  join(dir, 'snapshot.json'),
  `${JSON.stringify({ config: { name: 'bigvm', cpu: 2, memory: LOGICAL, queue_size: 256 }, version: 1 })}\n`,
);
await writeFile(join(dir, 'config.json'), '{"cpus":{"boot_vcpus":2}}');
await writeFile(join(dir, 'state.json'), randomBytes(64 * 1024));
const memory = await open(join(dir, 'memory-ranges'), 'w');
await memory.truncate(LOGICAL);
const segment = DATA / SEGMENTS;
for (let i = 0; i < SEGMENTS; i++) {
  const offset = Math.floor((LOGICAL / SEGMENTS) * i);
  for (let done = 0; done < segment; done += 8 * MiB) {
    const n = Math.min(8 * MiB, segment - done);
    await memory.write(randomBytes(n), 0, n, offset + done);
  }
}
await memory.close();

const port = await freePort();
const server = spawn(
  process.execPath,
  [main, 'serve', '--addr', `127.0.0.1:${port}`, '--data-dir', join(work, 'data')],
  {
    env: { ...process.env, EPOCH_LOG_LEVEL: 'warn', EPOCH_S3_ENV_FILE: join(work, 'none.env') },
    stdio: ['ignore', 'inherit', 'inherit'],
  },
);
await writeFile(join(work, 'none.env'), '');
const url = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try {
    const res = await fetch(`${url}/v2/`);
    await res.arrayBuffer();
    break;
  } catch {
    if (i > 200) throw new Error('the server did not start');
    await sleep(100);
  }
}

const env = { EPOCH_SERVER: url, EPOCH_COCOON_BINARY: fakeCocoon };
try {
  const push = await measured(['push', 'bigvm', '-t', 'bench'], {
    ...env,
    FAKE_COCOON_ROOT: source,
  });
  // The same push from a tar file, to tell the CLI's cost from the cocoon stand-in's export.
  const tarPath = join(work, 'bigvm.tar');
  const exportStarted = performance.now();
  const exported = spawn(fakeCocoon, ['snapshot', 'export', 'bigvm', '-o', '-'], {
    env: { ...process.env, FAKE_COCOON_ROOT: source },
    stdio: ['ignore', (await open(tarPath, 'w')).fd, 'inherit'],
  });
  await new Promise((resolve) => exported.on('close', resolve));
  const exportSeconds = (performance.now() - exportStarted) / 1000;
  const fromTar = await measured(['push', 'bigvm', '-t', 'bench-tar', '--from-tar', tarPath], env);
  const target = join(work, 'b');
  await mkdir(target, { recursive: true });
  const pull = await measured(['pull', 'bigvm:bench'], { ...env, FAKE_COCOON_ROOT: target });
  const pulled = join(target, 'snapshots', 'bigvm', 'memory-ranges');
  const same = (await sha256(join(dir, 'memory-ranges'))) === (await sha256(pulled));
  const onDisk = (await stat(pulled)).blocks * 512;
  const runs = [push, fromTar, pull];
  const rows = [
    ['wall time (s)', ...runs.map((r) => r.seconds.toFixed(1))],
    ['data throughput (MB/s)', ...runs.map((r) => (DATA / 1e6 / r.seconds).toFixed(0))],
    ['logical throughput (MB/s)', ...runs.map((r) => (LOGICAL / 1e6 / r.seconds).toFixed(0))],
    ['CLI peak RSS (MiB)', ...runs.map((r) => r.peakMiB.toFixed(0))],
  ];
  console.log(
    `memory file ${LOGICAL / MiB} MiB logical, ${DATA / MiB} MiB data in ${SEGMENTS} segments`,
  );
  console.log(`fake cocoon export alone, to a file: ${exportSeconds.toFixed(1)} s\n`);
  const head = ['', 'push (cocoon export)', 'push --from-tar', 'pull (cocoon import)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(row));
  console.log(
    `\npulled memory file identical: ${same}; ${(onDisk / MiB).toFixed(0)} MiB allocated on disk`,
  );
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('close', resolve));
  await rm(work, { recursive: true, force: true });
}
