import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { expect, it } from 'vitest';
import type { Layer, TagDetail } from '../src/api/types.js';
import { detail, digest, repo, serve, tag } from './support/fixtures.js';
import { renderApp } from './support/render.js';

const file = (title: string, size: number, pair: string): Layer => ({
  mediaType: 'application/vnd.cocoonstack.vm.memory',
  digest: digest(pair),
  size,
  title,
});

/** Three versions of a snapshot, newest first, as `/api/` answers them. */
const versions: TagDetail[] = [
  [
    'v3',
    'c3',
    [file('config.json', 11, 'f1'), file('memory', 7000, 'm3'), file('state', 16, 's1')],
    8,
  ],
  [
    'v2',
    'c2',
    [file('config.json', 11, 'f1'), file('memory', 7000, 'm2'), file('overlay', 3000, 'o1')],
    4,
  ],
  ['v1', 'c1', [file('config.json', 11, 'f1'), file('memory', 4000, 'm1')], 4],
].map(([name, pair, layers, cpu], i) =>
  detail(
    tag('vm/a', name as string, {
      id: 10 - i,
      kind: 'snapshot',
      digest: digest(pair as string),
      totalSize: (layers as Layer[]).reduce((n, l) => n + l.size, 0),
      layerCount: (layers as Layer[]).length,
      pushedAt: new Date(Date.now() - i * 3_600_000).toISOString(),
    }),
    { layers: layers as Layer[], snapshotConfig: { cpu: cpu as number } },
  ),
);

async function open(path: string, tags = versions) {
  const routes = Object.fromEntries(
    tags.map((v) => [`GET /api/repositories/vm/a/tags/${v.name}`, () => ({ json: v })]),
  );
  const api = await serve({
    ...routes,
    'GET /api/repositories/vm/a': () => ({ json: repo('vm/a', 'snapshot', { tagCount: 3 }) }),
    'GET /api/repositories/vm/a/tags?limit=50': () => ({ json: tags }),
  });
  renderApp(`${api.url}${path}`);
  return api;
}

const timeline = () => screen.findByRole('list', { name: 'Versions, newest first' });
const summary = () => screen.findByTestId('diff-summary');
const rows = (container: HTMLElement) =>
  [...container.querySelectorAll('table.diff tbody tr')].map((tr) =>
    [...tr.querySelectorAll('td')].map((td) => td.textContent).join(' | '),
  );

it('shows the versions as a timeline with sizes, and what changed since the one before', async () => {
  await open('/repositories/vm/a');
  const items = within(await timeline()).getAllByRole('listitem');
  expect(items.map((li) => li.querySelector('a')?.textContent)).toEqual(['v3', 'v2', 'v1']);
  expect(items[0]?.textContent).toContain('6.9 KiB · −2.9 KiB since v2');
  expect(items[1]?.textContent).toContain('9.8 KiB · +5.9 KiB since v1');
  expect(items[2]?.textContent).toContain('first version');

  // By default: the newest against the one before.
  await waitFor(async () =>
    expect((await summary()).textContent).toBe(
      '1 file added, 1 removed, 1 changed (same size); 1 file unchanged. Size 9.8 KiB → 6.9 KiB (−2.9 KiB).',
    ),
  );
  const compare = screen.getByRole('heading', { name: 'What changed' })
    .parentElement as HTMLElement;
  expect(rows(compare)).toEqual([
    'changed | memory | 6.8 KiB | sha256:m2m2m2m2m2m2 → sha256:m3m3m3m3m3m3',
    'added | state | 16 B | sha256:s1s1s1s1s1s1',
    'removed | overlay | 2.9 KiB | sha256:o1o1o1o1o1o1',
  ]);
  expect(within(compare).getByRole('list', { name: 'VM settings changed' }).textContent).toBe(
    'CPUs: 4 → 8',
  );
});

it('compares two chosen versions and keeps the choice in the URL', async () => {
  await open('/repositories/vm/a');
  await timeline();
  fireEvent.change(await screen.findByLabelText('From'), { target: { value: 'v1' } });
  await waitFor(() => expect(window.location.search).toBe('?from=v1&to=v3'));
  await waitFor(async () =>
    expect((await summary()).textContent).toMatch(/^1 file added, 1 resized;/),
  );
  const compare = screen.getByRole('heading', { name: 'What changed' })
    .parentElement as HTMLElement;
  expect(rows(compare)).toEqual([
    'resized | memory | 3.9 KiB → 6.8 KiB | sha256:m1m1m1m1m1m1 → sha256:m3m3m3m3m3m3',
    'added | state | 16 B | sha256:s1s1s1s1s1s1',
  ]);

  // "Compare with v1" on v2 picks that pair.
  fireEvent.click(screen.getByRole('button', { name: 'Compare with v1' }));
  await waitFor(() => expect(window.location.search).toBe('?from=v1&to=v2'));
  await waitFor(async () =>
    expect((await summary()).textContent).toMatch(/^1 file added, 1 resized; 1 file unchanged/),
  );
});

it('opens a linked comparison, and says so when two versions are the same', async () => {
  const same = { ...versions[1], name: 'v2-again', tag: 'v2-again', id: 20 } as TagDetail;
  await open('/repositories/vm/a?from=v2&to=v2-again', [
    versions[0] as TagDetail,
    same,
    ...versions.slice(1),
  ]);
  await waitFor(async () =>
    expect((await summary()).textContent).toBe(
      'v2 and v2-again are the same content: nothing changed.',
    ),
  );
  expect((await timeline()).textContent).toContain('(same content)');
});

it('says there is nothing to compare yet for a single version', async () => {
  await open('/repositories/vm/a', versions.slice(2));
  await screen.findByText('Only one version so far: push another to see what changes.');
});
