import { ListObjectsV2Command, type ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import { MAX_LIST_LIMIT } from '../base.js';
import { compareKeys } from '../keys.js';
import type { ListOptions, ListPage, ObjectInfo } from '../object-store.js';
import { UnsupportedStorageFeatureError } from '../s3-capabilities.js';
import type { S3Context } from './context.js';

/* Listing of the S3 driver: pages in byte order, continued from a cursor. */

/** A listed key: an object, or a prefix rolled up at the delimiter. */
type Entry = { key: string; info?: ObjectInfo };

/** `ObjectStore.list`. */
export async function list(
  s3: S3Context,
  prefix: string,
  limit: number,
  options: ListOptions,
): Promise<ListPage> {
  if (!s3.caps.byteOrderListing) return listUnordered(s3, prefix, limit, options);
  const { cursor, delimiter, signal } = options;
  const entries: Entry[] = [];
  let token: string | undefined;
  let truncated = false;
  do {
    // One more when resuming after a rolled-up prefix: S3 may return that prefix again.
    const want = limit - entries.length + (cursor !== undefined && token === undefined ? 1 : 0);
    const out = await s3.send(
      new ListObjectsV2Command({
        Bucket: s3.bucket,
        Prefix: s3.full(prefix),
        Delimiter: delimiter,
        MaxKeys: Math.min(want, MAX_LIST_LIMIT),
        ContinuationToken: token,
        StartAfter: token === undefined && cursor !== undefined ? s3.full(cursor) : undefined,
      }),
      prefix,
      signal,
    );
    for (const entry of entriesOf(s3, out)) {
      // Past the cursor, and past what this page already has: a server may hand a rolled-up
      // prefix out again when resuming right after it.
      const after = entries.at(-1)?.key ?? cursor;
      if (after === undefined || compareKeys(entry.key, after) > 0) entries.push(entry);
    }
    truncated = out.IsTruncated === true;
    token = out.NextContinuationToken;
  } while (truncated && token !== undefined && entries.length < limit);
  return pageOf(entries, limit, entries.length > limit || truncated);
}

/**
 * `list` on a server whose listings are not in byte order (and whose `StartAfter` and
 * continuation tokens therefore skip or repeat keys across pages): everything under the prefix
 * in one S3 page, sorted and paged here. A prefix with more entries than one S3 page holds
 * cannot be listed correctly on such a server, and says so.
 */
async function listUnordered(
  s3: S3Context,
  prefix: string,
  limit: number,
  options: ListOptions,
): Promise<ListPage> {
  const { cursor, delimiter, signal } = options;
  const out = await s3.send(
    new ListObjectsV2Command({
      Bucket: s3.bucket,
      Prefix: s3.full(prefix),
      Delimiter: delimiter,
      MaxKeys: MAX_LIST_LIMIT,
    }),
    prefix,
    signal,
  );
  if (out.IsTruncated === true) {
    throw new UnsupportedStorageFeatureError(
      'byteOrderListing',
      `cannot list more than ${MAX_LIST_LIMIT} entries under ${JSON.stringify(prefix)}: the S3 server at ${s3.endpoint} does not list keys in byte order, so its pages cannot be continued correctly`,
    );
  }
  const entries = entriesOf(s3, out);
  const after =
    cursor === undefined ? entries : entries.filter((e) => compareKeys(e.key, cursor) > 0);
  return pageOf(after, limit, after.length > limit);
}

/** The objects and rolled-up prefixes of one S3 page that lie under the store's prefix, sorted. */
function entriesOf(s3: S3Context, out: ListObjectsV2CommandOutput): Entry[] {
  const entries: Entry[] = [];
  for (const o of out.Contents ?? []) {
    const key = s3.strip(o.Key);
    if (key === undefined) continue;
    entries.push({
      key,
      info: { key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) },
    });
  }
  for (const p of out.CommonPrefixes ?? []) {
    const key = s3.strip(p.Prefix);
    if (key !== undefined) entries.push({ key });
  }
  entries.sort((a, b) => compareKeys(a.key, b.key));
  return entries;
}

/** The first `limit` entries as a page, with a cursor after the last when `more` follow. */
function pageOf(entries: Entry[], limit: number, more: boolean): ListPage {
  const page = entries.slice(0, limit);
  const result: ListPage = {
    objects: page.flatMap((e) => (e.info ? [e.info] : [])),
    prefixes: page.flatMap((e) => (e.info ? [] : [e.key])),
  };
  const last = page.at(-1);
  if (last && more) result.cursor = last.key;
  return result;
}
