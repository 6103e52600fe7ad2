import { useEvents } from '../api/queries.js';
import type { AuditEvent } from '../api/types.js';
import { useCursorPages } from '../components/Pager.js';
import { Empty, ErrorState, Loading } from '../components/states.js';
import { formatTime, shortDigest, timeAgo } from '../format.js';
import { href, Link } from '../router.js';

/** The audit log, newest first, a page at a time. */
export function Audit() {
  const pages = useCursorPages();
  const events = useEvents(pages.cursor);
  return (
    <main id="main">
      <h1>Audit log</h1>
      {events.isPending ? (
        <Loading what="the audit log" />
      ) : events.error ? (
        <ErrorState error={events.error} what="the audit log" />
      ) : events.data.items.length === 0 ? (
        <Empty>No events yet.</Empty>
      ) : (
        <>
          <section className="card">
            <ul className="events">
              {events.data.items.map((e) => (
                <EventRow key={e.id} event={e} />
              ))}
            </ul>
          </section>
          {pages.pager(events.data.nextCursor)}
        </>
      )}
    </main>
  );
}

export function EventRow({ event: e }: { event: AuditEvent }) {
  // The request id is for log correlation, not for people reading the log.
  const { requestId: _, ...rest } = e.detail ?? {};
  const detail = Object.keys(rest).length > 0 ? JSON.stringify(rest) : '';
  return (
    <li className="event">
      <time dateTime={e.at} title={formatTime(e.at)}>
        {timeAgo(e.at)}
      </time>
      <span className={`action action-${e.action.replace(/[^a-z]/g, '-')}`}>{e.action}</span>
      <span className="actor">{e.actor}</span>
      {e.repository ? (
        <Link
          href={
            e.reference && !e.reference.includes(':')
              ? href.tag(e.repository, e.reference)
              : href.repository(e.repository)
          }
        >
          {e.repository}
          {e.reference
            ? e.reference.includes(':')
              ? `@${shortDigest(e.reference)}`
              : `:${e.reference}`
            : ''}
        </Link>
      ) : null}
      {detail ? <code className="detail">{detail}</code> : null}
    </li>
  );
}
