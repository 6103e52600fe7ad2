// Puller benchmark (issue 9): a snapshot of 4 files (2 GiB in all by default) pushed to a real
// `epoch serve`, then pulled by `newPuller` in a child process (so its peak RSS is its own):
//   1. a single-stream download of one file through a proxy capping each TCP connection at
//      50 MB/s (as object stores do per connection): the per-connection baseline;
//   2. a cold ensureSnapshot through the same proxy (parallel ranged requests);
//   3. a cold ensureSnapshot straight from the server, next to the disk's durable write rate
//      (`dd conv=fdatasync` of the same byte count);
//   4. warm ensureSnapshot of the unchanged tag (median of 20; each one HEADs the tag).
// EPOCH_BENCH_PULLER_MIB sets the total size; EPOCH_BENCH_PULLER_RATE the cap in MB/s.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const root = new URL('..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const registryDist = join(root, 'packages/registry/dist/index.js');
const ociDist = join(root, 'packages/oci/dist/index.js');

if (process.argv[2] === '--child') {
  // The puller under test: one cold ensure, then warm ones; prints one JSON line.
  const { newPuller } = await import(registryDist);
  const [, , , url, cacheDir, ref] = process.argv;
  const puller = newPuller({ registry: url, cacheDir, concurrency: 8, chunkBytes: 32 * MiB });
  const t0 = performance.now();
  const cold = await puller.ensureSnapshot(ref);
  const coldMs = performance.now() - t0;
  const warm = [];
  for (let i = 0; i < 20; i++) warm.push((await puller.ensureSnapshot(ref)).durationMs);
  warm.sort((a, b) => a - b);
  await puller.close();
  process.stdout.write(
    `${JSON.stringify({
      coldMs,
      bytes: cold.bytesTransferred,
      warmMedianMs: warm[10],
      warmMaxMs: warm[19],
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
  process.exit(0);
}

const TOTAL = Number(process.env.EPOCH_BENCH_PULLER_MIB ?? 2048) * MiB;
const RATE = Number(process.env.EPOCH_BENCH_PULLER_RATE ?? 50) * 1e6;
const FILES = ['memory-ranges', 'cow.raw', 'state.json', 'config.json'];
const work = await mkdtemp(join(tmpdir(), 'epoch-bench-puller-'));

async function startServer() {
  const child = spawn(process.execPath, [join(root, 'apps/cli/dist/main.js'), 'serve'], {
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

/** A proxy that paces each connection's response bytes to `rate` bytes per second. */
async function startCappedProxy(target, rate) {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      async (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const started = performance.now();
        let sent = 0;
        try {
          for await (const chunk of up) {
            sent += chunk.length;
            if (!res.write(chunk)) await once(res, 'drain');
            const wait = started + (sent / rate) * 1000 - performance.now();
            if (wait > 0) await sleep(wait);
          }
          res.end();
        } catch {
          res.destroy();
        }
      },
    );
    req.pipe(out);
    out.on('error', () => res.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

async function makeFile(path, size) {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const buf = Buffer.allocUnsafe(4 * MiB);
  for (let left = size; left > 0; left -= buf.length) {
    const part = left < buf.length ? buf.subarray(0, left) : buf;
    randomFillSync(part);
    hash.update(part);
    if (!out.write(Buffer.from(part))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return `sha256:${hash.digest('hex')}`;
}

/** Runs the puller child; async, so this process's proxy keeps serving meanwhile. */
async function runChild(url, cacheDir, ref) {
  const child = spawn(
    process.execPath,
    [new URL(import.meta.url).pathname, '--child', url, cacheDir, ref],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (c) => {
    out += c;
  });
  const [code] = await once(child, 'close');
  if (code !== 0) throw new Error(`puller child exited ${code}`);
  return JSON.parse(out.trim().split('\n').pop());
}

async function singleStream(url, path) {
  const t0 = performance.now();
  let bytes = 0;
  await new Promise((resolve, reject) => {
    request(`${url}${path}`, (res) => {
      res.on('data', (c) => {
        bytes += c.length;
      });
      res.on('end', resolve);
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  return { bytes, ms: performance.now() - t0 };
}

function diskRate(bytes) {
  const path = join(work, 'dd.bin');
  const r = spawnSync(
    'dd',
    [
      'if=/dev/zero',
      `of=${path}`,
      'bs=4M',
      `count=${Math.ceil(bytes / (4 * MiB))}`,
      'conv=fdatasync',
    ],
    { encoding: 'utf8' },
  );
  spawnSync('rm', ['-f', path]);
  const m = /copied, ([\d.]+) s/.exec(r.stderr);
  return m ? bytes / 1e6 / Number(m[1]) : undefined;
}

const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);
const { RegistryClient } = await import(registryDist);
const { digestOf, MediaTypes, CocoonMediaTypes, Annotations, mediaTypeForCocoonFile } =
  await import(ociDist);

const server = await startServer();
try {
  console.log(`pushing a ${TOTAL / MiB} MiB snapshot of ${FILES.length} files to ${server.url} …`);
  const client = new RegistryClient({ url: server.url });
  const layers = [];
  for (const name of FILES) {
    const path = join(work, name);
    const size = TOTAL / FILES.length;
    const digest = await makeFile(path, size);
    await client.pushBlob('bench-vm', () => createReadStream(path), {
      digest,
      size,
      monolithic: true,
    });
    await rm(path);
    layers.push({
      mediaType: mediaTypeForCocoonFile(name),
      digest,
      size,
      annotations: { [Annotations.title]: name },
    });
  }
  const config = Buffer.from(JSON.stringify({ schemaVersion: 'v1', files: {} }));
  await client.pushBlob('bench-vm', config, { digest: digestOf(config) });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.snapshotArtifact,
      config: {
        mediaType: CocoonMediaTypes.snapshotConfig,
        digest: digestOf(config),
        size: config.length,
      },
      layers,
    }),
  );
  await client.putManifest('bench-vm', 'latest', manifest, MediaTypes.ociManifest);
  await client.close();

  const proxy = await startCappedProxy(server.url, RATE);
  console.log(
    `single-stream download of one file (${layers[0].size / MiB} MiB) through the ${RATE / 1e6} MB/s proxy …`,
  );
  const single = await singleStream(proxy.url, `/v2/bench-vm/blobs/${layers[0].digest}`);
  console.log('cold ensureSnapshot through the proxy …');
  const viaProxy = await runChild(proxy.url, join(work, 'cache-proxy'), 'bench-vm:latest');
  await rm(join(work, 'cache-proxy'), { recursive: true, force: true });
  proxy.close();
  console.log('cold ensureSnapshot straight from the server …');
  const direct = await runChild(server.url, join(work, 'cache-direct'), 'bench-vm:latest');
  await rm(join(work, 'cache-direct'), { recursive: true, force: true });
  const disk = diskRate(TOTAL);

  const singleRate = mbps(single.bytes, single.ms);
  const proxyRate = mbps(viaProxy.bytes, viaProxy.coldMs);
  const directRate = mbps(direct.bytes, direct.coldMs);
  const rows = [
    ['measure', 'result', 'target', 'met'],
    ['single stream via proxy', `${singleRate.toFixed(1)} MB/s`, '(baseline)', ''],
    [
      'cold pull via proxy',
      `${proxyRate.toFixed(1)} MB/s (${(proxyRate / singleRate).toFixed(1)}×)`,
      '≥ 3× single stream',
      proxyRate >= 3 * singleRate ? 'yes' : 'NO',
    ],
    ['disk (dd conv=fdatasync)', `${disk?.toFixed(1)} MB/s`, '(baseline)', ''],
    [
      'cold pull direct',
      `${directRate.toFixed(1)} MB/s (${((directRate / disk) * 100).toFixed(0)}% of disk)`,
      '≥ 80% of disk',
      directRate >= 0.8 * disk ? 'yes' : 'NO',
    ],
    [
      'warm ensure (median / max of 20)',
      `${direct.warmMedianMs.toFixed(1)} / ${direct.warmMaxMs.toFixed(1)} ms`,
      '< 50 ms',
      direct.warmMedianMs < 50 ? 'yes' : 'NO',
    ],
    [
      'peak RSS of the puller process',
      `${Math.max(viaProxy.maxRssMiB, direct.maxRssMiB).toFixed(0)} MiB`,
      '< 150 MiB',
      Math.max(viaProxy.maxRssMiB, direct.maxRssMiB) < 150 ? 'yes' : 'NO',
    ],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(
    `\n${TOTAL / MiB} MiB in ${FILES.length} files, ${RATE / 1e6} MB/s per connection, 8 × 32 MiB ranges\n`,
  );
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
} finally {
  server.child.kill('SIGTERM');
  await once(server.child, 'exit').catch(() => {});
  await rm(work, { recursive: true, force: true });
}
