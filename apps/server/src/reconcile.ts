import { join } from 'node:path';
import { adoptReferencedBlobs, type Registry, readStorageScan } from '@epoch/registry';
import { openStore, type ReconcileReport, type Store } from '@epoch/store';
import { ConfigError, type ServerConfig } from './config.js';
import { prepareDataDir } from './data-dir.js';
import type { Logger } from './log.js';

/**
 * Rebuilds or repairs the index from storage, in two phases like upstream's sync: read the
 * whole registry from the object store without touching the index, then apply it in short
 * per-repository transactions that never undo a push newer than the read. Logs and returns
 * what it changed.
 */
export async function reconcileIndex(
  registry: Registry,
  index: Store,
  log: Logger,
  options: { signal?: AbortSignal } = {},
): Promise<ReconcileReport> {
  const started = Date.now();
  const scan = await readStorageScan(registry, options.signal ? { signal: options.signal } : {});
  const adopted = await adoptReferencedBlobs(
    registry,
    scan,
    options.signal ? { signal: options.signal } : {},
  );
  const read = Date.now() - started;
  const report = await index.writes.reconcile(scan);
  const { errors, ...counts } = report;
  for (const error of errors.slice(0, 20)) log.warn({ ...error }, 'reconcile: skipped');
  log.info(
    {
      ...counts,
      adoptedLinks: adopted.adopted,
      errors: errors.length,
      readMs: read,
      totalMs: Date.now() - started,
    },
    'index reconciled',
  );
  return report;
}

/**
 * Runs reconciles one at a time per process: a run asked for while one is in flight joins it
 * (start-up, the periodic timer and `POST /api/catalog/sync` all go through here).
 */
export class Reconciler {
  #running: Promise<ReconcileReport> | undefined;
  #completed = false;
  readonly #abort = new AbortController();

  constructor(
    private readonly registry: Registry,
    private readonly index: Store,
    private readonly log: Logger,
    /** Called after each completed run (the server rewrites catalog.json then). */
    private readonly onComplete: () => void = () => {},
  ) {}

  run(): Promise<ReconcileReport> {
    this.#running ??= reconcileIndex(this.registry, this.index, this.log, {
      signal: this.#abort.signal,
    })
      .then((report) => {
        this.#completed = true;
        this.onComplete();
        return report;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  /**
   * Whether a reconcile has completed since this process started: from then on the index holds
   * everything storage held at that moment, plus every write-through since, and can serve
   * listings.
   */
  get completed(): boolean {
    return this.#completed;
  }

  /** A run in the background: failures are logged, not thrown. */
  runInBackground(): void {
    this.run().catch((err: unknown) => {
      if (!this.#abort.signal.aborted) this.log.warn({ err }, 'index reconcile failed');
    });
  }

  /** Aborts a run in flight (its storage read) and waits for it to settle. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
  }
}

/**
 * Opens the index the configuration names: MySQL with a DSN, else SQLite in the data dir. A DSN
 * naming a database that does not exist is a configuration error that says how to create it.
 */
export async function openIndex(
  config: ServerConfig,
  options: { onQuery?: (durationMs: number, failed: boolean) => void } = {},
): Promise<Store> {
  if (!config.dsn) await prepareDataDir(config.dataDir);
  try {
    return await openStore({
      ...(config.dsn ? { dsn: config.dsn } : { sqliteFile: join(config.dataDir, 'epoch.db') }),
      ...(options.onQuery ? { onQuery: options.onQuery } : {}),
    });
  } catch (err) {
    if (config.dsn && causes(err).some((e) => e.code === 'ER_BAD_DB_ERROR')) {
      const url = new URL(config.dsn);
      const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
      throw new ConfigError(
        `EPOCH_DSN/--dsn names database ${JSON.stringify(database)} on ${url.host}, which does not exist: create it (CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin) and start again`,
      );
    }
    throw err;
  }
}

/** An error and the chain of its causes. */
function causes(err: unknown): { code?: unknown }[] {
  const chain: { code?: unknown }[] = [];
  let current = err;
  while (current instanceof Error && chain.length < 10) {
    chain.push(current as { code?: unknown });
    current = current.cause;
  }
  return chain;
}
