import { useRepositories } from '../api/queries.js';
import { DataTable } from '../components/DataTable.js';
import { KindBadge } from '../components/KindBadge.js';
import { useCursorPages } from '../components/Pager.js';
import { QueryView } from '../components/states.js';
import { formatBytes, formatTime, kindLabel, timeAgo } from '../format.js';
import { href, Link, navigate, useLocation } from '../router.js';

const PAGE = 25;
const KINDS = ['snapshot', 'cloud-image', 'container-image', 'image-index'];

/**
 * Repositories with search, sort and a kind filter, all kept in the URL so a view can be linked.
 * The kind filter applies to the page the server returned (the API filters by name only).
 */
export function Repositories() {
  const url = useLocation();
  const search = url.searchParams.get('search') ?? '';
  const sort = url.searchParams.get('sort') ?? 'name';
  const kind = url.searchParams.get('kind') ?? '';
  const pages = useCursorPages();
  const cursor = pages.cursor;
  const repos = useRepositories({ search, sort, limit: PAGE, ...(cursor ? { cursor } : {}) });

  const set = (key: string, value: string) => {
    const next = new URLSearchParams(url.search);
    if (value) next.set(key, value);
    else next.delete(key);
    pages.reset();
    const q = next.toString();
    navigate(`/repositories${q ? `?${q}` : ''}`, { replace: true });
  };

  const items = repos.data?.items.filter((r) => !kind || r.kind === kind) ?? [];
  return (
    <main id="main">
      <h1>Repositories</h1>
      <search className="toolbar">
        <label>
          Search
          <input
            type="search"
            value={search}
            onChange={(e) => set('search', e.target.value)}
            placeholder="name contains…"
          />
        </label>
        <label>
          Sort by
          <select value={sort} onChange={(e) => set('sort', e.target.value)}>
            <option value="name">Name</option>
            <option value="updated">Last push</option>
            <option value="size">Size</option>
            <option value="tags">Tags</option>
          </select>
        </label>
        <label>
          Kind
          <select value={kind} onChange={(e) => set('kind', e.target.value)}>
            <option value="">All kinds</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {kindLabel(k)}
              </option>
            ))}
          </select>
        </label>
      </search>
      <QueryView
        query={repos}
        what="repositories"
        isEmpty={() => items.length === 0}
        empty={
          search || kind
            ? 'No repository matches.'
            : 'No repositories yet. Push one with skopeo or epoch push.'
        }
      >
        {() => (
          <DataTable
            columns={[
              'Name',
              'Kind',
              { label: 'Tags', num: true },
              { label: 'Size', num: true },
              'Last push',
            ]}
          >
            {items.map((r) => (
              <tr key={r.id}>
                <td>
                  <Link href={href.repository(r.name)} className="name">
                    {r.name}
                  </Link>
                </td>
                <td>
                  <KindBadge kind={r.kind} />
                </td>
                <td className="num">{r.tagCount}</td>
                <td className="num">{formatBytes(r.totalSize)}</td>
                <td>
                  <time dateTime={r.updatedAt} title={formatTime(r.updatedAt)}>
                    {timeAgo(r.updatedAt)}
                  </time>
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </QueryView>
      {repos.data ? pages.pager(repos.data.nextCursor) : null}
    </main>
  );
}
