// fork (kernel/fork.c dup_mmap, mm/memory.c copy_page_range) and exit (exit_mmap).
import { describe, expect, it } from 'vitest';
import {
  MADV_HUGEPAGE, MADV_PAGEOUT, MAP_HUGETLB, MAP_PRIVATE, MmuNotifier, mmuNotifierRegister, PMD_SIZE, PROT_READ,
} from '../../src/index.js';
import { getUserPages, unpinUserPages } from '../../src/mm/gup.js';
import { ANON, errnoOf, expectConsistent, fill, P, pm, rssOf, RW, setup, SHARED_ANON, snapshot } from './helpers.js';

describe('fork', () => {
  it('fork: private anon page is write-protected in both and copied on the first write', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.writeU32(a, 1);
    const pfn = pm(p, a).pfn;
    const c = p.fork();
    expect(pm(p, a)).toMatchObject({ pfn, write: false, exclusive: false });
    expect(pm(c, a)).toMatchObject({ pfn, write: false, exclusive: false });
    expect(m.phys.frames.refcount[pfn]).toBe(2);
    expect(m.phys.frames.mapcount[pfn]).toBe(2);
    expect(rssOf(c.mm).anon).toBe(1);
    c.writeU32(a, 2); // wp_page_copy in the child
    expect(pm(c, a).pfn).not.toBe(pfn);
    expect(pm(c, a).write).toBe(true);
    expect(p.readU32(a)).toBe(1);
    expect(m.phys.frames.refcount[pfn]).toBe(1);
    p.writeU32(a, 3); // wp_can_reuse_anon_folio: the parent's page is its own again
    expect(pm(p, a)).toMatchObject({ pfn, write: true });
    expect(c.readU32(a)).toBe(2);
    expectConsistent(m);
  });

  it('vma_needs_copy: a VMA without anonymous pages (only zero pages, or a clean file mapping) is not copied; the child faults', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.readU8(a);
    const f = m.fs.open('f');
    f.pwrite(Uint8Array.of(4), 0);
    const fa = p.mmap(0, P, RW, MAP_PRIVATE, f);
    p.readU8(fa);
    const c = p.fork();
    expect(pm(c, a).present).toBe(false);
    expect(pm(c, fa).present).toBe(false);
    expect(c.readU8(fa)).toBe(4);
    expect(pm(p, a).kind).toBe('zero');
  });

  it('MAP_SHARED memory is shared, not copied or write-protected', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, SHARED_ANON);
    p.writeU32(a, 1);
    const c = p.fork();
    expect(pm(p, a).write).toBe(true);
    c.writeU32(a, 9);
    expect(p.readU32(a)).toBe(9);
    expect(pm(c, a).pfn).toBe(pm(p, a).pfn);
    p.exit();
    expect(c.readU32(a)).toBe(9);
    expectConsistent(m);
  });

  it('swap entries are shared: swap_duplicate raises the slot count; each side swaps in, the slot goes with the last', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU32(a, 0xabc);
    p.madvise(a, P, MADV_PAGEOUT);
    const slot = pm(p, a).swapSlot;
    const c = p.fork();
    expect(pm(c, a)).toMatchObject({ kind: 'swap', swapSlot: slot });
    expect(m.swap.users(slot)).toBe(2);
    expect(rssOf(c.mm).swap).toBe(1);
    expect(c.readU32(a)).toBe(0xabc);
    expect(m.swap.users(slot)).toBe(1);
    c.writeU32(a, 1);
    expect(p.readU32(a)).toBe(0xabc);
    expect(m.swap.used).toBe(0);
    expectConsistent(m);
  });

  it('copy_huge_pmd: a THP is shared write-protected; the child write splits its PMD and copies one 4 KiB page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    fill(p, a, PMD_SIZE, 1);
    const head = pm(p, a).pfn;
    const c = p.fork();
    expect(pm(c, a)).toMatchObject({ order: 9, pfn: head, write: false });
    expect(pm(p, a)).toMatchObject({ order: 9, pfn: head, write: false });
    expect(m.phys.frames.refcount[head]).toBe(2);
    expect(m.phys.entireMapcount.get(head)).toBe(2);
    c.writeU8(a + 3 * P, 2);
    expect(pm(c, a + 3 * P)).toMatchObject({ order: 0, write: true });
    expect(pm(c, a + 3 * P).pfn).not.toBe(head + 3);
    expect(pm(c, a + 4 * P)).toMatchObject({ order: 0, pfn: head + 4, write: false });
    expect(pm(p, a)).toMatchObject({ order: 9, pfn: head });
    expect(p.readU8(a + 3 * P)).toBe(1);
    expectConsistent(m);
    c.exit();
    p.writeU8(a, 5); // do_huge_pmd_wp_page: the only reference now, reused whole
    expect(pm(p, a)).toMatchObject({ order: 9, pfn: head, write: true });
    expectConsistent(m);
  });

  it('copy_hugetlb_page_range: a private hugetlb page is shared and copied whole on write (hugetlb_wp)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    fill(p, a, 2 * P, 3);
    const c = p.fork();
    expect(pm(c, a).pfn).toBe(pm(p, a).pfn);
    c.writeU8(a + P, 4);
    expect(pm(c, a).pfn).not.toBe(pm(p, a).pfn);
    expect(pm(c, a).order).toBe(9);
    expect(Array.from(c.read(a + P - 1, 2))).toEqual([3, 4]);
    expect(p.readU8(a + P)).toBe(3);
    expect(m.phys.usedRamFrames).toBe(1024);
    expectConsistent(m);
  });

  it('copy_present_page: a pinned exclusive page stays the parent\'s and the child gets a copy at fork', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU32(a, 42);
    const [pfn] = getUserPages(p.mm, a, 1, { write: true, pin: true });
    const c = p.fork();
    expect(pm(p, a)).toMatchObject({ pfn, write: true });
    expect(pm(c, a).pfn).not.toBe(pfn);
    expect(c.readU32(a)).toBe(42);
    unpinUserPages(p.mm, [pfn!]);
    expectConsistent(m);
  });

  it('copy_huge_pmd: a pinned exclusive THP is split in the parent and copied page by page for the child; the parent keeps writing to the pinned frames', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU32(a + 5 * P, 11);
    const [pfn] = getUserPages(p.mm, a + 5 * P, 1, { write: true, pin: true });
    expect(pm(p, a).order).toBe(9);
    const c = p.fork();
    expect(pm(p, a + 5 * P)).toMatchObject({ order: 0, pfn, write: true });
    expect(pm(c, a + 5 * P).pfn).not.toBe(pfn);
    p.writeU32(a + 5 * P, 22); // lands in the pinned page, which the child does not see
    expect(pm(p, a + 5 * P).pfn).toBe(pfn);
    expect(c.readU32(a + 5 * P)).toBe(11);
    expectConsistent(m);
    unpinUserPages(p.mm, [pfn!]);
    expectConsistent(m);
  });

  it('copy_hugetlb_page_range: a pinned exclusive hugetlb page is copied for the child at fork', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    p.writeU32(a + 3 * P, 5);
    const [pfn] = getUserPages(p.mm, a + 3 * P, 1, { write: true, pin: true });
    const c = p.fork();
    expect(pm(p, a + 3 * P)).toMatchObject({ order: 9, pfn, write: true });
    expect(pm(c, a + 3 * P).pfn).not.toBe(pfn);
    expect(c.readU32(a + 3 * P)).toBe(5);
    p.writeU32(a + 3 * P, 6);
    expect(pm(p, a + 3 * P).pfn).toBe(pfn);
    expect(c.readU32(a + 3 * P)).toBe(5);
    unpinUserPages(p.mm, [pfn!]);
    expectConsistent(m);
  });

  it('a failed fork (ENOMEM copying a pinned page, nothing reclaimable) leaves no half-built child behind', () => {
    const { m, p } = setup({ ramBytes: 64 * P, swapBytes: 0 });
    const a = p.mmap(0, P, RW, ANON);
    p.writeU32(a, 1);
    const [pfn] = getUserPages(p.mm, a, 1, { write: true, pin: true });
    const hog = p.mmap(0, 64 * P, RW, ANON);
    let i = 0;
    for (; m.phys.freeRamFrames > 0; i++) p.writeU8(hog + i * P, 1);
    const mms = m.liveMms.length;
    expect(errnoOf(() => p.fork())).toBe('ENOMEM');
    expect(m.liveMms.length).toBe(mms);
    expect(m.processes.length).toBe(1);
    unpinUserPages(p.mm, [pfn!]);
    expectConsistent(m);
  });

  it('copy_pte_range: the child\'s entries and reverse-map entries are right whether a run of entries maps consecutive frames, scattered ones or has holes', () => {
    const { m, p } = setup();
    const n = 64;
    const a = p.mmap(0, n * P, RW, ANON);
    const b = p.mmap(0, n * P, RW, ANON);
    // Pages 0, 16 and 40 are shared with a first child: the second fork's copyPte takes them,
    // and between them copyPresentPtes copies runs of pages the parent maps alone: 1..15 on
    // consecutive frames, 17..39 on frames interleaved with b's, 41..63 with holes.
    for (const i of [0, 16, 40]) p.writeU8(a + i * P, 1);
    const c1 = p.fork();
    for (let i = 1; i < 16; i++) p.writeU8(a + i * P, 2);
    for (let i = 17; i < 40; i++) {
      p.writeU8(a + i * P, 3);
      p.writeU8(b + i * P, 3);
    }
    const hole = (i: number): boolean => i > 40 && i % 4 === 1;
    for (let i = 41; i < n; i++) if (!hole(i)) p.writeU8(a + i * P, 4);
    expect(pm(p, a + 2 * P).pfn).toBe(pm(p, a + P).pfn + 1);
    expect(pm(p, a + 18 * P).pfn).not.toBe(pm(p, a + 17 * P).pfn + 1);
    const c2 = p.fork();
    for (let i = 0; i < n; i++) {
      const e = pm(c2, a + i * P);
      if (hole(i)) expect(e.present).toBe(false);
      else expect(e).toMatchObject({ pfn: pm(p, a + i * P).pfn, write: false });
    }
    expect(rssOf(c2.mm).anon).toBe(n - 6 + 23); // a less its 6 holes, and b's 23 pages
    expect(pm(c1, a + P).present).toBe(false);
    expectConsistent(m); // every entry's frame has a reverse-map entry for its mm at its address
    expect(c2.readU8(a + 20 * P)).toBe(3);
    expect(c2.readU8(a + 16 * P)).toBe(1);
  });

  it('fork of a read-only private mapping keeps the entries read-only in both; unrelated writes break nothing', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 6);
    p.mprotect(a, P, PROT_READ);
    const c = p.fork();
    expect(() => c.writeU8(a, 1)).toThrow(/SIGSEGV/);
    c.writeU8(a + P, 1);
    expect(p.readU8(a + P)).toBe(6);
    expectConsistent(m);
  });
});

