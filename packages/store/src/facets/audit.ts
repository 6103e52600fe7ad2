import * as events from '../queries/events.js';
import type { CursorPage, EventPageOptions } from '../types.js';
import type { StoreAccess } from './access.js';

/** The audit log (`store.audit`). */
export interface StoreAudit {
  /** Appends an audit event; returns its id. */
  append(event: events.NewAuditEvent): Promise<number>;
  /** Appends audit events in one transaction (the collector's orphan deletions). */
  appendAll(list: readonly events.NewAuditEvent[]): Promise<void>;
  /** Audit events, newest first, keyset-paginated. */
  list(options?: EventPageOptions): Promise<CursorPage<events.AuditEvent>>;
}

/** @internal The `store.audit` facet. */
export function storeAudit(s: StoreAccess): StoreAudit {
  return {
    append: (event) => events.appendEvent(s.read, event),
    appendAll: (list) => s.write((x) => events.appendEvents(x, list)),
    list: (options) => events.listEvents(s.read, options),
  };
}
