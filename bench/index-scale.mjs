// An index of real size (issue 19, item 5): 100,000 repositories, 1,000,000 tags and about
// 1,000,000 blobs on MariaDB, with the same registry in the filesystem driver's layout, then
// `epoch serve --dsn` on it: the start-up reconcile timed, every `/api/` and `/v2/` listing
// measured over HTTP (p50/p99, anonymous admin-less reads and a tenant token limited to one
// team), a GC run timed, the index's size on disk. Prints tables; asserts nothing but that the
// fixture is what the write path writes. Needs `pnpm build` and a MariaDB/MySQL server.
//
//   node bench/index-scale.mjs [--server mysql://root@127.0.0.1:3306] [--repositories 100000]
//     [--tags 1000000] [--samples 300] [--steps check,generate,serve,gc] [--keep]
//
// Steps: `check` replays a small schedule through the store's functions and through the bulk
// path into two scratch databases and compares every table; `generate` writes the big fixture
// (database `epoch_bench_scale`, data dir bench/.results/index-scale/); `serve` starts the
// server on it and measures; `gc` runs the collector on it once (which deletes the fixture's
// garbage: leave it out to measure the same fixture again). The database and data dir are
// removed at the end unless --keep.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { collectGarbage, createLogger } from '../apps/server/dist/index.js';
import { createFsObjectStore, Registry } from '../packages/registry/dist/index.js';
import { openStore } from '../packages/store/dist/index.js';
import { StoreMigrations } from '../packages/store/dist/migrations/index.js';
import {
  Kysely,
  Migrator,
  MysqlDialect,
} from '../packages/store/node_modules/kysely/dist/esm/index.js';
import { createPool } from '../packages/store/node_modules/mysql2/index.js';
import { createConnection } from '../packages/store/node_modules/mysql2/promise.js';
import {
  BulkRows,
  COLUMNS,
  defaultPlan,
  pushThroughStore,
  repositoryName,
  StorageWriter,
  schedule,
  tagCounts,
} from './index-scale-fixture.mjs';

const { values } = parseArgs({
  options: {
    server: {
      type: 'string',
      default: process.env.EPOCH_BENCH_MYSQL_SERVER ?? 'mysql://root@127.0.0.1:3306',
    },
    repositories: { type: 'string' },
    tags: { type: 'string' },
    samples: { type: 'string', default: '300' },
    steps: { type: 'string', default: 'check,generate,serve,gc' },
    keep: { type: 'boolean', default: false },
    name: { type: 'string', default: 'scale' },
    'gc-minutes': { type: 'string', default: '30' },
  },
});
const root = new URL('..', import.meta.url).pathname;
const steps = new Set(values.steps.split(','));
const plan = defaultPlan();
if (values.repositories) {
  const scale = Number(values.repositories) / plan.repositories;
  plan.repositories = Number(values.repositories);
  plan.tags = Math.round(plan.tags * scale);
  plan.big = Math.max(1, Math.round(plan.big * scale));
  plan.garbage = Math.max(1, Math.round(plan.garbage * scale));
}
if (values.tags) plan.tags = Number(values.tags);
const SAMPLES = Number(values.samples);
const GC_MINUTES = Number(values['gc-minutes']);
const DB = `epoch_bench_${values.name}`;
const work = join(root, 'bench', '.results', `index-${values.name}`);
const dsnOf = (db) => `${values.server.replace(/\/$/, '')}/${db}`;
const log = (...args) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...args);

async function admin(statements) {
  const c = await createConnection({ uri: values.server });
  try {
    for (const s of statements) await c.query(s);
  } finally {
    await c.end();
  }
}

/**
 * A new database with the store's schema: all of it, or (for the bulk load) the migrations up
 * to `upTo`, so that opening the store afterwards runs the later ones on the loaded rows, as
 * an upgrade would (and their backfill is timed).
 */
async function createDatabase(db, upTo) {
  await admin([
    `drop database if exists \`${db}\``,
    `create database \`${db}\` character set utf8mb4 collate utf8mb4_bin`,
  ]);
  if (upTo === undefined) {
    await (await openStore({ dsn: dsnOf(db) })).close();
    return;
  }
  const k = new Kysely({ dialect: new MysqlDialect({ pool: createPool({ uri: dsnOf(db) }) }) });
  const { error } = await new Migrator({ db: k, provider: new StoreMigrations('mysql') }).migrateTo(
    upTo,
  );
  await k.destroy();
  if (error) throw error;
}

