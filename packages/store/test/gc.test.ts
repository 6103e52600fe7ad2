import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GcTimes, PendingObject, RepositoryGcPlan, Store } from '../src/index.js';
import { blob, containerImage, forEachDatabase, imageIndex, type TestDatabase } from './helpers.js';

const REPO = 'team/app';
const day = 24 * 60 * 60 * 1000;
/** When the fixtures were pushed: long before the cutoff. */
const T0 = new Date('2026-01-01T00:00:00Z');
/** The run's clock: a one-day grace period. */
const CLOCK: GcTimes = {
  now: new Date('2026-01-10T00:00:00Z'),
  cutoff: new Date('2026-01-09T00:00:00Z'),
};
/** After the cutoff: what happens then is protected by the grace period. */
const RECENT = new Date('2026-01-09T12:00:00Z');

function subjectOf(m: { digest: string; bytes: Uint8Array }) {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: m.digest,
    size: m.bytes.length,
  };
}

/**
 * One repository with something of every kind: a tagged image and its referrer, an index with
 * an untagged child, a young untagged image, an old untagged image with its referrer, and two
 * links to blobs no manifest uses (one old, one recent).
 */
async function fixture(store: Store) {
  const kept = containerImage([10]);
  const keptRef = containerImage([11], { subject: subjectOf(kept) });
  const child = containerImage([12]);
  const index = imageIndex([{ digest: child.digest, size: child.bytes.length, arch: 'amd64' }]);
  const young = containerImage([13]);
  const gone = containerImage([14, 15]);
  const goneRef = containerImage([16], { subject: subjectOf(gone) });
  const loose = blob(17);
  const fresh = blob(18);
  const w = store.writes;
  await w.recordManifest(REPO, { ...kept, tags: ['v1'], pushedAt: T0 });
  await w.recordManifest(REPO, { ...keptRef, pushedAt: T0 });
  await w.recordManifest(REPO, { ...child, pushedAt: T0 });
  await w.recordManifest(REPO, { ...index, tags: ['multi'], pushedAt: T0 });
  await w.recordManifest(REPO, { ...young, pushedAt: RECENT });
  await w.recordManifest(REPO, { ...gone, pushedAt: T0 });
  await w.recordManifest(REPO, { ...goneRef, pushedAt: T0 });
  await w.linkBlob(REPO, loose.digest, loose.size, loose.mediaType, T0);
  await w.linkBlob(REPO, fresh.digest, fresh.size, fresh.mediaType, RECENT);
  return { kept, keptRef, child, index, young, gone, goneRef, loose, fresh };
}

async function planOf(store: Store, policy?: Parameters<Store['gc']['plan']>[1]) {
  const repos = await store.gc.repositories();
  const repo = repos.find((r) => r.name === REPO);
  if (!repo) throw new Error(`${REPO} is not in the index`);
  return store.gc.plan(repo, policy, CLOCK);
}

const digests = (plan: RepositoryGcPlan) => plan.manifests.map((m) => m.digest).sort();

async function eventsOf(store: Store, action: string) {
  const page = await store.audit.list({ limit: 100 });
  return page.items.filter((e) => e.action === action);
}

const manifestObjects = (done: RepositoryGcPlan): PendingObject[] =>
  done.manifests.map((m) => ({
    key: `manifests/${m.digest}`,
    kind: 'manifest',
    repository: done.repository,
    digest: m.digest,
  }));

