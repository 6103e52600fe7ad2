import { type Expression, type ExpressionBuilder, type SqlBool, sql } from 'kysely';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { type Executor, ignoreDuplicate, later, upsert } from '../dialect.js';
import { nameMatches, type RepositoryFilter } from '../repository-pattern.js';
import type { Database, SqlTime } from '../schema.js';
import { fromSqlTime } from '../sql-time.js';
import type {
  CursorPage,
  ListRepositoriesOptions,
  NamePage,
  NamePageOptions,
  Repository,
  RepositorySort,
} from '../types.js';
import { indexNames, lockRepository, trigrams } from './aggregates.js';
import { storedFormat } from './repository-settings.js';

/**
 * Inserts the repository if it is new, locks its row for the rest of the transaction (every
 * write to a repository's rows holds it: see `aggregates.ts`) and returns its id. With `touch`,
 * `updated_at` moves forward to `at` (a push or delete); it never moves back, so an old
 * `pushedAt` (a reindex) cannot make a repository look stale.
 */
export async function upsertRepository(
  x: Executor,
  name: string,
  at: SqlTime,
  touch: boolean,
): Promise<number> {
  const existing = await lockRepository(x, name);
  if (existing !== undefined) {
    if (touch) await touchRepository(x, existing, at);
    return existing;
  }
  const insert = x.db.insertInto('repositories').values({ name, created_at: at, updated_at: at });
  if (!touch) await ignoreDuplicate(x, insert, 'name').execute();
  else await upsert(x, insert, ['name'], { updated_at: later(x, 'updated_at', at) }).execute();
  const id = await lockRepository(x, name);
  // The row was inserted or already there; it cannot vanish inside this transaction.
  if (id === undefined) throw new Error(`repository ${name} disappeared during upsert`);
  // A concurrent insert of the same name indexes the same trigrams: the insert is idempotent.
  await indexNames(x, [{ id, name }]);
  return id;
}

/** Moves a repository's `updated_at` forward to `at`. */
export async function touchRepository(x: Executor, id: number, at: SqlTime): Promise<void> {
  await x.db
    .updateTable('repositories')
    .set({ updated_at: later(x, 'updated_at', at) })
    .where('id', '=', id)
    .execute();
}

/** The id of a repository, if it has a row. */
export async function repositoryId(x: Executor, name: string): Promise<number | undefined> {
  const row = await x.db
    .selectFrom('repositories')
    .select('id')
    .where('name', '=', name)
    .executeTakeFirst();
  return row === undefined ? undefined : Number(row.id);
}

// A repository is visible (in the catalog, the API and the dashboard) once it holds a
// manifest, like the storage listing; a row created by a blob link alone is not a repository yet.
function hasManifest(eb: ExpressionBuilder<Database, 'repositories'>) {
  return eb('repositories.manifest_count', '>', 0);
}

/** The repository's row id, or `undefined` when it holds no manifest (is not visible). */
function visibleRepositoryId(x: Executor, name: string) {
  return x.db
    .selectFrom('repositories')
    .select('id')
    .where('name', '=', name)
    .where(hasManifest)
    .executeTakeFirst();
}

/** Whether the repository holds at least one manifest. */
export async function repositoryExists(x: Executor, name: string): Promise<boolean> {
  return (await visibleRepositoryId(x, name)) !== undefined;
}

/**
 * Repository names in byte order, keyset-paginated on the unique name (both dialects compare
 * names as bytes: `utf8mb4_bin` on MySQL, BINARY on SQLite).
 */
export async function listRepositoryNames(
  x: Executor,
  options: NamePageOptions = {},
): Promise<NamePage> {
  const limit = pageLimit(options.limit, 1000, 10_000);
  let query = x.db
    .selectFrom('repositories')
    .select('name')
    .where(hasManifest)
    .orderBy('name')
    .limit(limit + 1);
  if (options.last !== undefined) query = query.where('name', '>', options.last);
  const { filter } = options;
  if (filter) query = query.where((eb) => nameMatches(eb, 'repositories.name', filter));
  const names = (await query.execute()).map((row) => row.name);
  return namePage(names, limit);
}

