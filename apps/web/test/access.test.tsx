import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { expect, it } from 'vitest';
import type { Me, Token } from '../src/api/types.js';
import type { Answer, Seen } from './support/api-server.js';
import { ANONYMOUS, CSRF, LOCAL_ADMIN, ME, NOW, serve } from './support/fixtures.js';
import { renderApp } from './support/render.js';

const STATS = { repositoryCount: 4, tagCount: 5, blobCount: 6, totalSize: 10, logicalSize: 10 };
const UNAUTHORIZED: Answer = {
  status: 401,
  json: { error: 'authentication required', code: 'UNAUTHORIZED' },
};
const count = (seen: Seen[], path: string) => seen.filter((s) => s.path.startsWith(path)).length;
const nav = () => screen.getByRole('navigation', { name: 'Main' });

it('opens read-only for anonymous visitors, with a Sign in button that leads back', async () => {
  let me: Me = ANONYMOUS;
  const api = await serve({
    'GET /auth/me': () => ({ json: me }),
    'GET /api/stats': () => ({ json: STATS }),
    'POST /auth/token': (s) => {
      if (JSON.parse(s.body).token !== 'f'.repeat(64)) return UNAUTHORIZED;
      me = ME;
      return { json: { user: 'alice', api: 'admin', csrfToken: CSRF } };
    },
  });
  renderApp(`${api.url}/`);
  await screen.findByRole('heading', { name: 'Dashboard' });
  await screen.findByText('Read-only');
  expect(within(nav()).queryByRole('link', { name: 'Tokens' })).toBeNull();
  expect(screen.queryByRole('link', { name: 'Sign out' })).toBeNull();
  await waitFor(() => expect(screen.getByText('4')).toBeTruthy());

  fireEvent.click(within(screen.getByRole('banner')).getByRole('link', { name: 'Sign in' }));
  await screen.findByRole('heading', { name: 'Sign in to Epoch' });
  expect(window.location.pathname).toBe('/signin');
  const input = screen.getByLabelText('API token');
  // The CLI prints 64 hex digits; the old `epk_…` hint matched nothing it prints.
  expect(input.getAttribute('placeholder')).toMatch(/64 hex/);
  expect(input.getAttribute('placeholder')).not.toContain('epk_');
  fireEvent.change(input, { target: { value: 'f'.repeat(64) } });
  fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
  await screen.findByRole('link', { name: 'Sign out' });
  expect(window.location.pathname).toBe('/');
  await screen.findByRole('heading', { name: 'Dashboard' });
  expect(within(nav()).getByRole('link', { name: 'Tokens' })).toBeTruthy();
});

it('asks anonymous visitors to sign in on admin pages, without calling admin endpoints', async () => {
  const api = await serve({
    'GET /auth/me': () => ({ json: ANONYMOUS }),
    'GET /api/tokens': () => UNAUTHORIZED,
  });
  renderApp(`${api.url}/tokens`);
  await screen.findByText(/Only administrators may manage tokens/);
  const main = screen.getByRole('main');
  expect(within(main).getByRole('link', { name: 'Sign in' }).getAttribute('href')).toBe('/signin');
  expect(count(api.seen, '/api/tokens')).toBe(0);
});

it('does not send an anonymous visitor round in a loop when a query answers 401', async () => {
  const api = await serve({
    'GET /auth/me': () => ({ json: ANONYMOUS }),
    'GET /api/stats': () => ({ json: STATS }),
    'GET /api/events': () => UNAUTHORIZED,
  });
  renderApp(`${api.url}/`);
  await screen.findByText('Sign in to see activity.', { exact: false });
  // Let the live queries poll twice: the refused one is not asked again, and `/auth/me` was
  // asked once more after the 401, not on every poll.
  const polls = count(api.seen, '/api/stats');
  await waitFor(() => expect(count(api.seen, '/api/stats')).toBeGreaterThanOrEqual(polls + 2), {
    timeout: 10_000,
  });
  expect(count(api.seen, '/api/events')).toBe(1);
  expect(count(api.seen, '/auth/me')).toBe(2);
  expect(screen.getByRole('heading', { name: 'Dashboard' })).toBeTruthy();
}, 15_000);

