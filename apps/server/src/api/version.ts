import { readFileSync } from 'node:fs';
import type { ApiHandler, ApiServices } from './handler.js';

/** The server package's version, read once (the file sits two levels above `src/api` and `dist/api`). */
const version = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** `GET /api/version`: `{version, storage, index}` for the dashboard's about panel. */
export function getVersion({ registry, index }: ApiServices): ApiHandler {
  return async (c) => c.json({ version, storage: registry.store.kind, index: index.dialect });
}
