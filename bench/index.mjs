// Index listing benchmark: 10,000 tags in one repository on SQLite (and MySQL when
// EPOCH_BENCH_MYSQL_URL is set), listed page by page as `/v2/<name>/tags/list` (byte order,
// keyset, 1,000 per page) and as `/api/repositories/<name>/tags` (push time, cursor, 100 per
// page). Prints a table; asserts nothing. Needs `pnpm build`.
//
//   node bench/index.mjs [--tags 10000]
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { digestOf, MediaTypes, parseManifest } from '../packages/oci/dist/index.js';
import { openStore } from '../packages/store/dist/index.js';

const { values } = parseArgs({ options: { tags: { type: 'string', default: '10000' } } });
const TAGS = Number(values.tags);
const root = new URL('..', import.meta.url).pathname;

async function fill(store) {
  const config = digestOf('{}');
  const t0 = performance.now();
  for (let i = 0; i < TAGS; i++) {
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: config, size: 2 },
        layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: digestOf(`layer-${i}`), size: 100 }],
      }),
    );
    await store.writes.recordManifest('bench/tags', {
      digest: digestOf(bytes),
      bytes,
      parsed: parseManifest(bytes),
      tags: [`v${i}`],
      pushedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000),
    });
  }
  return (performance.now() - t0) / 1000;
}

async function pageAll(list) {
  const t0 = performance.now();
  let pages = 0;
  let seen = 0;
  let token;
  do {
    const page = await list(token);
    pages++;
    seen += page.items.length;
    token = page.next;
  } while (token);
  return { seconds: (performance.now() - t0) / 1000, pages, seen };
}

async function run(label, options) {
  const store = await openStore(options);
  try {
    const fillSeconds = await fill(store);
    const byName = await pageAll((last) =>
      store.reads.listTagNames('bench/tags', { limit: 1000, ...(last ? { last } : {}) }),
    );
    const byPush = await pageAll(async (cursor) => {
      const page = await store.reads.listTags('bench/tags', {
        limit: 100,
        ...(cursor ? { cursor } : {}),
      });
      return { items: page.items, next: page.nextCursor };
    });
    return { label, fillSeconds, byName, byPush };
  } finally {
    await store.close();
  }
}

const dir = await mkdtemp(join(root, 'bench', '.results-index-'));
const results = [await run('sqlite', { sqliteFile: join(dir, 'epoch.db') })];
if (process.env.EPOCH_BENCH_MYSQL_URL)
  results.push(await run('mysql', { dsn: process.env.EPOCH_BENCH_MYSQL_URL }));
await rm(dir, { recursive: true, force: true });

console.log(
  `| index | index ${TAGS} tag pushes (s) | tags/list, 1,000 per page: pages, total (s) | /api tags by push time, 100 per page: pages, total (s) |`,
);
console.log('|---|---|---|---|');
for (const r of results) {
  if (r.byName.seen !== TAGS || r.byPush.seen !== TAGS)
    throw new Error(`${r.label}: listed ${r.byName.seen}/${r.byPush.seen} of ${TAGS}`);
  console.log(
    `| ${r.label} | ${r.fillSeconds.toFixed(1)} | ${r.byName.pages} pages, ${r.byName.seconds.toFixed(3)} | ${r.byPush.pages} pages, ${r.byPush.seconds.toFixed(3)} |`,
  );
}
