import { cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { expect, it } from 'vitest';
import type { Me, TagDetail, Token } from '../src/api/types.js';
import { CSRF, DIGEST, detail, HOSTILE, ME, NOW, repo, serve, tag } from './support/fixtures.js';
import { renderApp } from './support/render.js';

it('shows the sign-in form when nobody is signed in, and signs in with a token', async () => {
  let me: Me | undefined;
  const api = await serve({
    'GET /auth/me': () =>
      me ? { json: me } : { status: 401, json: { error: 'login required', code: 'UNAUTHORIZED' } },
    'GET /auth/config': () => ({ json: { sso: true, anonymousPull: true } }),
    'POST /auth/token': (s) => {
      if (JSON.parse(s.body).token !== 'good')
        return { status: 401, json: { error: 'invalid token', code: 'UNAUTHORIZED' } };
      me = ME;
      return { json: { user: 'alice', api: 'admin', csrfToken: CSRF } };
    },
    'GET /api/stats': () => ({
      json: { repositoryCount: 7, tagCount: 9, blobCount: 20, totalSize: 1024, logicalSize: 4096 },
    }),
  });
  renderApp(`${api.url}/`);
  await screen.findByRole('heading', { name: 'Sign in to Epoch' });
  expect(
    (await screen.findByRole('link', { name: 'Sign in with single sign-on' })).getAttribute('href'),
  ).toBe('/login');
  const input = screen.getByLabelText('Or use an API token');
  fireEvent.change(input, { target: { value: 'bad' } });
  fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
  expect((await screen.findByRole('alert')).textContent).toBe('invalid token');
  fireEvent.change(input, { target: { value: 'good' } });
  fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
  await screen.findByRole('heading', { name: 'Dashboard' });
  expect(screen.getByText('alice')).toBeTruthy();
  expect(screen.getByRole('link', { name: 'Sign out' }).getAttribute('href')).toBe('/logout');
  await waitFor(() => expect(screen.getByText('7')).toBeTruthy());
  expect(screen.getByText('3.0 KiB')).toBeTruthy(); // saved by sharing: 4096 - 1024
  const post = api.seen.find((s) => s.method === 'POST');
  expect(post?.headers['content-type']).toBe('application/json');
});

it('lists repositories with kinds and sizes, names as text, and pages with the next cursor', async () => {
  const api = await serve({
    'GET /api/repositories?sort=name&limit=25': () => ({
      json: [repo('team/live', 'snapshot'), repo(HOSTILE, 'container-image')],
      headers: { 'X-Next-Cursor': 'page2' },
    }),
    'GET /api/repositories?sort=name&limit=25&cursor=page2': () => ({
      json: [repo('zeta/last', 'cloud-image')],
    }),
  });
  const { container } = renderApp(`${api.url}/repositories`);
  const link = await screen.findByRole('link', { name: 'team/live' });
  expect(link.getAttribute('href')).toBe('/repositories/team/live');
  expect(screen.getByText('Snapshot', { selector: '.badge' })).toBeTruthy();
  expect(screen.getAllByText('3.0 MiB')).toHaveLength(2);
  // The hostile name is text: no element was created from it.
  expect(screen.getByRole('link', { name: HOSTILE })).toBeTruthy();
  expect(container.querySelector('img')).toBeNull();
  fireEvent.click(screen.getByRole('button', { name: 'Next page' }));
  await screen.findByRole('link', { name: 'zeta/last' });
  expect(screen.queryByRole('link', { name: 'team/live' })).toBeNull();
});

it('filters by kind on the page and keeps search and sort in the URL', async () => {
  const api = await serve({
    'GET /api/repositories': () => ({
      json: [repo('a/snap', 'snapshot'), repo('b/img', 'container-image')],
    }),
  });
  renderApp(`${api.url}/repositories?kind=snapshot`);
  await screen.findByRole('link', { name: 'a/snap' });
  expect(screen.queryByRole('link', { name: 'b/img' })).toBeNull();
  fireEvent.change(screen.getByLabelText('Sort by'), { target: { value: 'size' } });
  await waitFor(() => expect(window.location.search).toBe('?kind=snapshot&sort=size'));
  await waitFor(() => expect(api.seen.some((s) => s.path.includes('sort=size'))).toBe(true));
});

const snapshotTag: TagDetail = {
  id: 1,
  repoName: 'vm/live',
  name: 'hibernate',
  tag: 'hibernate',
  digest: DIGEST,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  kind: 'snapshot',
  totalSize: 5000,
  layerCount: 2,
  pushedAt: NOW,
  size: 700,
  manifest: { schemaVersion: 2, annotations: { note: HOSTILE } },
  layers: [
    {
      mediaType: 'application/vnd.cocoonstack.vm.memory',
      digest: `sha256:${'2b'.repeat(32)}`,
      size: 4000,
      title: 'memory-ranges',
    },
    {
      mediaType: 'application/vnd.cocoonstack.vm.config+json',
      digest: `sha256:${'3c'.repeat(32)}`,
      size: 1000,
      title: 'config.json',
    },
  ],
  snapshotConfig: {
    hypervisor: 'firecracker',
    cpu: 2,
    memory: 2 * 1024 ** 3,
    description: HOSTILE,
    files: { 'memory-ranges': { sparseSize: 2 * 1024 ** 3 }, 'config.json': {} },
  },
  referrers: [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      digest: `sha256:${'4d'.repeat(32)}`,
      size: 300,
    },
  ],
};