/** The last migration before the ones that add what the bulk rows leave to a backfill. */
const BULK_SCHEMA = '0003-settings';

/** Bulk loader: multi-row INSERTs on a few connections, foreign keys checked afterwards. */
async function bulkLoader(db, connections = 3) {
  const pool = [];
  for (let i = 0; i < connections; i++) {
    const c = await createConnection({
      uri: dsnOf(db),
      charset: 'UTF8MB4_BIN',
      timezone: 'Z',
      dateStrings: true,
    });
    await c.query("set time_zone = '+00:00', foreign_key_checks = 0, unique_checks = 0");
    pool.push(c);
  }
  const idle = [...pool];
  const inFlight = new Set();
  let rows = 0;
  const flush = async (table, batch) => {
    while (idle.length === 0) await Promise.race(inFlight);
    const c = idle.pop();
    const p = c
      .query(`insert into ${table} (${COLUMNS[table].join(', ')}) values ?`, [batch])
      .then(() => {
        rows += batch.length;
      })
      .finally(() => {
        idle.push(c);
        inFlight.delete(p);
      });
    inFlight.add(p);
  };
  return {
    flush,
    get rows() {
      return rows;
    },
    async close() {
      await Promise.all(inFlight);
      for (const c of pool) await c.end();
    },
  };
}

// ---- check: the bulk rows are the write path's rows ----

async function dump(db) {
  const c = await createConnection({
    uri: dsnOf(db),
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  const q = async (sql) =>
    (await c.query(sql))[0].map((r) =>
      JSON.stringify(r, (_, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v)),
    );
  const out = {
    repositories: await q('select * from repositories order by name'),
    manifests: await q(
      'select r.name as repo, m.* from manifests m join repositories r on r.id = m.repository_id order by r.name, m.digest',
    ),
    tags: await q(
      'select r.name as repo, t.name, m.digest as manifest, t.digest, t.pushed_at from tags t join repositories r on r.id = t.repository_id join manifests m on m.id = t.manifest_id order by r.name, t.name',
    ),
    manifest_blobs: await q(
      'select r.name as repo, m.digest as manifest, mb.* from manifest_blobs mb join manifests m on m.id = mb.manifest_id join repositories r on r.id = m.repository_id order by r.name, m.digest, mb.digest',
    ),
    manifest_children: await q('select count(*) as n from manifest_children'),
    repository_blobs: await q(
      'select r.name as repo, rb.digest, rb.linked_at from repository_blobs rb join repositories r on r.id = rb.repository_id order by r.name, rb.digest',
    ),
    blobs: await q('select * from blobs order by digest'),
    audit_events: await q(
      'select at, actor, action, repository, reference, digest, detail from audit_events order by at, reference',
    ),
  };
  await c.end();
  // Ids are the database's business: compare rows by what they name instead.
  const strip = (rows, keys) =>
    rows.map((r) => {
      const o = JSON.parse(r);
      for (const k of keys) delete o[k];
      return JSON.stringify(o);
    });
  out.repositories = strip(out.repositories, ['id']);
  out.manifests = strip(out.manifests, ['id', 'repository_id']);
  out.manifest_blobs = strip(out.manifest_blobs, ['manifest_id', 'repository_id']);
  return out;
}

async function checkFixture() {
  const small = {
    ...defaultPlan(),
    repositories: 40,
    tags: 420,
    big: 2,
    bigTags: 60,
    teamSize: 8,
    garbage: 4,
  };
  const t0 = Date.UTC(2026, 0, 1);
  const viaStore = `epoch_bench_check_${randomBytes(3).toString('hex')}`;
  const viaBulk = `${viaStore}_bulk`;
  try {
    await createDatabase(viaStore);
    const store = await openStore({ dsn: dsnOf(viaStore) });
    await schedule(small, t0, (p) => pushThroughStore(store, p));
    await store.close();

    await createDatabase(viaBulk, BULK_SCHEMA);
    const loader = await bulkLoader(viaBulk, 1);
    const rows = new BulkRows(small, loader.flush, 50);
    await schedule(small, t0, (p) => rows.push(p));
    await rows.finish();
    await loader.close();
    // Reopening runs whatever migrations backfill from the rows (none are pending here).
    await (await openStore({ dsn: dsnOf(viaBulk) })).close();

    const a = await dump(viaStore);
    const b = await dump(viaBulk);
    let compared = 0;
    for (const table of Object.keys(a)) {
      const x = a[table].join('\n');
      const y = b[table].join('\n');
      if (x !== y) {
        const i = a[table].findIndex((row, n) => row !== b[table][n]);
        throw new Error(
          `fixture check: ${table} differs from the write path's\n  store: ${a[table][i]}\n  bulk:  ${b[table][i]}`,
        );
      }
      compared += a[table].length;
    }
    log(`check: bulk rows equal the write path's (${compared} rows in 8 tables)`);
    return compared;
  } finally {
    await admin([
      `drop database if exists \`${viaStore}\``,
      `drop database if exists \`${viaBulk}\``,
    ]);
  }
}

// ---- generate: the big fixture ----

async function generate() {
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, 'data', 'objects'), { recursive: true });
  await createDatabase(DB, BULK_SCHEMA);
  const loader = await bulkLoader(DB);
  const rows = new BulkRows(plan, loader.flush);
  const storage = new StorageWriter(join(work, 'data', 'objects'));
  const started = performance.now();
  const t0 = Date.now() - 200 * 86_400_000;
  let n = 0;
  const result = await schedule(plan, t0, async (p) => {
    await rows.push(p);
    await storage.push(p);
    if (++n % 50_000 === 0)
      log(`generate: ${n} pushes, ${loader.rows} rows, ${storage.files} files`);
  });
  await rows.finish();
  await loader.close();
  await storage.finish();
  const loaded = (performance.now() - started) / 1000;
  // Opening the store runs the migrations that backfill from existing rows: timed apart.
  const m0 = performance.now();
  await (await openStore({ dsn: dsnOf(DB) })).close();
  const migrate = (performance.now() - m0) / 1000;
  const c = await createConnection({ uri: dsnOf(DB) });
  await c.query(
    'analyze table repositories, manifests, tags, manifest_blobs, repository_blobs, blobs, audit_events',
  );
  const count = async (t) => Number((await c.query(`select count(*) as n from ${t}`))[0][0].n);
  const counts = {};
  for (const t of [
    'repositories',
    'manifests',
    'tags',
    'blobs',
    'repository_blobs',
    'manifest_blobs',
    'audit_events',
  ])
    counts[t] = await count(t);
  await c.end();
  log(
    `generate: ${result.pushes} pushes, ${storage.files} files in ${loaded.toFixed(0)} s; migrations ${migrate.toFixed(1)} s`,
    counts,
  );
  return { seconds: loaded, migrate, files: storage.files, counts };
}

