// Reclaim of one anonymous page to swap (shrink_folio_list for a single folio): unmap it
// everywhere through the reverse map, each mapping under its own CLEAR invalidation
// (try_to_unmap_one), and move its data to a swap slot. A clean MADV_FREE page is
// discarded instead.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import { K_SWAP, PageTable, pteDirty, ptePresent, ptFlags, type PtSlot } from './pagetable.js';
import { keyLevel, keyVpn } from './rmap.js';
import { MM_SWAPENTS, removeMapping } from './memory.js';
import { PG_device, PG_dirty, PG_lazyfree } from './page.js';
import type { Machine } from './machine.js';

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

/** Why a frame cannot be swapped out now, or null if it can. */
export function swapOutBlocker(machine: Machine, pfn: number): string | null {
  const phys = machine.phys;
  const f = phys.frames;
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= f.capacity) return 'no such frame';
  if (f.flags[pfn]! & PG_device) return 'device memory is never reclaimed';
  if (f.refcount[pfn] === 0) return 'frame is free';
  if (!phys.isAnon(pfn)) return 'only anonymous pages are swapped';
  if (f.order(pfn) !== 0 || f.compoundHead(pfn) !== pfn) return 'huge pages are not swapped';
  if (phys.isLocked(pfn)) return 'page is locked';
  if (phys.pinned(pfn) > 0) return 'page is pinned';
  const entries = machine.rmap.entries(pfn);
  if (f.refcount[pfn] !== entries.length / 2 || f.mapcount[pfn] !== entries.length / 2) return 'page has references besides its mappings';
  for (let i = 0; i < entries.length; i += 2) if (keyLevel(entries[i + 1]!) !== 0) return 'page is mapped by a huge entry';
  return null;
}

/** Swap out (or discard, if lazily freed and clean) an anonymous page. Throws EBUSY if it cannot go now. */
export function swapOutPage(machine: Machine, pfn: number): void {
  const why = swapOutBlocker(machine, pfn);
  if (why) fail(why === 'no such frame' ? 'EINVAL' : 'EBUSY', `frame ${pfn}: ${why}`);
  const phys = machine.phys;
  const entries = machine.rmap.entries(pfn);
  const mappings = entries.length / 2;
  let dirty = (phys.frames.flags[pfn]! & PG_dirty) !== 0;
  const located: Array<{ mmId: number; vpn: number }> = [];
  for (let i = 0; i < entries.length; i += 2) {
    const mm = machine.mmById(entries[i]!)!;
    const vpn = keyVpn(entries[i + 1]!);
    mm.pt.lookup(vpn, slot);
    const flg = ptFlags(slot.node, slot.idx);
    if (!ptePresent(flg)) fail('EBUSY', `frame ${pfn} is not mapped present at every location`);
    if (pteDirty(flg)) dirty = true;
    located.push({ mmId: mm.id, vpn });
  }
  const discard = (phys.frames.flags[pfn]! & PG_lazyfree) !== 0 && !dirty;
  if (!discard && machine.swap.full) fail('ENOSPC', 'swap is full');
  const swapSlot = discard ? -1 : machine.swap.alloc(phys.takeSlot(pfn), mappings);
  for (const { mmId, vpn } of located) {
    const mm = machine.mmById(mmId)!;
    const addr = vpn * PAGE_SIZE;
    const range = mm.invalidateStart('CLEAR', addr, addr + PAGE_SIZE);
    mm.pt.lookup(vpn, slot);
    removeMapping(mm, pfn, vpn, 0);
    if (discard) PageTable.clear(slot.node, slot.idx);
    else {
      PageTable.set(slot.node, slot.idx, K_SWAP, swapSlot);
      mm.rss[MM_SWAPENTS]!++;
    }
    mm.invalidateEnd(range);
  }
  for (let i = 0; i < mappings; i++) phys.putPage(pfn);
}
