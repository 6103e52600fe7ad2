// The fixture of bench/index-scale.mjs: a registry of real size, generated straight into the
// index (bulk INSERTs, MariaDB) and the filesystem driver's layout, much faster than pushing it.
//
// The pushes are a deterministic schedule (see `schedule`): every repository uploads its blobs
// (a link each) and then PUTs its manifests one by one, each with its own tag, and at the end
// PUTs the last one again as `latest`, the way a CI pushing `vN` and `latest` does. Rows are
// what the store's write path (`linkBlob`, `recordManifest`, the server's audit event) writes
// for that schedule: `checkFixture` in bench/index-scale.mjs replays a small schedule both
// through the store's own functions and through this bulk path and compares every table.
// Not written: `gc_recent` (what a GC run prunes once the grace period is over: the pushes here
// are months old).
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CocoonMediaTypes,
  classify,
  layerCount,
  MediaTypes,
  manifestTotalSize,
  parseManifest,
} from '../packages/oci/dist/index.js';

/** How big, and how it is shaped. */
export function defaultPlan() {
  return {
    repositories: 100_000,
    tags: 1_000_000,
    /** Repositories with `bigTags` tags each (spread over the id range). */
    big: 10,
    bigTags: 10_000,
    /** Repositories per team (`team-NNNN/…`): a tenant's token covers one team. */
    teamSize: 100,
    /** Repositories that also hold one old untagged manifest (garbage for GC). */
    garbage: 1_000,
    /** Milliseconds between two pushes of the schedule. */
    step: 15_000,
  };
}

const pad = (n, w) => String(n).padStart(w, '0');

export function repositoryName(plan, i) {
  return `team-${pad(Math.floor(i / plan.teamSize), 4)}/svc-${pad(i, 6)}`;
}

/** Tags of repository `i`: `v1`…`v(n-1)` on n-1 manifests, plus `latest`. */
export function tagCounts(plan) {
  const counts = new Array(plan.repositories);
  const bigEvery = plan.big > 0 ? Math.floor(plan.repositories / plan.big) : 0;
  const isBig = (i) => bigEvery > 0 && i % bigEvery === 0 && i / bigEvery < plan.big;
  const small = plan.repositories - plan.big;
  const rest = plan.tags - plan.big * plan.bigTags;
  const each = Math.floor(rest / small);
  let extra = rest - each * small;
  for (let i = 0; i < plan.repositories; i++) {
    if (isBig(i)) counts[i] = plan.bigTags;
    else {
      counts[i] = each + (extra > 0 ? 1 : 0);
      if (extra > 0) extra--;
    }
    if (counts[i] < 2) throw new Error('every repository needs at least 2 tags');
  }
  return counts;
}

function hasGarbage(plan, i) {
  if (plan.garbage <= 0) return false;
  const every = Math.floor(plan.repositories / plan.garbage);
  return i % every === 1 && Math.floor(i / every) < plan.garbage;
}