it('shows a snapshot tag and deletes it after a confirm naming it, sending the CSRF token', async () => {
  let deleted = false;
  const api = await serve({
    'GET /api/repositories/vm/live/tags/hibernate': () =>
      deleted
        ? { status: 404, json: { error: 'tag not found', code: 'TAG_UNKNOWN' } }
        : { json: snapshotTag },
    'DELETE /api/repositories/vm/live/tags/hibernate': () => {
      deleted = true;
      return { status: 204 };
    },
    'GET /api/repositories/vm/live': () => ({ json: repo('vm/live', 'snapshot') }),
    'GET /api/repositories/vm/live/tags': () => ({ json: [] }),
  });
  const { container } = renderApp(`${api.url}/repositories/vm/live/-/hibernate`);
  await screen.findByRole('heading', { name: 'vm/live:hibernate' });
  expect(screen.getByText('firecracker')).toBeTruthy();
  expect(screen.getAllByText('2.0 GiB').length).toBeGreaterThan(0);
  expect(screen.getByText(HOSTILE)).toBeTruthy();
  expect(container.querySelector('img')).toBeNull();
  expect(screen.getByText('application/spdx+json')).toBeTruthy();
  // Bars are proportional to the largest layer.
  const bars = [...container.querySelectorAll<HTMLElement>('.bar-fill')].map((b) => b.style.width);
  expect(bars).toEqual(['100%', '25%']);
  expect(container.querySelector('pre.manifest')?.textContent).toContain(HOSTILE);

  fireEvent.click(screen.getByRole('button', { name: 'Delete this tag…' }));
  const dialog = screen.getByRole('alertdialog');
  expect(dialog.textContent).toContain('vm/live:hibernate');
  fireEvent.click(within(dialog).getByRole('button', { name: 'Delete hibernate' }));
  await screen.findByRole('heading', { name: 'vm/live' });
  expect(window.location.pathname).toBe('/repositories/vm/live');
  const del = api.seen.find((s) => s.method === 'DELETE');
  expect(del?.headers['x-csrf-token']).toBe(CSRF);
});

it('shows a repository with pull commands and a tags table', async () => {
  const api = await serve({
    'GET /api/repositories/library/alpine': () => ({
      json: repo('library/alpine', 'container-image'),
    }),
    'GET /api/repositories/library/alpine/tags?limit=50': () => ({
      json: [
        {
          id: 3,
          repoName: 'library/alpine',
          name: '3.20',
          digest: DIGEST,
          mediaType: 'x',
          kind: 'container-image',
          totalSize: 2048,
          layerCount: 1,
          pushedAt: NOW,
        },
      ],
    }),
  });
  const { container } = renderApp(`${api.url}/repositories/library/alpine`);
  await waitFor(() => expect(container.querySelector('table.tags a')?.textContent).toBe('3.20'));
  const host = new URL(api.url).host;
  expect(screen.getByText(`epoch pull ${host}/library/alpine:3.20`)).toBeTruthy();
  expect(screen.getByText(`docker pull ${host}/library/alpine:3.20`)).toBeTruthy();
  const table = container.querySelector('table.tags') as HTMLElement;
  expect(within(table).getByText('sha256:1a1a1a1a1a1a')).toBeTruthy();
  expect(screen.getByRole('button', { name: 'Copy digest' }).getAttribute('title')).toBe(DIGEST);
});

