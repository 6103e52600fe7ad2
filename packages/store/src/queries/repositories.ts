import { type ExpressionBuilder, sql } from 'kysely';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import type { Executor } from '../dialect.js';
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

/**
 * Inserts the repository if it is new and returns its id. With `touch`, `updated_at` moves
 * forward to `at` (a push or delete); it never moves back, so an old `pushedAt` (a reindex)
 * cannot make a repository look stale.
 */
export async function upsertRepository(
  x: Executor,
  name: string,
  at: SqlTime,
  touch: boolean,
): Promise<number> {
  const insert = x.db.insertInto('repositories').values({ name, created_at: at, updated_at: at });
  if (x.dialect === 'mysql') {
    await insert
      .onDuplicateKeyUpdate(
        touch ? { updated_at: sql`greatest(updated_at, ${at})` } : { name: sql<string>`name` },
      )
      .execute();
  } else {
    await insert
      .onConflict((oc) =>
        touch
          ? oc.column('name').doUpdateSet({ updated_at: sql`max(updated_at, ${at})` })
          : oc.column('name').doNothing(),
      )
      .execute();
  }
  const id = await repositoryId(x, name);
  // The row was inserted or already there; it cannot vanish inside this transaction.
  if (id === undefined) throw new Error(`repository ${name} disappeared during upsert`);
  return id;
}

/** Moves a repository's `updated_at` forward to `at`. */
export async function touchRepository(x: Executor, id: number, at: SqlTime): Promise<void> {
  const later =
    x.dialect === 'mysql'
      ? sql<string>`greatest(updated_at, ${at})`
      : sql<string>`max(updated_at, ${at})`;
  await x.db.updateTable('repositories').set({ updated_at: later }).where('id', '=', id).execute();
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
  return eb.exists(
    eb
      .selectFrom('manifests')
      .select(sql.lit(1).as('one'))
      .whereRef('manifests.repository_id', '=', 'repositories.id'),
  );
}

/** Whether the repository holds at least one manifest. */
export async function repositoryExists(x: Executor, name: string): Promise<boolean> {
  const row = await x.db
    .selectFrom('repositories')
    .select('id')
    .where('name', '=', name)
    .where(hasManifest)
    .executeTakeFirst();
  return row !== undefined;
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
  tag_count: number | string | null;
  total_size: number | string | null;
  kind: string | null;
  artifact_type: string | null;
}

/** The repositories with their aggregates, as one derived table to sort and page on. */
function repositoryRows(x: Executor) {
  return x.db
    .selectFrom('repositories')
    .where(hasManifest)
    .select((eb) => [
      'repositories.id',
      'repositories.name',
      'repositories.created_at',
      'repositories.updated_at',
      eb
        .selectFrom('tags')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('tags.repository_id', '=', 'repositories.id')
        .as('tag_count'),
      // Stored bytes of the repository: its linked blobs and the blobs its manifests
      // reference, each distinct digest once (UNION deduplicates).
      eb
        .selectFrom('blobs')
        .select((e) => e.fn.coalesce(e.fn.sum<number>('blobs.size'), sql.lit(0)).as('s'))
        .where('blobs.digest', 'in', (e) =>
          e
            .selectFrom('repository_blobs')
            .select('repository_blobs.digest')
            .whereRef('repository_blobs.repository_id', '=', 'repositories.id')
            .union(
              e
                .selectFrom('manifest_blobs')
                .innerJoin('manifests', 'manifests.id', 'manifest_blobs.manifest_id')
                .select('manifest_blobs.digest')
                .whereRef('manifests.repository_id', '=', 'repositories.id'),
            ),
        )
        .as('total_size'),
      latestTag(eb, 'kind').as('kind'),
      latestTag(eb, 'artifact_type').as('artifact_type'),
    ]);
}

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

function toRepository(row: RepositoryRow): Repository {
  const repo: Repository = {
    id: Number(row.id),
    name: row.name,
    tagCount: Number(row.tag_count ?? 0),
    totalSize: Number(row.total_size ?? 0),
    createdAt: fromSqlTime(row.created_at),
    updatedAt: fromSqlTime(row.updated_at),
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
 * Repositories with their aggregates, sorted by name (ascending) or by update time, size or
 * tag count (descending), keyset-paginated on (sort key, id): a page never skips or repeats a
 * row that did not change between requests, and no OFFSET scan grows with the page number.
 */
export async function listRepositories(
  x: Executor,
  options: ListRepositoriesOptions = {},
): Promise<CursorPage<Repository>> {
  const limit = pageLimit(options.limit);
  const sort = options.sort ?? 'name';
  const key = sortColumn[sort];
  const descending = sort !== 'name';
  let query = x.db.selectFrom(repositoryRows(x).as('r')).selectAll();
  if (options.search) {
    const needle = options.search.toLowerCase();
    query = query.where(
      x.dialect === 'mysql'
        ? sql<boolean>`locate(${needle}, r.name) > 0`
        : sql<boolean>`instr(r.name, ${needle}) > 0`,
    );
  }
  if (options.cursor !== undefined) {
    const [value, id] = decodeCursor(options.cursor);
    const keyRef = sql.ref(`r.${key}`);
    query = query.where(
      descending
        ? sql<boolean>`(${keyRef} < ${value} or (${keyRef} = ${value} and r.id > ${id}))`
        : sql<boolean>`(${keyRef} > ${value} or (${keyRef} = ${value} and r.id > ${id}))`,
    );
  }
  query = query
    .orderBy(sql`${sql.ref(`r.${key}`)}`, descending ? 'desc' : 'asc')
    .orderBy('r.id', 'asc')
    .limit(limit + 1);
  const rows = await query.execute();
  const items = rows.slice(0, limit).map(toRepository);
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  if (last === undefined) return { items };
  const value: string | number =
    sort === 'name' ? last.name : sort === 'updated' ? last.updated_at : Number(last[key] ?? 0);
  return { items, nextCursor: encodeCursor([value, Number(last.id)]) };
}

/** One repository with its aggregates, or `undefined` when it holds no manifest. */
export async function getRepository(x: Executor, name: string): Promise<Repository | undefined> {
  const row = await x.db
    .selectFrom(repositoryRows(x).as('r'))
    .selectAll()
    .where('r.name', '=', name)
    .executeTakeFirst();
  return row === undefined ? undefined : toRepository(row);
}
