import type { Registry } from '@epoch/registry';
import type { GcRunRecord, Store } from '@epoch/store';
import type { Logger } from '../log.js';
import { collectGarbage, type GcReport } from './collector.js';

/** What the server's GC runs are built from. */
export interface GarbageCollectorDeps {
  registry: Registry;
  index: Store;
  delayMs: number;
  log: Logger;
  /** The server's reconciler (joins a run in flight). */
  reconcile?: () => Promise<unknown>;
  /** Told how every run ended (for metrics): its report, or `undefined` when it failed. */
  onRun?: (report: GcReport | undefined, dryRun: boolean) => void;
}

/**
 * GC inside the server: on demand (`POST /api/gc`) and, with `EPOCH_GC_INTERVAL`, on a timer.
 * The index lock makes runs exclusive across processes; the report of the last run (from any
 * process) is read back from the index.
 */
export class GarbageCollector {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(private readonly deps: GarbageCollectorDeps) {}

  /** One run; throws `GcBusyError` when another run holds the lock. */
  run(options: { dryRun?: boolean; actor?: string } = {}): Promise<GcReport> {
    const { registry, index, delayMs, log, reconcile } = this.deps;
    const run = collectGarbage(registry, index, {
      delayMs,
      log,
      ...(options.dryRun ? { dryRun: true } : {}),
      ...(options.actor ? { actor: options.actor } : {}),
      ...(reconcile ? { reconcile } : {}),
    });
    const dryRun = options.dryRun === true;
    run.then(
      (report) => this.deps.onRun?.(report, dryRun),
      () => this.deps.onRun?.(undefined, dryRun),
    );
    this.#running = run.catch(() => undefined);
    return run;
  }

  /** The last finished run of any process, or `undefined`. */
  last(): Promise<GcRunRecord | undefined> {
    return this.deps.index.gc.lastRun();
  }

  /** Runs every `intervalMs` (0: never); failures and busy locks are logged. */
  schedule(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      this.run({ actor: 'gc:schedule' }).catch((err: unknown) =>
        this.deps.log.warn({ err }, 'scheduled garbage collection did not run'),
      );
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a run in flight. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