it('creates a token, shows the secret once, and revokes with the CSRF token', async () => {
  const tokens: Token[] = [
    {
      id: 1,
      name: '<script>alert(1)</script>',
      createdBy: 'alice',
      scopes: ['pull'],
      repoPattern: '*',
      createdAt: NOW,
      lastUsed: NOW,
    },
  ];
  const api = await serve({
    'GET /api/tokens': () => ({ json: tokens }),
    'POST /api/tokens': (s) => {
      const body = JSON.parse(s.body);
      const t: Token = { id: 2, createdBy: 'alice', createdAt: NOW, ...body };
      tokens.push(t);
      return { status: 201, json: { ...t, token: 'secret-plaintext-123' } };
    },
    'DELETE /api/tokens/2': () => {
      (tokens[1] as Token).revokedAt = NOW;
      return { json: { status: 'deleted' } };
    },
  });
  const { container } = renderApp(`${api.url}/tokens`);
  await screen.findByText('<script>alert(1)</script>');
  expect(container.querySelector('tbody script')).toBeNull();
  fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'ci' } });
  fireEvent.click(screen.getByLabelText('push'));
  fireEvent.change(screen.getByLabelText('Repository pattern'), { target: { value: 'team/*' } });
  fireEvent.click(screen.getByRole('button', { name: 'Create token' }));
  expect((await screen.findByTestId('token-secret')).textContent).toBe('secret-plaintext-123');
  const post = api.seen.find((s) => s.method === 'POST');
  expect(JSON.parse(post?.body ?? '')).toEqual({
    name: 'ci',
    scopes: ['pull', 'push'],
    repoPattern: 'team/*',
    expiresIn: '30d',
  });
  expect(post?.headers['x-csrf-token']).toBe(CSRF);
  fireEvent.click(screen.getByRole('button', { name: 'Done' }));
  expect(screen.queryByTestId('token-secret')).toBeNull();

  const row = (await screen.findByText('ci')).closest('tr') as HTMLElement;
  fireEvent.click(within(row).getByRole('button', { name: 'Revoke…' }));
  fireEvent.click(within(row).getByRole('button', { name: 'Revoke ci' }));
  await within(row).findByText('revoked');
  expect(api.seen.find((s) => s.method === 'DELETE')?.headers['x-csrf-token']).toBe(CSRF);
});

it('goes to the sign-in page when a call answers 401, and explains a 403', async () => {
  let expired = false;
  const api = await serve({
    'GET /auth/me': () =>
      expired
        ? { status: 401, json: { error: 'login required', code: 'UNAUTHORIZED' } }
        : { json: { ...ME, api: 'read' } },
    'GET /api/events': () => ({ status: 403, json: { error: 'admin only', code: 'DENIED' } }),
    'GET /api/tokens': () => ({ status: 403, json: { error: 'admin only', code: 'DENIED' } }),
    'GET /api/version': () => {
      expired = true;
      return { status: 401, json: { error: 'login required', code: 'UNAUTHORIZED' } };
    },
  });
  renderApp(`${api.url}/audit`);
  expect((await screen.findByRole('alert')).textContent).toBe(
    'You are not allowed to see the audit log: admin only',
  );
  // Read-only users get no Tokens link.
  expect(screen.queryByRole('link', { name: 'Tokens' })).toBeNull();
  fireEvent.click(screen.getByRole('link', { name: 'About' }));
  await screen.findByRole('heading', { name: 'Sign in to Epoch' });
});

