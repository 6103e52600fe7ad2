import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the dashboard made. */
export interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** An answer: status, JSON body and extra headers. */
export interface Answer {
  status?: number;
  json?: unknown;
  headers?: Record<string, string>;
}

/** Answers by `"METHOD /path"`; an answer may be held back (a slow server) by returning a promise. */
export type Routes = Record<string, (seen: Seen) => Answer | Promise<Answer>>;

/**
 * A loopback HTTP server that answers the dashboard's `/api/` and `/auth/` calls from a table
 * (`"GET /api/stats"` → answer), so component tests exercise the app's real fetch, headers and
 * JSON handling over HTTP. Unknown routes get the server's JSON 404. The full server is tested
 * with the built app in apps/server/test/web-e2e.test.ts.
 */
export async function startApiServer(routes: Routes) {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const s: Seen = {
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    seen.push(s);
    const route = routes[`${s.method} ${s.path}`] ?? routes[`${s.method} ${url.pathname}`];
    const answer = route
      ? await route(s)
      : { status: 404, json: { error: 'no such endpoint', code: 'NOT_FOUND' } };
    res.writeHead(answer.status ?? 200, {
      ...(answer.json === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...answer.headers,
    });
    res.end(answer.json === undefined ? undefined : JSON.stringify(answer.json));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
