// Page faults (mm/memory.c, mm/huge_memory.c, mm/hugetlb.c): the zero page, copy-on-write after
// fork, transparent huge pages and hugetlb leaves, each test named after the behaviour it pins.
import { describe, expect, it } from 'vitest';
import {
  KernelError, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_HUGETLB, MAP_HUGE_1GB, MAP_SHARED, PAGE_SIZE, PMD_SIZE,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { K_PRESENT } from '../../src/mm/pagetable.js';
import { ANON, RW } from './helpers.js';
import { ptEntry, newProcess } from './helpers.js';

describe('faults (mm/memory.c)', () => {
  it('do_anonymous_page: a read maps the shared zero page, read-only, with no page allocated', () => {
    const { m, p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    expect(p.readU32(a)).toBe(0);
    const e = ptEntry(p, a);
    expect(e.val).toBe(m.phys.zeroPfn);
    expect(e.write).toBe(false);
    expect(m.phys.usedRamFrames).toBe(0);
    p.writeU32(a, 5); // wp_page_copy from the zero page
    expect(ptEntry(p, a).val).not.toBe(m.phys.zeroPfn);
    expect(m.phys.usedRamFrames).toBe(1);
  });

  it('fork: private anon page is write-protected in both and copied on the first write', () => {
    const { m, p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    const pfn = ptEntry(p, a).val;
    const c = p.fork();
    expect(ptEntry(p, a)).toMatchObject({ val: pfn, write: false });
    expect(ptEntry(c, a)).toMatchObject({ val: pfn, write: false });
    expect(m.phys.frames.refcount[pfn]).toBe(2);
    c.writeU32(a, 2);
    expect(ptEntry(c, a).val).not.toBe(pfn);
    expect(p.readU32(a)).toBe(1);
    // The parent's page is exclusive again: its write reuses it (wp_page_reuse), no copy.
    p.writeU32(a, 3);
    expect(ptEntry(p, a).val).toBe(pfn);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('fork: MAP_SHARED memory is shared, not copied', () => {
    const { p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.writeU32(a, 1);
    const c = p.fork();
    c.writeU32(a, 9);
    expect(p.readU32(a)).toBe(9);
  });

  it('THP: a write fault in a MADV_HUGEPAGE range maps one PMD leaf; a read maps the huge zero page', () => {
    const { m, p } = newProcess();
    const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
    expect(a % PMD_SIZE).toBe(0);
    p.madvise(a, 2 * PMD_SIZE, MADV_HUGEPAGE);
    p.writeU32(a + 4096 * 3, 7);
    expect(ptEntry(p, a)).toMatchObject({ level: 1, kind: K_PRESENT, write: true });
    expect(m.phys.usedRamFrames).toBe(512);
    expect(p.readU32(a + PMD_SIZE)).toBe(0);
    expect(ptEntry(p, a + PMD_SIZE).level).toBe(1);
    expect(m.phys.usedRamFrames).toBe(512);
    // munmap of half a THP splits the leaf; the rest keeps its data.
    p.munmap(a, PMD_SIZE / 2);
    expect(p.readU32(a + PMD_SIZE / 2)).toBe(0);
    expect(ptEntry(p, a + PMD_SIZE / 2).level).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('hugetlb: MAP_HUGETLB maps 2 MiB and 1 GiB leaves; munmap must be huge-page aligned', () => {
    const { m, p } = newProcess(3 * 2 ** 30);
    const a = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    p.writeU32(a + 100, 1);
    expect(ptEntry(p, a).level).toBe(1);
    const g = p.mmap(0, 1 << 30, RW, ANON | MAP_HUGETLB | MAP_HUGE_1GB);
    p.writeU32(g + (1 << 29), 2);
    expect(ptEntry(p, g).level).toBe(2);
    expect(() => p.munmap(a, PAGE_SIZE)).toThrow(KernelError);
    p.munmap(a, PMD_SIZE);
    expect(checkInvariants(m)).toEqual([]);
  });
});
