// The shared text table (src/cli/table.ts).

import { describe, expect, it } from 'vitest';
import { textTable } from '../../src/cli/table.js';

describe('textTable', () => {
  it('aligns columns (numbers right), no borders, no trailing spaces, an optional prefix per line', () => {
    const t = textTable(['name', 'n'], [['a', 1], ['longer', 1234]], { prefix: '# ' });
    expect(t.split('\n')).toEqual([
      '# name       n',
      '# a          1',
      '# longer  1234',
    ]);
  });

  it('takes explicit alignments and prints empty cells for null and undefined', () => {
    const t = textTable(['x', 'y'], [[1, null], [22, 'b']], { align: ['left', 'right'] });
    expect(t.split('\n')).toEqual(['x   y', '1', '22  b']);
  });
});
