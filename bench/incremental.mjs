// Incremental snapshots (issue 22): the workload pushed through a 100 MB/s link.
// A snapshot of a 4 GiB sparse memory file (half data, 64 segments) and a 1 GiB qcow2 overlay
// (random bytes) lives in a fake cocoon's directory (packages/test-support/src/fake-cocoon.mjs);
// each next version rewrites 5% of the memory's data pages (half single random 4 KiB pages,
// half runs of 64 KiB–1 MiB) and appends 50 MiB to the overlay (and rewrites its first page).
// Ten versions are pushed with `epoch push --incremental` through a loopback proxy pacing the
// whole link at 100 MB/s each way; versions 1 and 2 are also pushed the default way (one blob
// per file) to another repository, through the same proxy. Printed: bytes sent per version
// (counted by the proxy, client → server) against the 4 KiB-granularity change set and the
// issue's budget, stored bytes (the server's blobs), push times, the CLI's peak RSS; then the
// puller (newPuller) through the same link: a cold pull of v2 against an update from v1 to v2,
// copying (the default: v1 stays cached) and in place (`updateInPlace`: v1's files become v2's).
// EPOCH_BENCH_INC_SCALE shrinks the workload (e.g. 0.25); EPOCH_BENCH_INC_VERSIONS (10);
// EPOCH_BENCH_CACHE_DIR puts the puller's caches there (default: the temp directory), e.g. on a
// file system that clones files (scripts/reflink-dir.sh), where a copying update clones v1.
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'apps/cli/dist/main.js');
const fakeCocoon = join(root, 'packages/test-support/src/fake-cocoon.mjs');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const PAGE = 4 * KiB;
const SCALE = Number(process.env.EPOCH_BENCH_INC_SCALE ?? 1);
const VERSIONS = Number(process.env.EPOCH_BENCH_INC_VERSIONS ?? 10);
const RATE = 100e6;
const MEM = Math.round(4 * GiB * SCALE);
const SEGMENTS = 64;
const SEG = MEM / (2 * SEGMENTS); // data segment and hole size
const OVERLAY = Math.round(1 * GiB * SCALE);
const GROWTH = Math.round(50 * MiB * SCALE);
const CACHE_PARENT = process.env.EPOCH_BENCH_CACHE_DIR ?? tmpdir();

const work = await mkdtemp(join(tmpdir(), 'epoch-bench-inc-'));
const cocoon = join(work, 'cocoon');
const vmDir = join(cocoon, 'snapshots', 'vm');

let seed = 7;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (n) => Math.floor(random() * n);

function writeRandom(fd, offset, length) {
  const buf = Buffer.allocUnsafe(Math.min(length, 8 * MiB));
  for (let done = 0; done < length; ) {
    const n = Math.min(buf.length, length - done);
    randomFillSync(buf, 0, n);
    writeSync(fd, buf, 0, n, offset + done);
    done += n;
  }
}

async function createVersion1() {
  await mkdir(vmDir, { recursive: true });
  await writeFile(
    join(vmDir, 'snapshot.json'),
    `${JSON.stringify({ config: { id: 'bench', name: 'vm', cpu: 2, memory: MEM, hypervisor: 'cloud-hypervisor' }, version: 1 })}\n`,
  );
  await writeFile(join(vmDir, 'config.json'), '{"cpus":{"boot_vcpus":2}}');
  await writeFile(join(vmDir, 'state.json'), Buffer.alloc(64 * KiB, 1));
  const mem = openSync(join(vmDir, 'memory-ranges'), 'w');
  ftruncateSync(mem, MEM);
  for (let s = 0; s < SEGMENTS; s++) writeRandom(mem, 2 * s * SEG, SEG);
  closeSync(mem);
  const ov = openSync(join(vmDir, 'overlay.qcow2'), 'w');
  writeRandom(ov, 0, OVERLAY);
  closeSync(ov);
}

