import { Readable } from 'node:stream';
import type { ObjectStore } from '../storage/object-store.js';
import { Layout } from './layout.js';

/** One repository in the upstream-compatible `catalog.json`. */
export interface CatalogEntry {
  repository: string;
  tags: readonly string[];
  updatedAt: Date;
}

/**
 * Writes `catalog.json` in upstream epoch's format
 * (`{"repositories":{"<repo>":{"tags":{"<tag>":"manifests/<repo>/<tag>.json"},"updatedAt":…}},"updatedAt":…}`),
 * so upstream tools pointed at the bucket keep working. Epoch never reads it to serve anything;
 * it is a snapshot rewritten from the index. The document is streamed, never built as one string.
 */
export async function writeCatalog(
  store: ObjectStore,
  entries: AsyncIterable<CatalogEntry> | Iterable<CatalogEntry>,
  now: Date = new Date(),
): Promise<void> {
  async function* render(): AsyncGenerator<string> {
    yield '{\n  "repositories": {';
    let first = true;
    for await (const entry of entries) {
      const tags = entry.tags
        .map(
          (t) =>
            `\n        ${JSON.stringify(t)}: ${JSON.stringify(Layout.tag(entry.repository, t))}`,
        )
        .join(',');
      yield `${first ? '' : ','}\n    ${JSON.stringify(entry.repository)}: {\n      "tags": {${tags}${
        tags ? '\n      ' : ''
      }},\n      "updatedAt": ${JSON.stringify(entry.updatedAt.toISOString())}\n    }`;
      first = false;
    }
    yield `${first ? '' : '\n  '}},\n  "updatedAt": ${JSON.stringify(now.toISOString())}\n}\n`;
  }
  await store.put(Layout.catalogKey, Readable.from(render()), { contentType: 'application/json' });
}
