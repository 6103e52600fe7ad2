import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { expect, it } from 'vitest';
import type { RepositorySettings } from '../src/api/types.js';
import { ANONYMOUS, CSRF, HOSTILE, NOW, repo, serve } from './support/fixtures.js';
import { renderApp } from './support/render.js';

const NAME = 'vm/live';
const SETTINGS = `/api/repository-settings/${NAME}`;

/** The routes of a repository page whose settings are `settings` (changed by a PUT). */
function repositoryPage(settings: RepositorySettings) {
  let current = settings;
  return {
    [`GET /api/repositories/${NAME}`]: () => ({
      json: repo(NAME, 'snapshot', { defaultFormat: current.defaultFormat }),
    }),
    [`GET /api/repositories/${NAME}/tags?limit=50`]: () => ({ json: [] }),
    [`GET ${SETTINGS}`]: () => ({ json: current }),
    [`PUT ${SETTINGS}`]: (s: { body: string }) => {
      const { defaultFormat } = JSON.parse(s.body) as { defaultFormat: 'full' | 'incremental' };
      current = { ...current, defaultFormat, updatedAt: NOW, updatedBy: 'alice' };
      return { json: current };
    },
  };
}

const section = () =>
  screen.getByRole('heading', { name: 'Default push format' }).closest('section') as HTMLElement;
/** The format the section says is set. */
const shown = () => section().querySelector('p strong')?.textContent;

it('shows the default push format and lets a visitor with push rights change it', async () => {
  const api = await serve(
    repositoryPage({
      name: NAME,
      defaultFormat: 'full',
      writable: true,
    }),
  );
  renderApp(`${api.url}/repositories/${NAME}`);
  await screen.findByRole('heading', { name: 'Default push format' });
  expect(shown()).toBe('Full');
  expect(section().textContent).toContain('Nobody chose one for this repository');

  const select = within(section()).getByLabelText('Default format') as HTMLSelectElement;
  const save = within(section()).getByRole('button', { name: 'Save' }) as HTMLButtonElement;
  expect([...select.options].map((o) => [o.value, o.text])).toEqual([
    ['full', 'Full'],
    ['incremental', 'Incremental'],
  ]);
  // Nothing to save until the choice differs from what is set.
  expect(save.disabled).toBe(true);
  fireEvent.change(select, { target: { value: 'incremental' } });
  expect(save.disabled).toBe(false);
  fireEvent.click(save);

  await waitFor(() => expect(shown()).toBe('Incremental'));
  expect(section().textContent).toContain('Set by alice');
  const put = api.seen.find((s) => s.method === 'PUT');
  expect(put?.path).toBe(SETTINGS);
  expect(JSON.parse(put?.body ?? '')).toEqual({ defaultFormat: 'incremental' });
  expect(put?.headers['content-type']).toBe('application/json');
  expect(put?.headers['x-csrf-token']).toBe(CSRF);
  await waitFor(() =>
    expect(
      (within(section()).getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled,
    ).toBe(true),
  );
});

it('shows the format without a control to a visitor who may not push there', async () => {
  const api = await serve({
    'GET /auth/me': () => ({ json: ANONYMOUS }),
    ...repositoryPage({
      name: NAME,
      defaultFormat: 'incremental',
      updatedAt: NOW,
      updatedBy: HOSTILE,
      writable: false,
    }),
  });
  const { container } = renderApp(`${api.url}/repositories/${NAME}`);
  await screen.findByRole('heading', { name: 'Default push format' });
  expect(shown()).toBe('Incremental');
  // A name from the server is text, never markup.
  expect(within(section()).getByText(HOSTILE)).toBeTruthy();
  expect(container.querySelector('img')).toBeNull();
  expect(within(section()).queryByRole('combobox')).toBeNull();
  expect(within(section()).queryByRole('button', { name: 'Save' })).toBeNull();
  expect(api.seen.some((s) => s.method === 'PUT')).toBe(false);
});

it('says why a change was refused and keeps what is set', async () => {
  const api = await serve({
    ...repositoryPage({ name: NAME, defaultFormat: 'full', writable: true }),
    [`PUT ${SETTINGS}`]: () => ({
      status: 403,
      json: { error: 'alice may not push vm/live', code: 'DENIED' },
    }),
  });
  renderApp(`${api.url}/repositories/${NAME}`);
  await screen.findByRole('heading', { name: 'Default push format' });
  fireEvent.change(within(section()).getByLabelText('Default format'), {
    target: { value: 'incremental' },
  });
  fireEvent.click(within(section()).getByRole('button', { name: 'Save' }));
  expect((await within(section()).findByRole('alert')).textContent).toBe(
    'alice may not push vm/live',
  );
  expect(shown()).toBe('Full');
});