let overlaySize = OVERLAY;
/** Mutates the snapshot into the next version; returns the 4 KiB-granularity change set. */
function nextVersion() {
  const dataPages = MEM / 2 / PAGE;
  const perSeg = SEG / PAGE;
  const pageAt = (k) => 2 * Math.floor(k / perSeg) * perSeg + (k % perSeg);
  const target = Math.round(dataPages * 0.05);
  const pages = new Set();
  while (pages.size < target / 2) pages.add(pageAt(randInt(dataPages)));
  let inRuns = 0;
  const half = pages.size;
  while (inRuns < target - half) {
    const len = 16 + randInt(241);
    const start = randInt(dataPages - len);
    for (let i = 0; i < len; i++) {
      const p = pageAt(start + i);
      if (!pages.has(p)) inRuns++;
      pages.add(p);
    }
  }
  const mem = openSync(join(vmDir, 'memory-ranges'), 'r+');
  const page = Buffer.allocUnsafe(PAGE);
  for (const p of pages) {
    randomFillSync(page);
    writeSync(mem, page, 0, PAGE, p * PAGE);
  }
  closeSync(mem);
  const ov = openSync(join(vmDir, 'overlay.qcow2'), 'r+');
  writeRandom(ov, 0, PAGE);
  writeRandom(ov, overlaySize, GROWTH);
  closeSync(ov);
  overlaySize += GROWTH;
  return pages.size * PAGE + PAGE + GROWTH;
}

async function startServer() {
  const child = spawn(process.execPath, [cli, 'serve'], {
    env: {
      ...process.env,
      EPOCH_ADDR: '127.0.0.1:0',
      EPOCH_DATA_DIR: join(work, 'server'),
      EPOCH_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      try {
        const e = JSON.parse(line);
        if (e.msg === 'listening') resolve(e.url);
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, url };
}

/**
 * A TCP proxy pacing the whole link to `rate` bytes/s in each direction (one shared clock per
 * direction, as a 100 MB/s network would), counting the bytes it carries.
 */
async function startLink(target, rate) {
  const { hostname, port } = new URL(target);
  const clock = { up: 0, down: 0 };
  const counted = { up: 0, down: 0 };
  const pace = (from, to, dir) => {
    from.on('data', (chunk) => {
      counted[dir] += chunk.length;
      const now = performance.now();
      clock[dir] = Math.max(clock[dir], now) + (chunk.length / rate) * 1000;
      to.write(chunk);
      const wait = clock[dir] - now;
      if (wait > 2) {
        from.pause();
        setTimeout(() => from.resume(), wait);
      }
    });
    from.on('end', () => to.end());
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    pace(client, upstream, 'up');
    pace(upstream, client, 'down');
    upstream.on('error', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, counted, close: () => server.close() };
}

const rssHook = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nmaxrss '+process.resourceUsage().maxRSS+'\\n'))`;

function push(url, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', rssHook, cli, 'push', 'vm', ...args], {
      env: {
        ...process.env,
        EPOCH_SERVER: url,
        EPOCH_COCOON_BINARY: fakeCocoon,
        FAKE_COCOON_ROOT: cocoon,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`push ${args.join(' ')} exited ${code}: ${stderr}`));
      const rss = Number(/maxrss (\d+)/.exec(stderr)?.[1] ?? 0) / 1024;
      resolve({
        ms: performance.now() - t0,
        rssMiB: rss,
        stderr: stderr.replace(/\nmaxrss \d+\n/, '').trim(),
      });
    });
  });
}

async function storedBytes() {
  let total = 0;
  const walk = async (dir) => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await stat(p)).size;
    }
  };
  await walk(join(work, 'server', 'objects', 'blobs'));
  return total;
}

/**
 * Runs the puller in a child process against `url` (with `options` beside the defaults): ensures
 * each of `warm` (untimed), then each of `timed`, in one fresh cache; returns the timed ensures'
 * seconds, bytes and the peak RSS.
 */
