import { Readable } from 'node:stream';
import { streamInto } from '@epoch/registry';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import type { Env } from './env.js';

/**
 * Sends a streamed body. On Node the bytes go straight into the socket (`streamInto`: from the
 * file through reused buffers on the filesystem driver, piped otherwise), never through a Web
 * stream, which costs about three times as much. If the source fails after the headers went
 * out, the connection is destroyed rather than ended (logged as `aborted`), so the client sees
 * the short transfer as an error (its Content-Length is not met), never as a clean short body.
 */
export function sendStream(
  c: Context<Env>,
  status: 200 | 206,
  headers: Record<string, string>,
  source: Readable,
  aborted: string,
): Response {
  const outgoing = c.env?.outgoing;
  if (!outgoing) {
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    return c.body(Readable.toWeb(source) as ReadableStream<Uint8Array>, status);
  }
  outgoing.writeHead(status, { ...headers, 'X-Request-Id': c.var.requestId });
  streamInto(source, outgoing).catch((err: unknown) => {
    if (outgoing.writableFinished) return;
    c.var.log.warn({ err }, aborted);
    outgoing.destroy();
  });
  // Tell the access log what was sent; the response object itself is a marker.
  c.set('sentStatus', status);
  return RESPONSE_ALREADY_SENT;
}
