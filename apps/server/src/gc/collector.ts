import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isDigest } from '@epoch/oci';
import { Layout, type ObjectStore, parseManifestKey, type Registry } from '@epoch/registry';
import {
  type GcBlob,
  type NewAuditEvent,
  type PendingObject,
  policyFor,
  type RepositoryGcPlan,
  type RepositoryKnown,
  type Store,
} from '@epoch/store';
import type { Logger } from '../log.js';

/** How a run is asked for. */
export interface GcOptions {
  /** Report what would go; change nothing in the index or storage. */
  dryRun?: boolean;
  /** Grace period: nothing younger than this is collected. */
  delayMs: number;
  /**
   * Repairs the index from storage first, so storage objects the index never heard of (an
   * upstream bucket, a crash between a storage write and its index write) are indexed rather
   * than swept as orphans. Skipped in a dry run, which must change nothing.
   */
  reconcile?: () => Promise<unknown>;
  /** Audit actor, e.g. `gc`, `gc:api`, a token name. */
  actor?: string;
  log?: Logger;
}

/** A list in a report: the total, and the first {@link ITEM_LIMIT} items. */
export interface GcReportList<T> {
  count: number;
  bytes: number;
  items: T[];
}

/** What a run deleted (or, dry, would delete). */
export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  delayMs: number;
  tags: GcReportList<{ repository: string; tag: string; digest: string }>;
  manifests: GcReportList<{ repository: string; digest: string; size: number }>;
  links: GcReportList<{ repository: string; digest: string }>;
  blobs: GcReportList<{ digest: string; size: number }>;
  orphans: GcReportList<{ key: string; size: number }>;
  /** Blob bytes freed in storage (blobs and orphan blobs). */
  bytesReclaimed: number;
  /** Objects not deleted because a push used them again after the index commit. */
  rescued: number;
  errors: string[];
}

/** Another process (or this one) is running GC. */
export class GcBusyError extends Error {
  override readonly name = 'GcBusyError';
}

const LOCK = 'gc';
const LOCK_TTL_MS = 5 * 60_000;
const ITEM_LIMIT = 1000;
const BLOB_PAGE = 1000;
const PENDING_BATCH = 1000;

function list<T>(): GcReportList<T> {
  return { count: 0, bytes: 0, items: [] };
}

function add<T>(target: GcReportList<T>, item: T, bytes = 0): void {
  target.count++;
  target.bytes += bytes;
  if (target.items.length < ITEM_LIMIT) target.items.push(item);
}

function digestFromFile(file: string): string | undefined {
  const dash = file.indexOf('-');
  if (dash < 0) return undefined;
  const digest = `${file.slice(0, dash)}:${file.slice(dash + 1)}`;
  return isDigest(digest) ? digest : undefined;
}

/** What a key under `manifests/` is, for the orphan sweep. */
function classifyManifestsKey(
  key: string,
): { repository: string; kind: 'manifest' | 'link' | 'referrer'; digest: string } | undefined {
  const parsed = parseManifestKey(key);
  if (parsed?.type === 'digest') {
    return { repository: parsed.repository, kind: 'manifest', digest: parsed.digest };
  }
  const path = key.slice(Layout.manifestsPrefix.length);
  const layers = path.lastIndexOf('/_layers/');
  if (layers > 0) {
    const digest = digestFromFile(path.slice(layers + '/_layers/'.length));
    return digest ? { repository: path.slice(0, layers), kind: 'link', digest } : undefined;
  }
  const referrers = path.lastIndexOf('/_referrers/');
  if (referrers > 0 && path.endsWith('.json')) {
    const file = path.slice(referrers + '/_referrers/'.length).split('/')[1];
    const digest = file ? digestFromFile(file.slice(0, -'.json'.length)) : undefined;
    return digest ? { repository: path.slice(0, referrers), kind: 'referrer', digest } : undefined;
  }
  return undefined;
}

/**
 * Online mark and sweep from the index. One run at a time across every process sharing the
 * index (a lock row that expires if its holder dies). Per repository: retention deletes tags,
 * then the manifests nothing keeps (no tag, no live parent index, no live subject, older than
 * the grace period) and repository links no surviving manifest needs go, in one transaction
 * that decides everything again on the rows as they are then. Then blob rows nothing uses,
 * page by page, each page in its own re-checking transaction. Each of these transactions lists
 * the storage objects it let go of in `gc_pending`; after the commit they are deleted in
 * batches, each batch checked against the index once more under lock and unlisted only after
 * the delete succeeded, so a crash in between leaves a list the next run finishes first. Last,
 * the orphan sweep: anything under `blobs/` and `manifests/<repo>/{_digests,_layers,_referrers}`
 * the index does not know, older than the grace period, goes the same way. Tag objects are never
 * orphans: storage is the truth for tags. Pushes announce what they need before they look in
 * storage (`reviveForPush`), which is what makes a racing push win.
 */
