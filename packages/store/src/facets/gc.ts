import * as gc from '../queries/gc/index.js';
import type { RetentionPolicy } from '../queries/retention.js';
import { toSqlTime } from '../sql-time.js';
import type { StoreAccess } from './access.js';

/** The clock of a GC run: now, and now minus the grace period. */
export interface GcTimes {
  cutoff: Date;
  now: Date;
}

function sqlClock(clock: GcTimes): gc.GcClock {
  return { cutoff: toSqlTime(clock.cutoff), now: clock.now };
}

/**
 * Garbage collection in the index (`store.gc`): read-only planning, sweeps in write
 * transactions that decide everything again on the rows as they are then, the queue of storage
 * objects waiting to be deleted, the cross-process run lock and the history of runs.
 */
export interface StoreGc {
  /** Every repository (id and name), for a GC run to walk. */
  repositories(): Promise<{ id: number; name: string }[]>;
  /** Read-only mark of one repository: the tags, manifests and links a sweep would delete. */
  plan(
    repo: { id: number; name: string },
    policy: RetentionPolicy | undefined,
    clock: GcTimes,
  ): Promise<gc.RepositoryGcPlan>;
  /**
   * Sweeps one repository in one write transaction, re-deciding every item on the rows as they
   * are then (see {@link gc.applyRepositoryPlan}); returns what was actually deleted, and
   * queues the storage objects `pendingFor` names for it. Audit actor `actor` (default `gc`).
   */
  apply(
    plan: gc.RepositoryGcPlan,
    policy: RetentionPolicy | undefined,
    clock: GcTimes,
    actor?: string,
    pendingFor?: (done: gc.RepositoryGcPlan) => gc.PendingObject[],
  ): Promise<gc.RepositoryGcPlan>;
  /** A page of unused blob rows older than `cutoff`, after `after` in digest order. */
  blobCandidates(cutoff: Date, after: string | undefined, limit: number): Promise<gc.GcBlob[]>;
  /** Deletes the blob rows among `digests` still unused, in one transaction; returns them. */
  deleteBlobs(
    digests: readonly string[],
    cutoff: Date,
    actor?: string,
    pendingFor?: (deleted: gc.GcBlob[]) => gc.PendingObject[],
    at?: Date,
  ): Promise<gc.GcBlob[]>;
  /** Dry run: blobs the given repository plans would free. */
  blobsFreedBy(plans: readonly gc.RepositoryGcPlan[], cutoff: Date): Promise<gc.GcBlob[]>;
  /** Which of `digests` the index has a blob row for. */
  existingBlobs(digests: readonly string[]): Promise<Set<string>>;
  /** The manifests, tags, links and referenced blobs the index holds for a repository. */
  repositoryKnown(repository: string): Promise<gc.RepositoryKnown>;
  /** Adds the objects the index still does not know to the pending deletions; returns them. */
  condemnOrphans(
    objects: readonly gc.PendingObject[],
    cutoff: Date,
    at?: Date,
  ): Promise<gc.PendingObject[]>;
  /** Deletes up to `limit` pending objects through `remove` (see {@link gc.drainPending}). */
  drainPending(
    limit: number,
    cutoff: Date,
    remove: (keys: string[]) => Promise<void>,
  ): Promise<gc.DrainResult>;
  /**
   * Before a push looks in storage for what it will use: notes the digests as needed for the
   * grace period and cancels pending deletions of them and of its tags (see
   * {@link gc.reviveForPush}).
   */
  reviveForPush(
    repository: string,
    digests: readonly string[],
    tags: readonly string[],
    at?: Date,
  ): Promise<void>;
  /** Forgets push announcements older than `cutoff` (end of a GC run). */
  pruneRecent(cutoff: Date): Promise<void>;
  /** Takes or renews a cross-process lock until now + `ttlMs`; false when another holds it. */
  acquireLock(name: string, holder: string, ttlMs: number, now?: Date): Promise<boolean>;
  /** Releases a lock `holder` holds. */
  releaseLock(name: string, holder: string): Promise<void>;
  /** Stores a finished GC run's report (the last 50 are kept). */
  saveRun(run: Omit<gc.GcRunRecord, 'id'>): Promise<number>;
  /** The most recent GC run, or `undefined`. */
  lastRun(): Promise<gc.GcRunRecord | undefined>;
}

/** @internal The `store.gc` facet. */
export function storeGc(s: StoreAccess): StoreGc {
  return {
    repositories: () => gc.gcRepositories(s.read),
    plan: (repo, policy, clock) => gc.planRepository(s.read, repo, policy, sqlClock(clock)),
    apply: (plan, policy, clock, actor = 'gc', pendingFor = () => []) =>
      s.write((x) => gc.applyRepositoryPlan(x, plan, policy, sqlClock(clock), actor, pendingFor)),
    blobCandidates: (cutoff, after, limit) =>
      gc.blobCandidates(s.read, toSqlTime(cutoff), after, limit),
    deleteBlobs: (digests, cutoff, actor = 'gc', pendingFor = () => [], at = new Date()) =>
      s.write((x) => gc.deleteBlobRows(x, digests, toSqlTime(cutoff), actor, at, pendingFor)),
    blobsFreedBy: (plans, cutoff) => gc.blobsFreedBy(s.read, plans, toSqlTime(cutoff)),
    existingBlobs: (digests) => gc.existingBlobs(s.read, digests),
    repositoryKnown: (repository) => gc.repositoryKnown(s.read, repository),
    condemnOrphans: (objects, cutoff, at = new Date()) =>
      s.write((x) => gc.condemnOrphans(x, objects, toSqlTime(at), toSqlTime(cutoff))),
    drainPending: (limit, cutoff, remove) =>
      s.write((x) => gc.drainPending(x, limit, toSqlTime(cutoff), remove)),
    reviveForPush: (repository, digests, tags, at = new Date()) =>
      s.write((x) => gc.reviveForPush(x, repository, digests, tags, toSqlTime(at))),
    pruneRecent: (cutoff) => s.write((x) => gc.pruneRecent(x, toSqlTime(cutoff))),
    acquireLock: (name, holder, ttlMs, now = new Date()) =>
      s.write((x) => gc.acquireLock(x, name, holder, now, ttlMs)),
    releaseLock: (name, holder) => s.write((x) => gc.releaseLock(x, name, holder)),
    saveRun: (run) => s.write((x) => gc.saveRun(x, run)),
    lastRun: () => gc.lastRun(s.read),
  };
}
