import { describe, expect, it } from 'vitest';
import type { Layer, TagDetail } from '../src/api/types.js';
import { type Change, diffPositional, diffVersions, itemsOf } from '../src/version-diff.js';
import { detail, digest, tag } from './support/fixtures.js';

const file = (title: string, size: number, pair: string): Layer => ({
  mediaType: 'application/vnd.cocoonstack.vm.memory',
  digest: digest(pair),
  size,
  title,
});
const layer = (size: number, pair: string): Layer => ({
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: digest(pair),
  size,
});

const snapshot = (name: string, layers: Layer[], extra: Partial<TagDetail> = {}) =>
  detail(
    tag('vm/a', name, {
      kind: 'snapshot',
      digest: digest(name.padStart(2, '0').slice(-2)),
      totalSize: layers.reduce((n, l) => n + l.size, 0),
    }),
    { layers, ...extra },
  );
const image = (name: string, layers: Layer[]) =>
  detail(tag('lib/a', name, { digest: digest(`${name}0`.slice(0, 2)) }), { layers });

/** `kind key` of each change, the shortest readable form for assertions. */
const summary = (changes: Change[]) => changes.map((c) => `${c.kind} ${c.key}`);

describe('snapshots: files by title', () => {
  const v1 = snapshot('v1', [
    file('config.json', 10, 'c1'),
    file('memory-ranges', 4000, 'a1'),
    file('overlay.qcow2', 300, 'o1'),
    file('cidata.img', 50, 'd1'),
  ]);
  const v2 = snapshot('v2', [
    file('state.json', 16, 's1'),
    file('memory-ranges', 7000, 'a2'),
    file('config.json', 10, 'c1'),
    file('cidata.img', 50, 'd2'),
  ]);

  it('names every file added, removed, resized, rewritten or kept, newest order first', () => {
    const diff = diffVersions(v1, v2);
    expect(diff.basis).toBe('file');
    expect(summary(diff.changes)).toEqual([
      'added state.json',
      'resized memory-ranges',
      'unchanged config.json',
      'changed cidata.img',
      'removed overlay.qcow2',
    ]);
    expect(diff.counts).toEqual({ added: 1, removed: 1, resized: 1, changed: 1, unchanged: 1 });
    expect(diff.sizeBefore).toBe(4360);
    expect(diff.sizeAfter).toBe(7076);
    expect(diff.identical).toBe(false);
    expect(diff.kindChanged).toBe(false);
  });

  it('keeps both sides of a change, and only one side of an addition or removal', () => {
    const [added, resized, , , removed] = diffVersions(v1, v2).changes;
    expect(added).toEqual({ kind: 'added', key: 'state.json', after: expect.any(Object) });
    expect(added?.before).toBeUndefined();
    expect(resized?.before).toEqual({ key: 'memory-ranges', size: 4000, digest: digest('a1') });
    expect(resized?.after).toEqual({ key: 'memory-ranges', size: 7000, digest: digest('a2') });
    expect(removed?.after).toBeUndefined();
  });

  it('tells the same manifest apart from a new one', () => {
    expect(diffVersions(v1, v1).identical).toBe(true);
    expect(diffVersions(v1, v1).counts.unchanged).toBe(4);
  });

  it('names the VM settings that changed, sizes in binary units', () => {
    const a = snapshot('v1', [], {
      snapshotConfig: { cpu: 2, memory: 2 * 1024 ** 3, hypervisor: 'ch' },
    });
    const b = snapshot('v2', [], {
      snapshotConfig: { cpu: 4, memory: 4 * 1024 ** 3, hypervisor: 'ch' },
    });
    expect(diffVersions(a, b).settings).toEqual([
      { setting: 'CPUs', before: '2', after: '4' },
      { setting: 'memory', before: '2.0 GiB', after: '4.0 GiB' },
    ]);
  });

  it('tells two files with one title apart', () => {
    const twice = snapshot('v1', [file('disk', 1, 'a1'), file('disk', 2, 'a2')]);
    expect(itemsOf(twice).items.map((i) => i.key)).toEqual(['disk', 'disk (2)']);
  });
});

describe('images: layers by content, then by place', () => {
  it('keeps a layer that moved, and calls the one that took another place changed', () => {
    const before = image('a', [layer(100, 'b1'), layer(200, 'b2'), layer(300, 'b3')]);
    const after = image('b', [
      layer(100, 'b1'),
      layer(50, 'n1'),
      layer(200, 'b2'),
      layer(300, 'x3'),
    ]);
    const diff = diffVersions(before, after);
    expect(diff.basis).toBe('layer');
    expect(summary(diff.changes)).toEqual([
      'unchanged layer 1',
      'resized layer 2',
      'unchanged layer 3',
      'added layer 4',
    ]);
    // Layer 2 of the new version took the place of the old layer 3.
    expect(diff.changes[1]?.before?.digest).toBe(digest('b3'));
  });

  it('calls a replaced layer of the same size changed, and a dropped one removed', () => {
    const changes = diffPositional(
      [
        { key: 'layer 1', size: 10, digest: digest('a1') },
        { key: 'layer 2', size: 20, digest: digest('a2') },
      ],
      [{ key: 'layer 1', size: 10, digest: digest('b1') }],
    );
    expect(summary(changes)).toEqual(['changed layer 1', 'removed layer 2']);
  });

  it('matches titled layers (cloud image parts) by title', () => {
    const before = image('a', [file('disk.00.part', 500, 'p0'), file('disk.01.part', 500, 'p1')]);
    const after = image('b', [file('disk.00.part', 500, 'p0'), file('disk.01.part', 700, 'q1')]);
    expect(summary(diffVersions(before, after).changes)).toEqual([
      'unchanged disk.00.part',
      'resized disk.01.part',
    ]);
  });
});

describe('indexes: platforms', () => {
  const child = (arch: string, pair: string, variant?: string): Layer & { platform: object } => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: digest(pair),
    size: 400,
    platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
  });
  const index = (name: string, children: Layer[], sizes: [string, number][]) =>
    detail(
      tag('lib/i', name, {
        kind: 'image-index',
        digest: digest(`${name}0`.slice(0, 2)),
        platformSizes: sizes.map(([pair, size]) => ({ digest: digest(pair), size, layerCount: 1 })),
      }),
      { children },
    );

  it('compares each platform by its image size and digest', () => {
    const before = index(
      'a',
      [child('amd64', 'a1'), child('s390x', 's1')],
      [
        ['a1', 1000],
        ['s1', 900],
      ],
    );
    const after = index(
      'b',
      [child('amd64', 'a2'), child('arm64', 'r1', 'v8')],
      [
        ['a2', 1200],
        ['r1', 800],
      ],
    );
    const diff = diffVersions(before, after);
    expect(diff.basis).toBe('platform');
    expect(summary(diff.changes)).toEqual([
      'resized linux/amd64',
      'added linux/arm64/v8',
      'removed linux/s390x',
    ]);
    expect(diff.changes[0]?.after?.size).toBe(1200);
  });

  it('says when the two versions are different kinds', () => {
    const before = image('a', [layer(100, 'b1')]);
    const after = index('b', [child('amd64', 'a2')], [['a2', 100]]);
    const diff = diffVersions(before, after);
    expect(diff.kindChanged).toBe(true);
    expect(summary(diff.changes)).toEqual(['added linux/amd64', 'removed layer 1']);
  });
});
