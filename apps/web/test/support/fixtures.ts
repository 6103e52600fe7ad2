import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';
import type { Me, Repository, Tag, TagDetail } from '../../src/api/types.js';
import { type Routes, startApiServer } from './api-server.js';

/** Shared data and a per-test API server for the component tests. */

export const HOSTILE = '<img src=x onerror=alert(1)>';
export const CSRF = 'csrf-token-from-me';
export const NOW = new Date().toISOString();
export const DIGEST = `sha256:${'1a'.repeat(32)}`;

/** `sha256:` and 64 hex digits made of `pair` repeated. */
export const digest = (pair: string): `sha256:${string}` => `sha256:${pair.repeat(32)}`;

export const ME: Me = {
  user: 'alice',
  email: 'alice@example.com',
  kind: 'session',
  api: 'admin',
  grants: [],
  signedIn: true,
  csrfToken: CSRF,
};

/** `/auth/me` of an anonymous visitor with anonymous pull on. */
export const ANONYMOUS: Me = {
  user: 'anonymous',
  email: '',
  kind: 'anonymous',
  api: 'read',
  grants: [{ pattern: '*', actions: ['pull'] }],
  signedIn: false,
};

/** `/auth/me` of a local visitor while no token exists (the open mode). */
export const LOCAL_ADMIN: Me = { ...ANONYMOUS, api: 'admin', csrfToken: 'local-csrf' };

export const repo = (name: string, kind: string, extra: Partial<Repository> = {}): Repository => ({
  id: name.length,
  name,
  tagCount: 2,
  totalSize: 3 * 1024 ** 2,
  kind,
  createdAt: NOW,
  updatedAt: NOW,
  defaultFormat: 'full',
  ...extra,
});

export const tag = (repoName: string, name: string, extra: Partial<Tag> = {}): Tag => ({
  id: name.length,
  repoName,
  name,
  digest: DIGEST,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  kind: 'container-image',
  totalSize: 2048,
  layerCount: 1,
  pushedAt: NOW,
  ...extra,
});

/** A tag's detail with the given layers (and whatever else `extra` sets). */
export const detail = (t: Tag, extra: Partial<TagDetail> = {}): TagDetail => ({
  ...t,
  tag: t.name,
  size: 500,
  manifest: { schemaVersion: 2 },
  layers: [],
  referrers: [],
  ...extra,
});

const signedIn: Routes = {
  'GET /auth/me': () => ({ json: ME }),
  'GET /auth/config': () => ({ json: { sso: false, anonymousPull: true } }),
};

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  cleanup();
  await close?.();
  close = undefined;
});

/** Starts the test API server with `routes` over a signed-in admin; closed after the test. */
export async function serve(routes: Routes) {
  await close?.();
  const api = await startApiServer({ ...signedIn, ...routes });
  close = api.close;
  return api;
}
