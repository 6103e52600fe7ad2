// Event-loop responsiveness under maximal manifests: while four valid manifests and four refused
// ones, each with the most descriptors a PUT accepts (EPOCH_MAX_MANIFEST_REFERENCES, default
// 10,000) and padded towards the 4 MiB body limit, are pushed at once, an unauthenticated client
// polls /healthz. Prints healthz latency percentiles idle and under load, and how long the PUTs
// took. Target: /healthz p99 < 100 ms under load.
//
//   node bench/manifest-flood.mjs [--rounds 5] [--references 10000]
//
// Needs `pnpm build`. Filesystem storage and SQLite, anonymous loopback writes (no token).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    references: { type: 'string', default: '10000' },
  },
});
const ROUNDS = Number(values.rounds);
const REFERENCES = Number(values.references);
const MAX_BYTES = 4 << 20;
const root = new URL('..', import.meta.url).pathname;
await mkdir(join(root, 'bench', '.results'), { recursive: true });
const work = await mkdtemp(join(root, 'bench', '.results', 'flood-'));
await writeFile(join(work, 's3.env'), '');

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const child = spawn(
  process.execPath,
  [
    ...(process.env.FLOOD_NODE_ARGS ?? '').split(' ').filter(Boolean),
    join(root, 'apps/cli/dist/main.js'),
    'serve',
  ],
  {
    env: {
      ...process.env,
      EPOCH_ADDR: `127.0.0.1:${port}`,
      EPOCH_DATA_DIR: join(work, 'data'),
      EPOCH_S3_ENV_FILE: join(work, 's3.env'),
      EPOCH_LOG_LEVEL: 'warn',
      EPOCH_MAX_MANIFEST_REFERENCES: String(REFERENCES),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  if ((await fetch(`${base}/healthz`).catch(() => undefined))?.ok) break;
  if (i > 100) throw new Error('the server did not start');
  await new Promise((r) => setTimeout(r, 100));
}
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function call(method, path, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
const digestOf = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// Fixtures: REFERENCES - 1 small layers and an empty config in `flood/app`.
const repo = 'flood/app';
const config = Buffer.from('{}');
await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digestOf(config)}`, { body: config });
const layers = [];
let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < REFERENCES - 1) {
      const i = next++;
      const body = Buffer.from(`layer ${i}`);
      const digest = digestOf(body);
      const res = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { body });
      if (res.status !== 201) throw new Error(`blob push: ${res.status} ${res.body}`);
      layers[i] = {
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest,
        size: body.length,
      };
    }
  }),
);
const fixtureSeconds = (performance.now() - t0) / 1000;

/** A manifest with REFERENCES descriptors, padded with an annotation to just under 4 MiB. */
function maximal(layerList, salt) {
  const doc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: digestOf(config),
      size: 2,
    },
    layers: layerList,
    annotations: { salt, pad: '' },
  };
  const room = MAX_BYTES - Buffer.byteLength(JSON.stringify(doc)) - 64;
  doc.annotations.pad = 'x'.repeat(Math.max(0, room));
  return Buffer.from(JSON.stringify(doc));
}
const missing = Array.from({ length: REFERENCES - 1 }, (_, i) => ({
  mediaType: 'application/vnd.oci.image.layer.v1.tar',
  digest: digestOf(`never pushed ${i}`),
  size: 10,
}));

const percentile = (sorted, p) =>
  sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/**
 * Polls /healthz back to back, from a worker thread, until `stop()`; returns the latencies in
 * ms. A thread of its own: this process also builds and sends the 4 MiB bodies, and a poller
 * on its event loop would time its own work along with the server's.
 */
function pollHealth() {
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Agent, request } = require('node:http');
    const agent = new Agent({ keepAlive: true });
    const samples = [];
    let running = true;
    parentPort.on('message', () => { running = false; });
    const get = () => new Promise((resolve, reject) => {
      const req = request(workerData.url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end();
    });
    (async () => {
      while (running) {
        const start = performance.now();
        const status = await get();
        if (status !== 200) throw new Error('healthz ' + status);
        samples.push(performance.now() - start);
        await new Promise((r) => setTimeout(r, 5));
      }
      parentPort.postMessage(samples);
      agent.destroy();
    })();
    `,
    { eval: true, workerData: { url: `${base}/healthz` } },
  );
  const result = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return async () => {
    worker.postMessage('stop');
    const samples = await result;
    await worker.terminate();
    return samples.sort((a, b) => a - b);
  };
}

// Idle baseline: 2 s of polling.
let stop = pollHealth();
await new Promise((r) => setTimeout(r, 2000));
const idle = await stop();

// Every body is built before the polling starts.
const rounds = Array.from({ length: ROUNDS }, (_, round) =>
  Array.from({ length: 4 }, (_, k) => [
    { tag: `ok-${round}-${k}`, body: maximal(layers, `ok ${round} ${k}`) },
    { tag: `bad-${round}-${k}`, body: maximal(missing, `bad ${round} ${k}`) },
  ]).flat(),
);
const putTimes = [];
const statuses = new Map();
stop = pollHealth();
for (const puts of rounds) {
  await Promise.all(
    puts.map(async ({ tag, body }) => {
      const start = performance.now();
      const res = await call('PUT', `/v2/${repo}/manifests/${tag}`, {
        body,
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      putTimes.push(performance.now() - start);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }),
  );
}
const loaded = await stop();
putTimes.sort((a, b) => a - b);

const ms = (v) => v.toFixed(1);
console.log(
  `\nmanifest flood: ${REFERENCES} descriptors per manifest, ~${(maximal(layers, 'x').length / 2 ** 20).toFixed(2)} MiB each; ` +
    `4 valid + 4 refused at once, ${ROUNDS} rounds (fixtures: ${REFERENCES - 1} blobs in ${fixtureSeconds.toFixed(1)} s)`,
);
console.log('| /healthz | samples | p50 ms | p99 ms | max ms |');
console.log('|---|---|---|---|---|');
for (const [name, s] of [
  ['idle', idle],
  ['during the PUTs', loaded],
]) {
  console.log(
    `| ${name} | ${s.length} | ${ms(percentile(s, 50))} | ${ms(percentile(s, 99))} | ${ms(s.at(-1) ?? 0)} |`,
  );
}
console.log(
  `\nmanifest PUTs: ${putTimes.length} (${[...statuses].map(([s, n]) => `${n}× ${s}`).join(', ')}), ` +
    `p50 ${ms(percentile(putTimes, 50))} ms, p99 ${ms(percentile(putTimes, 99))} ms`,
);
const p99 = percentile(loaded, 99);
console.log(
  `target /healthz p99 < 100 ms under load: ${p99 < 100 ? 'met' : 'NOT met'} (${ms(p99)} ms)`,
);

child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await rm(work, { recursive: true, force: true });