it('shows empty and error states', async () => {
  const api = await serve({
    'GET /api/repositories': () => ({ json: [] }),
  });
  renderApp(`${api.url}/repositories`);
  await screen.findByText(/No repositories yet/);
  cleanup();
  const broken = await serve({
    'GET /api/repositories': () => ({
      status: 500,
      json: { error: 'index down', code: 'UNKNOWN' },
    }),
  });
  renderApp(`${broken.url}/repositories`);
  expect((await screen.findByRole('alert', {}, { timeout: 8000 })).textContent).toBe(
    'Could not load repositories: index down',
  );
});

it('offers /dl/ commands that save a sensible file name for snapshots and cloud images', async () => {
  const api = await serve({
    'GET /api/repositories/vm/live': () => ({ json: repo('vm/live', 'snapshot') }),
    'GET /api/repositories/vm/live/tags?limit=50': () => ({
      json: [tag('vm/live', 'hibernate', { kind: 'snapshot' })],
    }),
    'GET /api/repositories/os/win11': () => ({ json: repo('os/win11', 'cloud-image') }),
    'GET /api/repositories/os/win11/tags?limit=50': () => ({
      json: [tag('os/win11', '24.04', { kind: 'cloud-image' })],
    }),
  });
  renderApp(`${api.url}/repositories/vm/live`);
  // Import straight into cocoon, or save the tar under the name the server gives.
  await screen.findByText(
    `curl -fL ${api.url}/dl/vm/live:hibernate | cocoon snapshot import --name live`,
  );
  expect(screen.getByText(`curl -fLOJ ${api.url}/dl/vm/live:hibernate`)).toBeTruthy();
  cleanup();
  renderApp(`${api.url}/repositories/os/win11`);
  // -O alone would save a file literally named `win11:24.04`.
  await screen.findByText(`curl -fLOJ ${api.url}/dl/os/win11:24.04`);
  expect(screen.queryByText(/curl -fLO /)).toBeNull();
});

it('says so when nothing was pushed in the last 30 days, instead of an empty chart', async () => {
  const days = Array.from({ length: 30 }, (_, i) => ({ day: `2026-11-${i + 1}`, count: 0 }));
  const api = await serve({
    'GET /api/stats/pushes?days=30': () => ({ json: days }),
  });
  const { container } = renderApp(`${api.url}/`);
  await screen.findByText('No pushes in the last 30 days.');
  expect(container.querySelector('svg.columns')).toBeNull();
});

it('shows what an incremental snapshot version stores and shares with the one before', async () => {
  const MiB = 1024 * 1024;
  const api = await serve({
    'GET /api/repositories/vm/inc/tags/v2': () => ({
      json: detail(tag('vm/inc', 'v2', { kind: 'chunked-snapshot' }), {
        snapshotConfig: { files: { 'memory-ranges': { mode: 0o640, size: 4096 * MiB } } },
        layers: [
          {
            mediaType: 'application/vnd.epoch.chunk.index.v1',
            digest: DIGEST as `sha256:${string}`,
            size: 19 * MiB,
            title: 'memory-ranges',
          },
        ],
        incremental: {
          logicalBytes: 4096 * MiB,
          storedBytes: 400 * MiB,
          sharedBytes: 300 * MiB,
          newBytes: 100 * MiB,
          previous: { tag: 'v1', digest: DIGEST },
        },
      }),
    }),
  });
  renderApp(`${api.url}/repositories/vm/inc/-/v2`);
  await screen.findByRole('heading', { name: 'Incremental storage' });
  expect(screen.getAllByText('Incremental snapshot').length).toBeGreaterThan(0);
  expect(screen.getByText('300 MiB (75%)')).toBeTruthy();
  expect(screen.getByText('100 MiB (25%)')).toBeTruthy();
  expect(screen.getByRole('link', { name: 'v1' }).getAttribute('href')).toBe(
    '/repositories/vm/inc/-/v1',
  );
  // A file of an incremental version has no stored size of its own: the index is not it.
  const row = screen.getAllByText('memory-ranges')[0]?.closest('tr') as HTMLElement;
  expect(row.textContent).not.toContain('19 MiB');
  expect(screen.getByText(/cocoon snapshot import/)).toBeTruthy();
});
