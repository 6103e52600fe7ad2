import { type FormEvent, useState } from 'react';
import { ApiError } from '../api/client.js';
import {
  useRepository,
  useRepositorySettings,
  useSetDefaultFormat,
  useTags,
} from '../api/queries.js';
import type { SnapshotFormat } from '../api/types.js';
import { CopyButton } from '../components/CopyButton.js';
import { DataTable } from '../components/DataTable.js';
import { KindBadge } from '../components/KindBadge.js';
import { useCursorPages } from '../components/Pager.js';
import { PullCommands } from '../components/PullCommands.js';
import { Empty, ErrorState, QueryView } from '../components/states.js';
import { VersionHistory } from '../components/VersionHistory.js';
import { formatBytes, formatTime, shortDigest, timeAgo } from '../format.js';
import { href, Link } from '../router.js';

export function RepositoryPage({ name }: { name: string }) {
  const repo = useRepository(name);
  const pages = useCursorPages();
  const cursor = pages.cursor;
  const tags = useTags(name, cursor);
  const first = tags.data?.items[0];
  if (repo.error instanceof ApiError && repo.error.status === 404) {
    return (
      <main id="main">
        <h1 className="name">{name}</h1>
        <Empty>
          This repository does not exist (or was deleted).{' '}
          <Link href="/repositories">All repositories</Link>
        </Empty>
      </main>
    );
  }
  return (
    <main id="main">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link href="/repositories">Repositories</Link> /
      </nav>
      <h1 className="name">{name}</h1>
      {repo.error ? <ErrorState error={repo.error} what="the repository" /> : null}
      {repo.data ? (
        <p className="facts">
          <KindBadge kind={repo.data.kind} /> {repo.data.tagCount} tag
          {repo.data.tagCount === 1 ? '' : 's'} · {formatBytes(repo.data.totalSize)} stored · last
          push{' '}
          <time dateTime={repo.data.updatedAt} title={formatTime(repo.data.updatedAt)}>
            {timeAgo(repo.data.updatedAt)}
          </time>
        </p>
      ) : null}
      {first ? (
        <section className="card">
          <h2>
            Pull <span className="name">{first.name}</span>
          </h2>
          <PullCommands name={name} tag={first.name} kind={first.kind} />
        </section>
      ) : null}
      {first ? (
        <section className="card history">
          <h2>Version history</h2>
          <VersionHistory name={name} />
        </section>
      ) : null}
      {repo.data ? <DefaultFormat name={name} /> : null}
      <section>
        <h2>Tags</h2>
        <QueryView
          query={tags}
          what="tags"
          isEmpty={(data) => data.items.length === 0}
          empty="No tags."
        >
          {(data) => (
            <DataTable
              className="reflow tags"
              columns={[
                'Tag',
                'Kind',
                { label: 'Size', num: true },
                { label: 'Layers', num: true },
                'Digest',
                'Pushed',
              ]}
            >
              {data.items.map((t) => (
                <tr key={t.id}>
                  <td data-label="Tag" className="title">
                    <Link href={href.tag(name, t.name)} className="tag-name">
                      {t.name}
                    </Link>
                  </td>
                  <td data-label="Kind">
                    <KindBadge kind={t.kind} />
                  </td>
                  <td data-label="Size" className="num">
                    {formatBytes(t.totalSize)}
                  </td>
                  <td data-label="Layers" className="num">
                    {t.layerCount}
                  </td>
                  <td data-label="Digest" className="digest">
                    <code title={t.digest}>{shortDigest(t.digest)}</code>{' '}
                    <CopyButton text={t.digest} label="Copy digest" />
                  </td>
                  <td data-label="Pushed">
                    <time dateTime={t.pushedAt} title={formatTime(t.pushedAt)}>
                      {timeAgo(t.pushedAt)}
                    </time>
                  </td>
                </tr>
              ))}
            </DataTable>
          )}
        </QueryView>
        {tags.data ? pages.pager(tags.data.nextCursor) : null}
      </section>
    </main>
  );
}

/**
 * The snapshot formats as this page names them. The list itself lives in `@epoch/oci`
 * (`SNAPSHOT_FORMATS`), which the browser cannot load: `satisfies` fails the build if a format
 * is missing here or one is named that does not exist.
 */
const FORMATS = {
  full: { label: 'Full', hint: 'one blob per file, read by every epoch and cocoon' },
  incremental: {
    label: 'Incremental',
    hint: 'only the chunks the repository lacks are sent and stored',
  },
} as const satisfies Record<SnapshotFormat, { label: string; hint: string }>;

function isFormat(value: string): value is SnapshotFormat {
  return Object.hasOwn(FORMATS, value);
}

/**
 * The format `epoch push` uses here when given neither `--incremental` nor `--no-incremental`,
 * who chose it, and a control to change it for visitors who may (the server says so, from the
 * same rule it checks the change against: push rights on the repository).
 */
function DefaultFormat({ name }: { name: string }) {
  const settings = useRepositorySettings(name);
  const change = useSetDefaultFormat(name);
  const [chosen, setChosen] = useState<SnapshotFormat | undefined>(undefined);
  if (settings.error) return <ErrorState error={settings.error} what="the default push format" />;
  if (!settings.data) return null;
  const { defaultFormat, updatedAt, updatedBy, writable } = settings.data;
  const selected = chosen ?? defaultFormat;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    change.mutate(selected, { onSuccess: () => setChosen(undefined) });
  };
  return (
    <section className="card default-format">
      <h2>Default push format</h2>
      <p>
        <strong>{FORMATS[defaultFormat].label}</strong>: {FORMATS[defaultFormat].hint}.{' '}
        {updatedAt ? (
          <>
            Set by <span className="name">{updatedBy}</span>{' '}
            <time dateTime={updatedAt} title={formatTime(updatedAt)}>
              {timeAgo(updatedAt)}
            </time>
            .
          </>
        ) : (
          'Nobody chose one for this repository: the registry default.'
        )}
      </p>
      <p className="hint">
        What <code>epoch push</code> uses without <code>--incremental</code> or{' '}
        <code>--no-incremental</code>.
      </p>
      {writable ? (
        <form className="default-format-form" onSubmit={submit}>
          <label>
            Default format
            <select
              value={selected}
              onChange={(e) => {
                if (isFormat(e.target.value)) setChosen(e.target.value);
              }}
            >
              {Object.entries(FORMATS).map(([value, { label }]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <button
            type="submit"
            className="primary"
            disabled={change.isPending || selected === defaultFormat}
          >
            Save
          </button>
          {change.error ? (
            <p className="error" role="alert">
              {change.error.message}
            </p>
          ) : null}
        </form>
      ) : null}
    </section>
  );
}
