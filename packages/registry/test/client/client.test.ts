import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { DigestMismatchError, digestOf, MediaTypes } from '@epoch/oci';
import { type DockerRegistry, startDockerRegistry } from '@epoch/test-support/docker-registry';
import { startProxy } from '@epoch/test-support/http-proxy';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RegistryClient,
  RegistryDeniedError,
  RegistryHttpError,
  RegistryNetworkError,
  RegistryNotFoundError,
  RegistryProtocolError,
  RegistryUnauthorizedError,
} from '../../src/index.js';

/** Pushes a tiny image (config + one layer) and returns its manifest bytes. */
async function pushImage(client: RegistryClient, name: string, tag: string, layer: Buffer) {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  await client.pushBlob(name, config);
  await client.pushBlob(name, layer, { digest: digestOf(layer) });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: MediaTypes.ociLayer, digest: digestOf(layer), size: layer.length }],
    }),
  );
  const digest = await client.putManifest(name, tag, manifest, MediaTypes.ociManifest);
  return { manifest, digest };
}

describe('RegistryClient against docker-registry', () => {
  let registry: DockerRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    registry = await startDockerRegistry();
    client = new RegistryClient({ url: registry.url, chunkSize: 64 * 1024 });
  });
  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('pings', async () => {
    await client.ping();
  });

  it('finds no Epoch control API there: repository settings are a not-found', async () => {
    await expect(client.repositorySettings('team/vm')).rejects.toBeInstanceOf(
      RegistryNotFoundError,
    );
  });

  it('uploads a one-shot stream in chunks, hashing on the way, and reads it back verified', async () => {
    const data = randomBytes(300 * 1024 + 17);
    const progress: number[] = [];
    const result = await client.pushBlob(
      'chunks/a',
      Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
      {
        onProgress: (n) => progress.push(n),
      },
    );
    expect(result).toEqual({ digest: digestOf(data), size: data.length, how: 'uploaded' });
    expect(progress.length).toBeGreaterThanOrEqual(4);
    expect(await client.hasBlob('chunks/a', digestOf(data))).toBe(true);
    const back = await buffer(client.getBlob('chunks/a', digestOf(data), { size: data.length }));
    expect(back.equals(data)).toBe(true);
    const range = await buffer(
      client.getBlob('chunks/a', digestOf(data), { range: { start: 10, end: 19 } }),
    );
    expect(range.equals(data.subarray(10, 20))).toBe(true);
  });

  it('skips a blob the repository has, and mounts one from another repository', async () => {
    const data = randomBytes(5000);
    const digest = digestOf(data);
    expect((await client.pushBlob('mount/src', data, { digest })).how).toBe('uploaded');
    expect((await client.pushBlob('mount/src', data, { digest })).how).toBe('exists');
    const mounted = await client.pushBlob('mount/dst', data, { digest, mountFrom: 'mount/src' });
    expect(mounted.how).toBe('mounted');
    expect(await client.hasBlob('mount/dst', digest)).toBe(true);
  });

  it('puts, heads, gets and deletes manifests; not-found is its own error', async () => {
    const { manifest, digest } = await pushImage(client, 'images/one', 'v1', randomBytes(100));
    const head = await client.headManifest('images/one', 'v1');
    expect(head.digest).toBe(digest);
    const got = await client.getManifest('images/one', digest);
    expect(got.bytes.equals(manifest)).toBe(true);
    expect(got.mediaType).toBe(MediaTypes.ociManifest);
    await expect(client.getManifest('images/one', 'nope')).rejects.toBeInstanceOf(
      RegistryNotFoundError,
    );
    await expect(client.headBlob('images/one', digestOf('x'))).rejects.toBeInstanceOf(
      RegistryNotFoundError,
    );
    await client.deleteManifest('images/one', digest);
    await expect(client.headManifest('images/one', digest)).rejects.toBeInstanceOf(
      RegistryNotFoundError,
    );
  });

  it('lists tags, and the catalog across Link pages', async () => {
    const paged = new RegistryClient({ url: registry.url, pageSize: 1 });
    for (const tag of ['a', 'b', 'c']) await pushImage(client, 'paged/repo', tag, randomBytes(10));
    await pushImage(client, 'paged/other', 'x', randomBytes(10));
    // distribution paginates the catalog (not tags): n=1 yields one repository and a Link.
    const res = await fetch(`${registry.url}/v2/_catalog?n=1`);
    expect(res.headers.get('link')).toContain('rel="next"');
    await res.arrayBuffer();
    expect((await paged.listTags('paged/repo')).sort()).toEqual(['a', 'b', 'c']);
    const catalog = await paged.catalog();
    expect(catalog).toContain('paged/repo');
    expect(catalog).toContain('paged/other');
    expect(new Set(catalog).size).toBe(catalog.length);
    await expect(paged.listTags('paged/none')).rejects.toBeInstanceOf(RegistryNotFoundError);
    await paged.close();
  });
});

