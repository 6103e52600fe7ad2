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
import type { StoreAccess } from './facets/access.js';
import { type StoreAudit, storeAudit } from './facets/audit.js';
import { type StoreGc, storeGc } from './facets/gc.js';
import { type IndexReads, indexReads } from './facets/reads.js';
import {
  type StoreRepositorySettings,
  storeRepositorySettings,
} from './facets/repository-settings.js';
import { type StoreRetention, storeRetention } from './facets/retention.js';
import { type StoreSettings, storeSettings } from './facets/settings.js';
import { type StoreTokens, storeTokens } from './facets/tokens.js';
import { type IndexWrites, indexWrites } from './facets/writes.js';
import { StoreMigrations } from './migrations/index.js';
import { unavailabilityReportingPool } from './mysql-pool.js';
import type { Database } from './schema.js';

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
 *
 * The store itself only opens, checks and closes the database; what it holds is reached
 * through one facet per concern: {@link Store.writes}, {@link Store.reads},
 * {@link Store.tokens}, {@link Store.audit}, {@link Store.gc}, {@link Store.retention},
 * {@link Store.settings} and {@link Store.repositorySettings}.
 */
export class Store {
  readonly #db: Kysely<Database>;
  /** `mysql` or `sqlite`. */
  readonly dialect: DialectName;
  /** Write-through operations (one transaction each) and reconciliation with storage. */
  readonly writes: IndexWrites;
  /** Registry and control API reads. */
  readonly reads: IndexReads;
  /** API tokens, with the audit events of creating and revoking them. */
  readonly tokens: StoreTokens;
  /** The audit log. */
  readonly audit: StoreAudit;
  /** Garbage collection: plans, sweeps, the deletion queue, the run lock and run history. */
  readonly gc: StoreGc;
  /** Retention policies and protected tags. */
  readonly retention: StoreRetention;
  /** Values shared by every process on the index. */
  readonly settings: StoreSettings;
  /** What people chose for each repository (its default snapshot format). */
  readonly repositorySettings: StoreRepositorySettings;

  /** @internal Use {@link openStore}. */
  constructor(db: Kysely<Database>, dialect: DialectName) {
    this.#db = db;
    this.dialect = dialect;
    const access: StoreAccess = {
      read: { db, dialect },
      write: (fn) => this.#write(fn),
    };
    this.writes = indexWrites(access);
    this.reads = indexReads(access);
    this.tokens = storeTokens(access);
    this.audit = storeAudit(access);
    this.gc = storeGc(access);
    this.retention = storeRetention(access);
    this.settings = storeSettings(access);
    this.repositorySettings = storeRepositorySettings(access);
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
