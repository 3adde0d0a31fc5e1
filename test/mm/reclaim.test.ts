// Direct reclaim (mm/vmscan.c try_to_free_pages, shrink_lruvec, shrink_folio_list) over the
// LRU lists (mm/swap.c, lru.ts): an allocation that finds RAM full reclaims instead of failing,
// the accessed bit decides who stays (folio_check_references), anonymous pages go to swap and
// tmpfs pages to swap or out of the page cache, each unmapping under a CLEAR invalidation
// (try_to_unmap_one), and only when nothing can go is it ENOMEM.
import { describe, expect, it } from 'vitest';
import {
  getUserPages, MADV_FREE, MADV_HUGEPAGE, MAP_SHARED, MmuNotifier, mmuNotifierRegister, PMD_SIZE, unpinUserPages,
  type MmuNotifierRange, type Process,
} from '../../src/index.js';
import { folioLru, SWAP_CLUSTER_MAX, tryToFreePages } from '../../src/mm/vmscan.js';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON } from '../../src/mm/lru.js';
import { ANON, errnoOf, expectConsistent, P, pm, RW, setup } from './helpers.js';

/** A machine of `frames` RAM frames with swap, and a process. */
function small(frames: number, swapPages = 4096) {
  return setup({ ramBytes: frames * P, swapBytes: swapPages * P });
}

function clears(p: Process): MmuNotifierRange[] {
  const out: MmuNotifierRange[] = [];
  mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: (_s, r) => void (r.event === 'CLEAR' && out.push(r)) }), p.mm);
  return out;
}

/** Write a distinct word into each of n pages from a. */
function fillPages(p: Process, a: number, n: number, seed: number): void {
  for (let i = 0; i < n; i++) p.writeU32(a + i * P, seed + i);
}

