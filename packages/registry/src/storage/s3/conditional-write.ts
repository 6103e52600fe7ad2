import type { PutResult } from '../object-store.js';
import { retry } from '../retry.js';
import type { S3Context } from './context.js';
import { statusOf } from './errors.js';
import { head } from './read.js';

/* Writes that must not replace an existing object (`ifAbsent`), with `If-None-Match` or without. */

export type WriteOutcome = 'written' | 'exists';

/** The conditional writes whose `If-None-Match: *` support is probed separately. */
export type ConditionalOp = 'conditionalPut' | 'conditionalComplete' | 'conditionalCopy';

/**
 * Runs a write with `ifAbsent` semantics: `If-None-Match: *` where the server honours it on
 * this operation (412 means another writer got there first; 409 means one is racing us, so try
 * again), else HEAD-then-write (see the comment of `S3ObjectStore`).
 */
export async function conditionalWrite(
  s3: S3Context,
  key: string,
  ifAbsent: boolean,
  op: ConditionalOp,
  signal: AbortSignal | undefined,
  write: (ifNoneMatch: '*' | undefined) => Promise<unknown>,
): Promise<WriteOutcome> {
  if (!ifAbsent) {
    await write(undefined);
    return 'written';
  }
  if (!s3.caps[op]) {
    if (await head(s3, key, signal)) return 'exists';
    await write(undefined);
    return 'written';
  }
  try {
    await retry(() => write('*'), {
      attempts: 6,
      baseDelayMs: 50,
      maxDelayMs: 2000,
      retryable: (err) => statusOf(err) === 409,
      signal,
    });
    return 'written';
  } catch (err) {
    if (statusOf(err) === 412) return 'exists';
    if (statusOf(err) === 501) {
      s3.caps[op] = false;
      return conditionalWrite(s3, key, ifAbsent, op, signal, write);
    }
    throw err;
  }
}

/** What a write of `size` bytes to `key` reports: the existing object's size when it lost. */
export async function putResult(
  s3: S3Context,
  outcome: WriteOutcome,
  key: string,
  size: number,
  signal: AbortSignal | undefined,
): Promise<PutResult> {
  if (outcome === 'written') return { created: true, size };
  const existing = await head(s3, key, signal);
  return { created: false, size: existing?.size ?? size };
}
