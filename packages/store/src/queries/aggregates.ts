import { sql } from 'kysely';
import { forEachChunk } from '../batch.js';
import { type Executor, ignoreDuplicate } from '../dialect.js';

/**
 * Per-repository aggregates kept on the `repositories` row (migration `0004`), so that listing,
 * sorting and counting repositories never computes them per repository at read time:
 *
 * - `manifest_count`: manifest rows of the repository (a repository is listed when it is > 0);
 * - `tag_count`: tag rows;
 * - `total_size`: bytes of the distinct blobs the repository links or its manifests reference
 *   (the blob row's size; a digest without a blob row counts 0);
 * - `logical_size`: the sum, over its tags, of the total size of the manifest each points at.
 *
 * How they stay exact: every transaction that changes a repository's tags, manifests, manifest
 * references or links first locks the repository row (MySQL: `FOR UPDATE`; SQLite runs one write
 * transaction at a time), so within it the repository's rows cannot change under it, and it adds
 * the exact difference it made (rows it inserted or deleted, members that appeared or vanished)
 * to the columns before committing. Blob sizes are read after the transaction locked the blob
 * rows (the reference-count update or the link upsert does), and the one writer that changes a
 * size (reconcile) shifts every member repository by the difference under the same blob lock.
 * What repairs instead of patching (reconcile, GC) recounts the repository from its rows while
 * holding its lock ({@link recountRepositories}).
 */
export interface AggregateDelta {
  manifests?: number;
  tags?: number;
  size?: number;
  logical?: number;
}

/**
 * Locks the repository row for the rest of the transaction and returns its id, or `undefined`
 * when there is no such repository. On SQLite the write transaction already excludes every other
 * writer, so a plain read is enough.
 */
export async function lockRepository(x: Executor, name: string): Promise<number | undefined> {
  let query = x.db.selectFrom('repositories').select('id').where('name', '=', name);
  if (x.dialect === 'mysql') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row === undefined ? undefined : Number(row.id);
}

/** Locks a repository row by id (see {@link lockRepository}). */
export async function lockRepositoryId(x: Executor, id: number): Promise<void> {
  if (x.dialect !== 'mysql') return;
  await x.db.selectFrom('repositories').select('id').where('id', '=', id).forUpdate().execute();
}

/** Adds `delta` to a repository's aggregates (the caller holds its lock). */
export async function adjustRepository(
  x: Executor,
  id: number,
  delta: AggregateDelta,
): Promise<void> {
  const manifests = delta.manifests ?? 0;
  const tags = delta.tags ?? 0;
  const size = delta.size ?? 0;
  const logical = delta.logical ?? 0;
  if (manifests === 0 && tags === 0 && size === 0 && logical === 0) return;
  await x.db
    .updateTable('repositories')
    .set({
      manifest_count: sql`manifest_count + ${manifests}`,
      tag_count: sql`tag_count + ${tags}`,
      total_size: sql`total_size + ${size}`,
      logical_size: sql`logical_size + ${logical}`,
    })
    .where('id', '=', id)
    .execute();
}

/**
 * Which of `digests` belong to the repository: linked to it, or referenced by one of its
 * manifests (`manifest_blobs.repository_id`, indexed with the digest).
 *
 * Asked per digest with `EXISTS`, driven from the blob rows: a plain `IN` over
 * `manifest_blobs` reads every reference of the repository to a digest, and a config or base
 * layer shared by all of a repository's manifests has one per manifest (indexing 3,000 pushes
 * into one repository read 3,000 rows per push on MariaDB). Only digests with a blob row can be
 * members; every caller weighs a membership by the blob row's size, so one without a row
 * (which no link or reference leaves behind) would count 0 either way.
 */
