// Push and pull throughput through nginx (deploy/nginx/epoch.conf) with 1 and with 3 replicas of
// `epoch serve`, same workload, on one MariaDB and one Ceph RGW bucket. Prints a table with
// images/s and MB/s per phase, and the CPU seconds each part used (replicas, nginx, RGW with its
// OSD, MariaDB, the clients), with the load average: the machine has 2 cores, so the answer is where they went.
//
//   node bench/replicas.mjs [--clients 6] [--images 6] [--layer-mib 8] [--replicas 1,3]
//
// Needs `pnpm build`, nginx, MariaDB (EPOCH_TEST_MYSQL_URL, default root over 127.0.0.1) and RGW
// (EPOCH_TEST_RGW_*, or scripts/rgw.sh is started).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { freePort, hasNginx, startNginx } from '../packages/test-support/src/nginx.mjs';
import { rgwSetup } from './rgw.mjs';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '6' },
    images: { type: 'string', default: '6' },
    'layer-mib': { type: 'string', default: '8' },
    replicas: { type: 'string', default: '1,3' },
  },
});
const CLIENTS = Number(values.clients);
const IMAGES = Number(values.images);
const LAYER = Number(values['layer-mib']) * 1024 * 1024;
const COUNTS = values.replicas.split(',').map(Number);
const root = new URL('..', import.meta.url).pathname;
const MYSQL_URL = process.env.EPOCH_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/mysql';
const TICKS = 100; // USER_HZ on Linux

if (!hasNginx) {
  console.log('nginx is not installed (apt-get install nginx); nothing to measure');
  process.exit(0);
}
await mkdir(join(root, 'bench', '.results'), { recursive: true });
const work = await mkdtemp(join(root, 'bench', '.results', 'replicas-'));
const mysql = createRequire(join(root, 'packages/store/package.json'))('mysql2/promise');
const { openStore } = await import(join(root, 'packages/store/dist/index.js'));
const mariadbPids = (spawnSync('pidof', ['mariadbd', 'mysqld'], { encoding: 'utf8' }).stdout ?? '')
  .split(/\s+/)
  .filter(Boolean)
  .map(Number);
const digestOf = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** utime + stime of a process and its threads, in seconds; 0 once it is gone. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

/** nginx's master and workers (the workers are its children). */
function nginxPids(master) {
  const out = [master];
  try {
    for (const task of readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').split(' ')) {
      if (task.trim()) out.push(Number(task));
    }
  } catch {}
  return out;
}

async function startReplica(env, dataDir) {
  const port = await freePort();
  await writeFile(join(dataDir, 's3.env'), '');
  const child = spawn(process.execPath, [join(root, 'apps/cli/dist/main.js'), 'serve'], {
    env: {
      ...process.env,
      ...env,
      EPOCH_ADDR: `127.0.0.1:${port}`,
      EPOCH_DATA_DIR: dataDir,
      EPOCH_S3_ENV_FILE: join(dataDir, 's3.env'),
      EPOCH_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout }).on('line', () => {});
  for (let i = 0; i < 300; i++) {
    if ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok) {
      return { child, addr: `127.0.0.1:${port}` };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('a replica did not become ready');
}

async function send(url, init, expected) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, init);
    if (res.status === 503 && attempt < 10) {
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (res.status !== expected) throw new Error(`${url}: ${res.status} ${await res.text()}`);
    return res;
  }
}

