import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';

/** What a test proxy does with one request: pass it on (optionally altered) or answer itself. */
export type ProxyHook = (
  req: IncomingMessage,
  res: ServerResponse,
) => 'pass' | { cutAfter?: number; corrupt?: boolean } | 'handled';

/** A real HTTP proxy in front of a registry, whose hook can refuse, cut or corrupt responses. */
export async function startProxy(
  target: string,
  hook: ProxyHook,
): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const decision = hook(req, res);
    if (decision === 'handled') return;
    const options = decision === 'pass' ? {} : decision;
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (up) => {
        const headers = { ...up.headers };
        const location = headers.location;
        if (location?.startsWith(upstream.origin)) {
          headers.location = location.replace(upstream.origin, '');
        }
        res.writeHead(up.statusCode ?? 502, headers);
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          let data = chunk;
          if (options.corrupt && sent === 0 && data.length > 0) {
            data = Buffer.from(data);
            data[0] = (data[0] ?? 0) ^ 0xff;
          }
          if (options.cutAfter !== undefined && sent + data.length > options.cutAfter) {
            res.write(data.subarray(0, options.cutAfter - sent));
            up.destroy();
            res.socket?.destroy();
            return;
          }
          sent += data.length;
          res.write(data);
        });
        up.on('end', () => res.end());
      },
    );
    req.pipe(out);
    out.on('error', () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
