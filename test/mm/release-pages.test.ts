// release_pages (PhysMem.releasePages, what a PageGather's flush calls): a batch of put_page
// calls whose freed small pages go to the buddy allocator a run at a time must leave the
// machine exactly as put_page on each page in turn does: the same free lists (so the same
// pfns in the same order from later allocations), LRU lists, data slots and counts.

import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';

/**
 * A machine with 600 small pages and a 4-page folio in use, and the batch of puts to drop on
 * them; with `holes`, some pages stay in use, so that small free blocks remain apart.
 */
function world(holes: boolean): { m: Machine; batch: number[] } {
  const m = new Machine({ ramBytes: 4 << 20, swapBytes: 0 });
  const phys = m.phys;
  const pfns: number[] = [];
  for (let i = 0; i < 600; i++) {
    const pfn = phys.allocPages(0);
    phys.setAnon(pfn);
    phys.lru.add(pfn);
    if (i % 3 !== 0) phys.writePage(pfn, 0, Uint8Array.of(i & 255), 0, 1);
    pfns.push(pfn);
  }
  const folio = phys.allocPages(2);
  phys.setAnon(folio);
  phys.lru.add(folio);
  // Runs up and down, holes, a page put twice (two references), the folio in the middle of a
  // run; every page is freed in the end.
  const batch: number[] = [];
  for (let i = 0; i < 300; i++) if (!holes || i % 16 !== 5) batch.push(pfns[i]!);
  for (let i = 599; i >= 450; i--) batch.push(pfns[i]!);
  phys.getPage(pfns[320]!);
  batch.push(pfns[320]!, pfns[321]!, folio, pfns[322]!, pfns[320]!);
  for (let i = 330; i < 450; i += 2) batch.push(pfns[i]!);
  for (let i = 331; i < 450; i += 2) batch.push(pfns[i]!);
  for (let j = 0; j < 30; j++) {
    const i = 300 + ((j * 7) % 30); // 300..329 out of order
    if (i < 320 || i > 322) batch.push(pfns[i]!);
  }
  return { m, batch };
}

/** What later allocations and the LRU see: every free frame in the order the allocator hands them out. */
function state(m: Machine) {
  const phys = m.phys;
  const lru: number[] = [];
  for (let l = 0; l < 4; l++) for (let p = phys.lru.first[l]!; p >= 0; p = phys.lru.nextOf(p)) lru.push(p);
  const summary = { free: phys.freeRamFrames, slots: phys.data.slotsInUse, lru, pages: [...phys.lru.pages] };
  const order: number[] = [];
  for (let p = phys.tryAllocPages(0); p >= 0; p = phys.tryAllocPages(0)) order.push(p);
  return { summary, order };
}

describe('release_pages (PhysMem.releasePages)', () => {
  it.each([false, true])('frees a batch as put_page on each page in turn does: free lists, LRU, data slots (holes: %s)', (holes) => {
    const a = world(holes);
    const b = world(holes);
    a.m.phys.releasePages(Int32Array.from(a.batch), a.batch.length);
    for (const pfn of b.batch) b.m.phys.putPage(pfn);
    if (!holes) expect(checkInvariants(a.m)).toEqual([]);
    const sa = state(a.m);
    const sb = state(b.m);
    expect(sa.summary).toEqual(sb.summary);
    expect(sa.order).toEqual(sb.order);
  });

  it('a page put once more than it is referenced is a double free', () => {
    const { m } = world(false);
    const pfn = m.phys.allocPages(0);
    expect(() => m.phys.releasePages(Int32Array.of(pfn, pfn), 2)).toThrow(/double free/);
  });
});
