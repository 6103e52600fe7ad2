import { Readable } from 'node:stream';
import type { Context } from 'hono';
import type { Env } from './env.js';
import { HttpProblem } from './errors.js';

/**
 * The request body as a Node stream. On Node the raw `IncomingMessage` is used directly: it is
 * the fastest path for multi-GiB uploads and avoids a Web-stream conversion per chunk.
 */
export function bodyStream(c: Context<Env>): Readable {
  const incoming = c.env?.incoming;
  if (incoming) return incoming;
  const body = c.req.raw.body;
  return body
    ? Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>)
    : Readable.from([]);
}

/** `Content-Length` as a number, `undefined` when absent; a malformed value is a client error. */
export function contentLength(c: Context<Env>): number | undefined {
  const value = c.req.header('content-length');
  if (value === undefined) return undefined;
  if (!/^\d{1,16}$/.test(value)) {
    throw new HttpProblem(400, 'SIZE_INVALID', 'malformed Content-Length header');
  }
  return Number(value);
}

/** Whether the request carries a body at all (a length above zero, or chunked encoding). */
export function hasBody(c: Context<Env>): boolean {
  const length = contentLength(c);
  return length !== undefined ? length > 0 : c.req.header('transfer-encoding') !== undefined;
}

/**
 * Reads a small body (a manifest) whole, refusing more than `limit` bytes with 413 before or while
 * reading, so a client cannot make the server buffer more than the cap.
 */
export async function readSmallBody(c: Context<Env>, limit: number, what: string): Promise<Buffer> {
  const declared = contentLength(c);
  if (declared !== undefined && declared > limit) {
    throw new HttpProblem(413, 'SIZE_INVALID', `${what} exceeds the limit of ${limit} bytes`, {
      limit,
    });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of bodyStream(c)) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      throw new HttpProblem(413, 'SIZE_INVALID', `${what} exceeds the limit of ${limit} bytes`, {
        limit,
      });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/** A positive-integer query parameter, or `undefined`; anything else is a 400. */
export function intQuery(c: Context<Env>, name: string): number | undefined {
  const value = c.req.query(name);
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,9}$/.test(value)) {
    throw new HttpProblem(
      400,
      'PAGINATION_NUMBER_INVALID',
      `query parameter ${name} must be a non-negative integer`,
    );
  }
  return Number(value);
}
