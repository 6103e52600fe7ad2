import { digestOf, MediaTypes } from '@epoch/oci';
import { errorCode, RawClient, verbatimFetch } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientHeaders, specCases, startTestServer, type TestServer } from './support/server.js';

interface BadCase {
  name: string;
  method: string;
  path: string | (() => string);
  headers?: Record<string, string>;
  body?: string;
  status: number;
  code: string;
}

const validManifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: digestOf('{}'), size: 2 },
  layers: [],
});

/**
 * Every case must get exactly its status and OCI error code, and leave storage exactly as it was:
 * names, tags, digests and sizes are checked before anything is written.
 */
describe.each(specCases)('bad input on $backend, $auth', ({ backend, auth }) => {
  let t: TestServer;
  let api: RawClient;
  let uploadPath = '';

  beforeAll(async () => {
    t = await startTestServer(backend);
    api = new RawClient(t.url, await clientHeaders(t, auth));
    await api.pushImage('good/app', 'v1');
    const res = await api.fetch('/v2/good/app/blobs/uploads/', { method: 'POST' });
    uploadPath = res.headers.get('location') ?? '';
    await api.fetch(uploadPath, {
      method: 'PATCH',
      headers: { 'Content-Range': '0-3' },
      body: 'abcd',
    });
  });
  afterAll(async () => {
    await t.stop();
  });

  const cases: BadCase[] = [
    // Names
    {
      name: 'uppercase name',
      method: 'PUT',
      path: '/v2/Bad/manifests/v1',
      body: validManifest,
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'dot-dot name',
      method: 'PUT',
      path: '/v2/a/../b/manifests/v1',
      body: validManifest,
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'encoded traversal',
      method: 'PUT',
      path: '/v2/%2e%2e/x/manifests/v1',
      body: validManifest,
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: '_digests component',
      method: 'PUT',
      path: '/v2/good/_digests/manifests/v1',
      body: validManifest,
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'double slash',
      method: 'POST',
      path: '/v2/a//b/blobs/uploads/',
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'trailing separator',
      method: 'POST',
      path: '/v2/a-/blobs/uploads/',
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'name too long',
      method: 'POST',
      path: `/v2/${'a'.repeat(256)}/blobs/uploads/`,
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'script-like name',
      method: 'POST',
      path: '/v2/%3Cscript%3E/blobs/uploads/',
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'bad percent encoding',
      method: 'GET',
      path: '/v2/a%zz/tags/list',
      status: 400,
      code: 'NAME_INVALID',
    },
    // Tags
    {
      name: 'tag starting with a dot',
      method: 'PUT',
      path: '/v2/good/app/manifests/.hidden',
      body: validManifest,
      status: 400,
      code: 'TAG_INVALID',
    },
    {
      name: 'tag of 129 characters',
      method: 'PUT',
      path: `/v2/good/app/manifests/${'t'.repeat(129)}`,
      body: validManifest,
      status: 400,
      code: 'TAG_INVALID',
    },
    {
      name: 'bad ?tag= parameter',
      method: 'PUT',
      path: `/v2/good/app/manifests/${digestOf(validManifest)}?tag=-x`,
      body: validManifest,
      status: 400,
      code: 'TAG_INVALID',
    },
    // Digests
    {
      name: 'short digest on blob GET',
      method: 'GET',
      path: '/v2/good/app/blobs/sha256:abc',
      status: 400,
      code: 'DIGEST_INVALID',
    },
    {
      name: 'uppercase digest',
      method: 'GET',
      path: `/v2/good/app/blobs/${digestOf('x').toUpperCase().replace('SHA256', 'sha256')}`,
      status: 400,
      code: 'DIGEST_INVALID',
    },
    {
      name: 'unknown algorithm',
      method: 'POST',
      path: '/v2/good/app/blobs/uploads/?digest=md5:d41d8cd98f00b204e9800998ecf8427e',
      body: 'x',
      status: 400,
      code: 'DIGEST_INVALID',
    },
    {
      name: 'digest mismatch on monolithic upload',
      method: 'POST',
      path: `/v2/good/app/blobs/uploads/?digest=${digestOf('expected')}`,
      body: 'actual',
      status: 400,
      code: 'DIGEST_INVALID',
    },
    {
      name: 'digest mismatch on manifest PUT',
      method: 'PUT',
      path: `/v2/good/app/manifests/${digestOf('x')}`,
      body: validManifest,
      headers: { 'Content-Type': MediaTypes.ociManifest },
      status: 400,
      code: 'DIGEST_INVALID',
    },
    {
      name: 'invalid mount digest',
      method: 'POST',
      path: '/v2/good/app/blobs/uploads/?mount=sha256:zz&from=good/app',
      status: 400,
      code: 'DIGEST_INVALID',
    },
    // Manifests
    {
      name: 'malformed JSON manifest',
      method: 'PUT',
      path: '/v2/good/app/manifests/broken',
      body: '{"schemaVersion":2,',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      status: 400,
      code: 'MANIFEST_INVALID',
    },
    {
      name: 'schema 1 manifest',
      method: 'PUT',
      path: '/v2/good/app/manifests/old',
      body: '{"schemaVersion":1}',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      status: 400,
      code: 'MANIFEST_INVALID',
    },
    {
      name: 'index declared as manifest',
      method: 'PUT',
      path: '/v2/good/app/manifests/confused',
      body: JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }),
      headers: { 'Content-Type': MediaTypes.ociManifest },
      status: 400,
      code: 'MANIFEST_INVALID',
    },
    {
      name: 'manifest with a bad layer digest',
      method: 'PUT',
      path: '/v2/good/app/manifests/baddesc',
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: 'sha256:nope', size: 2 },
        layers: [],
      }),
      headers: { 'Content-Type': MediaTypes.ociManifest },
      status: 400,
      code: 'MANIFEST_INVALID',
    },
    {
      name: 'manifest naming absent blobs',
      method: 'PUT',
      path: '/v2/good/app/manifests/absent',
      body: validManifest.replace(digestOf('{}'), digestOf('absent')),
      headers: { 'Content-Type': MediaTypes.ociManifest },
      status: 400,
      code: 'MANIFEST_BLOB_UNKNOWN',
    },
    {
      name: 'oversized manifest',
      method: 'PUT',
      path: '/v2/good/app/manifests/huge',
      body: `{"schemaVersion":2,"x":"${'a'.repeat(4 * 1024 * 1024)}"}`,
      headers: { 'Content-Type': MediaTypes.ociManifest },
      status: 413,
      code: 'SIZE_INVALID',
    },
    // Uploads
    {
      name: 'unknown upload id',
      method: 'PATCH',
      path: `/v2/good/app/blobs/uploads/${crypto.randomUUID()}`,
      body: 'x',
      status: 404,
      code: 'BLOB_UPLOAD_UNKNOWN',
    },
    {
      name: 'traversal upload id',
      method: 'PUT',
      path: `/v2/good/app/blobs/uploads/..%2F..%2Fblobs?digest=${digestOf('x')}`,
      status: 404,
      code: 'BLOB_UPLOAD_UNKNOWN',
    },
    {
      name: 'upload id from another repository',
      method: 'GET',
      path: () => uploadPath.replace('good/app', 'good/other'),
      status: 404,
      code: 'BLOB_UPLOAD_UNKNOWN',
    },
    {
      name: 'out-of-order chunk',
      method: 'PATCH',
      path: () => uploadPath,
      headers: { 'Content-Range': '10-13' },
      body: 'wxyz',
      status: 416,
      code: 'BLOB_UPLOAD_INVALID',
    },
    {
      name: 'malformed Content-Range',
      method: 'PATCH',
      path: () => uploadPath,
      headers: { 'Content-Range': 'bytes=zero-four' },
      body: 'wxyz',
      status: 416,
      code: 'BLOB_UPLOAD_INVALID',
    },
    {
      name: 'Content-Range longer than the body',
      method: 'PATCH',
      path: () => uploadPath,
      headers: { 'Content-Range': '4-100' },
      body: 'wxyz',
      status: 416,
      code: 'BLOB_UPLOAD_INVALID',
    },
    {
      name: 'finish without digest',
      method: 'PUT',
      path: () => uploadPath,
      status: 400,
      code: 'DIGEST_INVALID',
    },
    // Listings
    {
      name: 'negative n',
      method: 'GET',
      path: '/v2/good/app/tags/list?n=-5',
      status: 400,
      code: 'PAGINATION_NUMBER_INVALID',
    },
    {
      name: 'non-numeric n',
      method: 'GET',
      path: '/v2/_catalog?n=lots',
      status: 400,
      code: 'PAGINATION_NUMBER_INVALID',
    },
  ];

  it.each(cases)('$name → $status $code, nothing stored', async (c) => {
    // catalog.json is rewritten in the background after the fixtures' pushes; let that finish.
    await t.server.flushCatalog();
    const before = await t.keys();
    const path = typeof c.path === 'function' ? c.path() : c.path;
    const res = await verbatimFetch(t.url, path, {
      method: c.method,
      headers: { ...api.headers, ...c.headers },
      ...(c.body !== undefined ? { body: c.body } : {}),
    });
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await errorCode(res)).toBe(c.code);
    const after = await t.keys();
    // The only thing a rejected request may touch is its own upload session record's timestamp.
    expect(after).toEqual(before);
  });

  it('keeps the upload usable after the rejected chunks', async () => {
    const status = await api.fetch(uploadPath);
    expect(status.headers.get('range')).toBe('0-3');
  });
});
