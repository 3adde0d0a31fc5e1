// madvise (mm/madvise.c, mm/khugepaged.c).
import { describe, expect, it } from 'vitest';
import {
  MADV_COLLAPSE, MADV_DONTFORK, MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_PAGEOUT, MAP_HUGETLB,
  MAP_PRIVATE, MAP_SHARED, PMD_SIZE, PROT_READ, swapOutPage,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, P, pm, rssOf, RW, setup, SHARED_ANON, snapshot } from './helpers.js';
import {
  MAP_ANONYMOUS, PAGE_SIZE,
} from '../../src/index.js';
import { K_SWAP } from '../../src/mm/pagetable.js';
import { ptEntry, newProcess } from './helpers.js';

describe('MADV_DONTNEED (zap_page_range_single)', () => {
  it('private anonymous memory reads zero afterwards and its frames are freed', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 1);
    p.madvise(a + P, 2 * P, MADV_DONTNEED);
    expect(m.phys.usedRamFrames).toBe(2);
    expect([p.readU8(a), p.readU8(a + P), p.readU8(a + 2 * P), p.readU8(a + 3 * P)]).toEqual([1, 0, 0, 1]);
    expect(pm(p, a + P).kind).toBe('zero');
    expectConsistent(m);
  });

  it('a private file mapping drops its COW copies and refetches the file page', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.pwrite(new Uint8Array(P).fill(5), 0);
    const a = p.mmap(0, P, RW, MAP_PRIVATE, f);
    p.writeU8(a, 6);
    expect(p.readU8(a)).toBe(6);
    p.madvise(a, P, MADV_DONTNEED);
    expect(p.readU8(a)).toBe(5);
    expect(pm(p, a)).toMatchObject({ kind: 'file', pfn: f.pages.get(0) });
    expectConsistent(m);
  });

  it('shared memory refaults its data from the page cache', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, SHARED_ANON);
    p.writeU8(a, 8);
    p.madvise(a, P, MADV_DONTNEED);
    expect(pm(p, a).present).toBe(false);
    expect(p.readU8(a)).toBe(8);
    expect(m.phys.usedRamFrames).toBe(1);
  });

  it('swap entries are dropped too', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    p.madvise(a, P, MADV_PAGEOUT);
    expect(m.swap.used).toBe(1);
    p.madvise(a, P, MADV_DONTNEED);
    expect(m.swap.used).toBe(0);
    expect(rssOf(p.mm).swap).toBe(0);
    expect(p.readU8(a)).toBe(0);
  });

  it('part of a THP: the leaf is split and only the advised pages go', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    fill(p, a, PMD_SIZE, 3);
    p.madvise(a + 10 * P, 2 * P, MADV_DONTNEED);
    expect(p.readU8(a + 10 * P)).toBe(0);
    expect(p.readU8(a + 12 * P)).toBe(3);
    expect(pm(p, a + 12 * P).order).toBe(0);
    expectConsistent(m);
  });

  it('hugetlb: the start must be huge-page aligned (EINVAL), the end is rounded down (madvise_dontneed_free_valid_vma)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON | MAP_HUGETLB);
    fill(p, a, 2 * PMD_SIZE, 1);
    expect(errnoOf(() => p.madvise(a + P, PMD_SIZE, MADV_DONTNEED))).toBe('EINVAL');
    p.madvise(a, PMD_SIZE + P, MADV_DONTNEED); // only the first huge page goes
    expect(p.readU8(a)).toBe(0);
    expect(p.readU8(a + PMD_SIZE)).toBe(1);
    p.madvise(a + PMD_SIZE, P, MADV_DONTNEED); // rounds down to nothing
    expect(p.readU8(a + PMD_SIZE)).toBe(1);
    expectConsistent(m);
  });
});

