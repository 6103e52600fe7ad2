// Load and soak: 200 concurrent clients mixing manifest GETs, blob range GETs and pushes against
// `epoch serve` (filesystem, SQLite) for a while. Prints a table: requests and unexpected errors
// per operation, p50/p99 latency, and the server's RSS and open file descriptors sampled every
// 10 s. With --check it exits non-zero on any unexpected error (the short CI form).
//
//   node bench/soak.mjs [--seconds 300] [--clients 200] [--check]
//
// Needs `pnpm build`.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    clients: { type: 'string', default: '200' },
    check: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const root = new URL('..', import.meta.url).pathname;
await mkdir(join(root, 'bench', '.results'), { recursive: true });
const work = await mkdtemp(join(root, 'bench', '.results', 'soak-'));
await writeFile(join(work, 's3.env'), '');

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const child = spawn(process.execPath, [join(root, 'apps/cli/dist/main.js'), 'serve'], {
  env: {
    ...process.env,
    EPOCH_ADDR: `127.0.0.1:${port}`,
    EPOCH_DATA_DIR: join(work, 'data'),
    EPOCH_S3_ENV_FILE: join(work, 's3.env'),
    EPOCH_LOG_LEVEL: 'warn',
    // Loopback writes are open out of the box; 200 clients on one address need room.
    EPOCH_MAX_CONCURRENT_UPLOADS: String(CLIENTS * 2),
  },
  // Request logs are off (warn level): they would cost more than what is measured.
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  if ((await fetch(`${base}/healthz`).catch(() => undefined))?.ok) break;
  if (i > 100) throw new Error('the server did not start');
  await new Promise((r) => setTimeout(r, 100));
}
const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });

function call(method, path, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
const digestOf = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// Fixtures: 20 repositories with an image each (a 1 MiB layer) to read.
const fixtures = [];
for (let i = 0; i < 20; i++) {
  const repo = `soak/r${i}`;
  const layer = randomBytes(1024 * 1024);
  const config = Buffer.from(`{"i":${i}}`);
  for (const b of [layer, config]) {
    const r = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digestOf(b)}`, { body: b });
    if (r.status !== 201) throw new Error(`fixture upload ${r.status}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: digestOf(config),
      size: config.length,
    },
    layers: [
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: digestOf(layer),
        size: layer.length,
      },
    ],
  });
  await call('PUT', `/v2/${repo}/manifests/v1`, {
    body: manifest,
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  fixtures.push({ repo, layer, layerDigest: digestOf(layer), manifestDigest: digestOf(manifest) });
}

const stats = { manifest: [], range: [], push: [] };
const errors = { manifest: 0, range: 0, push: 0 };
const samples = [];
const pick = (a) => a[Math.floor(Math.random() * a.length)];
const deadline = Date.now() + SECONDS * 1000;

async function op(kind, fn) {
  const t0 = performance.now();
  try {
    await fn();
    stats[kind].push(performance.now() - t0);
  } catch (err) {
    errors[kind]++;
    if (errors[kind] <= 3) console.error(`${kind}: ${err.message}`);
  }
}

async function client(n) {
  while (Date.now() < deadline) {
    const roll = Math.random();
    const f = pick(fixtures);
    if (roll < 0.6) {
      await op('manifest', async () => {
        const r = await call('GET', `/v2/${f.repo}/manifests/v1`, {
          headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
        });
        if (r.status !== 200 || r.headers['docker-content-digest'] !== f.manifestDigest)
          throw new Error(`manifest ${r.status}`);
      });
    } else if (roll < 0.95) {
      await op('range', async () => {
        const start = Math.floor(Math.random() * (f.layer.length - 65536));
        const r = await call('GET', `/v2/${f.repo}/blobs/${f.layerDigest}`, {
          headers: { Range: `bytes=${start}-${start + 65535}` },
        });
        if (r.status !== 206 || !r.body.equals(f.layer.subarray(start, start + 65536)))
          throw new Error(`range ${r.status}`);
      });
    } else {
      await op('push', async () => {
        const b = randomBytes(64 * 1024);
        const r = await call(
          'POST',
          `/v2/soak/push${n % 10}/blobs/uploads/?digest=${digestOf(b)}`,
          { body: b },
        );
        if (r.status !== 201) throw new Error(`push ${r.status}`);
      });
    }
  }
}

function sample() {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  const fds = readdirSync(`/proc/${child.pid}/fd`).length;
  samples.push({ at: Math.round((samples.length + 1) * 10), rss, fds });
}
const sampler = setInterval(sample, 10_000);
await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
clearInterval(sampler);
sample();

const pct = (a, p) => {
  if (a.length === 0) return 0;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
console.log(`\n${CLIENTS} clients for ${SECONDS} s against epoch serve (filesystem, SQLite)\n`);
console.log('| operation | requests | unexpected errors | p50 (ms) | p99 (ms) |');
console.log('| --- | --- | --- | --- | --- |');
for (const k of Object.keys(stats)) {
  console.log(
    `| ${k} | ${stats[k].length} | ${errors[k]} | ${pct(stats[k], 50).toFixed(1)} | ${pct(stats[k], 99).toFixed(1)} |`,
  );
}
console.log('\n| t (s) | server RSS (MiB) | open fds |');
console.log('| --- | --- | --- |');
for (const s of samples) console.log(`| ${s.at} | ${s.rss.toFixed(0)} | ${s.fds} |`);
child.kill('SIGTERM');
await once(child, 'exit');
agent.destroy();
await rm(work, { recursive: true, force: true });
const total = Object.values(errors).reduce((a, b) => a + b, 0);
if (values.check && total > 0) {
  console.error(`soak: ${total} unexpected errors`);
  process.exit(1);
}