const sha256 = (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Deterministic filler bytes of length `n` for content seeded by `seed`. */
function content(seed, n) {
  const head = Buffer.from(`${seed}\n`);
  const out = Buffer.alloc(Math.max(n, head.length));
  head.copy(out);
  let x = 2166136261;
  for (const ch of seed) x = Math.imul(x ^ ch.charCodeAt(0), 16777619) >>> 0;
  for (let p = head.length; p < out.length; p++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[p] = 97 + ((x >>> 16) % 26);
  }
  return out;
}

function sizeFor(seed, lo, hi) {
  let x = 0;
  for (const ch of seed) x = (Math.imul(x, 31) + ch.charCodeAt(0)) >>> 0;
  return lo + (x % (hi - lo));
}

const KINDS = [
  'container',
  'container',
  'container',
  'container',
  'container',
  'container',
  'snapshot',
  'snapshot',
  'cloud',
  'container',
];

/** A blob: its bytes, digest and size. */
function blob(seed, lo, hi) {
  const bytes = content(seed, sizeFor(seed, lo, hi));
  return { bytes, digest: sha256(bytes), size: bytes.length };
}

/** The config blob of repository `i` (shared by its manifests). */
function configBlob(plan, i) {
  const name = repositoryName(plan, i);
  const kind = KINDS[i % KINDS.length];
  const doc =
    kind === 'snapshot'
      ? {
          schemaVersion: 'v1',
          snapshotId: name,
          hypervisor: 'cloud-hypervisor',
          cpu: 2,
          memory: 2 ** 31,
          files: { 'memory-ranges': { mode: 420 }, 'config.json': { mode: 420 } },
        }
      : {
          architecture: 'amd64',
          os: 'linux',
          config: { Labels: { repo: name } },
          rootfs: { type: 'layers', diff_ids: [] },
        };
  const bytes = Buffer.from(JSON.stringify(doc));
  const mediaType =
    kind === 'snapshot'
      ? CocoonMediaTypes.snapshotConfig
      : kind === 'cloud'
        ? MediaTypes.ociEmpty
        : MediaTypes.ociConfig;
  return { bytes, digest: sha256(bytes), size: bytes.length, mediaType };
}

/** The base layer of a team (shared by every manifest of its repositories). */
function baseBlob(team) {
  return blob(`base ${team}`, 2_000, 60_000);
}

/** The manifest `k` of repository `i` (k = 0: the untagged garbage one) and its blobs. */
export function manifestOf(i, k, config, base) {
  const kind = KINDS[i % KINDS.length];
  const own = blob(`layer ${i} ${k}`, 100, 20_000);
  let layers;
  let artifactType;
  if (kind === 'snapshot') {
    artifactType = CocoonMediaTypes.snapshotArtifact;
    layers = [
      {
        mediaType: CocoonMediaTypes.vmConfig,
        digest: base.digest,
        size: base.size,
        annotations: { 'org.opencontainers.image.title': 'config.json' },
      },
      {
        mediaType: CocoonMediaTypes.vmMemory,
        digest: own.digest,
        size: own.size,
        annotations: { 'org.opencontainers.image.title': 'memory-ranges' },
      },
    ];
  } else if (kind === 'cloud') {
    artifactType = CocoonMediaTypes.osImageArtifact;
    layers = [
      {
        mediaType: CocoonMediaTypes.diskQcow2Part,
        digest: base.digest,
        size: base.size,
        annotations: { 'org.opencontainers.image.title': 'disk.qcow2.part.0' },
      },
      {
        mediaType: CocoonMediaTypes.diskQcow2Part,
        digest: own.digest,
        size: own.size,
        annotations: { 'org.opencontainers.image.title': 'disk.qcow2.part.1' },
      },
    ];
  } else {
    layers = [
      { mediaType: MediaTypes.ociLayerGzip, digest: base.digest, size: base.size },
      { mediaType: MediaTypes.ociLayerGzip, digest: own.digest, size: own.size },
    ];
  }
  const doc = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    ...(artifactType ? { artifactType } : {}),
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers,
    annotations: { 'org.opencontainers.image.revision': `${i}.${k}` },
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  return { bytes, digest: sha256(bytes), own };
}

/**
 * The push schedule, in time order: round 0 pushes the garbage manifests, round k the k-th
 * manifest of every repository that has one. Calls `onPush` for each PUT with what it uploads
 * first (blobs new to the repository) and the tags it carries.
 */
export async function schedule(plan, t0, onPush) {
  const counts = tagCounts(plan);
  let seq = 0;
  const at = () => t0 + seq++ * plan.step;
  const started = new Uint8Array(plan.repositories);
  const configs = new Map();
  const bases = new Map();
  const configOf = (i) => {
    let c = configs.get(i);
    if (!c) {
      c = configBlob(plan, i);
      configs.set(i, c);
    }
    return c;
  };
  const baseOf = (team) => {
    let b = bases.get(team);
    if (!b) {
      b = baseBlob(team);
      bases.set(team, b);
    }
    return b;
  };
  const push = async (i, k, last) => {
    const team = Math.floor(i / plan.teamSize);
    const config = configOf(i);
    const base = baseOf(team);
    const m = manifestOf(i, k, config, base);
    const uploads = [];
    if (!started[i]) {
      started[i] = 1;
      uploads.push({ digest: config.digest, size: config.size, bytes: config.bytes });
      uploads.push({ digest: base.digest, size: base.size, bytes: base.bytes });
    }
    uploads.push({ digest: m.own.digest, size: m.own.size, bytes: m.own.bytes });
    const time = at();
    await onPush({
      i,
      k,
      name: repositoryName(plan, i),
      at: time,
      uploads,
      manifest: m,
      tags: k === 0 ? [] : [`v${k}`],
      latest: last,
    });
    if (k === counts[i] - 1) configs.delete(i);
  };
  for (let i = 0; i < plan.repositories; i++) if (hasGarbage(plan, i)) await push(i, 0, false);
  let active = [];
  for (let i = 0; i < plan.repositories; i++) active.push(i);
  for (let k = 1; active.length > 0; k++) {
    for (const i of active) await push(i, k, k === counts[i] - 1);
    active = active.filter((i) => counts[i] - 1 > k);
  }
  return { pushes: seq, counts };
}

const LINK_LEAD = 2_000;
const LATEST_LAG = 1_000;

/** What the write path does for one push, through a real store. */
export async function pushThroughStore(store, p) {
  for (const u of p.uploads)
    await store.writes.linkBlob(p.name, u.digest, u.size, undefined, new Date(p.at - LINK_LEAD));
  const parsed = parseManifest(p.manifest.bytes);
  const input = {
    digest: p.manifest.digest,
    mediaType: parsed.mediaType,
    bytes: p.manifest.bytes,
    parsed,
  };
  await store.writes.recordManifest(p.name, { ...input, tags: p.tags, pushedAt: new Date(p.at) });
  await store.audit.append(
    pushEvent(p.name, p.tags[0] ?? p.manifest.digest, p.manifest.digest, p.at),
  );
  if (p.latest) {
    await store.writes.recordManifest(p.name, {
      ...input,
      tags: ['latest'],
      pushedAt: new Date(p.at + LATEST_LAG),
    });
    await store.audit.append(pushEvent(p.name, 'latest', p.manifest.digest, p.at + LATEST_LAG));
  }
}

function pushEvent(repository, reference, digest, at) {
  // As the server's audit trail records a manifest PUT (a request id in the detail).
  const requestId = createHash('sha1')
    .update(`${repository} ${reference} ${at}`)
    .digest('hex')
    .slice(0, 16);
  return {
    actor: 'ci',
    action: 'push',
    repository,
    reference,
    digest,
    detail: { requestId },
    at: new Date(at),
  };
}

export const sqlTime = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 23);

