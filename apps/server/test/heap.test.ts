import { describe, expect, it } from 'vitest';
import { tuneHeapForUploads } from '../src/ops/heap.js';

describe('tuneHeapForUploads', () => {
  it('applies every setting node was given none of', () => {
    expect(tuneHeapForUploads(['--enable-source-maps'], '--max-old-space-size=512')).toEqual([
      '--heap-growing-percent=200',
      '--semi-space-growth-factor=1',
    ]);
  });

  it('leaves a setting given to node alone, on the command line or in NODE_OPTIONS', () => {
    expect(tuneHeapForUploads(['--heap-growing-percent=50'], '')).toEqual([
      '--semi-space-growth-factor=1',
    ]);
    expect(tuneHeapForUploads([], '--inspect --semi_space_growth_factor=2')).toEqual([
      '--heap-growing-percent=200',
    ]);
  });
});