export async function collectGarbage(
  registry: Registry,
  index: Store,
  options: GcOptions,
): Promise<GcReport> {
  const dryRun = options.dryRun === true;
  const actor = options.actor ?? 'gc';
  const holder = `${hostname()}:${process.pid}:${randomUUID()}`;
  if (!(await index.acquireLock(LOCK, holder, LOCK_TTL_MS))) {
    throw new GcBusyError('a garbage collection is already running');
  }
  const renew = setInterval(() => {
    index.acquireLock(LOCK, holder, LOCK_TTL_MS).catch(() => undefined);
  }, LOCK_TTL_MS / 3);
  renew.unref();
  const started = new Date();
  const report: GcReport = {
    dryRun,
    startedAt: started.toISOString(),
    finishedAt: '',
    durationMs: 0,
    delayMs: options.delayMs,
    tags: list(),
    manifests: list(),
    links: list(),
    blobs: list(),
    orphans: list(),
    bytesReclaimed: 0,
    rescued: 0,
    errors: [],
  };
  try {
    if (!dryRun && options.reconcile) await options.reconcile();
    const run = new Run(registry.store, index, options, report, actor);
    await run.drain();
    await run.repositories();
    await run.drain();
    await run.blobs();
    await run.orphans();
    if (!dryRun) await index.pruneGcRecent(new Date(Date.now() - options.delayMs));
  } catch (err) {
    // The stored report says why the run stopped; what it did before that is in it too.
    report.errors.push(err instanceof Error ? err.message : String(err));
    throw err;
  } finally {
    clearInterval(renew);
    const finished = new Date();
    report.finishedAt = finished.toISOString();
    report.durationMs = finished.getTime() - started.getTime();
    try {
      await index.saveGcRun({
        startedAt: started,
        finishedAt: finished,
        dryRun,
        report: report as unknown as Record<string, unknown>,
      });
    } finally {
      await index.releaseLock(LOCK, holder);
    }
  }
  options.log?.info(
    {
      dryRun,
      tags: report.tags.count,
      manifests: report.manifests.count,
      links: report.links.count,
      blobs: report.blobs.count,
      orphans: report.orphans.count,
      bytesReclaimed: report.bytesReclaimed,
      ms: report.durationMs,
    },
    'garbage collected',
  );
  return report;
}

/** The storage objects of what a repository sweep dropped from the index. */
function pendingObjectsOf(done: RepositoryGcPlan): PendingObject[] {
  const repository = done.repository;
  return [
    ...done.tags.map(
      (t): PendingObject => ({
        key: Layout.tag(repository, t.name),
        kind: 'tag',
        repository,
        tag: t.name,
      }),
    ),
    ...done.manifests.flatMap((m): PendingObject[] => [
      {
        key: Layout.manifestByDigest(repository, m.digest),
        kind: 'manifest',
        repository,
        digest: m.digest,
        size: m.size,
      },
      ...(m.subject
        ? [
            {
              key: Layout.referrer(repository, m.subject, m.digest),
              kind: 'referrer' as const,
              repository,
              digest: m.digest,
            },
          ]
        : []),
    ]),
    ...done.links.map(
      (d): PendingObject => ({
        key: Layout.link(repository, d),
        kind: 'link',
        repository,
        digest: d,
      }),
    ),
  ];
}

