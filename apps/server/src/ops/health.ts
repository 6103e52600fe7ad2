import type { ObjectStore } from '@epoch/registry';
import type { Store } from '@epoch/store';
import type { Context } from 'hono';
import type { Env } from '../http/env.js';

/** How long a readiness check may take before the dependency counts as unreachable. */
const CHECK_TIMEOUT_MS = 3000;

/**
 * `GET /readyz`: 200 when the index answers and has every migration this code expects, and the
 * object store answers; otherwise 503 with the reason for each failing check. (`/healthz` only
 * says the process is alive.)
 */
export function readiness(index: Store, store: ObjectStore) {
  return async (c: Context<Env>): Promise<Response> => {
    const [indexCheck, storageCheck] = await Promise.all([
      check(async () => {
        await index.ping();
        const pending = await index.pendingMigrations();
        if (pending.length > 0) throw new Error(`migrations not applied: ${pending.join(', ')}`);
      }),
      check(async () => {
        await store.stat('catalog.json');
      }),
    ]);
    const ready = indexCheck === 'ok' && storageCheck === 'ok';
    c.header('Cache-Control', 'no-store');
    return c.json(
      {
        status: ready ? 'ready' : 'unavailable',
        checks: { index: indexCheck, storage: storageCheck },
      },
      ready ? 200 : 503,
    );
  };
}

async function check(fn: () => Promise<void>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (err) {
    return err instanceof Error ? err.message.slice(0, 300) : 'failed';
  } finally {
    clearTimeout(timer);
  }
}
