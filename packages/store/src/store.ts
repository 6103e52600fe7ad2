import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  type KyselyConfig,
  Migrator,
  MysqlDialect,
  SqliteDialect,
  sql,
} from 'kysely';
import { createPool } from 'mysql2';
import type { DialectName, Executor } from './dialect.js';
import { StoreMigrations } from './migrations/index.js';
import { unavailabilityReportingPool } from './mysql-pool.js';
import * as activity from './queries/activity.js';
import * as aggregates from './queries/aggregates.js';
import * as blobs from './queries/blobs.js';
import * as events from './queries/events.js';
import * as gc from './queries/gc/index.js';
import * as manifests from './queries/manifests.js';
import * as reconcile from './queries/reconcile.js';
import * as repositories from './queries/repositories.js';
import * as retention from './queries/retention.js';
import * as settings from './queries/settings.js';
import * as stats from './queries/stats.js';
import * as tags from './queries/tags.js';
import * as tokens from './queries/tokens.js';
import type { RepositoryFilter } from './repository-pattern.js';
import type { Database } from './schema.js';
import { toSqlTime } from './sql-time.js';
import { checkToken, type TokenRequest } from './token-rules.js';
import type {
  Blob,
  CursorPage,
  CursorPageOptions,
  DashboardStats,
  EventPageOptions,
  ListRepositoriesOptions,
  NamePage,
  NamePageOptions,
  ReferrerDescriptor,
  Repository,
  Tag,
  TagDetail,
} from './types.js';

/** The clock of a GC run: now, and now minus the grace period. */
export interface GcTimes {
  cutoff: Date;
  now: Date;
}

function sqlClock(clock: GcTimes): gc.GcClock {
  return { cutoff: toSqlTime(clock.cutoff), now: clock.now };
}

/** Where the index lives: a MySQL/MariaDB URL, or else an SQLite file. */
export interface StoreOptions {
  /** `mysql://user:pass@host:3306/db` (or `mariadb://…`). Takes precedence over `sqliteFile`. */
  dsn?: string;
  /** Path of the SQLite database file (created if missing). */
  sqliteFile?: string;
  /** MySQL pool size (default 10). */
  poolSize?: number;
  /** Called after every query with its duration, e.g. for metrics; must not throw. */
  onQuery?: (durationMs: number, failed: boolean) => void;
}

/** How long SQLite waits for another connection's write lock before giving up. */
const SQLITE_BUSY_MS = 10_000;
const MYSQL_RETRIES = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorCode(error: unknown): string | number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, errno } = error as { code?: unknown; errno?: unknown };
  if (typeof errno === 'number') return errno;
  return typeof code === 'string' ? code : undefined;
}

function isSqliteBusy(error: unknown): boolean {
  const code = errorCode(error);
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

// InnoDB deadlock (1213) and lock wait timeout (1205): the transaction was rolled back and is
// safe to run again.
function isMysqlRetryable(error: unknown): boolean {
  const code = errorCode(error);
  return code === 1213 || code === 1205;
}

/**
 * Takes SQLite's write lock without blocking the event loop. better-sqlite3 is synchronous, so
 * a `busy_timeout` wait would freeze the whole process, including the connection that holds the
 * lock (another Store in the same process). Instead try with no wait and back off
 * asynchronously, up to {@link SQLITE_BUSY_MS}.
 */
async function beginImmediate(exec: (statement: string) => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + SQLITE_BUSY_MS;
  await exec('pragma busy_timeout = 0');
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await exec('begin immediate');
        return;
      } catch (error) {
        if (!isSqliteBusy(error) || Date.now() > deadline) throw error;
        await sleep(Math.min(50, 1 + attempt) * (0.5 + Math.random()));
      }
    }
  } finally {
    await exec(`pragma busy_timeout = ${SQLITE_BUSY_MS}`);
  }
}

