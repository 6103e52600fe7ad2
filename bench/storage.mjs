// Object-store throughput benchmark: writes a 1 GiB blob generated on the fly (never held in
// memory) through each driver, reads it back, and reports MB/s and the client's peak RSS.
//
//   node bench/storage.mjs [--size-mib 1024] [--runs 3] [--driver fs|s3]
//
// Needs the built package (`pnpm --filter @epoch/registry build`). Each driver runs in a child
// process of its own, so one driver's memory never shows in another's peak RSS; the S3 driver
// talks to the in-memory test server (fauxqs, patched) in yet another process, so the 1 GiB the
// server holds is not counted either. The filesystem driver writes under bench/.results/ on the
// repository's disk (not /tmp, which may be tmpfs). Reads follow the write: from the disk where
// the filesystem driver wrote with O_DIRECT (past the page cache), from the page cache otherwise.
//
// Targets for the filesystem driver: write ≥ 350 MB/s, read ≥ 1 GB/s, peak RSS ≤ 200 MiB.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const registry = join(root, 'packages', 'registry');
const distIndex = join(registry, 'dist', 'storage', 'index.js');
const serverScript = join(root, 'packages', 'test-support', 'src', 'fauxqs-server.mjs');
const resultsDir = join(root, 'bench', '.results');
const MiB = 1024 * 1024;
const CHUNK = 64 * 1024; // what an HTTP request body arrives in

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    driver: { type: 'string' },
    child: { type: 'boolean', default: false },
    endpoint: { type: 'string' },
    bucket: { type: 'string' },
  },
});
const size = Number(values['size-mib']) * MiB;
const runs = Number(values.runs);

if (!existsSync(distIndex)) {
  console.error(`${distIndex} is missing: run \`pnpm --filter @epoch/registry build\` first`);
  process.exit(1);
}

if (values.child) {
  const result = await runDriver(values.driver, values);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
}

const drivers = values.driver ? [values.driver] : ['fs', 's3'];
const rows = [];
for (const driver of drivers) {
  const server = driver === 's3' ? await startServer() : undefined;
  try {
    rows.push(await inChild(driver, server));
  } finally {
    server?.close();
  }
}
printTable(rows);
await mkdir(resultsDir, { recursive: true });
await writeFile(
  join(resultsDir, 'storage.json'),
  `${JSON.stringify({ date: new Date().toISOString(), sizeBytes: size, runs, rows }, null, 2)}\n`,
);

// ——— parent side ———

async function startServer() {
  const bucket = `bench-${randomBytes(4).toString('hex')}`;
  const child = spawn(process.execPath, [serverScript], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, FAUXQS_BUCKETS: bucket },
  });
  const endpoint = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`S3 test server exited with ${code}`)));
    child.stdout.once('data', (d) => resolve(JSON.parse(String(d).split('\n')[0]).endpoint));
  });
  return { endpoint, bucket, close: () => child.kill('SIGTERM') };
}

function inChild(driver, server) {
  const args = [fileURLToPath(import.meta.url), '--child', '--driver', driver];
  args.push('--size-mib', String(size / MiB), '--runs', String(runs));
  if (server) args.push('--endpoint', server.endpoint, '--bucket', server.bucket);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) reject(new Error(`${driver} benchmark failed (exit ${code})`));
      else resolve(JSON.parse(line.slice(7)));
    });
  });
}

function printTable(rows) {
  const header = [
    'driver',
    'size',
    'write MB/s',
    'read MB/s',
    'cold write MB/s',
    'cold read MB/s',
    'peak RSS MiB',
    'runs',
  ];
  const body = rows.map((r) => [
    r.driver,
    `${r.sizeBytes / MiB} MiB`,
    r.writeMBps.toFixed(0),
    r.readMBps.toFixed(0),
    r.coldWriteMBps.toFixed(0),
    r.coldReadMBps.toFixed(0),
    r.peakRssMiB.toFixed(0),
    String(r.runs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));
  console.log(
    '(MB = 10^6 bytes; median of the runs after a warm-up run, whose numbers are the cold ones;',
  );
  console.log(
    ' reads follow the write: from the disk where the filesystem driver wrote with O_DIRECT, from\n' +
      ' the page cache otherwise; RSS covers all runs)',
  );
}

// ——— child side ———

async function runDriver(driver, opts) {
  const storage = await import(pathToFileURL(distIndex).href);
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  let dir;
  let store;
  if (driver === 'fs') {
    await mkdir(resultsDir, { recursive: true });
    dir = await mkdtemp(join(resultsDir, 'fs-'));
    store = await storage.createFsObjectStore(dir);
  } else {
    store = await storage.createS3ObjectStore({
      endpoint: opts.endpoint,
      accessKey: 'bench',
      secretKey: 'bench',
      bucket: opts.bucket,
      region: 'us-east-1',
      prefix: 'bench/',
    });
  }
  const writes = [];
  const reads = [];
  let coldWrite = 0;
  let coldRead = 0;
  try {
    // Run 0 is a warm-up, reported apart as the cold numbers: on a fresh VM the first GiB written
    // lands in guest memory the host has never backed, and first-touch faults, not the driver,
    // set the pace (a steady-state server does not pay them).
    for (let run = 0; run <= runs; run++) {
      const key = `blobs/sha256/bench-${run}`;
      let t = process.hrtime.bigint();
      const put = await store.put(key, generate(size), { size, ifAbsent: true });
      if (!put.created || put.size !== size)
        throw new Error(`unexpected put result ${JSON.stringify(put)}`);
      const write = mbps(size, t);
      if (run === 0) coldWrite = write;
      else writes.push(write);
      t = process.hrtime.bigint();
      let read = 0;
      for await (const chunk of await store.read(key)) read += chunk.length;
      if (read !== size) throw new Error(`read ${read} of ${size} bytes`);
      const readRate = mbps(size, t);
      if (run === 0) coldRead = readRate;
      else reads.push(readRate);
      await store.delete(key);
    }
  } finally {
    clearInterval(sampler);
    await store.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
  return {
    driver: driver === 'fs' ? 'filesystem' : 's3 (fauxqs)',
    sizeBytes: size,
    runs,
    writeMBps: median(writes),
    readMBps: median(reads),
    writeRunsMBps: writes,
    readRunsMBps: reads,
    coldWriteMBps: coldWrite,
    coldReadMBps: coldRead,
    peakRssMiB: Math.max(peak, process.memoryUsage.rss()) / MiB,
  };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function mbps(bytes, startNs) {
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  return bytes / 1e6 / seconds;
}

/** `total` pseudo-random bytes in 64 KiB chunks, made as they are read. */
function generate(total) {
  const template = randomBytes(4 * MiB);
  let sent = 0;
  let n = 0;
  return new Readable({
    highWaterMark: 16 * CHUNK,
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const len = Math.min(CHUNK, total - sent);
      const start = ((n++ * 7919) % (template.length / CHUNK)) * CHUNK;
      const chunk = Buffer.allocUnsafe(len);
      template.copy(chunk, 0, start, start + len);
      chunk.writeUInt32LE(n, 0);
      sent += len;
      this.push(chunk);
    },
  });
}
