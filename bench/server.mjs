// Benchmark of the /v2/ data path: Epoch against Debian's docker-registry (CNCF distribution
// 2.8.2) on the same machine in the same run. Prints a table; asserts nothing.
//
//   node bench/server.mjs [--size-mib 1024] [--store fs|rgw]
//
// `--store fs` (default): both on the local disk (Epoch's filesystem driver, docker-registry's
// `filesystem` driver). `--store rgw`: both on the same Ceph RGW (scripts/rgw.sh; started when the
// EPOCH_TEST_RGW_* variables are not set), each in a bucket of its own that is deleted afterwards:
// Epoch's S3 driver against docker-registry's `s3` driver, both serving blob bytes themselves
// (docker-registry's redirect to presigned S3 URLs is off, as Epoch's is by default). RGW's and
// the OSD's CPU time is printed next to each server's.
//
// Needs `pnpm build` and curl. docker-registry and wrk are used when installed (apt-get install
// docker-registry wrk); without them their rows/columns are skipped. Monolithic and concurrent
// uploads and the download use curl, a light client, so the servers rather than the client are
// measured; the chunked upload uses Node's http client to send file ranges. Each server first
// takes one 64 MiB upload that is not measured (a warm-up, the same for both). Both servers run
// throughout; uploads go to one at a time, downloads alternate between them: three with the page
// cache warm (median reported), then one cold (the page cache dropped first, which needs root).
// Next to
// throughput the server's CPU time (user + system, from /proc) is printed for the uploads and the
// download, and the disk's own durable write rate (`dd oflag=direct conv=fdatasync` of the same
// 2 GiB the concurrent uploads write) as a bound for the durable uploads.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { rgwSetup } from './rgw.mjs';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    store: { type: 'string', default: 'fs' },
  },
});
if (values.store !== 'fs' && values.store !== 'rgw') throw new Error('--store is fs or rgw');
const RGW_MODE = values.store === 'rgw';
const MiB = 1024 * 1024;
const SIZE = Number(values['size-mib']) * MiB;
const CHUNK = 64 * MiB;
const CONCURRENT = 8;
const CONCURRENT_SIZE = SIZE / 4;
const WARMUP_SIZE = 64 * MiB;
const root = new URL('..', import.meta.url).pathname;
await mkdir(join(root, 'bench', '.results'), { recursive: true });
const work = await mkdtemp(join(root, 'bench', '.results', 'server-'));

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** A file of `size` random bytes (incompressible, so no layer can shortcut it) and its digest. */
async function makeFile(path, size) {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  for (let written = 0; written < size; written += MiB) {
    const chunk = randomBytes(MiB);
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return `sha256:${hash.digest('hex')}`;
}

function http(base, method, path, { body, headers = {} } = {}) {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body && typeof body.pipe === 'function') body.pipe(req);
    else req.end(body);
  });
}

/** One upload with curl (POST, then PUT of the whole file): a light client, the same for both. */
async function curlUpload(base, repo, file, digest) {
  const start = await http(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  const loc = new URL(start.headers.location, base).toString();
  const sep = loc.includes('?') ? '&' : '?';
  const child = spawn('curl', [
    '-sS',
    '-X',
    'PUT',
    '-H',
    'Content-Type: application/octet-stream',
    '-T',
    file,
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `${loc}${sep}digest=${digest}`,
  ]);
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const [code] = await once(child, 'close');
  if (code !== 0 || out !== '201') throw new Error(`curl upload failed: ${code} ${out}`);
}

async function curlDownload(base, repo, digest) {
  const child = spawn('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{size_download}',
    `${base}/v2/${repo}/blobs/${digest}`,
  ]);
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  await once(child, 'close');
  return Number(out);
}

async function monolithic(base, repo, file, digest, size) {
  // POST then PUT with the whole body: the flow docker/containerd use for one-shot uploads.
  const start = await http(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  const loc = start.headers.location;
  const sep = loc.includes('?') ? '&' : '?';
  const res = await http(base, 'PUT', `${loc}${sep}digest=${digest}`, {
    body: Buffer.isBuffer(file) ? file : createReadStream(file, { highWaterMark: MiB }),
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
  });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${res.body}`);
}

async function chunked(base, repo, file, digest, size) {
  const start = await http(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  let loc = start.headers.location;
  for (let offset = 0; offset < size; offset += CHUNK) {
    const end = Math.min(size, offset + CHUNK) - 1;
    const res = await http(base, 'PATCH', loc, {
      body: createReadStream(file, { start: offset, end, highWaterMark: MiB }),
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${offset}-${end}`,
        'Content-Length': String(end - offset + 1),
      },
    });
    if (res.status !== 202) throw new Error(`PATCH failed: ${res.status} ${res.body}`);
    loc = res.headers.location;
  }
  const sep = loc.includes('?') ? '&' : '?';
  const t0 = performance.now();
  const res = await http(base, 'PUT', `${loc}${sep}digest=${digest}`, {
    headers: { 'Content-Length': '0' },
  });
  const finalPut = (performance.now() - t0) / 1000;
  if (res.status !== 201) throw new Error(`final PUT failed: ${res.status} ${res.body}`);
  return finalPut;
}

