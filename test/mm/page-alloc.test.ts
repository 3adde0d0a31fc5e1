// The page calls a driver makes around a migration (alloc_page_vma, get_page, put_page,
// trylock_page, unlock_page), exported for drivers written against the public API.

import { describe, expect, it } from 'vitest';
import {
  allocPageVma, DevPagemap, getPage, HPAGE_PMD_ORDER, Machine, MAP_ANONYMOUS, MAP_PRIVATE, memremapPages, PAGE_SIZE, PMD_SIZE,
  PROT_READ, PROT_WRITE, putPage, trylockPage, unlockPage, zoneDevicePageInit,
} from '../../src/index.js';
import { errnoOf } from './helpers.js';


function world() {
  const m = new Machine({ ramBytes: 8 << 20 });
  const p = m.spawn();
  const a = p.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  return { m, p, a, vma: p.mm.findVma(a)! };
}

describe('alloc_page_vma, get_page / put_page, trylock_page / unlock_page', () => {
  it('a page with one reference, unlocked; a THP; the last put frees it; RAM exhausted is -1', () => {
    const { m, vma, a } = world();
    const used = m.phys.usedRamFrames;
    const pfn = allocPageVma(vma, a);
    expect(m.phys.frames.refcount[pfn]).toBe(1);
    expect(m.phys.isLocked(pfn)).toBe(false);
    getPage(m, pfn);
    putPage(m, pfn);
    expect(m.phys.usedRamFrames).toBe(used + 1);
    putPage(m, pfn);
    expect(m.phys.usedRamFrames).toBe(used);
    const thp = allocPageVma(vma, a, HPAGE_PMD_ORDER);
    expect(m.phys.frames.order(thp)).toBe(HPAGE_PMD_ORDER);
    putPage(m, thp + 5); // any page of the folio drops the folio's reference
    expect(m.phys.usedRamFrames).toBe(used);
    const all: number[] = [];
    for (let q = allocPageVma(vma, a, HPAGE_PMD_ORDER); q >= 0; q = allocPageVma(vma, a, HPAGE_PMD_ORDER)) all.push(q);
    expect(all.length).toBeLessThan((8 << 20) / PMD_SIZE);
    for (const q of all) putPage(m, q);
    expect(m.phys.usedRamFrames).toBe(used);
  });

  it('a device page: the last put_page calls the pagemap\'s page_free once', () => {
    const { m } = world();
    const freed: number[] = [];
    const pgmap = new DevPagemap('private', {}, { pageFree: (pfn) => freed.push(pfn), migrateToRam: () => 0 });
    const first = memremapPages(m, pgmap, 16);
    zoneDevicePageInit(m, first);
    unlockPage(m, first);
    getPage(m, first);
    putPage(m, first);
    expect(freed).toEqual([]);
    putPage(m, first);
    expect(freed).toEqual([first]);
  });

  it('memremap_pages within MachineConfig.deviceBytes keeps the frame table; beyond it the table grows, keeping every frame', () => {
    const pgmapOf = () => new DevPagemap('private', {}, { pageFree: () => {}, migrateToRam: () => 0 });
    const roomy = new Machine({ ramBytes: 8 << 20, deviceBytes: 16 * PAGE_SIZE });
    const table = roomy.phys.frames;
    expect(table.capacity).toBe(2048 + 16); // RAM, then 16 frames at the next 2 MiB boundary (here, RAM's end)
    const first = memremapPages(roomy, pgmapOf(), 16);
    expect(roomy.phys.frames).toBe(table); // no copy
    expect(first).toBe(2048);
    zoneDevicePageInit(roomy, first + 15);
    expect(roomy.phys.frames.refcount[first + 15]).toBe(1);
    // Past the room made for it, the table grows as without it, and keeps what it held.
    const zeroRef = roomy.phys.frames.refcount[roomy.phys.zeroPfn];
    memremapPages(roomy, pgmapOf(), 16);
    expect(roomy.phys.frames).not.toBe(table);
    expect(roomy.phys.frames.refcount[first + 15]).toBe(1);
    expect(roomy.phys.frames.refcount[roomy.phys.zeroPfn]).toBe(zeroRef);
    // Without deviceBytes the table holds RAM only and grows on the first device range.
    const plain = new Machine({ ramBytes: 8 << 20 });
    const before = plain.phys.frames;
    expect(before.capacity).toBe(2048);
    memremapPages(plain, pgmapOf(), 16);
    expect(plain.phys.frames).not.toBe(before);
  });

  it('locks: trylock fails on a locked page; unlock of an unlocked page is EINVAL', () => {
    const { m, vma, a } = world();
    const pfn = allocPageVma(vma, a);
    expect(trylockPage(m, pfn)).toBe(true);
    expect(trylockPage(m, pfn)).toBe(false);
    unlockPage(m, pfn);
    expect(errnoOf(() => unlockPage(m, pfn))).toBe('EINVAL');
    expect(m.phys.isLocked(pfn)).toBe(false);
  });

  it('bad input is EINVAL and changes nothing: a free page, the zero page, a pfn that is not memory, an address outside the vma, a bad order, a dead mm', () => {
    const { m, p, vma, a } = world();
    const pfn = allocPageVma(vma, a);
    putPage(m, pfn);
    const free = m.phys.freeRamFrames;
    expect(errnoOf(() => putPage(m, pfn))).toBe('EINVAL');
    expect(errnoOf(() => getPage(m, pfn))).toBe('EINVAL');
    expect(errnoOf(() => trylockPage(m, pfn))).toBe('EINVAL');
    expect(errnoOf(() => putPage(m, m.phys.zeroPfn))).toBe('EINVAL');
    expect(errnoOf(() => putPage(m, 1 << 30))).toBe('EINVAL');
    expect(errnoOf(() => putPage(m, -1))).toBe('EINVAL');
    expect(errnoOf(() => allocPageVma(vma, a - PAGE_SIZE))).toBe('EINVAL');
    expect(errnoOf(() => allocPageVma(vma, a, 3))).toBe('EINVAL');
    expect(m.phys.freeRamFrames).toBe(free);
    p.exit();
    expect(errnoOf(() => allocPageVma(vma, a))).toBe('EINVAL');
  });
});
