import { useAccess } from '../api/access.js';
import { useEvents, useTokenNames } from '../api/queries.js';
import { EventRow } from '../components/EventRow.js';
import { useCursorPages } from '../components/Pager.js';
import { Empty, ErrorState, Loading } from '../components/states.js';

/** The audit log, newest first, a page at a time, as sentences. */
export function Audit() {
  const pages = useCursorPages();
  const events = useEvents(pages.cursor);
  const { admin } = useAccess();
  const tokenNames = useTokenNames(admin);
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
                <EventRow key={e.id} event={e} admin={admin} tokenNames={tokenNames} />
              ))}
            </ul>
          </section>
          {pages.pager(events.data.nextCursor)}
        </>
      )}
    </main>
  );
}