describe('MADV_FREE (madvise_free_pte_range)', () => {
  it('a clean lazily freed page is discarded by reclaim, not swapped: it reads zero', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 4);
    p.madvise(a, 2 * P, MADV_FREE);
    expect(pm(p, a)).toMatchObject({ present: true, dirty: false });
    expect(p.readU8(a)).toBe(4); // still there until reclaim
    p.writeU8(a + P, 5); // redirtied: kept
    swapOutPage(m, pm(p, a).pfn);
    swapOutPage(m, pm(p, a + P).pfn);
    expect(m.swap.used).toBe(1);
    expect(pm(p, a).kind).toBe('none');
    expect(p.readU8(a)).toBe(0);
    expect(Array.from(p.read(a + P, 2))).toEqual([5, 4]);
    expectConsistent(m);
  });

  it('drops swap entries at once', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    p.madvise(a, P, MADV_PAGEOUT);
    p.madvise(a, P, MADV_FREE);
    expect(m.swap.used).toBe(0);
    expect(p.readU8(a)).toBe(0);
  });

  it('a page shared with a child (mapcount 2) is left alone', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const c = p.fork();
    p.madvise(a, P, MADV_FREE);
    expect(pm(p, a).dirty).toBe(true);
    expect(c.readU8(a)).toBe(1);
    expectConsistent(m);
  });

  it('only private anonymous memory: shared or file mappings are EINVAL', () => {
    const { m, p } = setup();
    const s = p.mmap(0, P, RW, SHARED_ANON);
    expect(errnoOf(() => p.madvise(s, P, MADV_FREE))).toBe('EINVAL');
    const f = m.fs.open('f');
    f.truncate(P);
    const fa = p.mmap(0, P, RW, MAP_PRIVATE, f);
    expect(errnoOf(() => p.madvise(fa, P, MADV_FREE))).toBe('EINVAL');
  });
});

describe('MADV_PAGEOUT (reclaim_pages)', () => {
  it('swaps out exclusive anonymous pages; the data comes back on the next access', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    for (let i = 0; i < 4; i++) p.writeU32(a + i * P, 100 + i);
    p.madvise(a, 4 * P, MADV_PAGEOUT);
    expect(pm(p, a)).toMatchObject({ swapped: true, present: false, kind: 'swap' });
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.swap.used).toBe(4);
    expect(rssOf(p.mm)).toEqual({ anon: 0, file: 0, shmem: 0, swap: 4 });
    for (let i = 0; i < 4; i++) expect(p.readU32(a + i * P)).toBe(100 + i);
    expect(m.swap.used).toBe(0);
    expectConsistent(m);
  });

  it('skips pages shared with another process, page-cache pages, the zero page and THPs', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.writeU8(a, 1);
    p.readU8(a + P);
    const c = p.fork();
    const s = p.mmap(0, P, RW, SHARED_ANON);
    p.writeU8(s, 1);
    const h = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(h, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(h, 1);
    const before = snapshot(m);
    p.madvise(a, 2 * P, MADV_PAGEOUT);
    p.madvise(s, P, MADV_PAGEOUT);
    p.madvise(h, PMD_SIZE, MADV_PAGEOUT);
    expect(snapshot(m)).toEqual(before);
    c.exit();
  });

  it('hugetlb is EINVAL (can_madv_lru_vma)', () => {
    const { p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    expect(errnoOf(() => p.madvise(a, PMD_SIZE, MADV_PAGEOUT))).toBe('EINVAL');
  });
});