/**
 * Bulk rows for the same schedule, written by `flush(table, rows)` in batches. Repository ids
 * are `i + 1`; manifest, tag and event ids follow push order, as auto-increment would.
 */
export class BulkRows {
  constructor(plan, flush, batch = 2000) {
    this.plan = plan;
    this.flush = flush;
    this.batch = batch;
    this.buffers = new Map();
    this.blobs = new Map();
    this.repos = new Map();
    this.nextManifest = 1;
    this.nextTag = 1;
    this.nextEvent = 1;
    this.pending = Promise.resolve();
  }

  async add(table, row) {
    let rows = this.buffers.get(table);
    if (!rows) {
      rows = [];
      this.buffers.set(table, rows);
    }
    rows.push(row);
    if (rows.length >= this.batch) {
      this.buffers.set(table, []);
      await this.flush(table, rows);
    }
  }

  #touchBlob(digest, size, at, ref) {
    let b = this.blobs.get(digest);
    if (!b) {
      b = { size, created: at, updated: at, refs: 0 };
      this.blobs.set(digest, b);
    }
    if (at > b.updated) b.updated = at;
    if (ref) b.refs++;
  }

  async push(p) {
    const repoId = p.i + 1;
    let repo = this.repos.get(repoId);
    const linkAt = p.at - LINK_LEAD;
    if (!repo) {
      repo = { name: p.name, created: linkAt, updated: linkAt };
      this.repos.set(repoId, repo);
    }
    for (const u of p.uploads) {
      this.#touchBlob(u.digest, u.size, linkAt, false);
      await this.add('repository_blobs', [repoId, u.digest, sqlTime(linkAt)]);
    }
    const parsed = parseManifest(p.manifest.bytes);
    const m = parsed.manifest;
    const id = this.nextManifest++;
    await this.add('manifests', [
      id,
      repoId,
      p.manifest.digest,
      parsed.mediaType,
      m.artifactType ?? null,
      classify(parsed),
      p.manifest.bytes.length,
      manifestTotalSize(m),
      layerCount(m),
      null,
      m.config.digest,
      m.config.mediaType,
      null,
      m.annotations && Object.keys(m.annotations).length > 0 ? JSON.stringify(m.annotations) : null,
      p.manifest.bytes,
      sqlTime(p.at),
    ]);
    const refs = new Map();
    for (const d of [m.config, ...m.layers]) if (!refs.has(d.digest)) refs.set(d.digest, d.size);
    for (const [digest, size] of refs) {
      this.#touchBlob(digest, size, p.at, true);
      await this.add('manifest_blobs', [id, digest]);
    }
    repo.updated = Math.max(repo.updated, p.at);
    for (const tag of [...p.tags].sort()) {
      await this.add('tags', [this.nextTag++, repoId, tag, id, p.manifest.digest, sqlTime(p.at)]);
    }
    await this.#event(pushEvent(p.name, p.tags[0] ?? p.manifest.digest, p.manifest.digest, p.at));
    if (p.latest) {
      const at = p.at + LATEST_LAG;
      await this.add('tags', [
        this.nextTag++,
        repoId,
        'latest',
        id,
        p.manifest.digest,
        sqlTime(at),
      ]);
      repo.updated = Math.max(repo.updated, at);
      await this.#event(pushEvent(p.name, 'latest', p.manifest.digest, at));
    }
  }

  async #event(e) {
    await this.add('audit_events', [
      this.nextEvent++,
      sqlTime(e.at.getTime()),
      e.actor,
      e.action,
      e.repository,
      e.reference,
      e.digest,
      JSON.stringify(e.detail),
    ]);
  }

  /** Writes what is still buffered, then the repository and blob rows. */
  async finish() {
    for (const [id, r] of [...this.repos].sort((a, b) => a[0] - b[0])) {
      await this.add('repositories', [id, r.name, sqlTime(r.created), sqlTime(r.updated)]);
    }
    const digests = [...this.blobs.keys()].sort();
    for (const d of digests) {
      const b = this.blobs.get(d);
      await this.add('blobs', [
        d,
        b.size,
        MediaTypes.octetStream,
        b.refs,
        sqlTime(b.created),
        sqlTime(b.updated),
      ]);
    }
    // Parents first, for whoever loads with foreign key checks on.
    for (const table of [
      'repositories',
      'manifests',
      'tags',
      'manifest_blobs',
      'repository_blobs',
      'blobs',
      'audit_events',
    ]) {
      const rows = this.buffers.get(table);
      if (rows?.length) await this.flush(table, rows);
      this.buffers.set(table, []);
    }
  }
}