forEachDatabase((fresh) => {
  let database: TestDatabase;
  let store: Store;
  beforeEach(async () => {
    database = await fresh();
    store = await database.open();
  });
  afterEach(async () => {
    await store.close();
    await database.drop();
  });

  describe('planning', () => {
    it('marks from tags, the grace period, index children and referrer subjects', async () => {
      const f = await fixture(store);
      const plan = await planOf(store);
      expect(plan.repository).toBe(REPO);
      expect(digests(plan)).toEqual([f.gone.digest, f.goneRef.digest].sort());
      expect(plan.tags).toEqual([]);
      // Only the old link no manifest uses: the recent one is in its grace period.
      expect(plan.links).toEqual([f.loose.digest]);
      // A plan reads only: everything is still there.
      expect(await store.reads.hasManifest(REPO, f.gone.digest)).toBe(true);
    });

    it('deletes tags past the policy and the manifests only they kept', async () => {
      const older = containerImage([20]);
      const newer = containerImage([21]);
      await store.writes.recordManifest(REPO, { ...older, tags: ['a'], pushedAt: T0 });
      await store.writes.recordManifest(REPO, {
        ...newer,
        tags: ['b'],
        pushedAt: new Date(T0.getTime() + day),
      });
      const policy = { repositoryPattern: '**', keepLast: 1 };
      const plan = await planOf(store, policy);
      expect(plan.tags.map((t) => t.name)).toEqual(['a']);
      expect(digests(plan)).toEqual([older.digest]);
      expect(digests(await planOf(store))).toEqual([]);
    });

    it('counts in a dry run the blobs the plans would free, without deleting them', async () => {
      const f = await fixture(store);
      const plan = await planOf(store);
      const freed = await store.gc.blobsFreedBy([plan], CLOCK.cutoff);
      const expected = [
        f.gone.config.digest,
        ...f.gone.layers.map((l) => l.digest),
        f.goneRef.config.digest,
        ...f.goneRef.layers.map((l) => l.digest),
        f.loose.digest,
      ].sort();
      expect(freed.map((b) => b.digest).sort()).toEqual(expected);
      expect(await store.gc.blobCandidates(CLOCK.cutoff, undefined, 100)).toEqual([]);
      expect(await store.reads.getBlob(f.loose.digest)).toBeDefined();
    });
  });

  describe('applying', () => {
    it('deletes what the plan names, with audit events and queued storage objects', async () => {
      const f = await fixture(store);
      const plan = await planOf(store);
      const done = await store.gc.apply(plan, undefined, CLOCK, 'gc-test', manifestObjects);
      expect(digests(done)).toEqual(digests(plan));
      expect(done.links).toEqual([f.loose.digest]);
      expect(await store.reads.hasManifest(REPO, f.gone.digest)).toBe(false);
      expect(await store.reads.hasManifest(REPO, f.goneRef.digest)).toBe(false);
      for (const m of [f.kept, f.keptRef, f.child, f.index, f.young]) {
        expect(await store.reads.hasManifest(REPO, m.digest)).toBe(true);
      }
      expect(await store.reads.isBlobLinked(REPO, f.loose.digest)).toBe(false);
      expect(await store.reads.isBlobLinked(REPO, f.fresh.digest)).toBe(true);
      // The freed blobs lose their references but keep their rows until the blob sweep.
      expect((await store.reads.getBlob(f.gone.config.digest))?.refCount).toBe(0);

      const deleted = await eventsOf(store, 'gc.delete.manifest');
      expect(deleted.map((e) => e.digest).sort()).toEqual(digests(plan));
      expect(deleted[0]).toMatchObject({ actor: 'gc-test', repository: REPO, at: CLOCK.now });
      const gone = deleted.find((e) => e.digest === f.gone.digest);
      expect(gone?.detail).toEqual({ size: f.gone.bytes.length });
      expect((await eventsOf(store, 'gc.delete.link')).map((e) => e.digest)).toEqual([
        f.loose.digest,
      ]);

      // The objects pendingFor named are queued for the drain.
      const removed: string[][] = [];
      const drained = await store.gc.drainPending(100, CLOCK.cutoff, async (keys) => {
        removed.push(keys);
      });
      expect(removed.flat().sort()).toEqual(digests(plan).map((d) => `manifests/${d}`));
      expect(drained).toMatchObject({ rescued: 0, more: false });

      // Applying the same plan again finds nothing left to delete.
      const again = await store.gc.apply(plan, undefined, CLOCK);
      expect(again).toMatchObject({ tags: [], manifests: [], links: [] });
    });

    it('applies tag deletions and writes their events', async () => {
      const older = containerImage([20]);
      await store.writes.recordManifest(REPO, { ...older, tags: ['a'], pushedAt: T0 });
      await store.writes.recordManifest(REPO, {
        ...containerImage([21]),
        tags: ['b'],
        pushedAt: new Date(T0.getTime() + day),
      });
      const policy = { repositoryPattern: '**', keepLast: 1 };
      const done = await store.gc.apply(await planOf(store, policy), policy, CLOCK);
      expect(done.tags.map((t) => t.name)).toEqual(['a']);
      expect(digests(done)).toEqual([older.digest]);
      expect((await store.reads.listTagNames(REPO)).items).toEqual(['b']);
      const events = await eventsOf(store, 'gc.delete.tag');
      expect(events).toMatchObject([{ actor: 'gc', reference: 'a', digest: older.digest }]);
    });

    it('keeps what a push made live again between the plan and the sweep', async () => {
      const f = await fixture(store);
      const plan = await planOf(store);
      // Re-tagged, and the loose blob linked again by a push: both are live now.
      await store.writes.recordManifest(REPO, { ...f.gone, tags: ['back'], pushedAt: RECENT });
      await store.writes.linkBlob(REPO, f.loose.digest, f.loose.size, f.loose.mediaType, RECENT);
      const done = await store.gc.apply(plan, undefined, CLOCK, 'gc', manifestObjects);
      // The referrer of a live subject is live again too.
      expect(done.manifests).toEqual([]);
      expect(done.links).toEqual([]);
      expect(await store.reads.hasManifest(REPO, f.gone.digest)).toBe(true);
      expect(await store.reads.hasManifest(REPO, f.goneRef.digest)).toBe(true);
      expect(await store.reads.isBlobLinked(REPO, f.loose.digest)).toBe(true);
      expect(await eventsOf(store, 'gc.delete.manifest')).toEqual([]);
      const drained = await store.gc.drainPending(100, CLOCK.cutoff, async () => undefined);
      expect(drained.deleted).toEqual([]);
    });

    it('sweeps blob rows nothing uses, except those a push announced', async () => {
      const f = await fixture(store);
      await store.gc.apply(await planOf(store), undefined, CLOCK);
      const freed = [
        f.gone.config.digest,
        ...f.gone.layers.map((l) => l.digest),
        f.goneRef.config.digest,
        ...f.goneRef.layers.map((l) => l.digest),
        f.loose.digest,
      ].sort();
      const candidates = await store.gc.blobCandidates(CLOCK.cutoff, undefined, 100);
      expect(candidates.map((b) => b.digest)).toEqual(freed);
      // Paged by digest.
      const first = await store.gc.blobCandidates(CLOCK.cutoff, undefined, 2);
      const rest = await store.gc.blobCandidates(CLOCK.cutoff, first.at(-1)?.digest, 100);
      expect([...first, ...rest].map((b) => b.digest)).toEqual(freed);

      // A push about to use the loose blob announces it: the sweep leaves it.
      await store.gc.reviveForPush(REPO, [f.loose.digest], [], RECENT);
      const deleted = await store.gc.deleteBlobs(freed, CLOCK.cutoff, 'gc-test', (blobs) =>
        blobs.map((b) => ({ key: `blobs/${b.digest}`, kind: 'blob', digest: b.digest })),
      );
      const swept = freed.filter((d) => d !== f.loose.digest);
      expect(deleted.map((b) => b.digest).sort()).toEqual(swept);
      expect(await store.reads.getBlob(f.gone.config.digest)).toBeUndefined();
      expect(await store.reads.getBlob(f.loose.digest)).toBeDefined();
      expect(await store.gc.existingBlobs(freed)).toEqual(new Set([f.loose.digest]));
      const events = await eventsOf(store, 'gc.delete.blob');
      expect(events.map((e) => e.digest).sort()).toEqual(swept);
      expect(events[0]).toMatchObject({ actor: 'gc-test' });
      expect(events[0]?.repository).toBeUndefined();
      const drained = await store.gc.drainPending(100, CLOCK.cutoff, async () => undefined);
      expect(drained.deleted.map((o) => o.digest).sort()).toEqual(swept);
    });
  });

  describe('deletion queue', () => {
    it('condemns only objects the index does not know', async () => {
      const f = await fixture(store);
      const unknown = blob(1).digest;
      const objects: PendingObject[] = [
        { key: 'b/known', kind: 'blob', digest: f.kept.config.digest },
        { key: 'b/unknown', kind: 'blob', digest: unknown },
        { key: 't/v1', kind: 'tag', repository: REPO, tag: 'v1' },
        { key: 't/nope', kind: 'tag', repository: REPO, tag: 'nope' },
        { key: 'm/kept', kind: 'manifest', repository: REPO, digest: f.kept.digest },
        { key: 'l/fresh', kind: 'link', repository: REPO, digest: f.fresh.digest },
        { key: 'l/other', kind: 'link', repository: 'other/repo', digest: f.fresh.digest },
      ];
      const condemned = await store.gc.condemnOrphans(objects, CLOCK.cutoff);
      expect(condemned.map((o) => o.key)).toEqual(['b/unknown', 't/nope', 'l/other']);
      const removed: string[] = [];
      const drained = await store.gc.drainPending(100, CLOCK.cutoff, async (keys) => {
        removed.push(...keys);
      });
      expect(removed.sort()).toEqual(['b/unknown', 'l/other', 't/nope']);
      expect(drained).toMatchObject({ rescued: 0, more: false });
      expect(drained.deleted).toHaveLength(3);
    });

    it('drains in steps of the limit', async () => {
      const objects = [1, 2, 3].map(
        (n): PendingObject => ({ key: `b/${n}`, kind: 'blob', digest: blob(n).digest }),
      );
      await store.gc.condemnOrphans(objects, CLOCK.cutoff);
      const step = () => store.gc.drainPending(2, CLOCK.cutoff, async () => undefined);
      const first = await step();
      expect(first.deleted.map((o) => o.key)).toEqual(['b/1', 'b/2']);
      expect(first.more).toBe(true);
      const second = await step();
      expect(second.deleted.map((o) => o.key)).toEqual(['b/3']);
      expect(second.more).toBe(false);
      expect(await step()).toEqual({ deleted: [], rescued: 0, more: false });
    });

    it('rescues what the index needs again by the time of the drain', async () => {
      const b = blob(5);
      await store.gc.condemnOrphans([{ key: 'b/x', kind: 'blob', digest: b.digest }], CLOCK.cutoff);
      await store.writes.linkBlob(REPO, b.digest, b.size);
      const removed: string[] = [];
      const drained = await store.gc.drainPending(100, CLOCK.cutoff, async (keys) => {
        removed.push(...keys);
      });
      expect(removed).toEqual([]);
      expect(drained).toEqual({ deleted: [], rescued: 1, more: false });
    });

    it('lets a push cancel pending deletions of its digests and tags', async () => {
      const b = blob(6);
      const other = blob(7);
      await store.gc.condemnOrphans(
        [
          { key: 'b/x', kind: 'blob', digest: b.digest },
          { key: 't/old', kind: 'tag', repository: REPO, tag: 'old' },
          { key: 't/elsewhere', kind: 'tag', repository: 'other/repo', tag: 'old' },
          { key: 'b/y', kind: 'blob', digest: other.digest },
        ],
        CLOCK.cutoff,
      );
      await store.gc.reviveForPush(REPO, [b.digest], ['old']);
      const drained = await store.gc.drainPending(100, CLOCK.cutoff, async () => undefined);
      expect(drained.deleted.map((o) => o.key).sort()).toEqual(['b/y', 't/elsewhere']);
      // And the announced digest is needed for the grace period: not condemned again.
      const again = await store.gc.condemnOrphans(
        [{ key: 'b/x', kind: 'blob', digest: b.digest }],
        CLOCK.cutoff,
      );
      expect(again).toEqual([]);
    });

    it('keeps the pending rows when removing from storage fails', async () => {
      await store.gc.condemnOrphans(
        [{ key: 'b/x', kind: 'blob', digest: blob(8).digest }],
        CLOCK.cutoff,
      );
      await expect(
        store.gc.drainPending(100, CLOCK.cutoff, async () => {
          throw new Error('storage is down');
        }),
      ).rejects.toThrow('storage is down');
      const drained = await store.gc.drainPending(100, CLOCK.cutoff, async () => undefined);
      expect(drained.deleted.map((o) => o.key)).toEqual(['b/x']);
    });

    it('forgets push announcements older than the cutoff', async () => {
      const old = blob(9).digest;
      const recent = blob(10).digest;
      await store.gc.reviveForPush(REPO, [old], [], T0);
      await store.gc.reviveForPush(REPO, [recent], [], RECENT);
      await store.gc.pruneRecent(CLOCK.cutoff);
      const rows = await database.query('select digest from gc_recent');
      expect(rows.map((r) => r.digest)).toEqual([recent]);
    });
  });

  describe('lock and history', () => {
    it('lets one holder have the lock until it expires or is released', async () => {
      const t0 = new Date('2026-01-01T00:00:00Z');
      const at = (ms: number) => new Date(t0.getTime() + ms);
      expect(await store.gc.acquireLock('gc', 'a', 1000, t0)).toBe(true);
      expect(await store.gc.acquireLock('gc', 'b', 1000, at(500))).toBe(false);
      expect(await store.gc.acquireLock('gc', 'a', 1000, at(500))).toBe(true);
      // a renewed until 1500: b still waits at 1400, takes over at 2000.
      expect(await store.gc.acquireLock('gc', 'b', 1000, at(1400))).toBe(false);
      expect(await store.gc.acquireLock('gc', 'b', 1000, at(2000))).toBe(true);
      await store.gc.releaseLock('gc', 'a'); // not a's any more: no effect
      expect(await store.gc.acquireLock('gc', 'a', 1000, at(2100))).toBe(false);
      await store.gc.releaseLock('gc', 'b');
      expect(await store.gc.acquireLock('gc', 'a', 1000, at(2200))).toBe(true);
      // Locks of other names are independent.
      expect(await store.gc.acquireLock('other', 'b', 1000, at(2200))).toBe(true);
    });

    it('stores run reports and keeps the last 50', async () => {
      expect(await store.gc.lastRun()).toBeUndefined();
      for (let n = 1; n <= 52; n++) {
        await store.gc.saveRun({
          startedAt: new Date(T0.getTime() + n * 1000),
          finishedAt: new Date(T0.getTime() + n * 1000 + 500),
          dryRun: n % 2 === 0,
          report: { n },
        });
      }
      expect(await store.gc.lastRun()).toMatchObject({
        startedAt: new Date(T0.getTime() + 52_000),
        finishedAt: new Date(T0.getTime() + 52_500),
        dryRun: true,
        report: { n: 52 },
      });
      const [row] = await database.query('select count(*) as n from gc_runs');
      expect(Number(row?.n)).toBe(50);
    });
  });
});
