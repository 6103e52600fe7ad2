import { ApiError } from '../api/client.js';
import { useRepository, useTags } from '../api/queries.js';
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