describe('direct reclaim (try_to_free_pages)', () => {
  it('a write fault with RAM full and swap free reclaims anonymous pages to swap (CLEAR each), and every byte stays', () => {
    const { m, p } = small(256);
    const n = 600; // more than RAM
    const a = p.mmap(0, n * P, RW, ANON);
    const cleared = clears(p);
    fillPages(p, a, n, 1000);
    expect(m.swap.used).toBeGreaterThan(0);
    expect(cleared.length).toBe(m.phys.lru.stat.pswpout); // one CLEAR per mapping unmapped, one mapping each
    expect(cleared.every((r) => r.end - r.start === P)).toBe(true);
    expect(m.phys.lru.stat.allocstall).toBeGreaterThan(0);
    expectConsistent(m);
    for (let i = 0; i < n; i++) expect(p.readU32(a + i * P)).toBe(1000 + i); // swap-ins reclaim in turn
    expectConsistent(m);
    p.exit();
    expect(m.swap.used).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('one reclaim frees SWAP_CLUSTER_MAX pages at once, so the next allocations need none', () => {
    const { m, p } = small(256);
    const a = p.mmap(0, 512 * P, RW, ANON);
    let i = 0;
    while (m.phys.freeRamFrames > 0) p.writeU32(a + i++ * P, i);
    const stalls = m.phys.lru.stat.allocstall;
    p.writeU32(a + i++ * P, i);
    expect(m.phys.lru.stat.allocstall).toBe(stalls + 1);
    expect(m.phys.freeRamFrames).toBeGreaterThanOrEqual(SWAP_CLUSTER_MAX - 1);
    for (let k = 0; k < SWAP_CLUSTER_MAX - 1; k++) p.writeU32(a + i++ * P, i);
    expect(m.phys.lru.stat.allocstall).toBe(stalls + 1);
    expectConsistent(m);
  });

  it('the accessed bit decides (folio_check_references): pages used between reclaims are kept, then activated; the others go', () => {
    const { m, p } = small(256);
    const cold = p.mmap(0, 180 * P, RW, ANON);
    const hot = p.mmap(0, 16 * P, RW, ANON);
    fillPages(p, cold, 180, 100);
    fillPages(p, hot, 16, 1);
    expect(folioLru(m, pm(p, hot).pfn)).toBe(LRU_INACTIVE_ANON); // new anonymous folios start inactive
    // New memory keeps coming; the hot pages are used after every page of it.
    const more = p.mmap(0, 300 * P, RW, ANON);
    for (let i = 0; i < 300; i++) {
      p.writeU32(more + i * P, i);
      for (let j = 0; j < 16; j++) expect(p.readU32(hot + j * P)).toBe(1 + j);
    }
    expect(m.phys.lru.stat.allocstall).toBeGreaterThan(3);
    for (let j = 0; j < 16; j++) {
      expect(pm(p, hot + j * P).kind).toBe('anon');
      expect(folioLru(m, pm(p, hot + j * P).pfn)).toBe(LRU_ACTIVE_ANON);
    }
    let swapped = 0;
    for (let i = 0; i < 180; i++) if (pm(p, cold + i * P).kind === 'swap') swapped++;
    expect(swapped).toBeGreaterThan(150);
    expect(m.phys.lru.stat.pgactivate).toBeGreaterThanOrEqual(16);
    expectConsistent(m);
  });

  it('tmpfs (shmem): a page holding data is written to swap, a page that reads as zeros is dropped; both come back intact', () => {
    const { m, p } = small(256);
    const f = m.fs.open('f');
    f.truncate(64 * P);
    const a = p.mmap(0, 64 * P, RW, MAP_SHARED, f);
    for (let i = 0; i < 32; i++) p.writeU32(a + i * P, 7000 + i); // dirty
    for (let i = 32; i < 64; i++) expect(p.readU32(a + i * P)).toBe(0); // clean, zero
    const cleared = clears(p);
    const hog = p.mmap(0, 400 * P, RW, ANON);
    fillPages(p, hog, 400, 1); // pressure
    expect(f.swapped.size).toBeGreaterThan(0);
    expect(m.phys.lru.stat.pgdrop).toBeGreaterThan(0);
    expect(cleared.length).toBeGreaterThan(0);
    expectConsistent(m);
    for (let i = 0; i < 32; i++) expect(p.readU32(a + i * P)).toBe(7000 + i);
    for (let i = 32; i < 64; i++) expect(p.readU32(a + i * P)).toBe(0);
    expect(new DataView(f.pread(4, 5 * P).buffer).getUint32(0, true)).toBe(7005);
    expectConsistent(m);
    p.exit();
    f.close();
    m.fs.unlink('f');
    expect(m.swap.used).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('without swap the anonymous lists are not scanned: RAM full of anonymous memory is ENOMEM, nothing changed', () => {
    const { m, p } = small(64, 0);
    const a = p.mmap(0, 128 * P, RW, ANON);
    let i = 0;
    while (m.phys.freeRamFrames > 0) p.writeU32(a + i++ * P, i);
    expect(errnoOf(() => p.writeU32(a + i * P, 1))).toBe('ENOMEM');
    expect(tryToFreePages(m, 0)).toBe(0);
    expectConsistent(m);
  });

  it('with swap full it is ENOMEM too; freeing swap lets reclaim go on', () => {
    const { m, p } = small(64, 8);
    const a = p.mmap(0, 128 * P, RW, ANON);
    let i = 0;
    let err = '';
    for (; i < 128 && !err; i++) {
      try {
        p.writeU32(a + i * P, i);
      } catch (e) {
        err = (e as { errno: string }).errno;
      }
    }
    expect(err).toBe('ENOMEM');
    expect(m.swap.full).toBe(true);
    expectConsistent(m);
    p.munmap(a, 8 * P); // frees swap slots (and pages)
    p.writeU32(a + 120 * P, 5);
    expectConsistent(m);
  });

  it('pinned and locked pages stay; pages with other references stay', () => {
    const { m, p } = small(128);
    const a = p.mmap(0, 4 * P, RW, ANON);
    fillPages(p, a, 4, 1);
    const [pinned] = getUserPages(p.mm, a, 1, { write: true, pin: true });
    const [got] = getUserPages(p.mm, a + P, 1);
    m.phys.trylockPage(pm(p, a + 2 * P).pfn);
    const hog = p.mmap(0, 300 * P, RW, ANON);
    fillPages(p, hog, 300, 1);
    expect(pm(p, a).kind).toBe('anon');
    expect(pm(p, a + P).kind).toBe('anon');
    expect(pm(p, a + 2 * P).kind).toBe('anon');
    m.phys.unlockPage(pm(p, a + 2 * P).pfn);
    unpinUserPages(p.mm, [pinned!]);
    expectConsistent(m);
    void got;
  });

  it('a THP on the LRU is split (no THP swap) and its pages go one by one', () => {
    const { m, p } = setup({ ramBytes: 1024 * P, swapBytes: 4096 * P, thp: 'always' });
    const t = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(t, PMD_SIZE, MADV_HUGEPAGE);
    for (let i = 0; i < 512; i++) p.writeU32(t + i * P, 3000 + i);
    expect(pm(p, t).order).toBe(9);
    const hog = p.mmap(0, 900 * P, RW, ANON);
    p.madvise(hog, 900 * P, 15 /* MADV_NOHUGEPAGE */);
    fillPages(p, hog, 900, 1);
    expect(pm(p, t).order).toBe(0);
    let swapped = 0;
    for (let i = 0; i < 512; i++) if (pm(p, t + i * P).kind === 'swap') swapped++;
    expect(swapped).toBeGreaterThan(0);
    expectConsistent(m);
    for (let i = 0; i < 512; i++) expect(p.readU32(t + i * P)).toBe(3000 + i);
    expectConsistent(m);
  });

  it('MADV_FREE pages that stayed clean are discarded, not swapped', () => {
    const { m, p } = small(128);
    const a = p.mmap(0, 32 * P, RW, ANON);
    fillPages(p, a, 32, 1);
    p.madvise(a, 32 * P, MADV_FREE);
    for (let round = 0; round < 3; round++) tryToFreePages(m, 0);
    let gone = 0;
    for (let i = 0; i < 32; i++) if (pm(p, a + i * P).kind === 'none') gone++;
    expect(gone).toBe(32);
    expect(m.swap.used).toBe(0);
    expect(p.readU32(a)).toBe(0);
    expectConsistent(m);
  });

  it('a page shared by fork goes to one swap slot, unmapped from both with a CLEAR in each', () => {
    const { m, p } = small(128);
    const a = p.mmap(0, 8 * P, RW, ANON);
    fillPages(p, a, 8, 50);
    const c = p.fork();
    const pc = clears(p);
    const cc = clears(c);
    for (let round = 0; round < 4; round++) tryToFreePages(m, 0);
    expect(pm(p, a).kind).toBe('swap');
    expect(pm(c, a).swapSlot).toBe(pm(p, a).swapSlot);
    expect(pc.length).toBeGreaterThan(0);
    expect(cc.length).toBe(pc.length);
    expectConsistent(m);
    for (let i = 0; i < 8; i++) expect(c.readU32(a + i * P)).toBe(50 + i);
    for (let i = 0; i < 8; i++) expect(p.readU32(a + i * P)).toBe(50 + i);
    expectConsistent(m);
  });
});
