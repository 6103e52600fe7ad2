import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Runs CPU-heavy work (accepting a multi-MiB manifest) one job at a time, with a turn of the
 * event loop before each.
 *
 * Node runs JavaScript on one thread. A 4 MiB manifest with 10,000 descriptors costs tens of
 * milliseconds of synchronous work in several places (decoding, parsing, hashing, index
 * statements). When eight such pushes run together, their slices interleave and a health check
 * or blob read arriving between them waits for one slice of each. Through here only one job
 * runs at a time, so other requests wait for at most one slice; the jobs themselves queue.
 */
export class TurnTaking {
  #tail: Promise<void> = Promise.resolve();

  /** `fn`'s result, started once every job queued before it has settled and the loop turned. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(async () => {
      await nextTurn();
      return fn();
    });
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
