import type { SqlTime } from './schema.js';

/** Formats a `Date` as the stored UTC text form (`YYYY-MM-DD HH:MM:SS.mmm`). */
export function toSqlTime(date: Date): SqlTime {
  return date.toISOString().replace('T', ' ').slice(0, 23);
}

/** Parses the stored form back into a `Date` (drivers may also hand back a `Date`). */
export function fromSqlTime(value: SqlTime | Date): Date {
  if (value instanceof Date) return value;
  return new Date(`${value.replace(' ', 'T')}Z`);
}