export async function members(
  x: Executor,
  repositoryId: number,
  digests: readonly string[],
  through: 'links and references' | 'references' = 'links and references',
): Promise<Set<string>> {
  const found = new Set<string>();
  await forEachChunk([...new Set(digests)], async (part) => {
    const rows = await x.db
      .selectFrom('blobs as b')
      .select('b.digest')
      .where('b.digest', 'in', part)
      .where((eb) => {
        const referenced = eb.exists(
          eb
            .selectFrom('manifest_blobs as mb')
            .select(sql.lit(1).as('one'))
            .where('mb.repository_id', '=', repositoryId)
            .whereRef('mb.digest', '=', 'b.digest'),
        );
        if (through === 'references') return referenced;
        const linked = eb.exists(
          eb
            .selectFrom('repository_blobs as rb')
            .select(sql.lit(1).as('one'))
            .where('rb.repository_id', '=', repositoryId)
            .whereRef('rb.digest', '=', 'b.digest'),
        );
        return eb.or([linked, referenced]);
      })
      .execute();
    for (const row of rows) found.add(row.digest);
  });
  return found;
}

/** The summed size of the blob rows among `digests` (each counted once). */
export async function sizeOf(x: Executor, digests: readonly string[]): Promise<number> {
  let total = 0;
  await forEachChunk([...new Set(digests)], async (part) => {
    const row = await x.db
      .selectFrom('blobs')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), sql.lit(0)).as('s'))
      .where('digest', 'in', part)
      .executeTakeFirstOrThrow();
    total += Number(row.s);
  });
  return total;
}

/**
 * The aggregates of the given repositories recounted from their rows, by grouped queries over
 * each table's `repository_id` index (never a subquery per repository or per blob: MariaDB runs
 * an `IN (… UNION …)` subquery once per outer row, which at a million blobs is hopeless).
 */
async function recount(
  x: Executor,
  ids: readonly number[],
): Promise<Map<number, Required<AggregateDelta>>> {
  const out = new Map<number, Required<AggregateDelta>>();
  for (const id of ids) out.set(id, { manifests: 0, tags: 0, size: 0, logical: 0 });
  const set = (
    rows: { id: number | string; n: number | string | null }[],
    key: keyof AggregateDelta,
  ) => {
    for (const row of rows) {
      const entry = out.get(Number(row.id));
      if (entry) entry[key] = Number(row.n ?? 0);
    }
  };
  set(
    await x.db
      .selectFrom('manifests')
      .select((eb) => ['repository_id as id', eb.fn.countAll<number>().as('n')])
      .where('repository_id', 'in', ids)
      .groupBy('repository_id')
      .execute(),
    'manifests',
  );
  set(
    await x.db
      .selectFrom('tags')
      .innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
      .select((eb) => [
        'tags.repository_id as id',
        eb.fn.countAll<number>().as('n'),
        eb.fn.sum<number>('manifests.total_size').as('l'),
      ])
      .where('tags.repository_id', 'in', ids)
      .groupBy('tags.repository_id')
      .execute()
      .then((rows) => {
        for (const row of rows) {
          const entry = out.get(Number(row.id));
          if (entry) entry.logical = Number(row.l ?? 0);
        }
        return rows;
      }),
    'tags',
  );
  // Each (repository, digest) once, whether linked, referenced or both; then its blob's size.
  const held = x.db
    .selectFrom('repository_blobs')
    .select(['repository_id', 'digest'])
    .where('repository_id', 'in', ids)
    .union(
      x.db
        .selectFrom('manifest_blobs')
        .select([sql<number>`repository_id`.as('repository_id'), 'digest'])
        .where('repository_id', 'in', ids),
    );
  set(
    await x.db
      .selectFrom(held.as('h'))
      .innerJoin('blobs', 'blobs.digest', 'h.digest')
      .select((eb) => ['h.repository_id as id', eb.fn.sum<number>('blobs.size').as('n')])
      .groupBy('h.repository_id')
      .execute(),
    'size',
  );
  return out;
}

