import { useAccess } from '../api/access.js';
import { useEvents, useTokenNames } from '../api/queries.js';
import { EventRow } from '../components/EventRow.js';
import { useCursorPages } from '../components/Pager.js';
import { QueryView } from '../components/states.js';

/** The audit log, newest first, a page at a time, as sentences. */
export function Audit() {
  const pages = useCursorPages();
  const events = useEvents(pages.cursor);
  const { admin } = useAccess();
  const tokenNames = useTokenNames(admin);
  return (
    <main id="main">
      <h1>Audit log</h1>
      <QueryView
        query={events}
        what="the audit log"
        isEmpty={(data) => data.items.length === 0}
        empty="No events yet."
      >
        {(data) => (
          <>
            <section className="card">
              <ul className="events">
                {data.items.map((e) => (
                  <EventRow key={e.id} event={e} admin={admin} tokenNames={tokenNames} />
                ))}
              </ul>
            </section>
            {pages.pager(data.nextCursor)}
          </>
        )}
      </QueryView>
    </main>
  );
}
