import { createRequire } from 'node:module';

/** This server's version, from its package.json (the same file from `src/` and `dist/`). */
export const VERSION: string = (
  createRequire(import.meta.url)('../package.json') as { version: string }
).version;
