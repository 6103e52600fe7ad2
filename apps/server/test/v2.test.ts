import { randomBytes } from 'node:crypto';
import { digestOf, MediaTypes } from '@epoch/oci';
import { errorCode, json, RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientHeaders, specCases, startTestServer, type TestServer } from './support/server.js';

describe.each(specCases)('OCI distribution API on $backend, $auth', ({ backend, auth }) => {
  let t: TestServer;
  let api: RawClient;

  beforeAll(async () => {
    t = await startTestServer(backend);
    api = new RawClient(t.url, await clientHeaders(t, auth));
  });
  afterAll(async () => {
    await t.stop();
  });

  describe('base', () => {
    it('answers GET and HEAD /v2/ with the API version header', async () => {
      for (const method of ['GET', 'HEAD']) {
        const res = await api.fetch('/v2/', { method });
        expect(res.status).toBe(200);
        expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      }
      expect(await json(await api.fetch('/v2/'))).toEqual({});
    });

    it('answers unknown routes and methods with OCI JSON errors', async () => {
      const missing = await api.fetch('/v2/app/nothing-here');
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toMatch(/json/);
      expect(await errorCode(missing)).toBe('NOT_FOUND');
      const method = await api.fetch('/v2/app/tags/list', { method: 'POST' });
      expect(method.status).toBe(405);
      expect(await errorCode(method)).toBe('UNSUPPORTED');
      // Other server paths answer in their area's format (`/auth/` is the control API's);
      // paths outside the server's prefixes belong to the dashboard (web-static.test.ts).
      const outside = await api.fetch('/auth/nope');
      expect(outside.status).toBe(404);
      expect(await outside.json()).toMatchObject({ code: 'NOT_FOUND' });
    });

    it('lets a local client in without credentials only until a token exists', async () => {
      // The out-of-the-box mode admits programs on this machine; the first token ends it.
      const res = await fetch(`${t.url}/v2/man/app/blobs/uploads/`, { method: 'POST' });
      if (auth === 'anonymous') {
        expect(res.status).toBe(202);
        return;
      }
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      expect(await errorCode(res)).toBe('UNAUTHORIZED');
    });
  });

  describe('blobs', () => {
    it('uploads monolithically and serves the blob with its digest and length', async () => {
      const content = randomBytes(10_000);
      const digest = digestOf(content);
      const res = await api.fetch(`/v2/blobs/mono/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        body: content,
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('location')).toBe(`/v2/blobs/mono/blobs/${digest}`);
      expect(res.headers.get('docker-content-digest')).toBe(digest);

      const head = await api.fetch(`/v2/blobs/mono/blobs/${digest}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe('10000');
      expect(head.headers.get('docker-content-digest')).toBe(digest);
      const get = await api.fetch(`/v2/blobs/mono/blobs/${digest}`);
      expect(Buffer.from(await get.arrayBuffer()).equals(content)).toBe(true);
    });

    it('serves a blob only to repositories it is linked to', async () => {
      const digest = await api.pushBlob('blobs/owner', 'private bytes');
      const res = await api.fetch(`/v2/blobs/stranger/blobs/${digest}`);
      expect(res.status).toBe(404);
      expect(await errorCode(res)).toBe('BLOB_UNKNOWN');
      const head = await api.fetch(`/v2/blobs/stranger/blobs/${digest}`, { method: 'HEAD' });
      expect(head.status).toBe(404);
    });

    it('serves byte ranges and refuses unsatisfiable ones', async () => {
      const content = Buffer.from('0123456789');
      const digest = await api.pushBlob('blobs/range', content);
      const cases: [string, number, string, string | null][] = [
        ['bytes=0-3', 206, '0123', 'bytes 0-3/10'],
        ['bytes=8-', 206, '89', 'bytes 8-9/10'],
        ['bytes=-3', 206, '789', 'bytes 7-9/10'],
        ['bytes=5-100', 206, '56789', 'bytes 5-9/10'],
        ['bytes=9-9', 206, '9', 'bytes 9-9/10'],
        ['garbage', 200, '0123456789', null],
      ];
      for (const [range, status, body, contentRange] of cases) {
        const res = await api.fetch(`/v2/blobs/range/blobs/${digest}`, {
          headers: { Range: range },
        });
        expect(res.status, range).toBe(status);
        expect(await res.text(), range).toBe(body);
        expect(res.headers.get('content-range'), range).toBe(contentRange);
      }
      const bad = await api.fetch(`/v2/blobs/range/blobs/${digest}`, {
        headers: { Range: 'bytes=10-' },
      });
      expect(bad.status).toBe(416);
      expect(bad.headers.get('content-range')).toBe('bytes */10');
    });

    it('runs a chunked upload with Content-Range checks, status and resume', async () => {
      const content = randomBytes(3 * 1024 * 1024 + 17);
      const digest = digestOf(content);
      const start = await api.fetch('/v2/blobs/chunked/blobs/uploads/', { method: 'POST' });
      expect(start.status).toBe(202);
      expect(start.headers.get('range')).toBe('0-0');
      const uuid = start.headers.get('docker-upload-uuid');
      expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
      const location = start.headers.get('location') ?? '';
      expect(location).toBe(`/v2/blobs/chunked/blobs/uploads/${uuid}`);

      const cut = 1024 * 1024;
      const first = await api.fetch(location, {
        method: 'PATCH',
        headers: { 'Content-Range': `0-${cut - 1}`, 'Content-Type': 'application/octet-stream' },
        body: content.subarray(0, cut),
      });
      expect(first.status).toBe(202);
      expect(first.headers.get('range')).toBe(`0-${cut - 1}`);

      const outOfOrder = await api.fetch(location, {
        method: 'PATCH',
        headers: { 'Content-Range': `${cut + 5}-${cut + 9}` },
        body: content.subarray(cut + 5, cut + 10),
      });
      expect(outOfOrder.status).toBe(416);
      expect(outOfOrder.headers.get('range')).toBe(`0-${cut - 1}`);
      expect(await errorCode(outOfOrder)).toBe('BLOB_UPLOAD_INVALID');

      const status = await api.fetch(location);
      expect(status.status).toBe(204);
      expect(status.headers.get('range')).toBe(`0-${cut - 1}`);

      const second = await api.fetch(location, {
        method: 'PATCH',
        headers: { 'Content-Range': `${cut}-${content.length - 101}` },
        body: content.subarray(cut, content.length - 100),
      });
      expect(second.status).toBe(202);

      const done = await api.fetch(`${location}?digest=${digest}`, {
        method: 'PUT',
        headers: { 'Content-Range': `${content.length - 100}-${content.length - 1}` },
        body: content.subarray(content.length - 100),
      });
      expect(done.status).toBe(201);
      expect(done.headers.get('docker-content-digest')).toBe(digest);
      const get = await api.fetch(`/v2/blobs/chunked/blobs/${digest}`);
      expect(Buffer.from(await get.arrayBuffer()).equals(content)).toBe(true);
      expect((await api.fetch(location)).status).toBe(404);
    });

    it('accepts a streamed PATCH without Content-Range', async () => {
      const content = randomBytes(500_000);
      const start = await api.fetch('/v2/blobs/stream/blobs/uploads/', { method: 'POST' });
      const location = start.headers.get('location') ?? '';
      const patch = await api.fetch(location, { method: 'PATCH', body: content });
      expect(patch.status).toBe(202);
      expect(patch.headers.get('range')).toBe(`0-${content.length - 1}`);
      const done = await api.fetch(`${location}?digest=${digestOf(content)}`, { method: 'PUT' });
      expect(done.status).toBe(201);
    });

    it('cancels an upload', async () => {
      const start = await api.fetch('/v2/blobs/cancel/blobs/uploads/', { method: 'POST' });
      const location = start.headers.get('location') ?? '';
      expect((await api.fetch(location, { method: 'DELETE' })).status).toBe(204);
      const after = await api.fetch(location);
      expect(after.status).toBe(404);
      expect(await errorCode(after)).toBe('BLOB_UPLOAD_UNKNOWN');
    });

    it('mounts a blob from a repository that has it, and falls back to an upload otherwise', async () => {
      const digest = await api.pushBlob('blobs/source', 'mount me');
      const mounted = await api.fetch(
        `/v2/blobs/target/blobs/uploads/?mount=${digest}&from=blobs/source`,
        { method: 'POST' },
      );
      expect(mounted.status).toBe(201);
      expect(mounted.headers.get('location')).toBe(`/v2/blobs/target/blobs/${digest}`);
      expect((await api.fetch(`/v2/blobs/target/blobs/${digest}`)).status).toBe(200);

      const fallback = await api.fetch(
        `/v2/blobs/other/blobs/uploads/?mount=${digest}&from=blobs/nowhere`,
        { method: 'POST' },
      );
      expect(fallback.status).toBe(202);
      expect(fallback.headers.get('docker-upload-uuid')).toBeTruthy();
      expect((await api.fetch(`/v2/blobs/other/blobs/${digest}`)).status).toBe(404);
    });

    it('unlinks a blob on DELETE', async () => {
      const digest = await api.pushBlob('blobs/del', 'delete me');
      expect((await api.fetch(`/v2/blobs/del/blobs/${digest}`, { method: 'DELETE' })).status).toBe(
        202,
      );
      expect((await api.fetch(`/v2/blobs/del/blobs/${digest}`)).status).toBe(404);
      expect((await api.fetch(`/v2/blobs/del/blobs/${digest}`, { method: 'DELETE' })).status).toBe(
        404,
      );
    });

    it("keeps upstream epoch's PUT /v2/<name>/blobs/<digest>", async () => {
      const content = 'legacy client';
      const digest = digestOf(content);
      const res = await api.fetch(`/v2/blobs/legacy/blobs/${digest}`, {
        method: 'PUT',
        body: content,
      });
      expect(res.status).toBe(201);
      expect(await (await api.fetch(`/v2/blobs/legacy/blobs/${digest}`)).text()).toBe(content);
    });
  });

  describe('manifests', () => {
    it('stores by tag and serves by tag and digest with the right headers', async () => {
      const { digest, bytes } = await api.pushImage('man/app', 'v1');
      for (const ref of ['v1', digest]) {
        const res = await api.fetch(`/v2/man/app/manifests/${ref}`, {
          headers: { Accept: `${MediaTypes.ociManifest}, ${MediaTypes.dockerManifest}` },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe(MediaTypes.ociManifest);
        expect(res.headers.get('docker-content-digest')).toBe(digest);
        expect(await res.text()).toBe(bytes);
        const head = await api.fetch(`/v2/man/app/manifests/${ref}`, { method: 'HEAD' });
        expect(head.status).toBe(200);
        expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(bytes)));
        expect(head.headers.get('docker-content-digest')).toBe(digest);
      }
    });

    it('answers 404 MANIFEST_UNKNOWN when the stored type is not acceptable', async () => {
      await api.pushImage('man/accept', 'v1');
      const res = await api.fetch('/v2/man/accept/manifests/v1', {
        headers: { Accept: MediaTypes.dockerManifest },
      });
      expect(res.status).toBe(404);
      expect(await errorCode(res)).toBe('MANIFEST_UNKNOWN');
      const wildcard = await api.fetch('/v2/man/accept/manifests/v1', {
        headers: { Accept: '*/*' },
      });
      expect(wildcard.status).toBe(200);
    });

    it('answers unknown manifests with 404 MANIFEST_UNKNOWN', async () => {
      for (const ref of ['nope', digestOf('nope')]) {
        const res = await api.fetch(`/v2/man/app/manifests/${ref}`);
        expect(res.status).toBe(404);
        expect(await errorCode(res)).toBe('MANIFEST_UNKNOWN');
      }
    });

    it('answers a read or delete of a reference that cannot exist with 404, a PUT with 400', async () => {
      // The distribution spec's conformance suite reads `.INVALID_MANIFEST_NAME` and expects 404.
      for (const ref of ['.INVALID_MANIFEST_NAME', `sha256:${'z'.repeat(64)}`]) {
        for (const method of ['GET', 'HEAD', 'DELETE']) {
          const res = await api.fetch(`/v2/man/app/manifests/${ref}`, { method });
          expect(res.status, `${method} ${ref}`).toBe(404);
          if (method !== 'HEAD') expect(await errorCode(res)).toBe('MANIFEST_UNKNOWN');
        }
      }
      const config = await api.pushBlob('man/app', '{}');
      const put = await api.fetch('/v2/man/app/manifests/.INVALID_MANIFEST_NAME', {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociManifest },
        body: JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.ociManifest,
          config: { mediaType: MediaTypes.ociConfig, digest: config, size: 2 },
          layers: [],
        }),
      });
      expect(put.status).toBe(400);
      expect(await errorCode(put)).toBe('TAG_INVALID');
    });

    it('pushes by digest with several ?tag= parameters', async () => {
      const config = await api.pushBlob('man/multi', '{}');
      const bytes = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: config, size: 2 },
        layers: [],
      });
      const digest = digestOf(bytes);
      const res = await api.fetch(`/v2/man/multi/manifests/${digest}?tag=a&tag=b`, {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociManifest },
        body: bytes,
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('location')).toBe(`/v2/man/multi/manifests/${digest}`);
      const tags = await json(await api.fetch('/v2/man/multi/tags/list'));
      expect(tags).toEqual({ name: 'man/multi', tags: ['a', 'b'] });
    });

    it('pushes an index whose children are present, and refuses one whose are not', async () => {
      const child = await api.pushImage('man/index', 'child');
      const index = (digests: string[]) =>
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.ociIndex,
          manifests: digests.map((d) => ({
            mediaType: MediaTypes.ociManifest,
            digest: d,
            size: 100,
            platform: { os: 'linux', architecture: 'amd64' },
          })),
        });
      const ok = await api.fetch('/v2/man/index/manifests/multi', {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociIndex },
        body: index([child.digest]),
      });
      expect(ok.status).toBe(201);
      const get = await api.fetch('/v2/man/index/manifests/multi');
      expect(get.headers.get('content-type')).toBe(MediaTypes.ociIndex);
      const missing = await api.fetch('/v2/man/index/manifests/broken', {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociIndex },
        body: index([digestOf('absent')]),
      });
      expect(missing.status).toBe(400);
      expect(await errorCode(missing)).toBe('MANIFEST_BLOB_UNKNOWN');
    });

    it('deletes by tag and by digest', async () => {
      const { digest } = await api.pushImage('man/del', 'one');
      await api.pushImage('man/del', 'two');
      expect((await api.fetch('/v2/man/del/manifests/one', { method: 'DELETE' })).status).toBe(202);
      expect((await api.fetch('/v2/man/del/manifests/one')).status).toBe(404);
      const again = await api.fetch('/v2/man/del/manifests/one', { method: 'DELETE' });
      expect(again.status).toBe(404);
      expect(await errorCode(again)).toBe('MANIFEST_UNKNOWN');
      expect(
        (await api.fetch(`/v2/man/del/manifests/${digest}`, { method: 'DELETE' })).status,
      ).toBe(202);
      expect((await api.fetch(`/v2/man/del/manifests/${digest}`)).status).toBe(404);
    });
  });

  describe('listings', () => {
    it('lists tags sorted, with n/last pagination and Link headers', async () => {
      const tags = ['v2', 'v10', 'latest', 'a', 'B'];
      for (const tag of tags) await api.pushImage('list/tags', tag);
      const all = await json(await api.fetch('/v2/list/tags/tags/list'));
      expect(all.tags).toEqual([...tags].sort());
      const first = await api.fetch('/v2/list/tags/tags/list?n=2');
      expect((await json(first)).tags).toEqual(['B', 'a']);
      expect(first.headers.get('link')).toBe('</v2/list/tags/tags/list?n=2&last=a>; rel="next"');
      const second = await api.fetch('/v2/list/tags/tags/list?n=2&last=a');
      expect((await json(second)).tags).toEqual(['latest', 'v10']);
      const last = await api.fetch('/v2/list/tags/tags/list?n=2&last=v10');
      expect((await json(last)).tags).toEqual(['v2']);
      expect(last.headers.get('link')).toBeNull();
      const none = await api.fetch('/v2/list/tags/tags/list?n=0');
      expect((await json(none)).tags).toEqual([]);
    });

    it('answers 404 NAME_UNKNOWN for tags of an unknown repository', async () => {
      const res = await api.fetch('/v2/list/never/tags/list');
      expect(res.status).toBe(404);
      expect(await errorCode(res)).toBe('NAME_UNKNOWN');
    });

    it('lists the catalog with pagination and a server-side cap on n', async () => {
      await api.pushImage('list/cat-a', 'x');
      await api.pushImage('list/cat-b', 'x');
      const all = await json(await api.fetch('/v2/_catalog'));
      expect(all.repositories).toEqual([...all.repositories].sort());
      expect(all.repositories).toEqual(expect.arrayContaining(['list/cat-a', 'list/cat-b']));
      const page = await api.fetch('/v2/_catalog?n=1');
      expect((await json(page)).repositories).toHaveLength(1);
      expect(page.headers.get('link')).toMatch(/^<\/v2\/_catalog\?n=1&last=[^>]+>; rel="next"$/);
      const huge = await api.fetch('/v2/_catalog?n=999999999');
      expect(huge.status).toBe(200);
      const bad = await api.fetch('/v2/_catalog?n=-1');
      expect(bad.status).toBe(400);
    });
  });

  describe('referrers', () => {
    it('indexes manifests pushed with a subject and filters by artifactType', async () => {
      const subject = await api.pushImage('ref/app', 'v1');
      const descriptor = {
        mediaType: MediaTypes.ociManifest,
        digest: subject.digest,
        size: Buffer.byteLength(subject.bytes),
      };
      const sigRes = await api.pushImage('ref/app', 'sig', {
        layers: ['signature'],
        extra: {
          artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          subject: descriptor,
        },
      });
      const sbom = await api.pushImage('ref/app', 'sbom', {
        layers: ['sbom'],
        extra: {
          artifactType: 'application/spdx+json',
          subject: descriptor,
          annotations: { k: 'v' },
        },
      });
      const putRes = await api.fetch(`/v2/ref/app/manifests/${sigRes.digest}`, { method: 'HEAD' });
      expect(putRes.status).toBe(200);

      const res = await api.fetch(`/v2/ref/app/referrers/${subject.digest}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(MediaTypes.ociIndex);
      const index = await json(res);
      expect(index.schemaVersion).toBe(2);
      expect(index.manifests.map((m: { digest: string }) => m.digest).sort()).toEqual(
        [sigRes.digest, sbom.digest].sort(),
      );
      const sbomEntry = index.manifests.find((m: { digest: string }) => m.digest === sbom.digest);
      expect(sbomEntry).toMatchObject({
        artifactType: 'application/spdx+json',
        annotations: { k: 'v' },
      });

      const filtered = await api.fetch(
        `/v2/ref/app/referrers/${subject.digest}?artifactType=application/spdx%2Bjson`,
      );
      expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
      expect((await json(filtered)).manifests.map((m: { digest: string }) => m.digest)).toEqual([
        sbom.digest,
      ]);

      const empty = await api.fetch(`/v2/ref/app/referrers/${digestOf('no subject')}`);
      expect(empty.status).toBe(200);
      expect((await json(empty)).manifests).toEqual([]);
    });

    it('returns OCI-Subject on a manifest PUT with a subject, even a missing one', async () => {
      const config = await api.pushBlob('ref/sub', '{}');
      const missingSubject = digestOf('not pushed');
      const res = await api.fetch('/v2/ref/sub/manifests/att', {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociManifest },
        body: JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.ociManifest,
          config: { mediaType: MediaTypes.ociEmpty, digest: config, size: 2 },
          layers: [],
          subject: { mediaType: MediaTypes.ociManifest, digest: missingSubject, size: 10 },
        }),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('oci-subject')).toBe(missingSubject);
    });
  });
});