describe('exit (exit_mmap)', () => {
  it('frees every frame, swap slot and page-cache page the process alone held', () => {
    const { m, p } = setup();
    fill(p, p.mmap(0, 4 * P, RW, ANON), 4 * P, 1);
    const s = p.mmap(0, 2 * P, RW, SHARED_ANON);
    fill(p, s, 2 * P, 1);
    const h = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(h, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(h, 1);
    const sw = p.mmap(0, P, RW, ANON);
    p.writeU8(sw, 1);
    p.madvise(sw, P, MADV_PAGEOUT);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.swap.used).toBe(0);
    expect(m.fs.cachedPages).toBe(0);
    expect(m.phys.data.slotsInUse).toBe(0);
    expect(m.liveMms.length).toBe(0);
  });

  it('mmu_notifier_release runs before any VMA is unmapped: it still sees the VMAs and the present pages', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const seen: string[] = [];
    mmuNotifierRegister(new MmuNotifier({
      release: (_s, mm) => void seen.push(`release vmas=${mm.vmas.size} present=${pm(p, a).present}`),
      invalidateRangeStart: (_s, r) => void seen.push(`start ${r.event}`),
    }), p.mm);
    p.exit();
    expect(seen).toEqual(['release vmas=1 present=true']); // released subscribers get no UNMAP
  });

  it('a parent exiting before its child leaves the child\'s COW pages intact', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 8);
    const c = p.fork();
    p.exit();
    expect(c.readU8(a + P)).toBe(8);
    c.writeU8(a, 1); // the page is exclusive now: reused, no copy
    expect(m.phys.usedRamFrames).toBe(2);
    expectConsistent(m);
  });

  it('after exit every call is ESRCH and changes nothing', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    const mm = p.mm;
    p.exit();
    const before = snapshot(m);
    const calls: Array<() => unknown> = [
      () => p.readU8(a), () => p.writeU8(a, 1), () => p.mmap(0, P, RW, ANON), () => p.munmap(a, P),
      () => p.mprotect(a, P, PROT_READ), () => p.madvise(a, P, MADV_PAGEOUT), () => p.mremap(a, P, 2 * P, 1),
      () => p.fork(), () => p.exit(), () => mm.mmap(0, P, RW, ANON), () => mm.oomReap(),
      () => mmuNotifierRegister(new MmuNotifier({}), mm),
    ];
    for (const f of calls) expect(errnoOf(f)).toBe('ESRCH');
    expect(snapshot(m)).toEqual(before);
  });
});