describe('RegistryClient authentication', () => {
  it('uses Basic credentials on a htpasswd registry and fails typed without them', async () => {
    const hash = bcrypt.hashSync('s3cret', 5);
    const registry = await startDockerRegistry({ htpasswd: `alice:${hash}\n` });
    try {
      const good = new RegistryClient({
        url: registry.url,
        credentials: { username: 'alice', password: 's3cret' },
      });
      await good.ping();
      const { digest } = await pushImage(good, 'basic/repo', 'v1', randomBytes(64));
      expect((await good.headManifest('basic/repo', 'v1')).digest).toBe(digest);
      const anonymous = new RegistryClient({ url: registry.url, retries: 0 });
      await expect(anonymous.headManifest('basic/repo', 'v1')).rejects.toBeInstanceOf(
        RegistryUnauthorizedError,
      );
      const wrong = new RegistryClient({
        url: registry.url,
        credentials: { username: 'alice', password: 'nope' },
      });
      await expect(wrong.ping()).rejects.toBeInstanceOf(RegistryUnauthorizedError);
      await Promise.all([good.close(), anonymous.close(), wrong.close()]);
    } finally {
      await registry.stop();
    }
  });

  describe('the token flow', () => {
    let registry: DockerRegistry;
    let front: Server;
    let frontUrl: string;
    const tokenRequests: string[] = [];
    beforeAll(async () => {
      registry = await startDockerRegistry();
      // A token server and a gate in front of docker-registry: /token answers Basic
      // `_token:secret` with a bearer naming the scopes; /v2/ demands that bearer.
      front = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname === '/token') {
          tokenRequests.push(url.searchParams.getAll('scope').join(' '));
          const basic = Buffer.from('_token:secret').toString('base64');
          if (req.headers.authorization !== `Basic ${basic}`) {
            res.writeHead(401, { 'content-type': 'application/json' });
            res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ token: 'issued-token', expires_in: 300 }));
          return;
        }
        gate(req, res);
      });
      const gate = (req: IncomingMessage, res: ServerResponse) => {
        const ok = ['Bearer issued-token', 'Bearer static-token'].includes(
          req.headers.authorization ?? '',
        );
        if (!ok) {
          req.resume();
          res.writeHead(401, {
            'content-type': 'application/json',
            'www-authenticate': `Bearer realm="${frontUrl}/token",service="test",scope="repository:tok/repo:pull"`,
          });
          res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
          return;
        }
        forward(req, res);
      };
      let forward: (req: IncomingMessage, res: ServerResponse) => void;
      const proxy = await startProxy(registry.url, () => 'pass');
      forward = (req, res) => {
        const target = new URL(req.url ?? '/', proxy.url);
        const out = httpRequest(
          target,
          { method: req.method, headers: { ...req.headers, host: target.host } },
          (up: IncomingMessage) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        req.pipe(out);
      };
      await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
      frontUrl = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
    });
    afterAll(async () => {
      front?.closeAllConnections();
      await new Promise((resolve) => front?.close(resolve));
      await registry?.stop();
    });

    it('answers the Bearer challenge with Basic _token:<token> and caches the bearer per scope', async () => {
      const client = new RegistryClient({ url: frontUrl, credentials: { token: 'secret' } });
      tokenRequests.length = 0;
      const { digest } = await pushImage(client, 'tok/repo', 'v1', randomBytes(2000));
      const got = await client.getManifest('tok/repo', 'v1');
      expect(got.digest).toBe(digest);
      await client.getManifest('tok/repo', 'v1');
      // One token for push,pull and one for pull: not one per request.
      expect(tokenRequests).toEqual([
        'repository:tok/repo:pull,push repository:tok/repo:pull',
        'repository:tok/repo:pull',
      ]);
      await client.close();
    });

    it('sends a plain bearer token without the dance in bearer mode', async () => {
      const client = new RegistryClient({
        url: frontUrl,
        credentials: { token: 'static-token', mode: 'bearer' },
      });
      tokenRequests.length = 0;
      await client.ping();
      expect(tokenRequests).toEqual([]);
      await client.close();
    });

    it('fails typed when the realm refuses the token', async () => {
      const client = new RegistryClient({
        url: frontUrl,
        credentials: { username: 'x', password: 'y' },
      });
      await expect(client.headManifest('tok/repo', 'v1')).rejects.toBeInstanceOf(
        RegistryUnauthorizedError,
      );
      await client.close();
    });
  });
});