describe('MADV_HUGEPAGE / MADV_NOHUGEPAGE / MADV_COLLAPSE', () => {
  it('MADV_NOHUGEPAGE stops THP faults even with thp=always; existing THPs stay', () => {
    const { p } = setup({ thp: 'always' });
    const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
    p.writeU8(a, 1);
    p.madvise(a, 2 * PMD_SIZE, MADV_NOHUGEPAGE);
    p.writeU8(a + PMD_SIZE, 1);
    expect(pm(p, a).order).toBe(9);
    expect(pm(p, a + PMD_SIZE).order).toBe(0);
  });

  it('madvise_collapse: 512 small pages become one PMD leaf with the same data; the small frames are freed', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    for (let i = 0; i < 512; i += 3) p.writeU32(a + i * P, i + 1);
    p.readU8(a + P); // a zero page among them
    const small = pm(p, a).pfn;
    expect(m.phys.usedRamFrames).toBe(171);
    p.madvise(a, PMD_SIZE, MADV_COLLAPSE);
    expect(pm(p, a)).toMatchObject({ order: 9, write: true, kind: 'anon' });
    expect(m.phys.usedRamFrames).toBe(512);
    expect(m.phys.frames.refcount[small]).toBe(0);
    for (let i = 0; i < 512; i++) expect(p.readU32(a + i * P)).toBe(i % 3 === 0 ? i + 1 : 0);
    expectConsistent(m);
  });

  it('MADV_COLLAPSE works whatever the thp setting, but not in a MADV_NOHUGEPAGE range (EINVAL)', () => {
    const { p } = setup({ thp: 'never' });
    const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
    p.writeU8(a, 1);
    p.writeU8(a + PMD_SIZE, 1);
    p.madvise(a, PMD_SIZE, MADV_COLLAPSE);
    expect(pm(p, a).order).toBe(9);
    p.madvise(a + PMD_SIZE, PMD_SIZE, MADV_NOHUGEPAGE);
    expect(errnoOf(() => p.madvise(a + PMD_SIZE, PMD_SIZE, MADV_COLLAPSE))).toBe('EINVAL');
    expect(pm(p, a + PMD_SIZE).order).toBe(0);
  });

  it('MADV_COLLAPSE of shared anonymous or file memory is EINVAL; a range without a whole PMD does nothing', () => {
    const { m, p } = setup();
    const s = p.mmap(0, PMD_SIZE, RW, SHARED_ANON);
    expect(errnoOf(() => p.madvise(s, PMD_SIZE, MADV_COLLAPSE))).toBe('EINVAL');
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.writeU8(a, 1);
    p.madvise(a, PMD_SIZE - P, MADV_COLLAPSE);
    expect(pm(p, a).order).toBe(0);
    expectConsistent(m);
  });
});

describe('MADV_DONTFORK', () => {
  it('the child gets no copy of the VMA', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    p.madvise(a, P, MADV_DONTFORK);
    const c = p.fork();
    expect(c.mm.vmas.size).toBe(0);
    expect(() => c.readU8(a)).toThrow(/SIGSEGV/);
    expect(pm(p, a).write).toBe(true); // not write-protected either
  });
});

describe('errors', () => {
  it('a range with a hole is ENOMEM and nothing is advised (deviation: the kernel advises the mapped parts first)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 3 * P, RW, ANON);
    fill(p, a, 3 * P, 1);
    p.munmap(a + 2 * P, P);
    const before = snapshot(m);
    expect(errnoOf(() => p.madvise(a, 3 * P, MADV_DONTNEED))).toBe('ENOMEM');
    expect(snapshot(m)).toEqual(before);
  });

  it('read-only memory may still be advised (DONTNEED needs no write permission)', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    p.mprotect(a, P, PROT_READ);
    p.madvise(a, P, MADV_DONTNEED);
    expect(p.readU8(a)).toBe(0);
  });

  it('shared file mappings: DONTNEED leaves the file intact', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.pwrite(Uint8Array.of(3), 0);
    const a = p.mmap(0, P, RW, MAP_SHARED, f);
    p.madvise(a, P, MADV_DONTNEED);
    expect(Array.from(f.pread(1, 0))).toEqual([3]);
  });
});

describe('MADV_PAGEOUT and MADV_DONTNEED', () => {
  it('MADV_PAGEOUT swaps exclusive anon pages; the next access swaps them in with the data intact', () => {
    const { m, p } = newProcess();
    const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, 100 + i);
    p.madvise(a, 4 * PAGE_SIZE, MADV_PAGEOUT);
    expect(ptEntry(p, a).kind).toBe(K_SWAP);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.swap.used).toBe(4);
    for (let i = 0; i < 4; i++) expect(p.readU32(a + i * PAGE_SIZE)).toBe(100 + i);
    expect(m.swap.used).toBe(0);
  });

  it('MADV_DONTNEED: private anon reads zero afterwards, shared memory refaults its data', () => {
    const { p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    const s = p.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.writeU32(a, 3);
    p.writeU32(s, 4);
    p.madvise(a, PAGE_SIZE, MADV_DONTNEED);
    p.madvise(s, PAGE_SIZE, MADV_DONTNEED);
    expect(p.readU32(a)).toBe(0);
    expect(p.readU32(s)).toBe(4);
  });
});