// ---- serve: the server on the fixture, measured over HTTP ----

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** VmHWM of a process, in MiB. */
async function peakOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** `epoch serve` as a child process, with its JSON log lines collected. */
class Server {
  constructor(port, child) {
    this.base = `http://127.0.0.1:${port}`;
    this.child = child;
    this.lines = [];
    this.waiters = [];
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const entry = JSON.parse(line);
          this.lines.push(entry);
          for (const w of this.waiters) w(entry);
        } catch {
          // not a log line
        }
      }
    });
    this.exited = new Promise((resolve) => child.on('close', resolve));
  }

  /** The first log entry with message `msg` after line `from`. */
  logged(msg, from = 0) {
    const found = this.lines.slice(from).find((e) => e.msg === msg);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      this.waiters.push((e) => e.msg === msg && resolve(e));
      this.exited.then((code) => reject(new Error(`server exited (${code}) before "${msg}"`)));
    });
  }

  async request(path, token, init = {}) {
    const t0 = performance.now();
    const res = await fetch(this.base + path, {
      ...init,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
    });
    const body = await res.text();
    const ms = performance.now() - t0;
    if (!res.ok) {
      throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${body.slice(0, 300)}`);
    }
    return { ms, body, headers: res.headers };
  }
}

async function startServer(env) {
  const port = await freePort();
  await writeFile(join(work, 's3.env'), '');
  const child = spawn(
    process.execPath,
    [
      ...(process.env.EPOCH_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      join(root, 'apps/cli/dist/main.js'),
      'serve',
    ],
    {
      env: {
        ...process.env,
        EPOCH_ADDR: `127.0.0.1:${port}`,
        EPOCH_DATA_DIR: join(work, 'data'),
        EPOCH_DSN: dsnOf(DB),
        EPOCH_S3_ENV_FILE: join(work, 's3.env'),
        EPOCH_LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const server = new Server(port, child);
  // A bench that fails leaves no server behind.
  process.on('exit', () => child.kill('SIGKILL'));
  await server.logged('listening');
  return server;
}

/** Latency of `n` requests made one after the other; `next(i)` → [path, token, onResponse]. */
async function measure(server, label, n, next) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const step = await next(i);
    if (step === undefined) break;
    const [path, token, seen] = step;
    const r = await server.request(path, token);
    times.push(r.ms);
    seen?.(r);
  }
  times.sort((a, b) => a - b);
  const row = {
    label,
    n: times.length,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    max: times.at(-1),
  };
  log(`${label}: n=${row.n} p50=${row.p50.toFixed(1)} p99=${row.p99.toFixed(1)} ms`);
  return row;
}

/** Walks a cursor-paged `/api/` listing page by page (from the start again at its end). */
function walk(server, label, path, token, n) {
  let cursor;
  const sep = path.includes('?') ? '&' : '?';
  return measure(server, label, n, () => [
    cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path,
    token,
    (r) => {
      cursor = r.headers.get('x-next-cursor') ?? undefined;
    },
  ]);
}

/** Walks a `Link`-paged `/v2/` listing (from the start again at its end). */
function walkV2(server, label, path, token, n) {
  let next;
  return measure(server, label, n, () => [
    next ?? path,
    token,
    (r) => {
      const link = r.headers.get('link');
      next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
    },
  ]);
}

async function serve() {
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const counts = tagCounts(plan);
  const memory = { startup: 0, gc: 0 };
  // Migrations pending on the fixture (those after the bulk load's schema) run here, timed.
  const m0 = performance.now();
  await (await openStore({ dsn: dsnOf(DB) })).close();
  const migrateSeconds = (performance.now() - m0) / 1000;
  const index = await openStore({ dsn: dsnOf(DB) });
  const { plaintext: admin } = await index.tokens.create({
    name: 'bench-admin',
    createdBy: 'bench',
    scopes: ['pull', 'push', 'delete', 'admin'],
    repoPattern: '*',
  });
  await index.close();
  log(`migrations: ${migrateSeconds.toFixed(1)} s`);
  const t0 = performance.now();
  const server = await startServer({ EPOCH_GC_DELAY: '1m' });
  const sample = (key) =>
    setInterval(() => {
      peakOf(server.child.pid).then((m) => {
        memory[key] = Math.max(memory[key], m);
      });
    }, 1000);
  const startSampler = sample('startup');
  const reconciled = await server.logged('index reconciled');
  const reconcileSeconds = (performance.now() - t0) / 1000;
  clearInterval(startSampler);
  memory.startup = await peakOf(server.child.pid);
  log(
    `start-up reconcile: ${reconcileSeconds.toFixed(1)} s, peak RSS ${memory.startup.toFixed(0)} MiB`,
  );

  // An admin token straight in the index (the first one has no one to create it over HTTP),
  // and through it a tenant's token, limited to one team (100 repositories) by its pattern.
  const team = `team-${String(Math.floor(plan.repositories / plan.teamSize / 2)).padStart(4, '0')}`;
  const createToken = async (token, body) =>
    JSON.parse(
      (
        await server.request('/api/tokens', token, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      ).body,
    ).token;
  const tenant = await createToken(admin, {
    name: 'tenant',
    scopes: ['pull'],
    repoPattern: `${team}/*`,
  });
  const randomRepo = () => Math.floor(rnd() * plan.repositories);
  const enc = (name) => name.split('/').map(encodeURIComponent).join('/');
  const needle = () => {
    const name = repositoryName(plan, randomRepo());
    const r = rnd();
    // A repository's own name (one match), a part of a name (a few), a team (100), a common
    // fragment (thousands), two characters.
    if (r < 0.35) return name.slice(name.indexOf('/') + 1);
    if (r < 0.65) return name.slice(3, 8 + Math.floor(rnd() * 6));
    if (r < 0.85) return name.slice(0, name.indexOf('/'));
    if (r < 0.95) return `vc-0${Math.floor(rnd() * 10)}`;
    return name.slice(-2);
  };
  const rows = [];
  const n = SAMPLES;
  const few = Math.min(n, 100);
  const sorts = ['name', 'updated', 'size', 'tags'];
  for (const sort of sorts) {
    rows.push(
      await walk(
        server,
        `/api/repositories?sort=${sort}, pages of 100 walked by cursor`,
        `/api/repositories?sort=${sort}&limit=100`,
        admin,
        n,
      ),
    );
  }
  for (const sort of sorts) {
    rows.push(
      await measure(server, `/api/repositories?sort=${sort}&search=… (random needles)`, n, () => [
        `/api/repositories?sort=${sort}&limit=100&search=${encodeURIComponent(needle())}`,
        admin,
      ]),
    );
  }
  rows.push(
    await measure(server, '/api/repositories/<name>', n, () => [
      `/api/repositories/${enc(repositoryName(plan, randomRepo()))}`,
      admin,
    ]),
  );
  rows.push(
    await measure(server, '/api/repositories/<name>/tags, first page of 100', n, () => [
      `/api/repositories/${enc(repositoryName(plan, randomRepo()))}/tags?limit=100`,
      admin,
    ]),
  );
  const big = repositoryName(plan, 0);
  rows.push(
    await walk(
      server,
      `/api/repositories/<name>/tags, ${counts[0]} tags walked by cursor`,
      `/api/repositories/${enc(big)}/tags?limit=100`,
      admin,
      n,
    ),
  );
  rows.push(
    await measure(server, '/api/repositories/<name>/tags/<tag>', n, () => {
      const i = randomRepo();
      const k = 1 + Math.floor(rnd() * (counts[i] - 1));
      return [`/api/repositories/${enc(repositoryName(plan, i))}/tags/v${k}`, admin];
    }),
  );
  rows.push(
    await measure(server, '/v2/<name>/tags/list', n, () => [
      `/v2/${enc(repositoryName(plan, randomRepo()))}/tags/list`,
      admin,
    ]),
  );
  rows.push(
    await walkV2(
      server,
      `/v2/<name>/tags/list?n=100, ${counts[0]} tags walked by Link`,
      `/v2/${enc(big)}/tags/list?n=100`,
      admin,
      n,
    ),
  );
  rows.push(
    await walkV2(server, '/v2/_catalog?n=1000, walked by Link', '/v2/_catalog?n=1000', admin, few),
  );
  rows.push(await measure(server, '/api/stats', Math.min(n, 50), () => ['/api/stats', admin]));
  // What a tenant sees: a token limited to one team (100 repositories) by its pattern.
  for (const sort of sorts) {
    rows.push(
      await walk(
        server,
        `tenant: /api/repositories?sort=${sort}`,
        `/api/repositories?sort=${sort}&limit=100`,
        tenant,
        few,
      ),
    );
  }
  rows.push(
    await measure(server, 'tenant: /api/repositories?search=… (random needles)', few, () => [
      `/api/repositories?limit=100&search=${encodeURIComponent(needle())}`,
      tenant,
    ]),
  );
  rows.push(
    await walkV2(server, 'tenant: /v2/_catalog?n=1000', '/v2/_catalog?n=1000', tenant, few),
  );
  rows.push(await measure(server, 'tenant: /api/stats', few, () => ['/api/stats', tenant]));

  server.child.kill('SIGTERM');
  await server.exited;
  return { migrateSeconds, reconcileSeconds, reconciled, rows, memory };
}

/** The index's tables: estimated rows, data and index bytes. */
async function tableSizes() {
  const c = await createConnection({ uri: dsnOf(DB) });
  const [sizes] = await c.query(
    `select table_name as t, table_rows as r, data_length as d, index_length as i
       from information_schema.tables where table_schema = ? order by data_length + index_length desc`,
    [DB],
  );
  await c.end();
  return sizes;
}

async function gcRun() {
  const memory = { gc: 0 };
  // One GC run, by the collector the server runs, on the same index and storage, without the
  // reconcile a server-driven run does first (that one is the start-up reconcile timed above).
  // Grace period 1 min: the fixture's garbage (old untagged manifests) is months old.
  const index2 = await openStore({ dsn: dsnOf(DB) });
  const objects = await createFsObjectStore(join(work, 'data', 'objects'));
  const g0 = performance.now();
  const rss0 = process.memoryUsage().rss;
  let gcPeak = 0;
  const gcSampler = setInterval(() => {
    gcPeak = Math.max(gcPeak, process.memoryUsage().rss);
  }, 1000);
  let report;
  const gc = collectGarbage(new Registry(objects), index2, {
    delayMs: 60_000,
    log: createLogger('silent'),
  }).then((r) => {
    report = r;
  });
  await Promise.race([gc, new Promise((resolve) => setTimeout(resolve, GC_MINUTES * 60_000))]);
  clearInterval(gcSampler);
  const gcSeconds = (performance.now() - g0) / 1000;
  memory.gc = Math.max(0, gcPeak - rss0) / 2 ** 20;
  log(report ? `GC: ${gcSeconds.toFixed(1)} s` : `GC: not done after ${GC_MINUTES} min`);
  if (report) await index2.close();
  const c = await createConnection({ uri: dsnOf(DB) });
  const [gcEvents] = await c.query(
    "select action, count(*) as n from audit_events where action like 'gc.%' group by action",
  );
  await c.end();
  return { gcSeconds, gcEvents, report, memory };
}

const mib = (bytes) => (Number(bytes) / 2 ** 20).toFixed(0);
const loadAverage = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

function print({ served, gc, sizes, generated }) {
  console.log(
    `\n${plan.repositories} repositories, ${plan.tags} tags; MariaDB, filesystem storage; load average at the end ${loadAverage()}\n`,
  );
  if (generated) {
    const c = generated.counts;
    console.log(
      `fixture: ${c.repositories} repositories, ${c.tags} tags, ${c.manifests} manifests, ${c.blobs} blobs, ${c.repository_blobs} links, ${c.audit_events} audit events, ${generated.files} storage objects; bulk load ${generated.seconds.toFixed(0)} s, migrations on it ${generated.migrate.toFixed(1)} s\n`,
    );
  }
  if (served) {
    console.log('| route | requests | p50 (ms) | p99 (ms) | max (ms) |');
    console.log('|---|---|---|---|---|');
    for (const r of served.rows) {
      console.log(
        `| ${r.label} | ${r.n} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} |`,
      );
    }
  }
  console.log('\n| operation | time (s) | peak RSS (MiB) | detail |');
  console.log('|---|---|---|---|');
  if (served) {
    const rec = served.reconciled;
    console.log(
      `| start-up reconcile | ${served.reconcileSeconds.toFixed(1)} | ${served.memory.startup.toFixed(0)} (server) | storage read ${(rec.readMs / 1000).toFixed(1)} s; ${rec.errors} errors |`,
    );
  }
  if (gc) {
    const g = gc.report;
    const events = gc.gcEvents.map((e) => `${e.n} ${e.action}`).join(', ') || 'none';
    console.log(
      g
        ? `| GC run (collector without its pre-run reconcile) | ${gc.gcSeconds.toFixed(1)} | +${gc.memory.gc.toFixed(0)} (bench process) | deleted ${g.tags.count} tags, ${g.manifests.count} manifests, ${g.links.count} links, ${g.blobs.count} blobs, ${g.orphans.count} orphans |`
        : `| GC run (collector without its pre-run reconcile), stopped waiting after ${GC_MINUTES} min | > ${gc.gcSeconds.toFixed(0)} | +${gc.memory.gc.toFixed(0)} (bench process) | audit events so far: ${events} |`,
    );
  }
  if (served) {
    console.log(`| migrations pending on the fixture | ${served.migrateSeconds.toFixed(1)} | | |`);
  }
  console.log('\n| table | rows (estimate) | data (MiB) | indexes (MiB) |');
  console.log('|---|---|---|---|');
  let data = 0;
  let index = 0;
  for (const s of sizes) {
    data += Number(s.d);
    index += Number(s.i);
    console.log(`| ${s.t} | ${s.r} | ${mib(s.d)} | ${mib(s.i)} |`);
  }
  console.log(`| total | | ${mib(data)} | ${mib(index)} |`);
}

if (steps.has('check')) await checkFixture();
const generated = steps.has('generate') ? await generate() : undefined;
const served = steps.has('serve') ? await serve() : undefined;
const gc = steps.has('gc') ? await gcRun() : undefined;
if (served || gc) print({ served, gc, sizes: await tableSizes(), generated });
if (!values.keep && (served || gc)) {
  await admin([`drop database if exists \`${DB}\``]);
  await rm(work, { recursive: true, force: true });
}
// A GC still running after its time limit is abandoned with the process.
process.exit(0);
