// The page data pool's first slab starts small and grows by doubling (physmem.ts allocSlot):
// data written before a growth must read back unchanged after it, in this machine and in a
// disposed-and-rebuilt one.

import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, Machine, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';

describe('page data pool growth', () => {
  it('a small machine\'s first write allocates a small slab, not 8 MiB (with no disposed machine\'s slab to reuse)', () => {
    const m = new Machine({ ramBytes: 2 ** 20, swapBytes: 0 });
    const p = m.spawn();
    const a = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.writeU32(a, 1);
    expect(m.phys.data.poolBytes).toBeLessThanOrEqual(16 * 1024);
  });
  it('keeps every page\'s bytes across the first slab\'s growth and past it into a second slab', () => {
    for (let round = 0; round < 2; round++) {
      const m = new Machine({ ramBytes: 16 * 2 ** 20, swapBytes: 0 });
      const p = m.spawn();
      const n = 2100; // more than one full slab (2048 pages)
      const a = p.mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      // Past the first 64 bytes, so that every page takes a whole-page slot (not a head).
      for (let i = 0; i < n; i++) p.writeU32(a + i * PAGE_SIZE + 64 + 4 * (i % 1000), i * 7 + 1);
      for (let i = 0; i < n; i++) expect(p.readU32(a + i * PAGE_SIZE + 64 + 4 * (i % 1000))).toBe(i * 7 + 1);
      expect(m.phys.data.slotsInUse).toBe(n);
      expect(m.phys.data.poolBytes).toBe(2 * 2048 * PAGE_SIZE);
      m.dispose();
    }
  });
  it('a slot taken from a disposed machine\'s slab reads as zeros beyond what the new owner wrote (zeroed in the fault, not at dispose)', () => {
    const n = 2 * 2048; // two full slabs, so both go back to the pool
    const dirty = new Machine({ ramBytes: 32 * 2 ** 20, swapBytes: 0 });
    const dp = dirty.spawn();
    const da = dp.mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const ones = new Uint8Array(PAGE_SIZE).fill(0xa5);
    for (let i = 0; i < n; i++) dp.write(da + i * PAGE_SIZE, ones);
    dirty.dispose();
    const m = new Machine({ ramBytes: 32 * 2 ** 20, swapBytes: 0 });
    const p = m.spawn();
    const a = p.mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    for (let i = 0; i < n; i++) p.write(a + i * PAGE_SIZE + 100, Uint8Array.of(1));
    for (let i = 0; i < n; i += 97) {
      const page = p.read(a + i * PAGE_SIZE, PAGE_SIZE);
      expect(page[100], `page ${i}`).toBe(1);
      expect(page.reduce((x, b) => x + b, 0), `page ${i}`).toBe(1);
    }
    m.dispose();
  });
});
