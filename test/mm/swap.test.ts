// Swap-out (shrink_folio_list / try_to_unmap through the reverse map), swap-in faults
// (do_swap_page), and the swap device.
import { describe, expect, it } from 'vitest';
import { MADV_HUGEPAGE, MADV_PAGEOUT, MAP_SHARED, MmuNotifier, mmuNotifierRegister, PMD_SIZE, swapOutPage } from '../../src/index.js';
import { getUserPages, putUserPages, unpinUserPages } from '../../src/mm/gup.js';
import { ANON, errnoOf, expectConsistent, fill, P, pm, rssOf, RW, setup, SHARED_ANON, snapshot } from './helpers.js';

describe('swapOutPage', () => {
  it('try_to_unmap_one: the entry becomes a swap entry, the frame and its data slot are freed, rss moves to swapents', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU32(a, 0x55aa);
    const pfn = pm(p, a).pfn;
    swapOutPage(m, pfn);
    expect(pm(p, a)).toMatchObject({ present: false, swapped: true, kind: 'swap' });
    expect(m.phys.frames.refcount[pfn]).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.swap.used).toBe(1);
    expect(rssOf(p.mm)).toEqual({ anon: 0, file: 0, shmem: 0, swap: 1 });
    expectConsistent(m);
  });

  it('reverse map: a page shared by fork is unmapped from both processes into one slot used twice', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU32(a, 7);
    const c = p.fork();
    const pfn = pm(p, a).pfn;
    const seen: number[] = [];
    for (const proc of [p, c]) mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: (_s, r) => void seen.push(r.mm.id) }), proc.mm);
    swapOutPage(m, pfn);
    expect(seen.sort()).toEqual([p.mm.id, c.mm.id].sort()); // a CLEAR invalidation in each mm
    const slot = pm(p, a).swapSlot;
    expect(pm(c, a)).toMatchObject({ kind: 'swap', swapSlot: slot });
    expect(m.swap.users(slot)).toBe(2);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(c.readU32(a)).toBe(7);
    expect(p.readU32(a)).toBe(7);
    expect(m.swap.used).toBe(0);
    expectConsistent(m);
  });

  it('do_swap_page: a read swap-in maps the page read-only; a write swap-in maps it writable and dirty', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 3);
    p.madvise(a, 2 * P, MADV_PAGEOUT);
    expect(p.readU8(a)).toBe(3);
    expect(pm(p, a)).toMatchObject({ kind: 'anon', write: false });
    p.writeU8(a, 4); // the swapped-in page is exclusive: reused, not copied
    expect(pm(p, a).write).toBe(true);
    p.writeU8(a + P + 1, 4);
    expect(pm(p, a + P)).toMatchObject({ kind: 'anon', write: true, dirty: true });
    expect(Array.from(p.read(a + P, 2))).toEqual([3, 4]);
    expectConsistent(m);
  });

  it('deviation: each process that swaps in a fork-shared slot gets its own frame (the kernel would share one swap-cache page)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const c = p.fork();
    swapOutPage(m, pm(p, a).pfn);
    p.readU8(a);
    c.readU8(a);
    expect(pm(p, a).pfn).not.toBe(pm(c, a).pfn);
    expect(m.phys.usedRamFrames).toBe(2);
  });

  it('only small anonymous pages mapped by PTEs go: page-cache pages, THPs and free frames are EBUSY, a bad pfn EINVAL; nothing changes', () => {
    const { m, p } = setup();
    const s = p.mmap(0, P, RW, SHARED_ANON);
    p.writeU8(s, 1);
    const h = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(h, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(h, 1);
    const before = snapshot(m);
    expect(errnoOf(() => swapOutPage(m, pm(p, s).pfn))).toBe('EBUSY');
    expect(errnoOf(() => swapOutPage(m, pm(p, h).pfn))).toBe('EBUSY');
    expect(errnoOf(() => swapOutPage(m, pm(p, h + P).pfn))).toBe('EBUSY');
    expect(errnoOf(() => swapOutPage(m, m.phys.ramFrames - 1))).toBe('EBUSY');
    expect(errnoOf(() => swapOutPage(m, m.phys.zeroPfn))).toBe('EBUSY');
    expect(errnoOf(() => swapOutPage(m, -1))).toBe('EINVAL');
    expect(snapshot(m)).toEqual(before);
  });

  it('a full swap device: MADV_PAGEOUT stops, swapOutPage is ENOSPC, nothing is lost', () => {
    const { m, p } = setup({ swapBytes: 2 * P });
    const a = p.mmap(0, 4 * P, RW, ANON);
    for (let i = 0; i < 4; i++) p.writeU8(a + i * P, i + 1);
    p.madvise(a, 4 * P, MADV_PAGEOUT);
    expect(m.swap.used).toBe(2);
    expect(m.phys.usedRamFrames).toBe(2);
    const before = snapshot(m);
    expect(errnoOf(() => swapOutPage(m, pm(p, a + 3 * P).pfn))).toBe('ENOSPC');
    expect(snapshot(m)).toEqual(before);
    for (let i = 0; i < 4; i++) expect(p.readU8(a + i * P)).toBe(i + 1);
    expectConsistent(m);
  });

  it('a swap slot that held an untouched (all-zero) page costs no data and swaps back in as zeros', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.write(a, new Uint8Array(0)); // no-op write
    p.writeU8(a, 0); // a page written with zeros still has data
    const slots = m.phys.data.slotsInUse;
    p.madvise(a, P, MADV_PAGEOUT);
    expect(m.phys.data.slotsInUse).toBe(slots); // the slot moved to swap, not copied
    expect(p.readU8(a)).toBe(0);
  });

  it('thousands of slots: the swap map grows, every page comes back, every slot is freed', () => {
    const { m, p } = setup();
    const n = 3000;
    const a = p.mmap(0, n * P, RW, ANON);
    for (let i = 0; i < n; i++) p.writeU32(a + i * P + 4, i * 7 + 1);
    p.madvise(a, n * P, MADV_PAGEOUT);
    expect(m.swap.used).toBe(n);
    expect(m.phys.usedRamFrames).toBe(0);
    for (let i = n - 1; i >= 0; i -= 2) expect(p.readU32(a + i * P + 4)).toBe(i * 7 + 1);
    p.madvise(a, n * P, MADV_PAGEOUT); // the freed slots are reused
    expect(m.swap.used).toBe(n);
    for (let i = 0; i < n; i++) expect(p.readU32(a + i * P + 4)).toBe(i * 7 + 1);
    expect(m.swap.used).toBe(0);
    expectConsistent(m);
  });

  it('pinned pages and pages with extra references are not reclaimed (EBUSY)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 1);
    const [pinned] = getUserPages(p.mm, a, 1, { write: true, pin: true });
    const [got] = getUserPages(p.mm, a + P, 1, { write: false });
    expect(errnoOf(() => swapOutPage(m, pinned!))).toBe('EBUSY');
    expect(errnoOf(() => swapOutPage(m, got!))).toBe('EBUSY');
    p.madvise(a, 2 * P, MADV_PAGEOUT);
    expect(m.swap.used).toBe(0);
    unpinUserPages(p.mm, [pinned!]);
    putUserPages(p.mm, [got!]);
    p.madvise(a, 2 * P, MADV_PAGEOUT);
    expect(m.swap.used).toBe(2);
  });

  it('file pages: a shared file page is never swapped out (only anonymous pages are)', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(P);
    const a = p.mmap(0, P, RW, MAP_SHARED, f);
    p.writeU8(a, 1);
    p.madvise(a, P, MADV_PAGEOUT);
    expect(pm(p, a).present).toBe(true);
  });
});
