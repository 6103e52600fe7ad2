import type { RepositoryScan, StorageScan } from '@epoch/oci';
import * as aggregates from '../queries/aggregates.js';
import * as blobs from '../queries/blobs.js';
import * as manifests from '../queries/manifests.js';
import * as reconcile from '../queries/reconcile.js';
import * as tags from '../queries/tags.js';
import { toSqlTime } from '../sql-time.js';
import type { StoreAccess } from './access.js';

/**
 * Writes to the index (`store.writes`): the write-through operations that mirror a registry
 * operation, one transaction each, and the reconciliation that makes the index agree with
 * storage.
 */
export interface IndexWrites {
  /** Indexes a pushed manifest and its tags in one transaction (see {@link manifests.recordManifest}). */
  recordManifest(
    repo: string,
    input: manifests.ManifestRecord,
  ): Promise<manifests.RecordManifestResult>;
  /** Deletes a tag; returns whether it existed. */
  deleteTag(repo: string, tag: string, at?: Date): Promise<boolean>;
  /** Deletes a manifest with its tags and blob references; reports the tags it removed. */
  deleteManifest(repo: string, digest: string, at?: Date): Promise<manifests.DeleteManifestResult>;
  /** Links a blob to a repository (pushed or mounted there). */
  linkBlob(
    repo: string,
    digest: string,
    size: number,
    mediaType?: string,
    at?: Date,
  ): Promise<void>;
  /** Removes a repository↔blob link; returns whether it existed. */
  unlinkBlob(repo: string, digest: string): Promise<boolean>;
  /**
   * Makes the index agree with a storage scan (phase two of a reindex; phase one reads
   * storage without touching the index). One short write transaction per repository, so
   * pushes keep flowing between them; rows written at or after `scan.startedAt` are never
   * deleted or moved, so a push that lands after the read is not undone. Idempotent: a second
   * run with the same storage changes nothing. Ends with one pass that corrects every blob's
   * reference count. A repository that fails is reported in `errors` and the run goes on.
   */
  reconcile(scan: StorageScan): Promise<reconcile.ReconcileReport>;
  /**
   * Finds repositories whose maintained aggregates differ from their rows (read-only, 1,000
   * repositories per check) and recounts those under their locks; returns how many it
   * corrected. The reconcile ends with it, so aggregates left wrong by anything (a replica
   * still running code from before migration 0004, a hand edit) are repaired by the next
   * reconcile.
   */
  repairAggregates(): Promise<number>;
}

async function repairAggregates(s: StoreAccess): Promise<number> {
  let repaired = 0;
  for (let after = 0; ; ) {
    const { drift, last } = await aggregates.aggregateDrift(s.read, after, 1000);
    for (const d of drift) {
      repaired += await s.write(async (x) => {
        await aggregates.lockRepositoryId(x, d.id);
        return aggregates.recountRepositories(x, [d.id]);
      });
    }
    if (last === undefined) return repaired;
    after = last;
  }
}

async function reconcileAll(s: StoreAccess, scan: StorageScan): Promise<reconcile.ReconcileReport> {
  const report = reconcile.emptyReport();
  report.errors.push(...(scan.errors ?? []));
  const seen = new Set<string>();
  const apply = async (repo: RepositoryScan): Promise<void> => {
    try {
      await s.write((x) =>
        reconcile.reconcileRepository(x, repo, scan.startedAt, report, scan.recheck),
      );
    } catch (error) {
      report.errors.push({
        repository: repo.name,
        message: error instanceof Error ? error.message : String(error),
      });
    }
  };
  for (const repo of scan.repositories) {
    seen.add(repo.name);
    await apply(repo);
  }
  // Repositories storage no longer has: reconciled against nothing, which removes what is
  // older than the scan and then the repository row if nothing newer holds it.
  for (const name of await reconcile.repositoryNames(s.read)) {
    if (seen.has(name)) continue;
    await apply({ name, manifests: new Map(), tags: new Map(), blobs: new Map() });
  }
  report.blobs.updated += await s.write((x) =>
    reconcile.recountBlobReferences(x, 'all', toSqlTime(new Date())),
  );
  report.aggregates += await repairAggregates(s);
  return report;
}

/** @internal The `store.writes` facet. */
export function indexWrites(s: StoreAccess): IndexWrites {
  return {
    recordManifest: (repo, input) => {
      const at = toSqlTime(input.pushedAt ?? new Date());
      return s.write((x) => manifests.recordManifest(x, repo, input, at));
    },
    deleteTag: (repo, tag, at = new Date()) =>
      s.write((x) => tags.deleteTag(x, repo, tag, toSqlTime(at))),
    deleteManifest: (repo, digest, at = new Date()) =>
      s.write((x) => manifests.deleteManifest(x, repo, digest, toSqlTime(at))),
    linkBlob: (repo, digest, size, mediaType = 'application/octet-stream', at = new Date()) =>
      s.write((x) => blobs.linkBlob(x, repo, { digest, size, mediaType }, toSqlTime(at))),
    unlinkBlob: (repo, digest) => s.write((x) => blobs.unlinkBlob(x, repo, digest)),
    reconcile: (scan) => reconcileAll(s, scan),
    repairAggregates: () => repairAggregates(s),
  };
}
