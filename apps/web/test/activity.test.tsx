import { waitFor, within } from '@testing-library/react';
import { expect, it } from 'vitest';
import type { AuditEvent, Token } from '../src/api/types.js';
import { ANONYMOUS, digest, HOSTILE, NOW, serve } from './support/fixtures.js';
import { renderApp } from './support/render.js';

const events: AuditEvent[] = [
  {
    id: 5,
    at: NOW,
    actor: 'ci',
    action: 'push',
    repository: 'vm/live',
    reference: 'v2',
    digest: digest('ab'),
    detail: { requestId: 'r5' },
  },
  {
    id: 4,
    at: NOW,
    actor: 'alice',
    action: 'token.create',
    detail: { requestId: 'r4', tokenId: 7, name: 'ci', scopes: ['push'], repoPattern: 'vm/*' },
  },
  { id: 3, at: NOW, actor: 'alice', action: 'token.revoke', detail: { tokenId: 7 } },
  {
    id: 2,
    at: NOW,
    actor: 'unknown',
    action: 'login.denied',
    detail: { via: 'token', reason: HOSTILE },
  },
];
const tokens: Token[] = [
  { id: 7, name: 'ci', createdBy: 'alice', scopes: ['push'], repoPattern: 'vm/*', createdAt: NOW },
];

const feed = async () => {
  const list = await waitFor(() => {
    const ul = document.querySelector('ul.events');
    if (!ul) throw new Error('no feed yet');
    return ul as HTMLElement;
  });
  return list;
};

it('writes the audit log as sentences with links, never raw JSON', async () => {
  const api = await serve({
    'GET /api/events': () => ({ json: events }),
    'GET /api/tokens': () => ({ json: tokens }),
  });
  renderApp(`${api.url}/audit`);
  const list = await feed();
  const rows = () => [...list.querySelectorAll('li')].map((li) => li.querySelector('.sentence'));
  expect(rows()[0]?.textContent).toBe('ci pushed vm/live:v2 (sha256:abababababab)');
  expect(within(list).getByRole('link', { name: 'vm/live:v2' }).getAttribute('href')).toBe(
    '/repositories/vm/live/-/v2',
  );
  expect(within(list).getByText('sha256:abababababab').getAttribute('title')).toBe(digest('ab'));
  expect(rows()[1]?.textContent).toBe('alice created token ci with push on vm/*');
  // Administrators follow token names to the tokens page; a revocation is named from the list.
  await waitFor(() => expect(rows()[2]?.textContent).toBe('alice revoked token ci'));
  for (const link of within(list).getAllByRole('link', { name: 'ci' })) {
    expect(link.getAttribute('href')).toBe('/tokens');
  }
  // A hostile reason is text.
  expect(rows()[3]?.textContent).toBe(`A sign-in with a token was refused: ${HOSTILE}`);
  expect(list.querySelector('img')).toBeNull();
  expect(list.textContent).not.toContain('{');
  expect(list.textContent).not.toContain('requestId');
});

it('shows token names as text to visitors who may not manage tokens', async () => {
  const api = await serve({
    'GET /auth/me': () => ({ json: ANONYMOUS }),
    'GET /api/stats': () => ({
      json: { repositoryCount: 1, tagCount: 1, blobCount: 1, totalSize: 1, logicalSize: 1 },
    }),
    'GET /api/events': () => ({ json: events.slice(0, 2) }),
  });
  renderApp(`${api.url}/`);
  const list = await feed();
  await within(list).findByRole('link', { name: 'vm/live:v2' });
  expect(within(list).queryByRole('link', { name: 'ci' })).toBeNull();
  expect(within(list).getByText('ci', { selector: 'strong' })).toBeTruthy();
  expect(api.seen.some((s) => s.path.startsWith('/api/tokens'))).toBe(false);
});
