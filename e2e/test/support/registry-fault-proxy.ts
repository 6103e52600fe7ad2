import { createServer, type IncomingMessage, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** What the proxy does to one response body. */
export interface Fault {
  /** Flip the first byte of the body. */
  corrupt?: boolean;
  /** Send this many body bytes, then drop the connection. */
  cutAfter?: number;
}

/** One request as the proxy saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  range: string | undefined;
  /** Body bytes the proxy passed back. */
  sent: number;
  /** The response is over (sent, cut or abandoned). */
  finished: boolean;
}

/** A fault-injecting, optionally throttled HTTP proxy in front of a registry. */
export interface FaultProxy {
  url: string;
  requests: SeenRequest[];
  /** Blob GETs seen for a digest. */
  blobGets(digest?: string): SeenRequest[];
  /** Decides faults per request (default: none). */
  fault: (req: IncomingMessage, seen: SeenRequest) => Fault | undefined;
  /** Bytes per second per connection, 0 for unlimited. */
  rate: number;
  close(): Promise<void>;
}

/** Starts a real HTTP proxy on loopback forwarding to `target`. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const proxy: FaultProxy = {
    url: '',
    requests: [],
    blobGets: (digest) =>
      proxy.requests.filter(
        (r) =>
          r.method === 'GET' &&
          r.path.includes('/blobs/sha256:') &&
          (digest === undefined || r.path.endsWith(digest)),
      ),
    fault: () => undefined,
    rate: 0,
    close: async () => {},
  };
  const server = createServer((req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      range: req.headers.range,
      sent: 0,
      finished: false,
    };
    res.once('close', () => {
      seen.finished = true;
    });
    proxy.requests.push(seen);
    const fault = proxy.fault(req, seen) ?? {};
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      async (up) => {
        const headers = { ...up.headers };
        if (headers.location?.startsWith(upstream.origin)) {
          headers.location = headers.location.replace(upstream.origin, '');
        }
        res.writeHead(up.statusCode ?? 502, headers);
        const started = Date.now();
        try {
          for await (const piece of up as AsyncIterable<Buffer>) {
            let data = piece;
            if (fault.corrupt && seen.sent === 0 && data.length > 0) {
              data = Buffer.from(data);
              data[0] = (data[0] ?? 0) ^ 0xff;
            }
            if (fault.cutAfter !== undefined && seen.sent + data.length >= fault.cutAfter) {
              const part = data.subarray(0, fault.cutAfter - seen.sent);
              seen.sent += part.length;
              await new Promise<void>((resolve) => res.write(part, () => resolve()));
              up.destroy();
              res.socket?.destroy();
              return;
            }
            seen.sent += data.length;
            // A client is done with a response once it has every byte.
            if (seen.sent >= Number(up.headers['content-length'] ?? Number.POSITIVE_INFINITY)) {
              seen.finished = true;
            }
            if (!res.write(data)) await new Promise((resolve) => res.once('drain', resolve));
            if (proxy.rate > 0) {
              const due = started + (seen.sent / proxy.rate) * 1000;
              const wait = due - Date.now();
              if (wait > 0) await sleep(wait);
            }
            if (res.destroyed) {
              up.destroy();
              return;
            }
          }
          res.end();
        } catch {
          res.destroy();
        }
      },
    );
    req.pipe(out);
    out.on('error', () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