async function stored(
  x: Executor,
  ids: readonly number[],
): Promise<{ id: number; name: string; stored: Required<AggregateDelta> }[]> {
  const rows = await x.db
    .selectFrom('repositories')
    .select(['id', 'name', 'manifest_count', 'tag_count', 'total_size', 'logical_size'])
    .where('id', 'in', ids)
    .orderBy('id')
    .execute();
  return rows.map((row) => ({
    id: Number(row.id),
    name: row.name,
    stored: {
      manifests: Number(row.manifest_count),
      tags: Number(row.tag_count),
      size: Number(row.total_size),
      logical: Number(row.logical_size),
    },
  }));
}

const same = (a: Required<AggregateDelta>, b: Required<AggregateDelta>) =>
  a.manifests === b.manifests && a.tags === b.tags && a.size === b.size && a.logical === b.logical;

/**
 * Sets the aggregates of the given repositories from their rows; returns how many differed. The
 * caller holds their locks (or runs where nothing else writes, as a migration does): a recount
 * taken before a concurrent writer commits and written after it would lose that writer's part.
 */
export async function recountRepositories(x: Executor, ids: readonly number[]): Promise<number> {
  let changed = 0;
  await forEachChunk([...new Set(ids)], async (part) => {
    const actual = await recount(x, part);
    const differ: [number, Required<AggregateDelta>][] = [];
    for (const row of await stored(x, part)) {
      const a = actual.get(row.id);
      if (a && !same(a, row.stored)) differ.push([row.id, a]);
    }
    if (differ.length === 0) return;
    // One statement for the whole part (a backfill changes every row).
    const column = (key: keyof AggregateDelta) =>
      sql<number>`case id ${sql.join(
        differ.map(([id, a]) => sql`when ${id} then ${a[key]}`),
        sql` `,
      )} end`;
    await x.db
      .updateTable('repositories')
      .set({
        manifest_count: column('manifests'),
        tag_count: column('tags'),
        total_size: column('size'),
        logical_size: column('logical'),
      })
      .where(
        'id',
        'in',
        differ.map(([id]) => id),
      )
      .execute();
    changed += differ.length;
  });
  return changed;
}

/** A repository whose stored aggregates differ from a recount of its rows. */
export interface AggregateDrift {
  id: number;
  name: string;
  stored: Required<AggregateDelta>;
  actual: Required<AggregateDelta>;
}

/**
 * Repositories (ids after `after`, up to `limit` of them checked) whose aggregates differ from
 * a recount, read-only: what a consistency check or a test compares.
 */
export async function aggregateDrift(
  x: Executor,
  after = 0,
  limit = 1000,
): Promise<{ drift: AggregateDrift[]; last: number | undefined }> {
  const ids = (
    await x.db
      .selectFrom('repositories')
      .select('id')
      .where('id', '>', after)
      .orderBy('id')
      .limit(limit)
      .execute()
  ).map((r) => Number(r.id));
  const drift: AggregateDrift[] = [];
  await forEachChunk(ids, async (part) => {
    const actual = await recount(x, part);
    for (const row of await stored(x, part)) {
      const a = actual.get(row.id);
      if (a && !same(a, row.stored)) drift.push({ ...row, actual: a });
    }
  });
  return { drift, last: ids.length === limit ? ids.at(-1) : undefined };
}

/** The distinct three-character substrings of `text`: what the search index stores and asks. */
export function trigrams(text: string): string[] {
  const out = new Set<string>();
  for (let i = 0; i + 3 <= text.length; i++) out.add(text.slice(i, i + 3));
  return [...out];
}

/** Adds repositories' name trigrams to the search index (idempotent). */
export async function indexNames(
  x: Executor,
  repositories: readonly { id: number; name: string }[],
): Promise<void> {
  const rows = repositories.flatMap((r) =>
    trigrams(r.name).map((gram) => ({ gram, repository_id: r.id })),
  );
  await forEachChunk(rows, async (part) => {
    const insert = x.db.insertInto('repository_trigrams').values(part);
    await ignoreDuplicate(x, insert, 'gram').execute();
  });
}