/** Cuts a `limit + 1` result into a page and its `next` marker. */
export function namePage(names: string[], limit: number): NamePage {
  if (names.length <= limit) return { items: names };
  const items = names.slice(0, limit);
  const next = items[items.length - 1];
  return next === undefined ? { items } : { items, next };
}

interface RepositoryRow {
  id: number;
  name: string;
  created_at: SqlTime;
  updated_at: SqlTime;
  tag_count: number | string;
  total_size: number | string;
  kind: string | null;
  artifact_type: string | null;
  default_format: string | null;
}

/** The kind or artifact type of the repository's most recently pushed tag. */
function latestTag(
  eb: ExpressionBuilder<Database, 'repositories'>,
  column: 'kind' | 'artifact_type',
) {
  return eb
    .selectFrom('tags')
    .innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(`manifests.${column}`)
    .whereRef('tags.repository_id', '=', 'repositories.id')
    .orderBy('tags.pushed_at', 'desc')
    .orderBy('tags.id', 'desc')
    .limit(1);
}

/**
 * Repository rows with their aggregates, for the ids given: the latest tag's kind is looked up
 * per row through `(repository_id, pushed_at, id)`, and the default format by the settings'
 * primary key, so only rows of the page pay for them.
 */
async function withAggregates(x: Executor, ids: readonly number[]): Promise<RepositoryRow[]> {
  if (ids.length === 0) return [];
  const rows = await x.db
    .selectFrom('repositories')
    .leftJoin('repository_settings', 'repository_settings.name', 'repositories.name')
    .select((eb) => [
      'repositories.id',
      'repositories.name',
      'repositories.created_at',
      'repositories.updated_at',
      'repositories.tag_count',
      'repositories.total_size',
      latestTag(eb, 'kind').as('kind'),
      latestTag(eb, 'artifact_type').as('artifact_type'),
      'repository_settings.default_format',
    ])
    .where('repositories.id', 'in', ids)
    .execute();
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

function toRepository(row: RepositoryRow): Repository {
  const repo: Repository = {
    id: Number(row.id),
    name: row.name,
    tagCount: Number(row.tag_count),
    totalSize: Number(row.total_size),
    createdAt: fromSqlTime(row.created_at),
    updatedAt: fromSqlTime(row.updated_at),
    defaultFormat: storedFormat(row.default_format),
  };
  if (row.artifact_type) repo.artifactType = row.artifact_type;
  if (row.kind) repo.kind = row.kind;
  return repo;
}

const sortColumn = {
  name: 'name',
  updated: 'updated_at',
  size: 'total_size',
  tags: 'tag_count',
} as const satisfies Record<RepositorySort, keyof RepositoryRow>;

/**
 * A search needle's candidates: the ids of the repositories holding its rarest trigram, when
 * that trigram is rare (fewer than {@link SEARCH_CANDIDATES} repositories); `undefined` when
 * every trigram is common (then matches are common too, and paging in sort order with the
 * substring test finds a page quickly) or the needle is shorter than a trigram.
 */
export const SEARCH_CANDIDATES = 5000;

async function searchCandidates(x: Executor, needle: string): Promise<number[] | undefined> {
  // How many repositories hold each trigram, counted up to the cap (an index range of at most
  // that many entries); a trigram held by few enough repositories ends the search for one.
  let best: { gram: string; count: number } | undefined;
  for (const gram of trigrams(needle)) {
    const row = await x.db
      .selectFrom(
        x.db
          .selectFrom('repository_trigrams')
          .select('repository_id')
          .where('gram', '=', gram)
          .limit(SEARCH_CANDIDATES)
          .as('g'),
      )
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const count = Number(row.n);
    // No repository has this trigram: none can contain the needle.
    if (count === 0) return [];
    if (count < SEARCH_CANDIDATES && (best === undefined || count < best.count)) {
      best = { gram, count };
      if (count <= 500) break;
    }
  }
  if (best === undefined) return undefined;
  const rows = await x.db
    .selectFrom('repository_trigrams')
    .select('repository_id')
    .where('gram', '=', best.gram)
    .execute();
  return rows.map((r) => Number(r.repository_id));
}

/**
 * The condition a search adds: the substring test, on the candidates of the needle's rarest
 * trigram when it has few enough (see {@link searchCandidates}); `false` when no repository
 * can match.
 */
async function searchCondition(x: Executor, search: string): Promise<Expression<SqlBool> | false> {
  const needle = search.toLowerCase();
  const candidates = await searchCandidates(x, needle);
  if (candidates?.length === 0) return false;
  const contains =
    x.dialect === 'mysql'
      ? sql<SqlBool>`locate(${needle}, name) > 0`
      : sql<SqlBool>`instr(name, ${needle}) > 0`;
  if (candidates === undefined) return contains;
  return sql<SqlBool>`(id in (${sql.join(candidates)}) and ${contains})`;
}

/**
 * The rows after a cursor. Names are unique: the name alone is the position. Otherwise
 * `key <= value` bounds the index range and the rest picks the rows after the cursor among
 * equal keys (ids ascending).
 */
function afterCursor(sort: RepositorySort, cursor: string): Expression<SqlBool> {
  const [value, id] = decodeCursor(cursor);
  const key = sql.ref(sortColumn[sort]);
  return sort === 'name'
    ? sql<SqlBool>`${key} > ${value}`
    : sql<SqlBool>`(${key} <= ${value} and (${key} < ${value} or id > ${id}))`;
}

/** The cursor of the page that follows `last`. */
function cursorAfter(
  sort: RepositorySort,
  last: Pick<RepositoryRow, 'id' | 'name' | 'updated_at' | 'tag_count' | 'total_size'>,
): string {
  const value: string | number =
    sort === 'name'
      ? last.name
      : sort === 'updated'
        ? last.updated_at
        : Number(sort === 'size' ? last.total_size : last.tag_count);
  return encodeCursor([value, Number(last.id)]);
}

/**
 * Repositories with their aggregates, sorted by name (ascending) or by update time, size or
 * tag count (descending), keyset-paginated on (sort key, id): a page never skips or repeats a
 * row that did not change between requests, and no OFFSET scan grows with the page number.
 * The filter, the search and the cursor all apply before the limit, on the `repositories` row
 * alone (its maintained aggregates and one index per sort order), so a page costs about the
 * same whatever the number of repositories.
 */
export async function listRepositories(
  x: Executor,
  options: ListRepositoriesOptions = {},
): Promise<CursorPage<Repository>> {
  const limit = pageLimit(options.limit);
  const sort = options.sort ?? 'name';
  const { filter, search, cursor } = options;
  const searched = search ? await searchCondition(x, search) : undefined;
  if (searched === false) return { items: [] };
  let query = x.db
    .selectFrom('repositories')
    .select(['id', 'name', 'updated_at', 'tag_count', 'total_size'])
    .where(hasManifest)
    .$if(filter !== undefined, (q) =>
      q.where((eb) => nameMatches(eb, 'repositories.name', filter as RepositoryFilter)),
    )
    .$if(searched !== undefined, (q) => q.where(searched as Expression<SqlBool>))
    .$if(cursor !== undefined, (q) => q.where(afterCursor(sort, cursor as string)));
  // Ordering by name alone lets the unique name index give the order; with `id` after it
  // MariaDB sorted all 100,000 rows for every page.
  if (sort === 'name') query = query.orderBy('name', 'asc');
  else query = query.orderBy(sql.ref(sortColumn[sort]), 'desc').orderBy('id', 'asc');
  const page = await query.limit(limit + 1).execute();
  const rows = await withAggregates(
    x,
    page.slice(0, limit).map((r) => Number(r.id)),
  );
  const items = rows.map(toRepository);
  const last = page.length > limit ? page[limit - 1] : undefined;
  return last === undefined ? { items } : { items, nextCursor: cursorAfter(sort, last) };
}

/** One repository with its aggregates, or `undefined` when it holds no manifest. */
export async function getRepository(x: Executor, name: string): Promise<Repository | undefined> {
  const row = await visibleRepositoryId(x, name);
  if (row === undefined) return undefined;
  const [full] = await withAggregates(x, [Number(row.id)]);
  return full === undefined ? undefined : toRepository(full);
}
