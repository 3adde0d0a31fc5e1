// Page tables (mm/memory.c, mm/huge_memory.c): 4 and 5 levels, huge leaves, splitting, and
// freeing of empty tables (free_pgtables).
import { describe, expect, it } from 'vitest';
import {
  MADV_DONTNEED, MADV_HUGEPAGE, MAP_FIXED, MAP_HUGETLB, PMD_SIZE, PROT_READ, TASK_SIZE_4LEVEL, TASK_SIZE_5LEVEL,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, freeRange, P, pm, RW, setup } from './helpers.js';
import {
  Machine, PAGE_SIZE,
} from '../../src/index.js';

describe('levels', () => {
  it('4-level: a first fault allocates PUD, PMD and PTE tables under the PGD; munmap frees all but the PGD', () => {
    const { m, p } = setup();
    expect(p.mm.pt.root.level).toBe(3);
    expect(p.mm.taskSize).toBe(TASK_SIZE_4LEVEL);
    const a = p.mmap(0, 2 * P, RW, ANON);
    expect(p.mm.pt.nodes).toBe(1); // mmap allocates no tables
    p.writeU8(a, 1);
    expect(p.mm.pt.nodes).toBe(4);
    p.munmap(a, 2 * P);
    expect(p.mm.pt.nodes).toBe(1);
    expectConsistent(m);
  });

  it('5-level: the PGD is level 4; mmap stays below 2^47 (DEFAULT_MAP_WINDOW) unless the hint is above it', () => {
    const { m, p } = setup({ levels: 5 });
    expect(p.mm.pt.root.level).toBe(4);
    expect(p.mm.taskSize).toBe(TASK_SIZE_5LEVEL);
    const low = p.mmap(0, P, RW, ANON);
    expect(low).toBeLessThan(2 ** 47);
    const hint = 2 ** 50 + 7 * P;
    const high = p.mmap(hint, 2 * P, RW, ANON);
    expect(high).toBe(hint);
    const anywhereHigh = p.mmap(2 ** 50, P, RW, ANON); // the hint is taken: the search runs in the 5-level space
    expect(anywhereHigh).toBeGreaterThan(2 ** 47);
    p.writeU32(high + P, 99);
    expect(p.readU32(high + P)).toBe(99);
    expect(p.mm.pt.nodes).toBe(5);
    p.munmap(high, 2 * P);
    expect(p.mm.pt.nodes).toBe(1);
    expectConsistent(m);
  });

  it('4-level: nothing can be mapped at or above 2^47 - 4096 (TASK_SIZE): MAP_FIXED is ENOMEM, a hint is ignored', () => {
    const { p } = setup();
    expect(errnoOf(() => p.mmap(2 ** 47, P, RW, ANON | MAP_FIXED))).toBe('ENOMEM');
    expect(errnoOf(() => p.mmap(TASK_SIZE_4LEVEL - P, 2 * P, RW, ANON | MAP_FIXED))).toBe('ENOMEM');
    expect(p.mmap(TASK_SIZE_4LEVEL - P, P, RW, ANON | MAP_FIXED)).toBe(TASK_SIZE_4LEVEL - P); // the last page
    expect(p.mmap(2 ** 48, P, RW, ANON)).toBeLessThan(TASK_SIZE_4LEVEL);
  });
});

