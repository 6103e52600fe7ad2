import { describe, expect, it } from 'vitest';
import { tuneHeapForUploads } from '../src/ops/heap.js';

describe('tuneHeapForUploads', () => {
  it('sets the growing factor when node was given none', () => {
    expect(tuneHeapForUploads(['--enable-source-maps'], '--max-old-space-size=512')).toBe(true);
  });

  it('leaves a --heap-growing-percent given to node alone, on the command line or in NODE_OPTIONS', () => {
    expect(tuneHeapForUploads(['--heap-growing-percent=50'], '')).toBe(false);
    expect(tuneHeapForUploads([], '--inspect --heap_growing_percent=50')).toBe(false);
  });
});
