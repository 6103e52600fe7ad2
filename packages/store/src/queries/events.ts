import { forEachChunk } from '../batch.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import type { Executor } from '../dialect.js';
import { nameMatches } from '../repository-pattern.js';
import { fromSqlTime, toSqlTime } from '../sql-time.js';
import type { CursorPage, EventPageOptions } from '../types.js';

/** An audit event to append. */
export interface NewAuditEvent {
  /** Who: a token name, an SSO e-mail, `anonymous`. */
  actor: string;
  /** What, e.g. `push`, `delete`, `token.create`, `login`. */
  action: string;
  repository?: string;
  /** Tag or digest the action named. */
  reference?: string;
  digest?: string;
  /** Action-specific details, stored as JSON. */
  detail?: Record<string, unknown>;
  /** Default now. */
  at?: Date;
}

/** A stored audit event. */
export interface AuditEvent extends Omit<NewAuditEvent, 'at'> {
  id: number;
  at: Date;
}

function eventRow(event: NewAuditEvent) {
  return {
    at: toSqlTime(event.at ?? new Date()),
    actor: event.actor,
    action: event.action,
    repository: event.repository ?? null,
    reference: event.reference ?? null,
    digest: event.digest ?? null,
    detail: event.detail ? JSON.stringify(event.detail) : null,
  };
}

/** Appends an event; returns its id. */
export async function appendEvent(x: Executor, event: NewAuditEvent): Promise<number> {
  const result = await x.db
    .insertInto('audit_events')
    .values(eventRow(event))
    .executeTakeFirstOrThrow();
  return Number(result.insertId);
}

/**
 * Appends events, 500 per statement, in the caller's transaction (the collector writes the
 * events of its deletions in the transaction of the deletions themselves).
 */
export async function appendEvents(x: Executor, events: readonly NewAuditEvent[]): Promise<void> {
  await forEachChunk(events, async (part) => {
    await x.db.insertInto('audit_events').values(part.map(eventRow)).execute();
  });
}

/**
 * Events, newest first, keyset-paginated on the id (ids grow with appends); with a filter, only
 * events about a matching repository, so a page and its cursor never reflect any other.
 */
export async function listEvents(
  x: Executor,
  options: EventPageOptions = {},
): Promise<CursorPage<AuditEvent>> {
  const limit = pageLimit(options.limit);
  let query = x.db
    .selectFrom('audit_events')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (options.cursor !== undefined) {
    const [, id] = decodeCursor(options.cursor);
    query = query.where('id', '<', id);
  }
  const { filter } = options;
  if (filter) query = query.where((eb) => nameMatches(eb, 'repository', filter));
  const rows = await query.execute();
  const items = rows.slice(0, limit).map((row) => {
    const event: AuditEvent = {
      id: Number(row.id),
      at: fromSqlTime(row.at),
      actor: row.actor,
      action: row.action,
    };
    if (row.repository !== null) event.repository = row.repository;
    if (row.reference !== null) event.reference = row.reference;
    if (row.digest !== null) event.digest = row.digest;
    if (row.detail !== null) event.detail = JSON.parse(row.detail) as Record<string, unknown>;
    return event;
  });
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  if (last === undefined) return { items };
  return { items, nextCursor: encodeCursor([0, Number(last.id)]) };
}
