// The migration paths' per-call buffers (src/mm/buffers.ts): reused, zeroed, never handed to two callers at once.

import { describe, expect, it } from 'vitest';
import { giveF64, giveI32, takeF64, takeI32 } from '../../src/mm/buffers.js';

describe('migration buffers (kvcalloc / kvfree)', () => {
  it('a buffer given back is taken again zeroed, and only by one taker', () => {
    const a = takeF64(37);
    a.fill(5);
    giveF64(a);
    const b = takeF64(37);
    expect(b).toBe(a);
    expect([...b].every((x) => x === 0)).toBe(true);
    const c = takeF64(37);
    expect(c).not.toBe(b); // b is still out
    giveF64(b);
    giveF64(c);
  });

  it('gives a buffer of the length asked for, new when none of that length was given back', () => {
    const a = takeI32(11);
    a[3] = 9;
    giveI32(a);
    const b = takeI32(12);
    expect(b).not.toBe(a);
    expect(b.length).toBe(12);
    const c = takeI32(11);
    expect(c).toBe(a);
    expect(c[3]).toBe(0);
  });
});