/** One replica count: start everything, push, pull, measure, stop everything. */
async function measure(count, rgw) {
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  const dbName = `epoch_bench_${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${dbName} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const dsn = new URL(MYSQL_URL);
  dsn.pathname = `/${dbName}`;
  const bucket = await rgw.bucket(`epoch-bench-${randomBytes(4).toString('hex')}`);
  const index = await openStore({ dsn: dsn.toString() });
  const { plaintext: token } = await index.tokens.create({
    name: 'bench',
    createdBy: 'bench',
    scopes: ['push', 'pull'],
    repoPattern: '*',
  });
  await index.close();
  const env = {
    EPOCH_DSN: dsn.toString(),
    EPOCH_S3_ENDPOINT: rgw.endpoint,
    EPOCH_S3_ACCESS_KEY: rgw.accessKey,
    EPOCH_S3_SECRET_KEY: rgw.secretKey,
    EPOCH_S3_BUCKET: bucket,
  };
  const replicas = [];
  for (let i = 0; i < count; i++) {
    const dir = await mkdtemp(join(work, `r${count}-${i}-`));
    replicas.push(await startReplica(env, dir));
  }
  const nginx = await startNginx(
    replicas.map((r) => r.addr),
    { dir: work },
  );
  const auth = { Authorization: `Bearer ${token}` };
  const layers = Array.from({ length: CLIENTS }, () =>
    Array.from({ length: IMAGES }, () => randomBytes(LAYER)),
  );

  const sample = () => ({
    at: performance.now(),
    replicas: replicas.reduce((s, r) => s + cpuSeconds(r.child.pid), 0),
    nginx: nginxPids(nginx.child.pid).reduce((s, p) => s + cpuSeconds(p), 0),
    rgw: rgw.pids.reduce((s, p) => s + cpuSeconds(p), 0),
    mariadb: mariadbPids.reduce((s, p) => s + cpuSeconds(p), 0),
    client: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  });
  const phase = async (name, body) => {
    const before = sample();
    await body();
    const after = sample();
    const seconds = (after.at - before.at) / 1000;
    const bytes = CLIENTS * IMAGES * LAYER;
    return {
      replicas: count,
      phase: name,
      seconds,
      ops: (CLIENTS * IMAGES) / seconds,
      mbs: bytes / 1e6 / seconds,
      cpu: Object.fromEntries(
        ['replicas', 'nginx', 'rgw', 'mariadb', 'client'].map((k) => [k, after[k] - before[k]]),
      ),
      load: loadavg()[0],
    };
  };

  const pushed = [];
  const push = await phase('push', () =>
    Promise.all(
      layers.map(async (mine, c) => {
        for (const [i, layer] of mine.entries()) {
          const repo = `bench/c${c}`;
          const digest = digestOf(layer);
          await send(
            `${nginx.url}/v2/${repo}/blobs/uploads/?digest=${digest}`,
            {
              method: 'POST',
              headers: { ...auth, 'Content-Type': 'application/octet-stream' },
              body: layer,
            },
            201,
          );
          const config = Buffer.from(`{"c":${c},"i":${i}}`);
          await send(
            `${nginx.url}/v2/${repo}/blobs/uploads/?digest=${digestOf(config)}`,
            { method: 'POST', headers: auth, body: config },
            201,
          );
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
                digest,
                size: layer.length,
              },
            ],
          });
          await send(
            `${nginx.url}/v2/${repo}/manifests/t${i}`,
            {
              method: 'PUT',
              headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
              body: manifest,
            },
            201,
          );
          pushed.push({ repo, tag: `t${i}`, digest });
        }
      }),
    ),
  );
  const pull = await phase('pull', () =>
    Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (const p of pushed.filter((x) => x.repo === `bench/c${c}`)) {
          await (
            await send(
              `${nginx.url}/v2/${p.repo}/manifests/${p.tag}`,
              { headers: { ...auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } },
              200,
            )
          ).arrayBuffer();
          const res = await send(
            `${nginx.url}/v2/${p.repo}/blobs/${p.digest}`,
            { headers: auth },
            200,
          );
          const hash = createHash('sha256');
          for await (const chunk of res.body) hash.update(chunk);
          if (`sha256:${hash.digest('hex')}` !== p.digest) throw new Error('pulled bytes differ');
        }
      }),
    ),
  );

  await nginx.stop();
  for (const r of replicas) {
    r.child.kill('SIGTERM');
    await once(r.child, 'exit');
  }
  await admin.query(`DROP DATABASE ${dbName}`);
  await admin.end();
  return [push, pull];
}

const rgw = await rgwSetup();
const rows = [];
try {
  for (const count of COUNTS) rows.push(...(await measure(count, rgw)));
} finally {
  await rgw.cleanup();
  await rm(work, { recursive: true, force: true });
}

console.log(
  `\n${CLIENTS} clients × ${IMAGES} images, one ${LAYER / 1024 / 1024} MiB layer each, through nginx ` +
    `on RGW + MariaDB; ${cpus().length} cores\n`,
);
console.log(
  '| replicas | phase | images/s | MB/s | CPU s: replicas | nginx | RGW | MariaDB | clients | wall s | load (1 min) |',
);
console.log(
  '| -------- | ----- | -------- | ---- | --------------- | ----- | --- | ------- | ------- | ------ | ------------ |',
);
for (const r of rows) {
  const c = r.cpu;
  console.log(
    `| ${r.replicas} | ${r.phase} | ${r.ops.toFixed(1)} | ${r.mbs.toFixed(0)} | ` +
      `${c.replicas.toFixed(1)} | ${c.nginx.toFixed(1)} | ${c.rgw.toFixed(1)} | ${c.mariadb.toFixed(1)} | ` +
      `${c.client.toFixed(1)} | ` +
      `${r.seconds.toFixed(1)} | ${r.load.toFixed(2)} |`,
  );
}
