import { describe, expect, it } from 'vitest';
import { DEFAULT_SNAPSHOT_FORMAT, isSnapshotFormat, SNAPSHOT_FORMATS } from '../src/index.js';

describe('snapshot formats', () => {
  it('are full (the default, upstream-readable) and incremental', () => {
    expect(SNAPSHOT_FORMATS).toEqual(['full', 'incremental']);
    expect(DEFAULT_SNAPSHOT_FORMAT).toBe('full');
  });

  it('recognises exactly those names', () => {
    for (const name of SNAPSHOT_FORMATS) expect(isSnapshotFormat(name)).toBe(true);
    for (const other of ['', 'Full', 'INCREMENTAL', 'chunked', 'full ', null, undefined, 1, {}]) {
      expect(isSnapshotFormat(other), String(other)).toBe(false);
    }
  });
});
