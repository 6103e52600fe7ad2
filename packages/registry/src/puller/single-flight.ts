import { setMaxListeners } from 'node:events';

interface Flight<T> {
  controller: AbortController;
  waiters: number;
  promise: Promise<T>;
}

/**
 * One piece of work per key, shared by every concurrent caller. The work gets its own
 * AbortSignal, aborted only when the last caller waiting for it has aborted: one caller giving up
 * never cancels the others. A key whose work was abandoned starts afresh for the next caller, but
 * only once the abandoned work has wound down, so two runs never write the same files at once.
 */
export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();
  readonly #draining = new Map<string, Promise<unknown>>();

  /** Keys whose work is running. */
  get keys(): string[] {
    return [...this.#flights.keys()];
  }

  /** Joins the running work for `key`, or starts `work`; `joined` tells which. */
  run(
    key: string,
    signal: AbortSignal | undefined,
    work: (signal: AbortSignal) => Promise<T>,
  ): { joined: boolean; promise: Promise<T> } {
    signal?.throwIfAborted();
    let flight = this.#flights.get(key);
    const joined = flight !== undefined;
    if (!flight) flight = this.#start(key, work);
    const shared = flight;
    shared.waiters++;
    const promise = new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = () => {
        if (left) return false;
        left = true;
        signal?.removeEventListener('abort', onAbort);
        shared.waiters--;
        return true;
      };
      const onAbort = () => {
        if (!leave()) return;
        if (shared.waiters === 0) this.#abandon(key, shared, signal?.reason);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      shared.promise.then(
        (value) => leave() && resolve(value),
        (err) => leave() && reject(err),
      );
    });
    return { joined, promise };
  }

  #start(key: string, work: (signal: AbortSignal) => Promise<T>): Flight<T> {
    const controller = new AbortController();
    // Every piece of a transfer listens on it.
    setMaxListeners(0, controller.signal);
    const before = this.#draining.get(key);
    const flight: Flight<T> = {
      controller,
      waiters: 0,
      promise: (before
        ? before.then(() => work(controller.signal))
        : work(controller.signal)
      ).finally(() => {
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
      }),
    };
    flight.promise.catch(() => {});
    this.#flights.set(key, flight);
    return flight;
  }

  #abandon(key: string, flight: Flight<T>, reason: unknown): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
    flight.controller.abort(reason);
    const settled = flight.promise.then(
      () => undefined,
      () => undefined,
    );
    this.#draining.set(key, settled);
    void settled.then(() => {
      if (this.#draining.get(key) === settled) this.#draining.delete(key);
    });
  }
}
