import type { ObjectStore } from '../storage/object-store.js';
import { Blobs } from './blobs.js';
import { type CatalogEntry, writeCatalog } from './catalog.js';
import { Links } from './links.js';
import { Manifests, type ManifestsOptions } from './manifests.js';
import { Referrers } from './referrers.js';
import { Uploads, type UploadsOptions } from './uploads.js';

export interface RegistryOptions extends UploadsOptions, ManifestsOptions {}

/**
 * The content-addressed registry over one object store: blobs, manifests and tags in the
 * upstream layout, and resumable uploads. It is the storage truth; the SQL index is built from it.
 */
export class Registry {
  readonly blobs: Blobs;
  readonly manifests: Manifests;
  readonly uploads: Uploads;
  readonly links: Links;
  readonly referrers: Referrers;

  constructor(
    readonly store: ObjectStore,
    options: RegistryOptions = {},
  ) {
    this.links = new Links(store);
    this.blobs = new Blobs(store, this.links);
    this.manifests = new Manifests(store, options);
    this.uploads = new Uploads(store, options);
    this.referrers = new Referrers(store);
  }

  /** Rewrites the upstream-compatible `catalog.json` snapshot from `entries`. */
  writeCatalog(entries: AsyncIterable<CatalogEntry> | Iterable<CatalogEntry>): Promise<void> {
    return writeCatalog(this.store, entries);
  }
}