it('shows the first token even when the page learns it is read-only before the answer arrives', async () => {
  // A slow answer to the create: meanwhile the token list's poll is refused (the open mode is
  // over on the server), `/auth/me` answers read-only and the form goes away. The secret must
  // still be shown: it exists nowhere else.
  let me: Me = LOCAL_ADMIN;
  let answered = false;
  const api = await serve({
    'GET /auth/me': () => ({ json: me }),
    'GET /api/tokens': () => (me.api === 'admin' ? { json: [] } : UNAUTHORIZED),
    'POST /api/tokens': async (s) => {
      me = ANONYMOUS;
      const asked = api.seen.length;
      // Hold the answer until the page has asked who it is again after the refusal.
      while (!api.seen.slice(asked).some((x) => x.path === '/auth/me')) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 200));
      answered = true;
      const t = { id: 1, createdBy: 'anonymous', createdAt: NOW, ...JSON.parse(s.body) };
      return { status: 201, json: { ...t, token: 'b'.repeat(64) } };
    },
  });
  renderApp(`${api.url}/tokens`);
  await screen.findByRole('note');
  fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'me' } });
  fireEvent.click(screen.getByRole('button', { name: 'Create token' }));
  await screen.findByText(/Only administrators may manage tokens/, undefined, { timeout: 10_000 });
  await waitFor(() => expect(answered).toBe(true), { timeout: 10_000 });
  expect((await screen.findByTestId('token-secret')).textContent).toBe('b'.repeat(64));
}, 20_000);

it('shows the read-only view again when a session ends, and asks again what was refused', async () => {
  let me: Me = ME;
  const api = await serve({
    'GET /auth/me': () => ({ json: me }),
    'GET /api/version': () => {
      if (me === ME) {
        me = ANONYMOUS; // the session ended
        return UNAUTHORIZED;
      }
      return { json: { version: '0.1.0', storage: 'filesystem', index: 'sqlite' } };
    },
  });
  renderApp(`${api.url}/about`);
  await screen.findByRole('link', { name: 'Sign out' });
  await screen.findByText('Read-only');
  expect(within(screen.getByRole('banner')).getByRole('link', { name: 'Sign in' })).toBeTruthy();
  // Anonymous visitors may read the version: the refused query was asked again.
  await screen.findByText('0.1.0');
  expect(screen.getByText('Not signed in')).toBeTruthy();
  expect(count(api.seen, '/api/version')).toBe(2);
});

it('lets the local open mode create the first token, warns what that ends, and signs in with it', async () => {
  const tokens: Token[] = [];
  let me: Me = LOCAL_ADMIN;
  const api = await serve({
    'GET /auth/me': () => ({ json: me }),
    'GET /api/tokens': () => (me.api === 'admin' ? { json: tokens } : UNAUTHORIZED),
    'POST /api/tokens': (s) => {
      if (s.headers['x-csrf-token'] !== 'local-csrf') {
        return { status: 403, json: { error: 'missing X-CSRF-Token', code: 'DENIED' } };
      }
      const t: Token = { id: 1, createdBy: 'anonymous', createdAt: NOW, ...JSON.parse(s.body) };
      tokens.push(t);
      me = ANONYMOUS; // the first token ends the open mode
      return { status: 201, json: { ...t, token: 'a'.repeat(64) } };
    },
    'POST /auth/token': (s) => {
      if (JSON.parse(s.body).token !== 'a'.repeat(64)) return UNAUTHORIZED;
      me = { ...ME, user: 'me' };
      return { json: { user: 'me', api: 'admin', csrfToken: CSRF } };
    },
  });
  renderApp(`${api.url}/tokens`);
  await screen.findByText('Open local access');
  const warning = await screen.findByRole('note');
  expect(warning.textContent).toContain('Creating the first token ends that');
  expect(warning.textContent).toContain('shown only once');
  // The first token is its creator's own: admin is preselected.
  expect((screen.getByLabelText('admin') as HTMLInputElement).checked).toBe(true);
  fireEvent.click(screen.getByLabelText('admin'));
  expect(warning.textContent).toContain('nobody can manage tokens');
  fireEvent.click(screen.getByLabelText('admin'));

  fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'me' } });
  fireEvent.click(screen.getByRole('button', { name: 'Create token' }));
  // The visitor is read-only now, and still sees the secret to copy or sign in with.
  expect((await screen.findByTestId('token-secret')).textContent).toBe('a'.repeat(64));
  await screen.findByText('Read-only');
  await screen.findByText(/Only administrators may manage tokens/);
  expect(JSON.parse(api.seen.find((s) => s.method === 'POST')?.body ?? '')).toMatchObject({
    name: 'me',
    scopes: ['admin'],
  });

  fireEvent.click(screen.getByRole('button', { name: 'Sign in with this token' }));
  await screen.findByRole('link', { name: 'Sign out' });
  expect(screen.queryByTestId('token-secret')).toBeNull();
  const row = await screen.findByRole('cell', { name: 'me' });
  expect(row.closest('tr')?.textContent).toContain('by anonymous');
});