export const COLUMNS = {
  repositories: ['id', 'name', 'created_at', 'updated_at'],
  manifests: [
    'id',
    'repository_id',
    'digest',
    'media_type',
    'artifact_type',
    'kind',
    'size',
    'total_size',
    'layer_count',
    'subject_digest',
    'config_digest',
    'config_media_type',
    'platform_sizes',
    'annotations',
    'raw',
    'pushed_at',
  ],
  tags: ['id', 'repository_id', 'name', 'manifest_id', 'digest', 'pushed_at'],
  manifest_blobs: ['manifest_id', 'digest'],
  repository_blobs: ['repository_id', 'digest', 'linked_at'],
  blobs: ['digest', 'size', 'media_type', 'ref_count', 'created_at', 'updated_at'],
  audit_events: ['id', 'at', 'actor', 'action', 'repository', 'reference', 'digest', 'detail'],
};

/**
 * The filesystem driver's objects for a push: blobs, link markers, the manifest by digest and
 * one copy per tag (the layout of packages/registry/src/core/layout.ts).
 */
export class StorageWriter {
  constructor(objects, parallel = 64) {
    this.objects = objects;
    this.parallel = parallel;
    this.queue = [];
    this.running = new Set();
    this.dirs = new Set();
    this.files = 0;
  }

  async #dir(path) {
    if (this.dirs.has(path)) return;
    await mkdir(path, { recursive: true });
    this.dirs.add(path);
  }

  async #write(dir, file, bytes) {
    await this.#dir(dir);
    await writeFile(join(dir, file), bytes);
    this.files++;
  }

  async #enqueue(fn) {
    while (this.running.size >= this.parallel) await Promise.race(this.running);
    const p = fn().finally(() => this.running.delete(p));
    this.running.add(p);
  }

  async push(p) {
    const repo = join(this.objects, 'manifests', ...p.name.split('/'));
    for (const u of p.uploads) {
      const hex = u.digest.slice('sha256:'.length);
      await this.#enqueue(() => this.#write(join(this.objects, 'blobs', 'sha256'), hex, u.bytes));
      await this.#enqueue(() => this.#write(join(repo, '_layers'), `sha256-${hex}`, ''));
    }
    const hex = p.manifest.digest.slice('sha256:'.length);
    await this.#enqueue(() =>
      this.#write(join(repo, '_digests'), `sha256-${hex}.json`, p.manifest.bytes),
    );
    for (const tag of [...p.tags, ...(p.latest ? ['latest'] : [])]) {
      await this.#enqueue(() => this.#write(repo, `${tag}.json`, p.manifest.bytes));
    }
  }

  async finish() {
    await Promise.all(this.running);
  }
}
