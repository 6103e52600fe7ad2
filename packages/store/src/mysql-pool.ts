import type { MysqlPool, MysqlPoolConnection, MysqlQueryResult } from 'kysely';
import type { Pool, PoolConnection } from 'mysql2';
import { IndexUnavailableError } from './errors.js';

// Socket-level failures and the driver's codes for a connection that is gone.
const LOST_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT',
]);

// Server errors that end the session: too many connections (1040), shutdown in progress
// (1053), connection killed (MariaDB 1927), query interrupted by KILL (1317), server gone
// away / lost during query (client codes 2006, 2013).
const LOST_ERRNOS = new Set([1040, 1053, 1317, 1927, 2006, 2013]);

/** Whether a mysql2 error means the database (or this connection to it) is gone. */
export function isConnectionLoss(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, errno, fatal, message } = error as {
    code?: unknown;
    errno?: unknown;
    fatal?: unknown;
    message?: unknown;
  };
  if (typeof code === 'string' && LOST_CODES.has(code)) return true;
  if (typeof errno === 'number' && LOST_ERRNOS.has(errno)) return true;
  // mysql2 marks every error that closed the connection as fatal; it rejects commands on a
  // closed connection with a plain Error.
  if (fatal === true) return true;
  return typeof message === 'string' && message.includes('connection is in closed state');
}

function translate(error: unknown): unknown {
  if (!isConnectionLoss(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new IndexUnavailableError(`index database unavailable: ${reason}`, { cause: error });
}

/**
 * The mysql2 pool as Kysely sees it, with lost and refused connections reported as
 * {@link IndexUnavailableError}. One wrapper per pooled connection, so Kysely's per-connection
 * setup (`onCreateConnection`) still runs once per real connection.
 */
export function unavailabilityReportingPool(pool: Pool): MysqlPool {
  const wrappers = new WeakMap<PoolConnection, MysqlPoolConnection>();
  const wrap = (raw: PoolConnection): MysqlPoolConnection => {
    let wrapper = wrappers.get(raw);
    if (!wrapper) {
      const query = ((
        statement: string,
        parameters: unknown[],
        callback?: (error: unknown, result: MysqlQueryResult) => void,
      ) => {
        if (!callback) return raw.query(statement, parameters);
        raw.query(statement, parameters, (error, result) =>
          callback(error ? translate(error) : null, result as MysqlQueryResult),
        );
      }) as MysqlPoolConnection['query'];
      wrapper = { query, release: () => raw.release() };
      wrappers.set(raw, wrapper);
    }
    return wrapper;
  };
  return {
    getConnection(callback) {
      pool.getConnection((error, raw) => {
        if (error) callback(translate(error), undefined as unknown as MysqlPoolConnection);
        else callback(null, wrap(raw));
      });
    },
    end(callback) {
      pool.end(callback);
    },
  };
}
