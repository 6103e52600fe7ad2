import type { TagDetail } from './api/types.js';
import { formatBytes, platformLabel } from './format.js';

/**
 * What changed between two versions of a repository. A version is compared as a list of items:
 * a snapshot's files (layers by their `org.opencontainers.image.title`), an image's layers, an
 * index's platforms. Pure functions over the `/api/` tag detail, so they are tested alone.
 */

/** One comparable part of a version. */
export interface Item {
  /** The name it is matched and shown by: file title, platform, or `layer N`. */
  key: string;
  size: number;
  digest: string;
}

/** What the items of a version are. */
export type Basis = 'file' | 'layer' | 'platform';

/**
 * `resized`: the size changed (so did the content). `changed`: same size, other digest.
 */
export type ChangeKind = 'added' | 'removed' | 'resized' | 'changed' | 'unchanged';

export interface Change {
  kind: ChangeKind;
  key: string;
  before?: Item;
  after?: Item;
}

/** A VM setting of a snapshot's config that differs. */
export interface SettingChange {
  setting: string;
  before: string;
  after: string;
}

export interface VersionDiff {
  basis: Basis;
  /** Both versions are the same manifest. */
  identical: boolean;
  /** The two versions hold different kinds of artifact (their items rarely match). */
  kindChanged: boolean;
  sizeBefore: number;
  sizeAfter: number;
  /** Every item, in the newer version's order, then what was removed in the older one's. */
  changes: Change[];
  /** How many of each kind. */
  counts: Record<ChangeKind, number>;
  settings: SettingChange[];
}

/**
 * The items of a version. Titled layers are matched by title; layers without one (container
 * images) get their position as a key (`layer 2`) and are matched by content first (see
 * {@link diffItems}).
 */
export function itemsOf(d: TagDetail): { basis: Basis; items: Item[]; titled: boolean[] } {
  if (d.children && d.children.length > 0) {
    const sizes = new Map((d.platformSizes ?? []).map((p) => [p.digest, p.size]));
    const items = unique(
      d.children.map((c) => ({
        key: platformLabel(c.platform),
        size: sizes.get(c.digest) ?? c.size,
        digest: c.digest,
      })),
    );
    return { basis: 'platform', items, titled: items.map(() => true) };
  }
  const titled = d.layers.map((l) => l.title !== undefined && l.title !== '');
  const items = unique(
    d.layers.map((l, i) => ({
      key: l.title || `layer ${i + 1}`,
      size: l.size,
      digest: l.digest,
    })),
  );
  return { basis: d.kind === 'snapshot' ? 'file' : 'layer', items, titled };
}

/** Keys made unique: a second `a` becomes `a (2)`. */
function unique(items: Item[]): Item[] {
  const seen = new Map<string, number>();
  return items.map((item) => {
    const n = (seen.get(item.key) ?? 0) + 1;
    seen.set(item.key, n);
    return n === 1 ? item : { ...item, key: `${item.key} (${n})` };
  });
}

function compare(before: Item, after: Item): ChangeKind {
  if (before.size !== after.size) return 'resized';
  return before.digest === after.digest ? 'unchanged' : 'changed';
}

/**
 * Matches named items by key: same key in both is unchanged, resized or changed; a key only in
 * `after` was added, only in `before` removed.
 */
export function diffNamed(before: Item[], after: Item[]): Change[] {
  const old = new Map(before.map((i) => [i.key, i]));
  const changes: Change[] = after.map((a) => {
    const b = old.get(a.key);
    return b ? { kind: compare(b, a), key: a.key, before: b, after: a } : added(a);
  });
  const kept = new Set(after.map((a) => a.key));
  for (const b of before) if (!kept.has(b.key)) changes.push(removed(b));
  return changes;
}

/**
 * Matches positional items (layers without titles): a layer whose content is in both versions
 * is unchanged wherever it moved; the remaining ones are paired in order (the layer that took
 * another's place changed or was resized); what is left over was added or removed.
 */
export function diffPositional(before: Item[], after: Item[]): Change[] {
  const unmatched = [...before];
  const result: (Change | undefined)[] = after.map((a) => {
    const i = unmatched.findIndex((b) => b.digest === a.digest);
    if (i < 0) return undefined;
    const [b] = unmatched.splice(i, 1);
    return { kind: 'unchanged', key: a.key, ...(b ? { before: b } : {}), after: a };
  });
  const changes = after.map((a, i): Change => {
    const done = result[i];
    if (done) return done;
    const b = unmatched.shift();
    return b ? { kind: compare(b, a), key: a.key, before: b, after: a } : added(a);
  });
  for (const b of unmatched) changes.push(removed(b));
  return changes;
}

const added = (a: Item): Change => ({ kind: 'added', key: a.key, after: a });
const removed = (b: Item): Change => ({ kind: 'removed', key: b.key, before: b });

/** Named items by key, positional ones by content and place (see the two functions above). */
export function diffItems(
  before: { items: Item[]; titled: boolean[] },
  after: { items: Item[]; titled: boolean[] },
): Change[] {
  const split = (v: { items: Item[]; titled: boolean[] }, named: boolean) =>
    v.items.filter((_, i) => (v.titled[i] ?? false) === named);
  const named = diffNamed(split(before, true), split(after, true));
  const positional = diffPositional(split(before, false), split(after, false));
  // Back into the newer version's order, removals last.
  const order = new Map(after.items.map((item, i) => [item.key, i]));
  const rank = (c: Change) =>
    c.kind === 'removed' ? Number.MAX_SAFE_INTEGER : (order.get(c.key) ?? 0);
  return [...named, ...positional].sort((x, y) => rank(x) - rank(y));
}

type Config = NonNullable<TagDetail['snapshotConfig']>;
const plain = (v: unknown) => (v === undefined || v === null ? '—' : String(v));
const bytes = (v: unknown) => (typeof v === 'number' ? formatBytes(v) : plain(v));

/** The VM settings of a snapshot's config that the comparison names when they differ. */
const SETTINGS: [keyof Config, string, (v: unknown) => string][] = [
  ['hypervisor', 'hypervisor', plain],
  ['cpu', 'CPUs', plain],
  ['memory', 'memory', bytes],
  ['storage', 'disk', bytes],
  ['nics', 'NICs', plain],
  ['network', 'network', plain],
  ['image', 'base image', plain],
  ['imageType', 'image type', plain],
  ['windows', 'Windows', plain],
];

function settingChanges(before: TagDetail, after: TagDetail): SettingChange[] {
  const b = before.snapshotConfig;
  const a = after.snapshotConfig;
  if (!b || !a) return [];
  return SETTINGS.filter(([field, , show]) => show(b[field]) !== show(a[field])).map(
    ([field, setting, show]) => ({ setting, before: show(b[field]), after: show(a[field]) }),
  );
}

/** What changed from `before` (the older version) to `after`. */
export function diffVersions(before: TagDetail, after: TagDetail): VersionDiff {
  const b = itemsOf(before);
  const a = itemsOf(after);
  const changes = diffItems(b, a);
  const counts: Record<ChangeKind, number> = {
    added: 0,
    removed: 0,
    resized: 0,
    changed: 0,
    unchanged: 0,
  };
  for (const c of changes) counts[c.kind]++;
  return {
    basis: a.basis,
    identical: before.digest === after.digest,
    kindChanged: before.kind !== after.kind,
    sizeBefore: before.totalSize,
    sizeAfter: after.totalSize,
    changes,
    counts,
    settings: settingChanges(before, after),
  };
}
