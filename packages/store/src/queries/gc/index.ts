/**
 * Garbage collection in the index: planning (`plan.ts`, `blobs.ts`, read-only), applying
 * (`apply.ts`, in write transactions), the run lock (`lock.ts`), run history (`history.ts`) and
 * the queue of storage objects to delete (`queue.ts`).
 */

export { applyRepositoryPlan, deleteBlobRows } from './apply.js';
export { blobCandidates, blobsFreedBy, existingBlobs } from './blobs.js';
export { type GcRunRecord, lastRun, saveRun } from './history.js';
export { acquireLock, releaseLock } from './lock.js';
export {
  type GcBlob,
  type GcClock,
  type GcManifest,
  type GcTag,
  gcRepositories,
  planRepository,
  type RepositoryGcPlan,
  type RepositoryKnown,
  repositoryKnown,
} from './plan.js';
export {
  condemnOrphans,
  type DrainResult,
  drainPending,
  type PendingObject,
  pruneRecent,
  reviveForPush,
} from './queue.js';