describe('free_pgtables', () => {
  it('a table still used by a neighbouring VMA stays; the last VMA under it takes it along', () => {
    const { m, p } = setup();
    const a = freeRange(p, PMD_SIZE, PMD_SIZE);
    p.mmap(a, 4 * P, RW, ANON | MAP_FIXED);
    p.mmap(a + 8 * P, 4 * P, RW, ANON | MAP_FIXED);
    fill(p, a, 4 * P, 1);
    fill(p, a + 8 * P, 4 * P, 2);
    expect(p.mm.pt.nodes).toBe(4); // both in one PTE table
    p.munmap(a, 4 * P);
    expect(p.mm.pt.nodes).toBe(4);
    expect(p.readU8(a + 9 * P)).toBe(2);
    p.munmap(a + 8 * P, 4 * P);
    expect(p.mm.pt.nodes).toBe(1);
    expectConsistent(m);
  });

  it('MADV_DONTNEED zaps entries but keeps the tables (zap_page_range_single)', () => {
    const { p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 1);
    p.madvise(a, 4 * P, MADV_DONTNEED);
    expect(pm(p, a).present).toBe(false);
    expect(p.mm.pt.nodes).toBe(4);
  });

  it('exit frees every table', () => {
    const { m, p } = setup();
    for (let i = 0; i < 5; i++) p.writeU8(p.mmap(0, P, RW, ANON), 1);
    p.writeU8(p.mmap(2 ** 40, P, RW, ANON), 1);
    expect(p.mm.pt.nodes).toBeGreaterThan(4);
    const mm = p.mm;
    p.exit();
    expect(mm.pt.nodes).toBe(1);
    expect(m.phys.usedRamFrames).toBe(0);
  });
});

describe('huge leaves', () => {
  it('__split_huge_pmd: munmap of part of a THP installs a PTE table with the same permissions; each PTE holds a reference', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    fill(p, a, PMD_SIZE, 0x5a);
    const head = pm(p, a).pfn;
    expect(p.mm.pt.nodes).toBe(3);
    p.munmap(a, 16 * P);
    expect(p.mm.pt.nodes).toBe(4);
    const e = pm(p, a + 16 * P);
    expect(e).toMatchObject({ order: 0, write: true, pfn: head + 16, kind: 'anon' });
    expect(m.phys.frames.refcount[head]).toBe(512 - 16);
    expect(m.phys.frames.mapcount[head + 16]).toBe(1);
    expect(m.phys.frames.mapcount[head]).toBe(0);
    expect(m.phys.entireMapcount.get(head)).toBeUndefined();
    expect(p.readU8(a + PMD_SIZE - 1)).toBe(0x5a);
    expect(() => p.readU8(a)).toThrow(/SIGSEGV/);
    expectConsistent(m);
    p.munmap(a + 16 * P, PMD_SIZE - 16 * P);
    expect(m.phys.usedRamFrames).toBe(0); // the folio goes with its last PTE
  });

  it('mprotect of part of a THP splits the leaf: the protected part is read-only, the rest stays writable', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a, 1);
    p.mprotect(a + PMD_SIZE / 2, PMD_SIZE / 2, PROT_READ);
    expect(pm(p, a)).toMatchObject({ order: 0, write: true });
    expect(pm(p, a + PMD_SIZE / 2)).toMatchObject({ order: 0, write: false });
    expectConsistent(m);
  });

  it('hugetlb leaves are never split: a 2 MiB page stays one PMD leaf through mprotect of the whole page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    p.writeU8(a, 1);
    p.mprotect(a, PMD_SIZE, PROT_READ);
    expect(pm(p, a)).toMatchObject({ order: 9, write: false });
    expect(() => p.writeU8(a, 2)).toThrow(/SIGSEGV/);
    expectConsistent(m);
  });
});

describe('5-level paging', () => {
  it('5-level paging: addresses above 2^47 map, fault and unmap like any other', () => {
    const m = new Machine({ ramBytes: 16 << 20, levels: 5 });
    const p = m.spawn();
    const hi = 2 ** 52;
    const a = p.mmap(hi, 2 * PAGE_SIZE, RW, ANON | MAP_FIXED);
    expect(a).toBe(hi);
    p.writeU32(a + PAGE_SIZE, 99);
    expect(p.readU32(a + PAGE_SIZE)).toBe(99);
    expect(p.mm.pt.root.level).toBe(4);
    p.munmap(a, 2 * PAGE_SIZE);
    expect(p.mm.pt.nodes).toBe(1); // every table below the root was freed
    expect(m.phys.usedRamFrames).toBe(0);
    const four = new Machine({ ramBytes: 16 << 20 }).spawn();
    expect(() => four.mmap(hi, PAGE_SIZE, RW, ANON | MAP_FIXED)).toThrow(expect.objectContaining({ errno: 'ENOMEM' }));
  });
});
