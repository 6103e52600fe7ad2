import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isDigest } from '@epoch/oci';
import {
  Layout,
  type ObjectInfo,
  type ObjectStore,
  parseManifestKey,
  type Registry,
} from '@epoch/registry';
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
  /**
   * What the grace period held back: garbage but for its age, each with the time it may go
   * (its push, link or write plus `delayMs`). `until` is the latest of those times: a run then
   * collects all of it, unless something is used again meanwhile.
   */
  held: {
    manifests: GcReportList<{ repository: string; digest: string; size: number; until: string }>;
    blobs: GcReportList<{ digest: string; size: number; until: string }>;
    orphans: GcReportList<{ key: string; size: number; until: string }>;
    until: string | null;
  };
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
  if (!(await index.gc.acquireLock(LOCK, holder, LOCK_TTL_MS))) {
    throw new GcBusyError('a garbage collection is already running');
  }
  const renew = setInterval(() => {
    index.gc.acquireLock(LOCK, holder, LOCK_TTL_MS).catch(() => undefined);
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
    held: { manifests: list(), blobs: list(), orphans: list(), until: null },
    errors: [],
  };
  try {
    if (!dryRun && options.reconcile) await options.reconcile();
    const run = new Run(registry.store, index, options, report, actor);
    await run.drain();
    await run.repositories();
    await run.drain();
    await run.blobs();
    await run.held();
    await run.orphans();
    if (!dryRun) await index.gc.pruneRecent(new Date(Date.now() - options.delayMs));
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
      await index.gc.saveRun({
        startedAt: started,
        finishedAt: finished,
        dryRun,
        report: report as unknown as Record<string, unknown>,
      });
    } finally {
      await index.gc.releaseLock(LOCK, holder);
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
      held: report.held.manifests.count + report.held.blobs.count + report.held.orphans.count,
      heldUntil: report.held.until,
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
  /** Every blob this run took (the report lists only the first {@link ITEM_LIMIT}). */
  readonly #collectedBlobs = new Set<string>();

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
    const policies = await this.index.retention.listPolicies();
    for (const repo of await this.index.gc.repositories()) {
      const policy = policyFor(policies, repo.name);
      const clock = this.#clock();
      const plan = await this.index.gc.plan(repo, policy, clock);
      if (plan.tags.length + plan.manifests.length + plan.links.length === 0) continue;
      const done = this.options.dryRun
        ? plan
        : await this.index.gc.apply(plan, policy, clock, this.actor, pendingObjectsOf);
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
      for (const b of await this.index.gc.blobsFreedBy(this.#plans, cutoff)) this.#countBlob(b);
      return;
    }
    let after: string | undefined;
    for (;;) {
      const page = await this.index.gc.blobCandidates(cutoff, after, BLOB_PAGE);
      if (page.length === 0) break;
      after = page.at(-1)?.digest;
      const deleted = await this.index.gc.deleteBlobs(
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
      for (const b of deleted) {
        this.#collectedBlobs.add(b.digest);
        add(this.report.blobs, b, b.size);
      }
      await this.drain();
      if (page.length < BLOB_PAGE) break;
    }
  }

  /** Records that the grace period keeps an item until `since + delayMs`. */
  #hold<T>(target: GcReportList<T & { until: string }>, item: T, size: number, since: Date): void {
    const until = new Date(since.getTime() + this.options.delayMs).toISOString();
    add(target, { ...item, until }, size);
    if (this.report.held.until === null || until > this.report.held.until) {
      this.report.held.until = until;
    }
  }

  /**
   * What the grace period alone keeps: the manifests and blobs a run without one would take
   * now, less what this run took (or, dry, would take). Read-only, so a dry run can say why it
   * found nothing after a tag was deleted a minute ago.
   */
  async held(): Promise<void> {
    if (this.options.delayMs <= 0) return;
    const now = new Date();
    const noDelay = { now, cutoff: now };
    const collected = new Set(
      this.#plans.flatMap((p) => p.manifests.map((m) => `${p.repository}@${m.digest}`)),
    );
    const policies = await this.index.retention.listPolicies();
    const plans: RepositoryGcPlan[] = [];
    for (const repo of await this.index.gc.repositories()) {
      const plan = await this.index.gc.plan(repo, policyFor(policies, repo.name), noDelay);
      plans.push(plan);
      for (const m of plan.manifests) {
        if (collected.has(`${repo.name}@${m.digest}`)) continue;
        this.#hold(
          this.report.held.manifests,
          { repository: repo.name, digest: m.digest, size: m.size },
          m.size,
          m.pushedAt ?? now,
        );
      }
    }
    for (const b of await this.index.gc.blobsFreedBy(plans, now)) {
      if (this.#collectedBlobs.has(b.digest)) continue;
      this.#hold(
        this.report.held.blobs,
        { digest: b.digest, size: b.size },
        b.size,
        b.updatedAt ?? now,
      );
    }
  }

  #countBlob(b: GcBlob): void {
    this.#collectedBlobs.add(b.digest);
    add(this.report.blobs, { digest: b.digest, size: b.size }, b.size);
    this.report.bytesReclaimed += b.size;
  }

  /**
   * Deletes pending objects from storage, 1000 per transaction (each re-checked against the
   * index under lock first). Left over by a crashed run, they go at the start of the next.
   */
  async drain(): Promise<void> {
    if (this.options.dryRun) return;
    for (;;) {
      const step = await this.index.gc.drainPending(PENDING_BATCH, this.#clock().cutoff, (keys) =>
        this.#deleteObjects(keys),
      );
      this.report.rescued += step.rescued;
      for (const o of step.deleted)
        if (o.kind === 'blob') this.report.bytesReclaimed += o.size ?? 0;
      if (!step.more) break;
    }
  }

  /** Storage objects nothing in the index knows: old ones condemned, young ones held back. */
  async orphans(): Promise<void> {
    const { cutoff } = this.#clock();
    await this.#orphanBlobs(cutoff);
    await this.#orphanManifestKeys(cutoff);
  }

  /** Condemns (or, dry, only counts) a batch of orphans, and deletes what was condemned. */
  async #condemn(batch: PendingObject[]): Promise<void> {
    if (batch.length === 0) return;
    const condemned = this.options.dryRun
      ? batch
      : await this.index.gc.condemnOrphans(batch, this.#clock().cutoff);
    for (const o of condemned) add(this.report.orphans, { key: o.key, size: o.size ?? 0 }, o.size);
    if (this.options.dryRun) {
      for (const o of condemned) if (o.kind === 'blob') this.report.bytesReclaimed += o.size ?? 0;
      return;
    }
    await this.index.audit.appendAll(
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
  }

  /** Lists `prefix` page by page and condemns what `orphansOf` finds on each page. */
  async #sweep(
    prefix: string,
    orphansOf: (objects: ObjectInfo[]) => Promise<PendingObject[]>,
  ): Promise<void> {
    for (let cursor: string | undefined; ; ) {
      const page = await this.store.list(prefix, cursor ? { cursor } : {});
      await this.#condemn(await orphansOf(page.objects));
      if (!page.cursor) break;
      cursor = page.cursor;
    }
  }

  /** blobs/<alg>/<hex> the index does not know. */
  async #orphanBlobs(cutoff: Date): Promise<void> {
    await this.#sweep(Layout.blobsPrefix, async (objects) => {
      const blobs = objects
        .map((o) => ({ ...o, digest: o.key.slice(Layout.blobsPrefix.length).replace('/', ':') }))
        .filter((o) => isDigest(o.digest));
      const known = await this.index.gc.existingBlobs(blobs.map((o) => o.digest));
      const orphaned: PendingObject[] = [];
      for (const o of blobs) {
        if (known.has(o.digest)) continue;
        if (o.lastModified < cutoff) {
          orphaned.push({ key: o.key, kind: 'blob', size: o.size, digest: o.digest });
        } else if (this.options.delayMs > 0) {
          // Unknown to the index but young: an upload between its storage and index writes,
          // or an orphan still inside the grace period.
          this.#hold(
            this.report.held.orphans,
            { key: o.key, size: o.size },
            o.size,
            o.lastModified,
          );
        }
      }
      return orphaned;
    });
  }

  /** manifests/<repo>/{_digests,_layers,_referrers}/… the index does not need. */
  async #orphanManifestKeys(cutoff: Date): Promise<void> {
    let repo: string | undefined;
    let known: RepositoryKnown | undefined;
    const knownIn = async (repository: string): Promise<RepositoryKnown> => {
      if (repository !== repo || !known) {
        repo = repository;
        known = await this.index.gc.repositoryKnown(repository);
      }
      return known;
    };
    await this.#sweep(Layout.manifestsPrefix, async (objects) => {
      const orphaned: PendingObject[] = [];
      for (const o of objects) {
        const what = o.lastModified < cutoff ? classifyManifestsKey(o.key) : undefined;
        if (!what) continue;
        const k = await knownIn(what.repository);
        const needed =
          what.kind === 'link'
            ? k.links.has(what.digest) || k.referenced.has(what.digest)
            : k.manifests.has(what.digest);
        if (needed) continue;
        orphaned.push({
          key: o.key,
          kind: what.kind,
          size: o.size,
          repository: what.repository,
          digest: what.digest,
        });
      }
      return orphaned;
    });
  }
}