async function pushManifest(base, repo, configDigest) {
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: configDigest,
      size: 2,
    },
    layers: [],
  });
  const res = await http(base, 'PUT', `/v2/${repo}/manifests/latest`, {
    body: manifest,
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status !== 201) throw new Error(`manifest PUT failed: ${res.status} ${res.body}`);
}

/** CPU seconds (user + system) the process has used so far. */
async function cpuSeconds(pid) {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Empties the page cache so that the next read comes from the disk: `sync` (docker-registry does
 * not fsync, and only clean pages can be dropped), then `drop_caches`, which needs root. Returns
 * whether it could; without root the "cold" row is left out rather than measure a warm read.
 */
async function dropCaches() {
  spawnSync('sync');
  try {
    await writeFile('/proc/sys/vm/drop_caches', '1\n');
    return true;
  } catch {
    return false;
  }
}

function peakRssMiB(pid) {
  return readFile(`/proc/${pid}/status`, 'utf8').then(
    (s) => Number(/VmHWM:\s+(\d+)/.exec(s)[1]) / 1024,
  );
}

async function waitFor(base) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await http(base, 'GET', '/v2/');
      if (r.status === 200 || r.status === 401) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${base} did not start`);
}

async function startEpoch(port, rgw) {
  const dataDir = join(work, 'epoch-data');
  const s3 = rgw
    ? {
        EPOCH_S3_ENDPOINT: rgw.endpoint,
        EPOCH_S3_ACCESS_KEY: rgw.accessKey,
        EPOCH_S3_SECRET_KEY: rgw.secretKey,
        EPOCH_S3_REGION: rgw.region,
        EPOCH_S3_BUCKET: await rgw.bucket(`epoch-bench-${randomBytes(4).toString('hex')}`),
      }
    : {};
  const child = spawn(process.execPath, [join(root, 'apps/cli/dist/main.js'), 'serve'], {
    env: {
      ...process.env,
      EPOCH_ADDR: `127.0.0.1:${port}`,
      EPOCH_DATA_DIR: dataDir,
      EPOCH_LOG_LEVEL: 'warn',
      EPOCH_S3_ENV_FILE: '/dev/null',
      ...s3,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { name: 'epoch', child, base: `http://127.0.0.1:${port}`, dataDir };
}

