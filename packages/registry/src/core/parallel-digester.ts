import { Worker } from 'node:worker_threads';

/** Bytes gathered into one message to the worker: few messages, and still a short lag. */
const BATCH_BYTES = 512 * 1024;
/** Bytes a digester may have sent and not yet seen hashed before `update` asks its caller to wait. */
const MAX_IN_FLIGHT_BYTES = 1024 * 1024;

// The worker's whole program. It runs from source (`eval`) so that it loads the same way from
// the compiled package and from the TypeScript sources under test; dynamic imports, because an
// eval'd worker is CommonJS or an ES module depending on the flags node was started with.
const WORKER_SOURCE = `
Promise.all([import('node:worker_threads'), import('node:crypto')]).then(([threads, crypto]) => {
  const hashes = new Map();
  threads.parentPort.on('message', (m) => {
    if (m.op === 'open') hashes.set(m.id, crypto.createHash(m.algorithm));
    else if (m.op === 'update') {
      hashes.get(m.id)?.update(new Uint8Array(m.bytes));
      threads.parentPort.postMessage({ op: 'hashed', id: m.id, bytes: m.bytes }, [m.bytes]);
    } else if (m.op === 'copy') {
      const hash = hashes.get(m.id);
      if (hash) hashes.set(m.to, hash.copy());
    } else if (m.op === 'digest') {
      const hash = hashes.get(m.id);
      hashes.delete(m.id);
      threads.parentPort.postMessage({ op: 'digest', id: m.id, hex: hash ? hash.digest('hex') : null });
    } else if (m.op === 'free') hashes.delete(m.id);
  });
});
`;

type FromWorker =
  | { op: 'hashed'; id: number; bytes: ArrayBuffer }
  | { op: 'digest'; id: number; hex: string | null };

/** The one hashing thread the process shares, started on first use and restarted after a crash. */
class HashThread {
  #worker: Worker | undefined;
  #nextId = 1;
  #awaited = 0;
  readonly #digesters = new Map<number, ParallelDigester>();

  /** A new id for `digester`, whose messages from the worker go to it from now on. */
  register(digester: ParallelDigester): number {
    const id = this.#nextId++;
    this.#digesters.set(id, digester);
    return id;
  }

  forget(id: number): void {
    this.#digesters.delete(id);
  }

  /**
   * Sends `message`; `awaited` when the worker will answer it. The thread keeps the process alive
   * only while an answer is awaited: an idle hashing thread is not work.
   */
  post(message: object, transfer: ArrayBuffer[] = [], awaited = false): void {
    const worker = this.#ensure();
    if (awaited && this.#awaited++ === 0) worker.ref();
    worker.postMessage(message, transfer);
  }

  #answered(worker: Worker): void {
    if (--this.#awaited === 0) worker.unref();
  }

  #ensure(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (m: FromWorker) => {
      // A late answer of a thread that has since died belongs to nobody; above all it must not
      // count against its successor's awaited answers.
      if (worker !== this.#worker) return;
      this.#answered(worker);
      this.#digesters.get(m.id)?.receive(m);
    });
    const fail = (err: Error): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#awaited = 0;
      const broken = [...this.#digesters.values()];
      this.#digesters.clear();
      for (const digester of broken) digester.fail(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`hashing thread exited with code ${code}`)));
    // After the listeners: adding one refs the worker's port again.
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}

const thread = new HashThread();

/** Batch buffers back from the worker, for reuse: no allocation and no zeroing per batch. */
const spareBatches: Uint8Array[] = [];
const SPARE_BATCHES = 8;

function takeBatch(): Uint8Array {
  return spareBatches.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
}

/**
 * An incremental SHA-256 (or SHA-512) computed on a worker thread, so that hashing an upload
 * runs on another core than the one receiving it: the event loop's share of an upload's CPU was
 * a third hashing (bench/README.md).
 *
 * Bytes are copied into batches that are handed over (transferred, not copied again) in order;
 * `update` returns a promise to wait on when too many are still unhashed, and nothing
 * otherwise. Every digester must end with `digest()` or `release()`, which free its state in
 * the worker. A digester whose thread crashed rejects `digest()`: the caller hashes the bytes
 * another way.
 */
export class ParallelDigester {
  readonly algorithm: 'sha256' | 'sha512';
  #id: number;
  #batch: Uint8Array | undefined;
  #fill = 0;
  #inFlight = 0;
  #bytes = 0;
  /** Callers of `update` waiting for the worker to catch up. */
  #drained: (() => void)[] = [];
  #result: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  #error: Error | undefined;
  #done = false;

