import { describe, expect, it } from 'vitest';
import { compareBytes } from '../src/index.js';

describe('compareBytes', () => {
  it('orders ASCII like S3 listings: uppercase before lowercase, "-" before "."', () => {
    expect(['b', 'a.c', 'A', 'a-b', '_x'].sort(compareBytes)).toEqual([
      'A',
      '_x',
      'a-b',
      'a.c',
      'b',
    ]);
  });

  it('orders by UTF-8 bytes where UTF-16 order differs', () => {
    // U+FF61 is one UTF-16 unit above the surrogate of U+1F600, but below it in UTF-8.
    const bmp = '\uFF61';
    const astral = '\u{1F600}';
    expect(bmp < astral).toBe(false);
    expect([astral, bmp].sort(compareBytes)).toEqual([bmp, astral]);
    expect(compareBytes('same', 'same')).toBe(0);
  });
});
