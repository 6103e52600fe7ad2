import { type Logger, pino } from 'pino';
import type { ServerConfig } from './config.js';

/** Structured JSON logs on stdout: one object per line, lower-case static messages, fields for data. */
export function createLogger(level: ServerConfig['logLevel']): Logger {
  return pino({ level, base: { service: 'epoch' }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
