import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  errorFormat,
  isServerPath,
  type Method,
  matchRoute,
  ROUTES,
  routeTemplate,
} from '../src/routes/table.js';
import { startTestServer, type TestServer } from './support/server.js';

/** A concrete path for a template: sample values in every parameter. */
function pathOf(template: string): string {
  return template
    .replace('<name>', 'table/app')
    .replace('<reference>', 'v1')
    .replace('<uuid>', 'no-such-upload')
    .replace('<digest>', `sha256:${'0'.repeat(64)}`)
    .replace('<tag>', 'v1')
    .replace('<id>', '999999')
    .replace('<target>', 'table/app:v1');
}

const ALL: Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

describe('the route table', () => {
  it('matches each template to itself, first match winning', () => {
    for (const route of ROUTES) {
      expect(routeTemplate(pathOf(route.template))).toBe(route.template);
    }
    // `…/tags/<tag>` wins over `<name>` for names that contain `tags`.
    expect(matchRoute('/api/repositories/a/tags/b/tags/c')?.rawParams).toEqual({
      name: 'a/tags/b',
      tag: 'c',
    });
    expect(matchRoute('/v2/team%2Fapp/manifests/v1')?.rawParams.name).toBe('team%2Fapp');
    expect(routeTemplate('/v2/a/blobs/uploads')).toBe('/v2/<name>/blobs/uploads/');
  });

  it('gives every path outside the routes an error format and tells server paths apart', () => {
    expect(errorFormat('/api/nope')).toBe('api');
    expect(errorFormat('/auth/nope')).toBe('api');
    expect(errorFormat('/v2/nope')).toBe('oci');
    expect(errorFormat('/dl/a')).toBe('api');
    for (const path of ['/v2', '/api/x', '/dl/a', '/login', '/logout', '/readyz', '/metrics']) {
      expect(isServerPath(path)).toBe(true);
    }
    for (const path of ['/', '/repositories/a', '/assets/x.js', '/tokens']) {
      expect(isServerPath(path)).toBe(false);
    }
  });
});

describe('the server answers exactly the table', () => {
  let t: TestServer;
  let admin: string;
  beforeAll(async () => {
    t = await startTestServer('filesystem');
    admin = await t.token(['admin']);
  });
  afterAll(async () => {
    await t.stop();
  });

  it('routes every declared method to a handler, and answers 405 for the others', async () => {
    for (const route of ROUTES) {
      const path = pathOf(route.template);
      for (const method of ALL) {
        const declared =
          (route.methods as readonly Method[]).includes(method) ||
          (method === 'HEAD' && (route.methods as readonly Method[]).includes('GET'));
        // A POST of a GC run would run one; the dry run answers the same route.
        const query = route.template === '/api/gc' && method === 'POST' ? '?dryRun=true' : '';
        const res = await fetch(`${t.url}${path}${query}`, {
          method,
          headers: { Authorization: `Bearer ${admin}` },
          redirect: 'manual',
        });
        await res.arrayBuffer();
        const where = `${method} ${route.template}: ${res.status}`;
        if (declared) {
          expect(res.status, where).not.toBe(405);
          expect(res.status, where).toBeLessThan(500);
        } else {
          expect(res.status, where).toBe(405);
        }
      }
    }
  });

  it('answers a path no route has with a 404 in the area’s error format', async () => {
    const api = await fetch(`${t.url}/api/nope`);
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ code: 'NOT_FOUND' });
    const v2 = await fetch(`${t.url}/v2/a/nope`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(v2.status).toBe(404);
    expect(await v2.json()).toMatchObject({ errors: [{ code: 'NOT_FOUND' }] });
    const auth = await fetch(`${t.url}/auth/nope`, { method: 'POST' });
    expect(auth.status).toBe(404);
    expect(await auth.json()).toMatchObject({ code: 'NOT_FOUND' });
  });
});