function pull(url, warm, timed, options = {}) {
  const registry = join(root, 'packages/registry/dist/index.js');
  const script = `
    import { mkdtemp, rm } from 'node:fs/promises';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    const { newPuller } = await import(${JSON.stringify(registry)});
    const cacheDir = await mkdtemp(join(${JSON.stringify(CACHE_PARENT)}, 'epoch-bench-puller-'));
    const puller = newPuller({ registry: ${JSON.stringify(url)}, cacheDir, ...${JSON.stringify(options)} });
    try {
      for (const ref of ${JSON.stringify(warm)}) await puller.ensureSnapshot(ref);
      const out = [];
      for (const ref of ${JSON.stringify(timed)}) {
        const t0 = performance.now();
        const r = await puller.ensureSnapshot(ref);
        out.push({ ref, ms: performance.now() - t0, transferred: r.bytesTransferred, reused: r.bytesReused });
      }
      process.stdout.write(JSON.stringify({ out, rss: process.resourceUsage().maxRSS / 1024 }));
    } finally {
      await puller.close();
      await rm(cacheDir, { recursive: true, force: true });
    }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`puller exited ${code}`)),
    );
  });
}

const mib = (b) => (b / MiB).toFixed(1);
const sec = (ms) => (ms / 1000).toFixed(1);

try {
  console.log(
    `workload: memory ${mib(MEM)} MiB (half data), overlay ${mib(OVERLAY)} MiB +${mib(GROWTH)} MiB/version, ${VERSIONS} versions, link ${RATE / 1e6} MB/s; puller caches in ${CACHE_PARENT}`,
  );
  await createVersion1();
  const server = await startServer();
  const link = await startLink(server.url, RATE);
  const rows = [];
  const full = [];
  let change = 0;
  for (let v = 1; v <= VERSIONS; v++) {
    if (v > 1) change = nextVersion();
    const logical = MEM + overlaySize + 64 * KiB + 25;
    if (v <= 2) {
      // today's default: one blob per file, to a repository of its own
      const before = link.counted.up;
      const r = await push(link.url, ['--repo', 'full/vm', '-t', `v${v}`]);
      full.push({ v, ms: r.ms, sent: link.counted.up - before, rss: r.rssMiB });
      console.log(
        `  full push v${v}: ${sec(r.ms)} s, ${mib(link.counted.up - before)} MiB sent, RSS ${r.rssMiB.toFixed(0)} MiB`,
      );
    }
    const storedBefore = await storedBytes();
    const before = link.counted.up;
    const r = await push(link.url, ['--repo', 'inc/vm', '-t', `v${v}`, '--incremental']);
    const sent = link.counted.up - before;
    const budget = 2 * change + 0.01 * logical;
    rows.push({
      v,
      ms: r.ms,
      sent,
      change,
      budget,
      rss: r.rssMiB,
      stored: (await storedBytes()) - storedBefore,
      logical,
    });
    console.log(
      `  incremental v${v}: ${sec(r.ms)} s, sent ${mib(sent)} MiB (change ${mib(change)} MiB), RSS ${r.rssMiB.toFixed(0)} MiB — ${r.stderr.split('\n').pop()}`,
    );
  }
  const fullStored = await storedBytes();
  // The puller through the same link: v2 into an empty cache, and v2 into a cache holding v1.
  const cold = await pull(link.url, [], ['inc/vm:v2']);
  const update = await pull(link.url, ['inc/vm:v1'], ['inc/vm:v2']);
  const inPlace = await pull(link.url, ['inc/vm:v1'], ['inc/vm:v2'], { updateInPlace: true });
  const coldFull = await pull(link.url, [], ['full/vm:v2']);
  const [c2] = cold.out;
  const [u2] = update.out;
  const [p2] = inPlace.out;
  const [cf2] = coldFull.out;
  console.log(
    `  puller: cold v2 ${sec(c2.ms)} s (${mib(c2.transferred)} MiB), update v1→v2 ${sec(u2.ms)} s (${mib(u2.transferred)} MiB fetched, ${mib(u2.reused)} MiB from the cache), in place ${sec(p2.ms)} s (${mib(p2.transferred)} MiB fetched), cold one-blob-per-file v2 ${sec(cf2.ms)} s; RSS ${cold.rss.toFixed(0)}/${update.rss.toFixed(0)}/${inPlace.rss.toFixed(0)} MiB`,
  );
  console.log(
    '\n| version | sent MiB | 4 KiB change MiB | sent / change | budget MiB (2× change + 1%) | within | push s | RSS MiB |',
  );
  console.log(
    '| ------- | -------- | ---------------- | ------------- | --------------------------- | ------ | ------ | ------- |',
  );
  for (const r of rows) {
    console.log(
      `| v${r.v} | ${mib(r.sent)} | ${r.v === 1 ? '—' : mib(r.change)} | ${r.v === 1 ? '—' : (r.sent / r.change).toFixed(2)} | ${r.v === 1 ? '—' : mib(r.budget)} | ${r.v === 1 ? '—' : r.sent <= r.budget ? 'yes' : 'NO'} | ${sec(r.ms)} | ${r.rss.toFixed(0)} |`,
    );
  }
  const incStored = rows.reduce((s, r) => s + r.stored, 0);
  const fullOnly = full.reduce((s, f) => s + f.sent, 0);
  const [f1, f2] = full;
  const [i1, i2] = rows;
  console.log('\n| measure | value | target |');
  console.log('| --- | --- | --- |');
  console.log(
    `| stored, ${VERSIONS} incremental versions | ${mib(incStored)} MiB (${(incStored / (rows[0]?.stored ?? 1)).toFixed(2)}× v1's ${mib(rows[0]?.stored ?? 0)} MiB) | ≤ 2× |`,
  );
  console.log(
    `| v2: full push vs incremental push | ${sec(f2.ms)} s vs ${sec(i2.ms)} s (${(f2.ms / i2.ms).toFixed(1)}×) | ≥ 5× |`,
  );
  console.log(
    `| v1: incremental push vs full push | ${sec(i1.ms)} s vs ${sec(f1.ms)} s (${(i1.ms / f1.ms).toFixed(2)}×) | ≤ 1.3× |`,
  );
  console.log(
    `| peak client RSS (incremental / full) | ${Math.max(...rows.map((r) => r.rss)).toFixed(0)} / ${Math.max(...full.map((f) => f.rss)).toFixed(0)} MiB | ≤ 300 MiB |`,
  );
  console.log(
    `| puller: cold pull of v2 vs update from a cached v1 (copying) | ${sec(c2.ms)} s vs ${sec(u2.ms)} s (${(c2.ms / u2.ms).toFixed(1)}×; ${mib(u2.transferred)} MiB fetched) | ≥ 5× |`,
  );
  console.log(
    `| puller: cold pull of v2 vs update in place (\`updateInPlace\`) | ${sec(c2.ms)} s vs ${sec(p2.ms)} s (${(c2.ms / p2.ms).toFixed(1)}×; ${mib(p2.transferred)} MiB fetched) | ≥ 5× |`,
  );
  console.log(
    `| puller: cold pull of v2, one blob per file | ${sec(cf2.ms)} s, peak puller RSS ${Math.max(cold.rss, update.rss, inPlace.rss, coldFull.rss).toFixed(0)} MiB | |`,
  );
  console.log(
    `| server blobs at the end (both repositories) | ${mib(fullStored)} MiB (full pushes: ${mib(fullOnly)} MiB sent) | |`,
  );
  link.close();
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill();
  await exited;
} finally {
  await rm(work, { recursive: true, force: true });
}