class Run {
  readonly #plans: RepositoryGcPlan[] = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly index: Store,
    private readonly options: GcOptions,
    private readonly report: GcReport,
    private readonly actor: string,
  ) {}

  #clock() {
    const now = new Date();
    return { now, cutoff: new Date(now.getTime() - this.options.delayMs) };
  }

  async #deleteObjects(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.store.deleteMany(keys);
  }

  async repositories(): Promise<void> {
    const policies = await this.index.listRetentionPolicies();
    for (const repo of await this.index.gcRepositories()) {
      const policy = policyFor(policies, repo.name);
      const clock = this.#clock();
      const plan = await this.index.planGc(repo, policy, clock);
      if (plan.tags.length + plan.manifests.length + plan.links.length === 0) continue;
      const done = this.options.dryRun
        ? plan
        : await this.index.applyGc(plan, policy, clock, this.actor, pendingObjectsOf);
      this.#plans.push(done);
      for (const t of done.tags)
        add(this.report.tags, { repository: repo.name, tag: t.name, digest: t.digest });
      for (const m of done.manifests) {
        add(
          this.report.manifests,
          { repository: repo.name, digest: m.digest, size: m.size },
          m.size,
        );
      }
      for (const d of done.links) add(this.report.links, { repository: repo.name, digest: d });
    }
  }

  async blobs(): Promise<void> {
    const { cutoff } = this.#clock();
    if (this.options.dryRun) {
      for (const b of await this.index.gcBlobsFreedBy(this.#plans, cutoff)) this.#countBlob(b);
      return;
    }
    let after: string | undefined;
    for (;;) {
      const page = await this.index.gcBlobCandidates(cutoff, after, BLOB_PAGE);
      if (page.length === 0) break;
      after = page.at(-1)?.digest;
      const deleted = await this.index.deleteGcBlobs(
        page.map((b) => b.digest),
        cutoff,
        this.actor,
        (rows) =>
          rows.map((b) => ({
            key: Layout.blob(b.digest),
            kind: 'blob',
            digest: b.digest,
            size: b.size,
          })),
      );
      for (const b of deleted) add(this.report.blobs, b, b.size);
      await this.drain();
      if (page.length < BLOB_PAGE) break;
    }
  }

  #countBlob(b: GcBlob): void {
    add(this.report.blobs, b, b.size);
    this.report.bytesReclaimed += b.size;
  }

  /**
   * Deletes pending objects from storage, 1000 per transaction (each re-checked against the
   * index under lock first). Left over by a crashed run, they go at the start of the next.
   */
  async drain(): Promise<void> {
    if (this.options.dryRun) return;
    for (;;) {
      const step = await this.index.drainGcPending(PENDING_BATCH, this.#clock().cutoff, (keys) =>
        this.#deleteObjects(keys),
      );
      this.report.rescued += step.rescued;
      for (const o of step.deleted)
        if (o.kind === 'blob') this.report.bytesReclaimed += o.size ?? 0;
      if (!step.more) break;
    }
  }

  async orphans(): Promise<void> {
    const { cutoff } = this.#clock();
    const orphaned: PendingObject[] = [];
    const flush = async (): Promise<void> => {
      const batch = orphaned.splice(0);
      if (batch.length === 0) return;
      const condemned = this.options.dryRun
        ? batch
        : await this.index.condemnOrphans(batch, this.#clock().cutoff);
      for (const o of condemned)
        add(this.report.orphans, { key: o.key, size: o.size ?? 0 }, o.size);
      if (this.options.dryRun) {
        for (const o of condemned) if (o.kind === 'blob') this.report.bytesReclaimed += o.size ?? 0;
        return;
      }
      await this.index.appendEvents(
        condemned.map(
          (o): NewAuditEvent => ({
            actor: this.actor,
            action: 'gc.delete.orphan',
            ...(o.repository ? { repository: o.repository } : {}),
            ...(o.digest ? { digest: o.digest } : {}),
            detail: { key: o.key, size: o.size ?? 0 },
          }),
        ),
      );
      await this.drain();
    };

    // blobs/<alg>/<hex>
    for (let cursor: string | undefined; ; ) {
      const page = await this.store.list(Layout.blobsPrefix, cursor ? { cursor } : {});
      const old = page.objects
        .filter((o) => o.lastModified < cutoff)
        .map((o) => ({ ...o, digest: o.key.slice(Layout.blobsPrefix.length).replace('/', ':') }))
        .filter((o) => isDigest(o.digest));
      const known = await this.index.existingBlobs(old.map((o) => o.digest));
      for (const o of old) {
        if (known.has(o.digest)) continue;
        orphaned.push({ key: o.key, kind: 'blob', size: o.size, digest: o.digest });
      }
      await flush();
      if (!page.cursor) break;
      cursor = page.cursor;
    }

    // manifests/<repo>/{_digests,_layers,_referrers}/…
    let repo: string | undefined;
    let known: RepositoryKnown | undefined;
    for (let cursor: string | undefined; ; ) {
      const page = await this.store.list(Layout.manifestsPrefix, cursor ? { cursor } : {});
      for (const o of page.objects) {
        if (o.lastModified >= cutoff) continue;
        const what = classifyManifestsKey(o.key);
        if (!what) continue;
        if (what.repository !== repo || !known) {
          repo = what.repository;
          known = await this.index.repositoryKnown(repo);
        }
        const needed =
          what.kind === 'link'
            ? known.links.has(what.digest) || known.referenced.has(what.digest)
            : known.manifests.has(what.digest);
        if (!needed) {
          orphaned.push({
            key: o.key,
            kind: what.kind,
            size: o.size,
            repository: what.repository,
            digest: what.digest,
          });
        }
      }
      await flush();
      if (!page.cursor) break;
      cursor = page.cursor;
    }
  }
}
