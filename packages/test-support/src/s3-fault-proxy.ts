import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** The faults the proxy injects, each with the share of requests that get it (0–1). */
export interface FaultRates {
  /** 500 InternalError without forwarding the request. */
  error500: number;
  /** 503 SlowDown without forwarding the request. */
  slowDown503: number;
  /** The connection is reset (RST) while the request body arrives; nothing is forwarded. */
  resetRequest: number;
  /** Forwarded (so S3 may have acted on it), then reset partway through the response body. */
  resetResponse: number;
  /** Forwarded, with up to `slowMs` of delay before the response starts. */
  slow: number;
  /** Forwarded; the response keeps its Content-Length but the connection ends early (FIN). */
  truncate: number;
}

export type FaultKind = keyof FaultRates;

const KINDS: FaultKind[] = [
  'error500',
  'slowDown503',
  'resetRequest',
  'resetResponse',
  'slow',
  'truncate',
];

/** An HTTP proxy in front of an S3 endpoint that injects faults at the configured rates. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: give it to the S3 driver as its endpoint. */
  endpoint: string;
  /** Mutable: change the rates at any time (all 0 makes the proxy transparent). */
  rates: FaultRates;
  /**
   * Mutable: when set, only requests it accepts may draw a fault (e.g. one kind of S3 call, or
   * only the first of them); the rest pass through.
   */
  only?: (req: IncomingMessage) => boolean;
  /** Requests seen, and how many got each fault. */
  counts: Record<FaultKind | 'requests', number>;
  close(): Promise<void>;
}

export const noFaults = (): FaultRates => ({
  error500: 0,
  slowDown503: 0,
  resetRequest: 0,
  resetResponse: 0,
  slow: 0,
  truncate: 0,
});

function s3Error(code: string, message: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<RequestId>${randomBytes(8).toString('hex')}</RequestId></Error>`
  );
}

function reset(socket: Socket | null): void {
  if (socket && !socket.destroyed) socket.resetAndDestroy();
}

/**
 * Starts a fault-injecting proxy to `target` (e.g. the in-process S3 server of
 * `s3-server.ts`) on a random loopback port. Each request draws at most one fault.
 */
export async function startFaultProxy(
  target: string,
  options: { rates?: Partial<FaultRates>; slowMs?: number } = {},
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rates: FaultRates = { ...noFaults(), ...options.rates };
  const slowMs = options.slowMs ?? 1500;
  const counts = Object.fromEntries(
    [...KINDS, 'requests'].map((k) => [k, 0]),
  ) as FaultProxy['counts'];

  const draw = (): FaultKind | undefined => {
    let r = Math.random();
    for (const kind of KINDS) {
      r -= rates[kind];
      if (r < 0) return kind;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, fault: FaultKind | undefined) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        const respond = () => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          if (fault !== 'resetResponse' && fault !== 'truncate') {
            up.pipe(res);
            return;
          }
          const length = Number(up.headers['content-length'] ?? 0);
          const cut = Math.floor(Math.random() * length);
          let sent = 0;
          const cutNow = () => {
            up.destroy();
            if (fault === 'resetResponse') reset(res.socket);
            else res.socket?.end();
          };
          if (cut === 0) {
            res.flushHeaders();
            setImmediate(cutNow);
            return;
          }
          up.on('data', (chunk: Buffer) => {
            if (sent >= cut) return;
            const part = chunk.subarray(0, cut - sent);
            sent += part.length;
            res.write(part);
            if (sent >= cut) cutNow();
          });
          up.on('end', () => res.end());
        };
        if (fault === 'slow') setTimeout(respond, Math.random() * slowMs);
        else respond();
      },
    );
    out.on('error', () => reset(res.socket));
    req.on('error', () => out.destroy());
    req.pipe(out);
  };

  const proxy: FaultProxy = {
    endpoint: '',
    rates,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const server = createServer((req, res) => {
    counts.requests++;
    const fault = !proxy.only || proxy.only(req) ? draw() : undefined;
    if (fault) counts[fault]++;
    switch (fault) {
      case 'error500':
      case 'slowDown503': {
        const xml =
          fault === 'error500'
            ? s3Error('InternalError', 'We encountered an internal error. Please try again.')
            : s3Error('SlowDown', 'Please reduce your request rate.');
        req.resume();
        req.on('end', () => {
          res.writeHead(fault === 'error500' ? 500 : 503, {
            'Content-Type': 'application/xml',
            'Content-Length': Buffer.byteLength(xml),
          });
          res.end(xml);
        });
        return;
      }
      case 'resetRequest': {
        const length = Number(req.headers['content-length'] ?? 0);
        const cut = Math.floor(Math.random() * length);
        let seen = 0;
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen >= cut) reset(req.socket);
        });
        req.on('end', () => reset(req.socket));
        return;
      }
      default:
        forward(req, res, fault);
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  proxy.endpoint = `http://127.0.0.1:${port}`;
  return proxy;
}
