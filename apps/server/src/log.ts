import { type Logger, pino } from 'pino';
import type { ServerConfig } from './config.js';

/**
 * Structured JSON logs on stdout: one object per line, lower-case static messages, fields for
 * data. `fd` 2 sends them to stderr instead, for commands whose stdout is their output.
 */
export function createLogger(level: ServerConfig['logLevel'], fd: 1 | 2 = 1): Logger {
  const options = { level, base: { service: 'epoch' }, timestamp: pino.stdTimeFunctions.isoTime };
  return fd === 2 ? pino(options, pino.destination({ fd: 2, sync: true })) : pino(options);
}

export type { Logger };
