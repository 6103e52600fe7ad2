import { useAccess } from '../api/access.js';
import {
  useEvents,
  usePushesPerDay,
  useRepositories,
  useStats,
  useTokenNames,
} from '../api/queries.js';
import { BarChart, ColumnChart } from '../components/charts.js';
import { EventRow } from '../components/EventRow.js';
import { ErrorState, Loading, QueryView } from '../components/states.js';
import { formatBytes } from '../format.js';
import { Link } from '../router.js';

const DAYS = 30;

export function Dashboard() {
  const stats = useStats();
  const biggest = useRepositories({ sort: 'size', limit: 10 });
  const pushes = usePushesPerDay(DAYS);
  const events = useEvents(undefined, 10);
  const { admin } = useAccess();
  const tokenNames = useTokenNames(admin);
  const s = stats.data;
  return (
    <main id="main">
      <h1>Dashboard</h1>
      {stats.isPending ? (
        <Loading what="statistics" />
      ) : stats.error ? (
        <ErrorState error={stats.error} what="statistics" />
      ) : s ? (
        <dl className="cards">
          <Card label="Repositories" value={String(s.repositoryCount)} />
          <Card label="Tags" value={String(s.tagCount)} />
          <Card label="Blobs" value={String(s.blobCount)} />
          <Card label="Stored" value={formatBytes(s.totalSize)} note="each blob once" />
          <Card label="Logical" value={formatBytes(s.logicalSize)} note="sum of all tags" />
          <Card
            label="Saved by sharing"
            value={formatBytes(Math.max(0, s.logicalSize - s.totalSize))}
            note={
              s.logicalSize > 0 ? `${Math.round((1 - s.totalSize / s.logicalSize) * 100)}%` : ''
            }
          />
        </dl>
      ) : null}
      <div className="grid2">
        <section className="card">
          <h2>Storage by repository</h2>
          <QueryView
            query={biggest}
            what="repositories"
            isEmpty={(data) => data.items.length === 0}
            empty="Nothing pushed yet."
          >
            {(data) => (
              <BarChart
                title="Stored bytes of the largest repositories"
                items={data.items.map((r) => ({ label: r.name, value: r.totalSize }))}
              />
            )}
          </QueryView>
        </section>
        <section className="card">
          <h2>Pushes, last {DAYS} days</h2>
          <QueryView
            query={pushes}
            what="pushes"
            isEmpty={(data) => data.every((d) => d.count === 0)}
            empty={<>No pushes in the last {DAYS} days.</>}
          >
            {(data) => (
              <ColumnChart title={`Pushes per day over the last ${DAYS} days`} days={data} />
            )}
          </QueryView>
        </section>
      </div>
      <section className="card">
        <h2>
          Recent activity{' '}
          <Link href="/audit" className="more">
            all
          </Link>
        </h2>
        <QueryView
          query={events}
          what="activity"
          isEmpty={(data) => data.items.length === 0}
          empty="No activity yet."
        >
          {(data) => (
            <ul className="events">
              {data.items.map((e) => (
                <EventRow key={e.id} event={e} admin={admin} tokenNames={tokenNames} />
              ))}
            </ul>
          )}
        </QueryView>
      </section>
    </main>
  );
}

function Card({ label, value, note }: { label: string; value: string; note?: string }) {
  return (
    <div className="stat">
      <dt>{label}</dt>
      <dd>
        {value}
        {note ? <small>{note}</small> : null}
      </dd>
    </div>
  );
}
