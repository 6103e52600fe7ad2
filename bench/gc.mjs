// Garbage collection benchmark: 100,000 unreferenced blobs on the filesystem driver with an
// SQLite index, collected by one `collectGarbage` run (grace period 0). Two cases: blobs the
// index knows (rows with no reference and no link: the mark and sweep path) and blobs the index
// has never heard of (the orphan sweep, which lists blobs/ page by page). Prints a table;
// asserts nothing. Needs `pnpm build`.
//
//   node bench/gc.mjs [--blobs 100000]
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { collectGarbage, createLogger } from '../apps/server/dist/index.js';
import { createFsObjectStore, Registry } from '../packages/registry/dist/index.js';
import { openStore } from '../packages/store/dist/index.js';
import BetterSqlite3 from '../packages/store/node_modules/better-sqlite3/lib/index.js';

const { values } = parseArgs({ options: { blobs: { type: 'string', default: '100000' } } });
const BLOBS = Number(values.blobs);
const WRITE_PARALLEL = 64;

/** Writes `n` small blob files straight into the fs driver's layout; returns their digests. */
async function writeBlobs(objects, n) {
  const dir = join(objects, 'blobs', 'sha256');
  await mkdir(dir, { recursive: true });
  const digests = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const bytes = randomBytes(64);
      const hex = createHash('sha256').update(bytes).digest('hex');
      digests.push(`sha256:${hex}`);
      await writeFile(join(dir, hex), bytes);
    }
  };
  await Promise.all(Array.from({ length: WRITE_PARALLEL }, worker));
  return digests;
}

/** Index rows for blobs with no reference and no link, in one transaction. */
function indexBlobs(file, digests) {
  const db = new BetterSqlite3(file);
  const at = new Date(Date.now() - 60_000).toISOString().replace('T', ' ').slice(0, 23);
  const insert = db.prepare(
    "insert into blobs (digest, size, media_type, ref_count, created_at, updated_at) values (?, 64, 'application/octet-stream', 0, ?, ?)",
  );
  db.transaction(() => {
    for (const d of digests) insert.run(d, at, at);
  })();
  db.close();
}

async function run(label, known) {
  const dir = await mkdtemp(join(tmpdir(), 'epoch-bench-gc-'));
  try {
    const objects = join(dir, 'objects');
    const sqliteFile = join(dir, 'epoch.db');
    const index = await openStore({ sqliteFile });
    const t0 = performance.now();
    const digests = await writeBlobs(objects, BLOBS);
    if (known) indexBlobs(sqliteFile, digests);
    const setup = (performance.now() - t0) / 1000;
    const store = await createFsObjectStore(objects);
    const registry = new Registry(store);
    await new Promise((r) => setTimeout(r, 20));
    const t1 = performance.now();
    const report = await collectGarbage(registry, index, {
      delayMs: 0,
      log: createLogger('silent'),
    });
    const seconds = (performance.now() - t1) / 1000;
    const left = (await readdir(join(objects, 'blobs', 'sha256')).catch(() => [])).length;
    const rss = process.memoryUsage().rss / 2 ** 20;
    await index.close();
    await store.close();
    return {
      label,
      setup,
      seconds,
      deleted: known ? report.blobs.count : report.orphans.count,
      left,
      audit: report.blobs.count + report.orphans.count,
      rss,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const rows = [
  await run('index-known, unreferenced', true),
  await run('orphans (index never knew them)', false),
];
const header = '| case | blobs | setup (s) | GC (s) | blobs/s | deleted | left | RSS (MiB) |';
console.log(`\n${BLOBS.toLocaleString('en-US')} blobs, filesystem driver, SQLite index\n`);
console.log(header);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.label} | ${BLOBS} | ${r.setup.toFixed(1)} | ${r.seconds.toFixed(1)} | ${Math.round(BLOBS / r.seconds)} | ${r.deleted} | ${r.left} | ${r.rss.toFixed(0)} |`,
  );
}