describe('RegistryClient over a faulty network', () => {
  let registry: DockerRegistry;
  beforeAll(async () => {
    registry = await startDockerRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('trusts the extra CA of EPOCH_CA_CERT, and only then, on a TLS registry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'epoch-ca-'));
    try {
      const run = (args: string[]) => {
        const r = spawnSync('openssl', args, { cwd: dir });
        if (r.status !== 0) throw new Error(r.stderr.toString());
      };
      run([
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=test CA',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
      ]);
      run([
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=127.0.0.1',
        '-keyout',
        'server.key',
        '-out',
        'server.csr',
      ]);
      await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
      run([
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        'ext.cnf',
        '-out',
        'server.pem',
      ]);
      const tls = await startDockerRegistry({
        tls: { certificate: join(dir, 'server.pem'), key: join(dir, 'server.key') },
      });
      try {
        const untrusted = new RegistryClient({ url: tls.url, retries: 0 });
        await expect(untrusted.ping()).rejects.toBeInstanceOf(RegistryNetworkError);
        await untrusted.close();
        const caCert = await readFile(join(dir, 'ca.pem'));
        const trusted = new RegistryClient({ url: tls.url, caCert });
        await trusted.ping();
        await trusted.close();
      } finally {
        await tls.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('goes through HTTP_PROXY when it is set', async () => {
    // A forward proxy: CONNECT tunnels, and absolute-form requests passed on.
    const seen: string[] = [];
    const proxy = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const out = httpRequest(req.url ?? '', { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(out);
    });
    proxy.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      seen.push(`CONNECT ${req.url}`);
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const saved = process.env.HTTP_PROXY;
    process.env.HTTP_PROXY = proxyUrl;
    const client = new RegistryClient({ url: registry.url });
    if (saved === undefined) delete process.env.HTTP_PROXY;
    else process.env.HTTP_PROXY = saved;
    try {
      await client.ping();
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((line) => line.includes(registry.host))).toBe(true);
    } finally {
      await client.close();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('completes a chunked upload whose PATCHes fail with a 503 and a dropped connection', async () => {
    let patches = 0;
    const proxy = await startProxy(registry.url, (req, res) => {
      if (req.method === 'PATCH') {
        patches++;
        if (patches === 2) {
          res.writeHead(503).end();
          req.resume();
          return 'handled';
        }
        if (patches === 3) {
          // Read a little of the chunk, then drop the connection.
          req.once('data', () => req.socket.destroy());
          return 'handled';
        }
      }
      return 'pass';
    });
    const client = new RegistryClient({ url: proxy.url, chunkSize: 64 * 1024, backoffMs: 10 });
    try {
      const data = randomBytes(5 * 64 * 1024 + 99);
      const result = await client.pushBlob('faulty/upload', Readable.from([data]));
      expect(result.digest).toBe(digestOf(data));
      expect(patches).toBeGreaterThanOrEqual(7);
      const back = await buffer(
        client.getBlob('faulty/upload', result.digest, { size: data.length }),
      );
      expect(back.equals(data)).toBe(true);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it('retries 5xx, resumes a blob download cut mid-way, and refuses corrupted bytes', async () => {
    const seed = new RegistryClient({ url: registry.url });
    const data = randomBytes(256 * 1024);
    const digest = digestOf(data);
    await seed.pushBlob('faulty/repo', data, { digest });
    let failures = 0;
    let cuts = 0;
    let corrupt = false;
    const proxy = await startProxy(registry.url, (req, res) => {
      if (req.url?.includes('/blobs/sha256') && req.method === 'GET') {
        if (failures < 2) {
          failures++;
          res.writeHead(503).end();
          return 'handled';
        }
        if (corrupt) return { corrupt: true };
        if (cuts < 1 && !req.headers.range) {
          cuts++;
          return { cutAfter: 100_000 };
        }
      }
      return 'pass';
    });
    const client = new RegistryClient({ url: proxy.url, backoffMs: 10 });
    try {
      const back = await buffer(client.getBlob('faulty/repo', digest, { size: data.length }));
      expect(back.equals(data)).toBe(true);
      expect(failures).toBe(2);
      expect(cuts).toBe(1);
      corrupt = true;
      await expect(
        buffer(client.getBlob('faulty/repo', digest, { size: data.length })),
      ).rejects.toBeInstanceOf(DigestMismatchError);
    } finally {
      await client.close();
      await seed.close();
      await proxy.close();
    }
  });
});

describe('RegistryClient and Epoch’s control API', () => {
  let server: Server;
  let url: string;
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] =
    [];
  /** What the fake answers next, by `METHOD path`. */
  let answers: Record<string, { status: number; body: string }> = {};
  beforeAll(async () => {
    server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
      const body = (await buffer(req)).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const answer = answers[`${req.method} ${req.url}`] ?? { status: 404, body: '404 page' };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const settings = { name: 'team/vm', defaultFormat: 'incremental', writable: true };

  it('reads and sets settings with the token up front, the name’s slashes kept', async () => {
    seen.length = 0;
    answers = {
      'GET /api/repository-settings/team/vm': { status: 200, body: JSON.stringify(settings) },
      'PUT /api/repository-settings/team/vm': { status: 200, body: JSON.stringify(settings) },
    };
    const client = new RegistryClient({ url, credentials: { token: 'secret-token' } });
    expect(await client.repositorySettings('team/vm')).toEqual(settings);
    expect(await client.setRepositorySettings('team/vm', { defaultFormat: 'incremental' })).toEqual(
      settings,
    );
    expect(seen.map((s) => [s.method, s.url, s.headers.authorization])).toEqual([
      ['GET', '/api/repository-settings/team/vm', 'Bearer secret-token'],
      ['PUT', '/api/repository-settings/team/vm', 'Bearer secret-token'],
    ]);
    expect(seen[1]?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(seen[1]?.body ?? '')).toEqual({ defaultFormat: 'incremental' });
    await client.close();
  });

  it('sends the local CSRF value /auth/me gives when it has no credentials', async () => {
    seen.length = 0;
    answers = {
      'GET /auth/me': { status: 200, body: JSON.stringify({ csrfToken: 'local-csrf' }) },
      'PUT /api/repository-settings/vm': { status: 200, body: JSON.stringify(settings) },
    };
    const client = new RegistryClient({ url });
    await client.setRepositorySettings('vm', { defaultFormat: 'full' });
    expect(seen.map((s) => [s.method, s.url])).toEqual([
      ['GET', '/auth/me'],
      ['PUT', '/api/repository-settings/vm'],
    ]);
    expect(seen[1]?.headers['x-csrf-token']).toBe('local-csrf');
    expect(seen[1]?.headers.authorization).toBeUndefined();
    await client.close();
  });

  it('turns the control API’s errors into typed errors with their code and message', async () => {
    const error = (status: number, code: string) => ({
      status,
      body: JSON.stringify({ error: `the ${code} message`, code }),
    });
    answers = {
      'GET /api/repository-settings/a': error(401, 'UNAUTHORIZED'),
      'GET /api/repository-settings/b': error(403, 'DENIED'),
      'PUT /api/repository-settings/c': error(400, 'BAD_SETTINGS'),
      'GET /api/repository-settings/d': { status: 200, body: '<html>a dashboard</html>' },
    };
    const client = new RegistryClient({ url, credentials: { token: 't' }, retries: 0 });
    await expect(client.repositorySettings('a')).rejects.toBeInstanceOf(RegistryUnauthorizedError);
    await expect(client.repositorySettings('b')).rejects.toBeInstanceOf(RegistryDeniedError);
    const bad = await client
      .setRepositorySettings('c', { defaultFormat: 'zstd' })
      .catch((err: unknown) => err);
    expect(bad).toBeInstanceOf(RegistryHttpError);
    expect((bad as RegistryHttpError).code).toBe('BAD_SETTINGS');
    expect((bad as Error).message).toContain('the BAD_SETTINGS message');
    await expect(client.repositorySettings('d')).rejects.toBeInstanceOf(RegistryProtocolError);
    await expect(client.repositorySettings('e')).rejects.toBeInstanceOf(RegistryNotFoundError);
    await client.close();
  });
});
