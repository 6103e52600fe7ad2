import { RawClient } from '@epoch/test-support/oci-client';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Property-based hostile input over every route family: random names, references, upload ids,
 * query strings, headers (Range, Content-Range, Content-Type, Accept, Authorization) and bodies,
 * path traversal and key-injection attempts included. Whatever comes in: never a 5xx, every error
 * is well-formed JSON of the route's kind, and a refused request stores nothing.
 */

const NASTY = [
  '..',
  '%2e%2e',
  '%2F',
  '_digests',
  '_uploads',
  '_layers',
  'a/../b',
  'a//b',
  '%00',
  '\\\\',
  'A',
  'é',
  '🐳',
  'x'.repeat(300),
  '-a',
  'a-',
  'a__b',
  'sha256:',
  'sha256:zz',
  `sha256:${'a'.repeat(64)}`,
  `sha512:${'b'.repeat(128)}`,
  'latest',
  'v1',
  '.',
  '~',
];

const segment = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/),
  fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
);
const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
const reference = fc.oneof(segment, fc.constant(`sha256:${'0'.repeat(64)}`));

const path = fc.oneof(
  fc.constant('/v2/'),
  fc.tuple(fc.constantFrom('n', 'last', 'x'), segment).map(([k, v]) => `/v2/_catalog?${k}=${v}`),
  name.map((n) => `/v2/${n}/tags/list`),
  fc.tuple(name, reference).map(([n, r]) => `/v2/${n}/manifests/${r}`),
  fc.tuple(name, reference).map(([n, r]) => `/v2/${n}/blobs/${r}`),
  fc
    .tuple(
      name,
      fc.constantFrom(
        '',
        '?digest=sha256:zz',
        `?mount=sha256:${'1'.repeat(64)}&from=..`,
        '?digest=',
      ),
    )
    .map(([n, q]) => `/v2/${n}/blobs/uploads/${q}`),
  fc.tuple(name, segment).map(([n, u]) => `/v2/${n}/blobs/uploads/${u}`),
  fc
    .tuple(name, reference, fc.constantFrom('', '?artifactType=x', '?artifactType='))
    .map(([n, r, q]) => `/v2/${n}/referrers/${r}${q}`),
  fc
    .tuple(fc.constantFrom('search', 'sort', 'limit', 'cursor'), segment)
    .map(([k, v]) => `/api/repositories?${k}=${v}`),
  name.map((n) => `/api/repositories/${n}`),
  fc.tuple(name, segment).map(([n, t]) => `/api/repositories/${n}/tags/${t}`),
  fc.tuple(fc.constantFrom('limit', 'cursor'), segment).map(([k, v]) => `/api/events?${k}=${v}`),
  segment.map((id) => `/api/tokens/${id}`),
  fc.constantFrom('/api/tokens', '/api/gc', '/api/retention', '/api/stats', '/api/catalog/sync'),
  fc.tuple(name, reference).map(([n, r]) => `/dl/${n}:${r}`),
  name.map((n) => `/dl/${n}`),
  fc.constantFrom(
    '/auth/me',
    '/auth/token',
    '/v2/token?scope=repository:..:pull',
    '/v2/token?scope=x',
  ),
);

const headerValue = fc.oneof(
  fc.constantFrom(
    'bytes=0-',
    'bytes=-1',
    'bytes=5-2',
    'bytes=0-0,2-3',
    'bytes=99999999999-',
    'garbage',
    '',
  ),
  fc.constantFrom('0-3', '4-2', '0-', '-', 'x-y', '0-99999999999999999999'),
  fc.constantFrom(
    'application/json',
    'application/vnd.oci.image.manifest.v1+json',
    'text/html',
    '*/*',
  ),
  fc.stringMatching(/^[ -~]{0,40}$/),
);
const headers = fc.record(
  {
    range: headerValue,
    'content-range': headerValue,
    'content-type': headerValue,
    accept: headerValue,
    'x-csrf-token': headerValue,
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.constant(''),
  fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
  fc.json().map((j) => Buffer.from(j)),
  fc.constantFrom(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}',
    '{"name":"<script>alert(1)</script>","scopes":["admin"],"repoPattern":"../*"}',
    '{"policies":[{"repositoryPattern":"**","keepLast":-1}]}',
    '{"token":"x"}',
  ),
);
const method = fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS');

describe('hostile input on every route', () => {
  let t: TestServer;
  let admin: RawClient;
  let anonymous: RawClient;
  beforeAll(async () => {
    // Errors are logged, so a 500 found here comes with its stack.
    t = await startTestServer('filesystem', {
      EPOCH_GC_DELAY: '1h',
      EPOCH_LOG_LEVEL: process.env.EPOCH_FUZZ_DEBUG ? 'error' : 'silent',
    });
    admin = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
    anonymous = new RawClient(t.url);
    await admin.pushImage('good/app', 'v1');
    await t.server.flushCatalog();
  });
  afterAll(async () => {
    await t.stop();
  });

  it('never answers 5xx, always well-formed JSON errors, and stores nothing when it refuses', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(method, path, headers, body, fc.boolean(), async (m, p, h, b, asAdmin) => {
        const client = asAdmin ? admin : anonymous;
        const before = await t.keys();
        const init: RequestInit = { method: m, headers: h as Record<string, string> };
        if (b !== undefined && m !== 'GET' && m !== 'HEAD') init.body = b;
        let res: Response;
        try {
          res = await client.fetch(p, init);
        } catch (err) {
          if (process.env.EPOCH_FUZZ_DEBUG) console.log('fetch threw', m, p, err);
          // fetch itself refused to send (an invalid header value): nothing reached the server.
          return;
        }
        const text = m === 'HEAD' ? '' : await res.text();
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        expect(res.status, `${m} ${p} → ${res.status} ${text.slice(0, 200)}`).toBeLessThan(500);
        if (res.status >= 400 && m !== 'HEAD') {
          expect(res.headers.get('content-type') ?? '', `${m} ${p}`).toMatch(/^application\/json/);
          const json = JSON.parse(text) as Record<string, unknown>;
          const v2 = p.startsWith('/v2/');
          if (v2) expect(Array.isArray(json.errors), `${m} ${p}: ${text}`).toBe(true);
          else
            expect(
              typeof json.error === 'string' || Array.isArray(json.errors),
              `${m} ${p}: ${text}`,
            ).toBe(true);
          await t.server.flushCatalog();
          const after = await t.keys();
          // A refused request may only have touched an existing upload session's own record.
          const changed = after
            .filter((k) => !before.includes(k))
            .filter((k) => !k.startsWith('_uploads/'));
          expect(changed, `${m} ${p} stored something`).toEqual([]);
        }
      }),
      {
        numRuns: Number(process.env.EPOCH_FUZZ_RUNS ?? 400),
        seed: process.env.EPOCH_FUZZ_SEED ? Number(process.env.EPOCH_FUZZ_SEED) : undefined,
      },
    );
    // The property is only worth something if most cases reach the server, with varied answers.
    console.log('fuzz: statuses seen', Object.fromEntries(seen));
    const reached = [...seen.values()].reduce((a, b) => a + b, 0);
    expect(reached).toBeGreaterThan(Number(process.env.EPOCH_FUZZ_RUNS ?? 400) / 2);
    expect(seen.size).toBeGreaterThanOrEqual(4);
  }, 600_000);
});