  /**
   * @param algorithm - the hash, sha256 unless given
   * @param from - start from this digester's state instead of empty (what `copy` does)
   */
  constructor(algorithm: 'sha256' | 'sha512' = 'sha256', from?: ParallelDigester) {
    this.algorithm = from?.algorithm ?? algorithm;
    this.#id = thread.register(this);
    if (from) {
      from.#send();
      this.#bytes = from.#bytes;
      this.#error = from.#error;
      thread.post({ op: 'copy', id: from.#id, to: this.#id });
    } else {
      thread.post({ op: 'open', id: this.#id, algorithm });
    }
  }

  /** Bytes given to `update` so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Adds `chunk` (copied: the caller may reuse it at once). Returns a promise when the caller
   * should wait before the next update, `undefined` when it need not.
   */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#done) throw new Error('ParallelDigester.update called after digest() or release()');
    this.#bytes += chunk.byteLength;
    // A broken digester only counts: its digest() rejects, and the bytes go nowhere.
    if (this.#error) return undefined;
    for (let from = 0; from < chunk.byteLength; ) {
      this.#batch ??= takeBatch();
      const n = Math.min(chunk.byteLength - from, BATCH_BYTES - this.#fill);
      this.#batch.set(chunk.subarray(from, from + n), this.#fill);
      this.#fill += n;
      from += n;
      if (this.#fill === BATCH_BYTES) this.#send();
    }
    if (this.#error || this.#inFlight < MAX_IN_FLIGHT_BYTES) return undefined;
    return new Promise((resolve) => {
      this.#drained.push(resolve);
    });
  }

  /** An independent digester with the same state, to roll back to if what follows fails. */
  copy(): ParallelDigester {
    if (this.#done) throw new Error('ParallelDigester.copy called after digest() or release()');
    return new ParallelDigester(this.algorithm, this);
  }

  /** The digest of everything given to `update`, as `algorithm:hex`. Frees the state. */
  digest(): Promise<string> {
    if (this.#done) return Promise.reject(new Error('ParallelDigester.digest called twice'));
    this.#send();
    this.#done = true;
    if (this.#error) {
      thread.forget(this.#id);
      return Promise.reject(this.#error);
    }
    return new Promise<string>((resolve, reject) => {
      this.#result = { resolve: (hex) => resolve(`${this.algorithm}:${hex}`), reject };
      thread.post({ op: 'digest', id: this.#id }, [], true);
    });
  }

  /** Frees the state without a digest. */
  release(): void {
    if (this.#done) return;
    this.#done = true;
    this.#batch = undefined;
    thread.forget(this.#id);
    // Its answers will not reach it any more: nobody may be left waiting for them.
    this.#wake();
    if (!this.#error) thread.post({ op: 'free', id: this.#id });
  }

  /** @internal A message from the worker about this digester. */
  receive(message: FromWorker): void {
    if (message.op === 'hashed') {
      this.#inFlight -= message.bytes.byteLength;
      if (message.bytes.byteLength === BATCH_BYTES && spareBatches.length < SPARE_BATCHES) {
        spareBatches.push(new Uint8Array(message.bytes));
      }
      if (this.#inFlight < MAX_IN_FLIGHT_BYTES) this.#wake();
      return;
    }
    thread.forget(this.#id);
    const result = this.#result;
    this.#result = undefined;
    if (message.hex === null) result?.reject(new Error('the hashing thread lost this digest'));
    else result?.resolve(message.hex);
  }

  /** @internal The hashing thread died with this digester's state in it. */
  fail(err: Error): void {
    this.#error = err;
    this.#wake();
    this.#result?.reject(err);
    this.#result = undefined;
  }

  #wake(): void {
    const waiting = this.#drained;
    this.#drained = [];
    for (const resolve of waiting) resolve();
  }

  #send(): void {
    if (this.#error) {
      // Nothing will hash these bytes: drop them rather than keep a full batch that `update`
      // would wait forever to empty.
      this.#batch = undefined;
      this.#fill = 0;
      return;
    }
    if (!this.#batch || this.#fill === 0) return;
    // Only the filled part is sent; a full batch goes as it is, without a copy, and comes back.
    const bytes =
      this.#fill === BATCH_BYTES
        ? this.#batch.buffer
        : new Uint8Array(this.#batch.subarray(0, this.#fill)).buffer;
    if (this.#fill !== BATCH_BYTES && spareBatches.length < SPARE_BATCHES) {
      spareBatches.push(this.#batch);
    }
    this.#inFlight += this.#fill;
    this.#batch = undefined;
    this.#fill = 0;
    thread.post({ op: 'update', id: this.#id, bytes }, [bytes as ArrayBuffer], true);
  }
}