async function startDistribution(port, rgw) {
  const dir = join(work, 'distribution');
  await mkdir(dir, { recursive: true });
  const config = join(work, 'distribution.yml');
  const storage = rgw
    ? [
        '  s3:',
        `    accesskey: ${rgw.accessKey}`,
        `    secretkey: ${rgw.secretKey}`,
        `    region: ${rgw.region}`,
        `    regionendpoint: ${rgw.endpoint}`,
        `    bucket: ${await rgw.bucket(`registry-bench-${randomBytes(4).toString('hex')}`)}`,
        '    secure: false',
        '    v4auth: true',
        '    rootdirectory: /',
        '  redirect:',
        '    disable: true',
      ].join('\n')
    : `  filesystem:\n    rootdirectory: ${dir}`;
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  // The AWS SDK inside refuses to start when AWS_CA_BUNDLE is set with a plain-HTTP endpoint.
  const { AWS_CA_BUNDLE: _, ...env } = process.env;
  const child = spawn('docker-registry', ['serve', config], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { name: 'docker-registry', child, base: `http://127.0.0.1:${port}`, dataDir: dir };
}

function wrkRps(base, path) {
  if (!which('wrk')) return undefined;
  const r = spawnSync(
    'wrk',
    [
      '-t2',
      '-c32',
      '-d5s',
      '-H',
      'Accept: application/vnd.oci.image.manifest.v1+json',
      `${base}${path}`,
    ],
    { encoding: 'utf8' },
  );
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

/** CPU seconds of the storage daemons (RGW and the OSD) so far; 0 on the filesystem. */
async function storageCpu(rgw) {
  let total = 0;
  for (const pid of rgw?.pids ?? []) total += await cpuSeconds(pid);
  return total;
}

async function run(server, files, rgw) {
  await waitFor(server.base);
  // One small upload first, the same for both servers, so that neither is measured while it
  // compiles its hot paths or starts its threads: the figures are a running server's.
  await curlUpload(server.base, 'bench/warmup', files.warmup.path, files.warmup.digest);
  const rate = (bytes, s) => bytes / 1e6 / s;
  const pid = server.child.pid;
  const out = {};
  let cpu = await cpuSeconds(pid);
  let scpu = await storageCpu(rgw);
  let t = performance.now();
  await curlUpload(server.base, 'bench/mono', files.big.path, files.big.digest);
  out.mono = rate(SIZE, (performance.now() - t) / 1000);
  out.monoCpu = (await cpuSeconds(pid)) - cpu;
  out.monoStorageCpu = (await storageCpu(rgw)) - scpu;

  cpu = await cpuSeconds(pid);
  scpu = await storageCpu(rgw);
  t = performance.now();
  const finalPut = await chunked(
    server.base,
    'bench/chunked',
    files.big2.path,
    files.big2.digest,
    SIZE,
  );
  out.chunked = rate(SIZE, (performance.now() - t) / 1000);
  out.finalPut = finalPut;
  out.chunkedCpu = (await cpuSeconds(pid)) - cpu;
  out.chunkedStorageCpu = (await storageCpu(rgw)) - scpu;

  cpu = await cpuSeconds(pid);
  t = performance.now();
  await Promise.all(
    files.small.map((f, i) => curlUpload(server.base, `bench/c${i}`, f.path, f.digest)),
  );
  out.concurrent = rate(CONCURRENT_SIZE * CONCURRENT, (performance.now() - t) / 1000);
  out.concurrentCpu = (await cpuSeconds(pid)) - cpu;

  const cfg = Buffer.from('{}');
  const cfgDigest = `sha256:${createHash('sha256').update(cfg).digest('hex')}`;
  await monolithic(server.base, 'bench/man', cfg, cfgDigest, cfg.length);
  await pushManifest(server.base, 'bench/man', cfgDigest);
  out.rps = wrkRps(server.base, '/v2/bench/man/manifests/latest');
  return out;
}

/** One timed download of the monolithic upload's blob (MB/s) and the server CPU it took. */
async function download(server, files, rgw) {
  const cpu = await cpuSeconds(server.child.pid);
  const scpu = await storageCpu(rgw);
  const t0 = performance.now();
  const n = await curlDownload(server.base, 'bench/mono', files.big.digest);
  if (n !== SIZE) throw new Error(`download returned ${n} bytes`);
  const mbps = SIZE / 1e6 / ((performance.now() - t0) / 1000);
  return {
    mbps,
    cpu: (await cpuSeconds(server.child.pid)) - cpu,
    storageCpu: (await storageCpu(rgw)) - scpu,
  };
}

/**
 * The downloads, interleaved between the servers (A B A B A B, then each cold) so that load from
 * elsewhere on the machine falls on both alike.
 */
async function downloads(servers, results, files, rgw) {
  const warm = servers.map(() => []);
  for (let round = 0; round < 3; round++) {
    for (const [i, server] of servers.entries()) warm[i].push(await download(server, files, rgw));
  }
  for (const [i, server] of servers.entries()) {
    const runs = warm[i].sort((a, b) => a.mbps - b.mbps);
    results[i].download = runs[1].mbps;
    results[i].downloadCpu = runs.reduce((sum, r) => sum + r.cpu, 0) / runs.length;
    results[i].downloadStorageCpu = runs.reduce((sum, r) => sum + r.storageCpu, 0) / runs.length;
    if (await dropCaches()) results[i].downloadCold = (await download(server, files, rgw)).mbps;
    results[i].rss = await peakRssMiB(server.child.pid);
  }
}

/**
 * The disk's durable sequential write rate for `bytes`, as `dd oflag=direct conv=fdatasync`
 * reports it: past the page cache, whose cost on some VMs is not the disk's (bench/README.md).
 */
function diskRate(bytes) {
  const path = join(work, 'dd.bin');
  const r = spawnSync(
    'dd',
    [
      'if=/dev/zero',
      `of=${path}`,
      'bs=4M',
      `count=${bytes / (4 * MiB)}`,
      'oflag=direct',
      'conv=fdatasync',
    ],
    { encoding: 'utf8' },
  );
  spawnSync('rm', ['-f', path]);
  const m = /copied, ([\d.]+) s/.exec(r.stderr);
  return m ? bytes / 1e6 / Number(m[1]) : undefined;
}

console.log(`preparing ${SIZE / MiB} MiB test files in ${work} …`);
const files = {
  big: { path: join(work, 'big.bin') },
  big2: { path: join(work, 'big2.bin') },
  small: Array.from({ length: CONCURRENT }, (_, i) => ({ path: join(work, `c${i}.bin`) })),
};
files.warmup = { path: join(work, 'warmup.bin') };
files.warmup.digest = await makeFile(files.warmup.path, WARMUP_SIZE);
files.big.digest = await makeFile(files.big.path, SIZE);
files.big2.digest = await makeFile(files.big2.path, SIZE);
for (const f of files.small) f.digest = await makeFile(f.path, CONCURRENT_SIZE);

// Both servers run for the whole benchmark; the uploads go to one server at a time, the
// downloads alternate between them.
const rgw = RGW_MODE ? await rgwSetup() : undefined;
const servers = [];
const results = [];
try {
  servers.push(await startEpoch(4390, rgw));
  if (which('docker-registry')) servers.push(await startDistribution(4391, rgw));
  for (const server of servers) {
    results.push({ name: server.name, ...(await run(server, files, rgw)) });
  }
  await downloads(servers, results, files, rgw);
} finally {
  for (const server of servers) {
    // A server that died early has already exited: waiting for its 'exit' would never end.
    if (server.child.exitCode !== null || server.child.signalCode !== null) continue;
    server.child.kill('SIGTERM');
    await once(server.child, 'exit');
  }
  await rgw?.cleanup();
}

const fmt = (v, d = 0) => (v === undefined ? 'n/a' : v.toFixed(d));
const storageRow = (label, key) =>
  rgw ? [[`  RGW + OSD CPU ${label} (s)`, ...results.map((r) => fmt(r[key], 2))]] : [];
const rows = [
  ['', ...results.map((r) => r.name)],
  [`${SIZE / MiB} MiB monolithic upload (MB/s)`, ...results.map((r) => fmt(r.mono))],
  ['  server CPU for the monolithic upload (s)', ...results.map((r) => fmt(r.monoCpu, 2))],
  ...storageRow('for the monolithic upload', 'monoStorageCpu'),
  [
    `${SIZE / MiB} MiB chunked upload, ${CHUNK / MiB} MiB chunks (MB/s)`,
    ...results.map((r) => fmt(r.chunked)),
  ],
  ['  final PUT of the chunked upload (s)', ...results.map((r) => fmt(r.finalPut, 3))],
  ['  server CPU for the chunked upload (s)', ...results.map((r) => fmt(r.chunkedCpu, 2))],
  ...storageRow('for the chunked upload', 'chunkedStorageCpu'),
  [
    `${SIZE / MiB} MiB download, warm cache, median of 3 (MB/s)`,
    ...results.map((r) => fmt(r.download)),
  ],
  ['  server CPU per download (s)', ...results.map((r) => fmt(r.downloadCpu, 2))],
  ...storageRow('per download', 'downloadStorageCpu'),
  [`${SIZE / MiB} MiB download, cold cache (MB/s)`, ...results.map((r) => fmt(r.downloadCold))],
  [
    `${CONCURRENT} concurrent ${CONCURRENT_SIZE / MiB} MiB uploads, total (MB/s)`,
    ...results.map((r) => fmt(r.concurrent)),
  ],
  ['  server CPU for the concurrent uploads (s)', ...results.map((r) => fmt(r.concurrentCpu, 2))],
  ['manifest GET, 32 connections (req/s)', ...results.map((r) => fmt(r.rps))],
  ['server peak RSS (MiB)', ...results.map((r) => fmt(r.rss))],
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
const line = (r) => `| ${r.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
console.log(line(rows[0]));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows.slice(1)) console.log(line(r));
const disk = diskRate(CONCURRENT_SIZE * CONCURRENT);
console.log(
  `disk: dd of ${(CONCURRENT_SIZE * CONCURRENT) / MiB} MiB with oflag=direct conv=fdatasync: ${fmt(disk)} MB/s`,
);
await rm(work, { recursive: true, force: true });
if (!existsSync(work)) console.log('(test files removed)');