/**
 * The SQL index of Epoch: repositories, tags, manifests, blobs, repository↔blob links, tokens
 * and audit events, on MySQL/MariaDB or SQLite with one schema and one query layer. Writes that
 * mirror a registry operation are single transactions, so a push or delete is in the index all
 * at once (design invariant 4) and several processes can share one database (invariant 5).
 * Open it with {@link openStore}.
 */
export class Store {
  readonly #db: Kysely<Database>;
  /** `mysql` or `sqlite`. */
  readonly dialect: DialectName;

  /** @internal Use {@link openStore}. */
  constructor(db: Kysely<Database>, dialect: DialectName) {
    this.#db = db;
    this.dialect = dialect;
  }

  get #read(): Executor {
    return { db: this.#db, dialect: this.dialect };
  }

  /**
   * Runs `fn` in one write transaction. MySQL: READ COMMITTED, so each statement sees rows other
   * processes committed (no stale snapshot between an upsert and the select that follows), and
   * retried on deadlock. SQLite: `BEGIN IMMEDIATE`, so the write lock is taken up front and a
   * read-then-write transaction can never fail to upgrade.
   */
  async #write<T>(fn: (x: Executor) => Promise<T>): Promise<T> {
    if (this.dialect === 'sqlite') {
      return this.#db.connection().execute(async (conn) => {
        await beginImmediate((statement) => sql.raw(statement).execute(conn));
        try {
          const result = await fn({ db: conn, dialect: 'sqlite' });
          await sql`commit`.execute(conn);
          return result;
        } catch (error) {
          await sql`rollback`.execute(conn).catch(() => undefined);
          throw error;
        }
      });
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#db
          .transaction()
          .setIsolationLevel('read committed')
          .execute((trx) => fn({ db: trx, dialect: 'mysql' }));
      } catch (error) {
        if (!isMysqlRetryable(error) || attempt >= MYSQL_RETRIES) throw error;
        await sleep(attempt * 10 * (0.5 + Math.random()));
      }
    }
  }

  // ---- write-through operations (one transaction each) ----

  /** Indexes a pushed manifest and its tags in one transaction (see {@link manifests.recordManifest}). */
  recordManifest(
    repo: string,
    input: manifests.ManifestRecord,
  ): Promise<manifests.RecordManifestResult> {
    const at = toSqlTime(input.pushedAt ?? new Date());
    return this.#write((x) => manifests.recordManifest(x, repo, input, at));
  }

  /** Deletes a tag; returns whether it existed. */
  deleteTag(repo: string, tag: string, at: Date = new Date()): Promise<boolean> {
    return this.#write((x) => tags.deleteTag(x, repo, tag, toSqlTime(at)));
  }

  /** Deletes a manifest with its tags and blob references; reports the tags it removed. */
  deleteManifest(
    repo: string,
    digest: string,
    at: Date = new Date(),
  ): Promise<manifests.DeleteManifestResult> {
    return this.#write((x) => manifests.deleteManifest(x, repo, digest, toSqlTime(at)));
  }

  /** Links a blob to a repository (pushed or mounted there). */
  linkBlob(
    repo: string,
    digest: string,
    size: number,
    mediaType = 'application/octet-stream',
    at: Date = new Date(),
  ): Promise<void> {
    return this.#write((x) => blobs.linkBlob(x, repo, { digest, size, mediaType }, toSqlTime(at)));
  }

  /** Removes a repository↔blob link; returns whether it existed. */
  unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return this.#write((x) => blobs.unlinkBlob(x, repo, digest));
  }

  // ---- reconciliation ----

  /**
   * Makes the index agree with a storage snapshot (phase two of a reindex; phase one reads
   * storage without touching the index). One short write transaction per repository, so
   * pushes keep flowing between them; rows written at or after `snapshot.startedAt` are never
   * deleted or moved, so a push that lands after the read is not undone. Idempotent: a second
   * run with the same storage changes nothing. Ends with one pass that corrects every blob's
   * reference count. A repository that fails is reported in `errors` and the run goes on.
   */
  async reconcile(snapshot: reconcile.StorageSnapshot): Promise<reconcile.ReconcileReport> {
    const report = reconcile.emptyReport();
    report.errors.push(...(snapshot.errors ?? []));
    const seen = new Set<string>();
    const apply = async (repo: reconcile.RepositorySnapshot): Promise<void> => {
      try {
        await this.#write((x) =>
          reconcile.reconcileRepository(x, repo, snapshot.startedAt, report, snapshot.recheck),
        );
      } catch (error) {
        report.errors.push({
          repository: repo.name,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    };
    for (const repo of snapshot.repositories) {
      seen.add(repo.name);
      await apply(repo);
    }
    // Repositories storage no longer has: reconciled against nothing, which removes what is
    // older than the snapshot and then the repository row if nothing newer holds it.
    for (const name of await reconcile.repositoryNames(this.#read)) {
      if (seen.has(name)) continue;
      await apply({ name, manifests: new Map(), tags: new Map(), blobs: new Map() });
    }
    report.blobs.updated += await this.#write((x) =>
      reconcile.recountBlobReferences(x, 'all', toSqlTime(new Date())),
    );
    report.aggregates += await this.repairAggregates();
    return report;
  }

  /**
   * Finds repositories whose maintained aggregates differ from their rows (read-only, 1,000
   * repositories per check) and recounts those under their locks; returns how many it
   * corrected. The reconcile ends with it, so aggregates left wrong by anything (a replica still
   * running code from before migration 0004, a hand edit) are repaired by the next reconcile.
   */
  async repairAggregates(): Promise<number> {
    let repaired = 0;
    for (let after = 0; ; ) {
      const { drift, last } = await aggregates.aggregateDrift(this.#read, after, 1000);
      for (const d of drift) {
        repaired += await this.#write(async (x) => {
          await aggregates.lockRepositoryId(x, d.id);
          return aggregates.recountRepositories(x, [d.id]);
        });
      }
      if (last === undefined) return repaired;
      after = last;
    }
  }

  // ---- registry reads ----

  /**
   * Whether the index records the blob for `repo`: linked there or referenced by one of its
   * manifests. The index's view only: whether a blob is served is decided by storage's link
   * markers (`@epoch/registry`'s `Blobs`).
   */
  isBlobLinked(repo: string, digest: string): Promise<boolean> {
    return blobs.isBlobLinked(this.#read, repo, digest);
  }

  /**
   * Stored sizes of those of `digests` linked to `repo` (pushed or mounted there), as the index
   * records them: a fast first answer for a manifest PUT, which storage then confirms.
   */
  linkedBlobSizes(repo: string, digests: readonly string[]): Promise<Map<string, number>> {
    return blobs.linkedBlobSizes(this.#read, repo, digests);
  }

  /** A blob row, or `undefined`. */
  getBlob(digest: string): Promise<Blob | undefined> {
    return blobs.getBlob(this.#read, digest);
  }

  /** Whether the repository holds this manifest. */
  hasManifest(repo: string, digest: string): Promise<boolean> {
    return manifests.hasManifest(this.#read, repo, digest);
  }

  /** Tags of `repo` pointing at `digest`, in byte order. */
  tagsOf(repo: string, digest: string): Promise<string[]> {
    return tags.tagsOf(this.#read, repo, digest);
  }

  /** Tag names in byte order, keyset-paginated (`tags/list`). */
  listTagNames(repo: string, options?: NamePageOptions): Promise<NamePage> {
    return tags.listTagNames(this.#read, repo, options);
  }

  /** Repository names in byte order, keyset-paginated (`_catalog`). */
  listRepositoryNames(options?: NamePageOptions): Promise<NamePage> {
    return repositories.listRepositoryNames(this.#read, options);
  }

  /** Whether the repository holds at least one manifest. */
  repositoryExists(repo: string): Promise<boolean> {
    return repositories.repositoryExists(this.#read, repo);
  }

  /** Referrer descriptors of `subject` in `repo`, optionally filtered by artifact type. */
  listReferrers(
    repo: string,
    subject: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]> {
    return manifests.listReferrers(this.#read, repo, subject, artifactType);
  }

  // ---- control API reads ----

  /** Dashboard numbers, of the repositories matching `filter` when one is given. */
  stats(filter?: RepositoryFilter): Promise<DashboardStats> {
    return stats.stats(this.#read, filter);
  }

  /** Repositories with aggregates, searched, sorted and keyset-paginated. */
  listRepositories(options?: ListRepositoriesOptions): Promise<CursorPage<Repository>> {
    return repositories.listRepositories(this.#read, options);
  }

  /**
   * Repositories (ids after `after`, `limit` of them checked) whose maintained aggregates differ
   * from a recount of their rows: empty when the index is consistent (read-only).
   */
  aggregateDrift(
    after?: number,
    limit?: number,
  ): Promise<{ drift: aggregates.AggregateDrift[]; last: number | undefined }> {
    return aggregates.aggregateDrift(this.#read, after, limit);
  }

  /** One repository with aggregates, or `undefined`. */
  getRepository(name: string): Promise<Repository | undefined> {
    return repositories.getRepository(this.#read, name);
  }

  /** Tags of a repository, most recently pushed first, keyset-paginated. */
  listTags(repo: string, options?: CursorPageOptions): Promise<CursorPage<Tag>> {
    return tags.listTags(this.#read, repo, options);
  }

  /** One tag with its manifest bytes, or `undefined`. */
  getTag(repo: string, tag: string): Promise<TagDetail | undefined> {
    return tags.getTag(this.#read, repo, tag);
  }

  // ---- tokens ----

  /**
   * Creates a token and its `token.create` audit event (actor `createdBy`) in one transaction,
   * after checking the token rules (see {@link checkToken}); the plaintext is in the result and
   * nowhere else. `auditDetail` is added to the event (a request id).
   *
   * @throws {TokenRuleError} before anything is written, when the request breaks a rule
   */
  async createToken(
    request: TokenRequest,
    auditDetail: Record<string, unknown> = {},
  ): Promise<{ token: tokens.Token; plaintext: string }> {
    const checked = checkToken(request);
    return this.#write(async (x) => {
      const created = await tokens.createToken(x, checked, new Date());
      const { id, name, scopes, repoPattern } = created.token;
      await events.appendEvent(x, {
        actor: checked.createdBy,
        action: 'token.create',
        detail: { tokenId: id, name, scopes, repoPattern, ...auditDetail },
      });
      return created;
    });
  }

  /** The token with this SHA-256 hash (see {@link tokens.hashToken}), revoked or not. */
  findTokenByHash(hash: string): Promise<tokens.Token | undefined> {
    return tokens.findTokenByHash(this.#read, hash);
  }

  /** The token with this id, revoked or not. */
  findTokenById(id: number): Promise<tokens.Token | undefined> {
    return tokens.findTokenById(this.#read, id);
  }

  /** Every token, by id. */
  listTokens(): Promise<tokens.Token[]> {
    return tokens.listTokens(this.#read);
  }

  /** Whether any token was ever created (revoked ones count). */
  hasTokens(): Promise<boolean> {
    return tokens.hasTokens(this.#read);
  }

  /**
   * Revokes a token and records `token.revoke` by `actor` in one transaction; returns whether an
   * active token with this id existed (nothing is recorded otherwise).
   */
  revokeToken(
    id: number,
    actor: string,
    auditDetail: Record<string, unknown> = {},
  ): Promise<boolean> {
    return this.#write(async (x) => {
      const revoked = await tokens.revokeToken(x, id, new Date());
      if (revoked) {
        await events.appendEvent(x, {
          actor,
          action: 'token.revoke',
          detail: { tokenId: id, ...auditDetail },
        });
      }
      return revoked;
    });
  }

  /** Records when a token was last used. */
  touchToken(id: number, at: Date = new Date()): Promise<void> {
    return tokens.touchToken(this.#read, id, at);
  }

  // ---- settings ----

  /**
   * A value shared by every process on this index, created by `create()` on first use; the
   * first writer wins when several processes start at once.
   */
  getOrCreateSetting(name: string, create: () => string): Promise<string> {
    return settings.getOrCreateSetting(this.#read, name, create);
  }

  // ---- audit ----

  /** Appends an audit event; returns its id. */
  appendEvent(event: events.NewAuditEvent): Promise<number> {
    return events.appendEvent(this.#read, event);
  }

  /** Audit events, newest first, keyset-paginated. */
  listEvents(options?: EventPageOptions): Promise<CursorPage<events.AuditEvent>> {
    return events.listEvents(this.#read, options);
  }

  /** Throws when the database cannot answer a trivial query (for readiness probes). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.#db);
  }

  /**
   * Names of migrations this code knows that the database has not run: non-empty when another,
   * newer or older, process manages the schema differently (for readiness probes).
   */
  async pendingMigrations(): Promise<string[]> {
    const migrator = new Migrator({ db: this.#db, provider: new StoreMigrations(this.dialect) });
    return (await migrator.getMigrations()).filter((m) => !m.executedAt).map((m) => m.name);
  }

  // ---- garbage collection and retention ----

  /** Every repository (id and name), for a GC run to walk. */
  gcRepositories(): Promise<{ id: number; name: string }[]> {
    return gc.gcRepositories(this.#read);
  }

  /** Read-only mark of one repository: the tags, manifests and links a sweep would delete. */
  planGc(
    repo: { id: number; name: string },
    policy: retention.RetentionPolicy | undefined,
    clock: GcTimes,
  ): Promise<gc.RepositoryGcPlan> {
    return gc.planRepository(this.#read, repo, policy, sqlClock(clock));
  }

  /**
   * Sweeps one repository in one write transaction, re-deciding every item on the rows as they
   * are then (see {@link gc.applyRepositoryPlan}); returns what was actually deleted.
   */
  applyGc(
    plan: gc.RepositoryGcPlan,
    policy: retention.RetentionPolicy | undefined,
    clock: GcTimes,
    actor = 'gc',
    pendingFor: (done: gc.RepositoryGcPlan) => gc.PendingObject[] = () => [],
  ): Promise<gc.RepositoryGcPlan> {
    return this.#write((x) =>
      gc.applyRepositoryPlan(x, plan, policy, sqlClock(clock), actor, pendingFor),
    );
  }

  /** A page of unused blob rows older than `cutoff`, after `after` in digest order. */
  gcBlobCandidates(cutoff: Date, after: string | undefined, limit: number): Promise<gc.GcBlob[]> {
    return gc.blobCandidates(this.#read, toSqlTime(cutoff), after, limit);
  }

  /** Deletes the blob rows among `digests` still unused, in one transaction; returns them. */
  deleteGcBlobs(
    digests: readonly string[],
    cutoff: Date,
    actor = 'gc',
    pendingFor: (deleted: gc.GcBlob[]) => gc.PendingObject[] = () => [],
    at: Date = new Date(),
  ): Promise<gc.GcBlob[]> {
    return this.#write((x) =>
      gc.deleteBlobRows(x, digests, toSqlTime(cutoff), actor, at, pendingFor),
    );
  }

  /** Adds the objects the index still does not know to the pending deletions; returns them. */
  condemnOrphans(
    objects: readonly gc.PendingObject[],
    cutoff: Date,
    at: Date = new Date(),
  ): Promise<gc.PendingObject[]> {
    return this.#write((x) => gc.condemnOrphans(x, objects, toSqlTime(at), toSqlTime(cutoff)));
  }

  /** Deletes up to `limit` pending objects through `remove` (see {@link gc.drainPending}). */
  drainGcPending(
    limit: number,
    cutoff: Date,
    remove: (keys: string[]) => Promise<void>,
  ): Promise<gc.DrainResult> {
    return this.#write((x) => gc.drainPending(x, limit, toSqlTime(cutoff), remove));
  }

  /**
   * Before a push looks in storage for what it will use: notes the digests as needed for the
   * grace period and cancels pending deletions of them and of its tags (see
   * {@link gc.reviveForPush}).
   */
  reviveForPush(
    repository: string,
    digests: readonly string[],
    tags: readonly string[],
    at: Date = new Date(),
  ): Promise<void> {
    return this.#write((x) => gc.reviveForPush(x, repository, digests, tags, toSqlTime(at)));
  }

  /** Appends audit events in one transaction (the collector's orphan deletions). */
  appendEvents(list: readonly events.NewAuditEvent[]): Promise<void> {
    return this.#write((x) => events.appendEvents(x, list));
  }

  /** Dry run: blobs the given repository plans would free. */
  gcBlobsFreedBy(plans: readonly gc.RepositoryGcPlan[], cutoff: Date): Promise<gc.GcBlob[]> {
    return gc.blobsFreedBy(this.#read, plans, toSqlTime(cutoff));
  }

  /** Which of `digests` the index has a blob row for. */
  existingBlobs(digests: readonly string[]): Promise<Set<string>> {
    return gc.existingBlobs(this.#read, digests);
  }

  /** The manifests, tags, links and referenced blobs the index holds for a repository. */
  repositoryKnown(repository: string): Promise<gc.RepositoryKnown> {
    return gc.repositoryKnown(this.#read, repository);
  }

  /** Takes or renews a cross-process lock until now + `ttlMs`; false when another holds it. */
  acquireLock(
    name: string,
    holder: string,
    ttlMs: number,
    now: Date = new Date(),
  ): Promise<boolean> {
    return this.#write((x) => gc.acquireLock(x, name, holder, now, ttlMs));
  }

  /** Releases a lock `holder` holds. */
  releaseLock(name: string, holder: string): Promise<void> {
    return this.#write((x) => gc.releaseLock(x, name, holder));
  }

  /** Forgets push announcements older than `cutoff` (end of a GC run). */
  pruneGcRecent(cutoff: Date): Promise<void> {
    return this.#write((x) => gc.pruneRecent(x, toSqlTime(cutoff)));
  }

  /** Stores a finished GC run's report (the last 50 are kept). */
  saveGcRun(run: Omit<gc.GcRunRecord, 'id'>): Promise<number> {
    return this.#write((x) => gc.saveRun(x, run));
  }

  /** The most recent GC run, or `undefined`. */
  lastGcRun(): Promise<gc.GcRunRecord | undefined> {
    return gc.lastRun(this.#read);
  }

  /** The retention policies, in match order. */
  listRetentionPolicies(): Promise<retention.RetentionPolicy[]> {
    return retention.listPolicies(this.#read);
  }

  /** Replaces every retention policy at once. */
  replaceRetentionPolicies(
    policies: readonly retention.RetentionPolicy[],
    at: Date = new Date(),
  ): Promise<void> {
    return this.#write((x) => retention.replacePolicies(x, policies, toSqlTime(at)));
  }

  /** The protected-tag glob `tag` matches in the repository's policy, or `undefined`. */
  protectedTagPattern(repository: string, tag: string): Promise<string | undefined> {
    return retention.protectedTagPattern(this.#read, repository, tag);
  }

  /**
   * Manifest pushes per UTC day since `since`, oldest first (days without pushes left out), to
   * the repositories matching `filter` when one is given.
   */
  pushesPerDay(since: Date, filter?: RepositoryFilter): Promise<activity.PushDay[]> {
    return activity.pushesPerDay(this.#read, since, filter);
  }

  /** Closes the pool or the SQLite handle. */
  async close(): Promise<void> {
    await this.#db.destroy();
  }
}

function isMysqlUrl(dsn: string): boolean {
  return /^(mysql|mariadb):\/\//i.test(dsn);
}

async function migrate(db: Kysely<Database>, dialect: DialectName): Promise<void> {
  const migrator = new Migrator({ db, provider: new StoreMigrations(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`index migration${failed ? ` ${failed}` : ''} failed: ${reason}`, {
      cause: error,
    });
  }
}

function queryLog(onQuery: StoreOptions['onQuery']): KyselyConfig['log'] {
  if (!onQuery) return undefined;
  return (event) => onQuery(event.queryDurationMillis, event.level === 'error');
}

async function openMysql(
  dsn: string,
  poolSize: number,
  onQuery: StoreOptions['onQuery'],
): Promise<Store> {
  const pool = createPool({
    uri: dsn.replace(/^mariadb:/i, 'mysql:'),
    connectionLimit: poolSize,
    // Times are written and read as UTC text; no driver-side time zone conversion.
    dateStrings: true,
    timezone: 'Z',
    decimalNumbers: true,
    supportBigNumbers: true,
    // Binary collation on the connection too, so literals compare byte by byte.
    charset: 'UTF8MB4_BIN',
    // Without FOUND_ROWS, an ON DUPLICATE KEY UPDATE that changes nothing reports 0 rows:
    // recordManifest relies on that to know whether it inserted the manifest.
    flags: ['-FOUND_ROWS'],
    // A database that is unreachable fails requests within seconds (503), not minutes.
    connectTimeout: 5_000,
  });
  const db = new Kysely<Database>({
    dialect: new MysqlDialect({
      pool: unavailabilityReportingPool(pool),
      onCreateConnection: async (connection) => {
        await connection.executeQuery(CompiledQuery.raw("set time_zone = '+00:00'"));
      },
    }),
    log: queryLog(onQuery),
  });
  try {
    // Kysely's MySQL adapter serializes concurrent migrators with GET_LOCK.
    await migrate(db, 'mysql');
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new Store(db, 'mysql');
}

async function openSqlite(file: string, onQuery: StoreOptions['onQuery']): Promise<Store> {
  const sqlite = new BetterSqlite3(file, { timeout: SQLITE_BUSY_MS });
  const run = async (statement: string): Promise<void> => {
    sqlite.exec(statement);
  };
  try {
    // WAL: readers never block the writer; changing the mode takes a lock, hence the retry.
    await beginImmediate(run).then(() => run('commit'));
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    // FULL: a push is answered only after its index commit is on disk, like its bytes.
    sqlite.pragma('synchronous = FULL');
  } catch (error) {
    sqlite.close();
    throw error;
  }
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: sqlite }),
    log: queryLog(onQuery),
  });
  try {
    // SQLite's Kysely adapter has no migration lock: hold the database's write lock for the
    // whole migration instead (SQLite DDL is transactional), so concurrent opens run it once.
    await beginImmediate(run);
    try {
      await migrate(db, 'sqlite');
      await run('commit');
    } catch (error) {
      await run('rollback').catch(() => undefined);
      throw error;
    }
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new Store(db, 'sqlite');
}

/**
 * Opens the index and brings its schema up to date: MySQL/MariaDB when `dsn` is a
 * `mysql://` URL, else SQLite at `sqliteFile` (WAL mode, foreign keys on, busy timeout).
 * Concurrent opens of one database are safe: migrations run once, under a lock.
 *
 * @throws {Error} when neither is given, the database is unreachable or a migration fails
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (options.dsn !== undefined && options.dsn !== '') {
    if (!isMysqlUrl(options.dsn)) {
      throw new Error('index DSN must be a mysql://user:pass@host:3306/db URL');
    }
    return openMysql(options.dsn, options.poolSize ?? 10, options.onQuery);
  }
  if (options.sqliteFile !== undefined && options.sqliteFile !== '') {
    return openSqlite(options.sqliteFile, options.onQuery);
  }
  throw new Error('openStore needs a MySQL dsn or an SQLite file');
}
