// Reclaim (mm/vmscan.c). Direct reclaim runs when an allocation finds the free lists short
// (physmem.ts calls tryToFreePages): it walks the LRU lists (lru.ts) from their old ends at
// falling priorities, as shrink_lruvec does, until SWAP_CLUSTER_MAX pages are free or nothing
// is left to try. An inactive folio referenced through a page table since the last look
// (its young bits, as folio_referenced reads and clears them) is kept once and activated the
// second time; an active list longer than its inactive list gives its oldest folios back to
// the inactive one. A folio that goes is unmapped everywhere through the reverse map, each
// mapping under its own CLEAR invalidation (try_to_unmap_one): an anonymous page to swap (a
// clean MADV_FREE one is discarded), a tmpfs page to swap if it holds data (shmem_writeout),
// or out of the page cache if it does not. Without free swap the anonymous lists are not
// scanned, as in the kernel. There is no OOM killer: an allocation that reclaim cannot help
// fails (docs/api.md).
//
// swapOutPage is the same unmap-to-swap for one chosen page (MADV_PAGEOUT, tests).

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import { K_SWAP, PageTable, pteDirty, ptePresent, pteMkold, pteYoung, ptFlags, ptVal, setPtFlags, type PtSlot } from './pagetable.js';
import { keyLevel, keyVpn } from './rmap.js';
import { MM_SWAPENTS, removeMapping } from './memory.js';
import { PG_active, PG_anon, PG_device, PG_dirty, PG_head, PG_lazyfree, PG_locked, PG_lru, PG_referenced, PG_swapbacked } from './page.js';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, Lruvec, NR_LRU_LISTS } from './lru.js';
import { splitFolio } from './migrate_entries.js';
import type { Machine } from './machine.js';

/** Pages one direct reclaim aims to free, and the batch it takes off a list at a time. */
export const SWAP_CLUSTER_MAX = 32;
/** The first, gentlest priority: a pass scans a list's size >> priority pages. */
const DEF_PRIORITY = 12;
const PAGES_PER_GIB = 2 ** 30 / PAGE_SIZE;

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

// ---- one page, chosen by the caller ----

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
  return mappingBlocker(machine, pfn, 0, scratch);
}

/** Swap out (or discard, if lazily freed and clean) an anonymous page. Throws EBUSY if it cannot go now. */
export function swapOutPage(machine: Machine, pfn: number): void {
  const why = swapOutBlocker(machine, pfn);
  if (why) fail(why === 'no such frame' ? 'EINVAL' : 'EBUSY', `frame ${pfn}: ${why}`);
  // A snapshot of its own: this may run inside a callback of a reclaim that holds `scratch`.
  const own = { buf: new Float64Array(4) };
  const n = machine.rmap.entriesInto(pfn, own);
  const lazyClean = (machine.phys.frames.flags[pfn]! & PG_lazyfree) !== 0 && !anyDirty(machine, pfn, own.buf, n);
  if (!lazyClean && machine.swap.full) fail('ENOSPC', 'swap is full');
  unmapToSwap(machine, pfn, own.buf, n, lazyClean);
}

// ---- try_to_free_pages ----

// What becomes of a folio reclaim looked at.
const ACTIVATE = 0;
const KEEP = 1;
const RECLAIM = 2; // checkReferences: nothing keeps it, try
const FREED = 3;

/** The rmap snapshot reclaim reuses (reclaim does not nest: PF_MEMALLOC). */
const scratch = { buf: new Float64Array(16) };
const batch = new Int32Array(SWAP_CLUSTER_MAX);
const toScan = new Float64Array(NR_LRU_LISTS);

/**
 * try_to_free_pages: direct reclaim for an allocation of 2^order pages. Returns the pages it
 * freed (0: nothing could be reclaimed). An allocation made while it runs (by a notifier
 * callback) does not reclaim again.
 */
export function tryToFreePages(machine: Machine, order: number): number {
  const lru = machine.phys.lru;
  if (lru.reclaiming) return 0;
  lru.reclaiming = true;
  lru.stat.allocstall++;
  try {
    const want = Math.max(SWAP_CLUSTER_MAX, 2 ** order);
    let freed = 0;
    for (let priority = DEF_PRIORITY; priority >= 0 && freed < want; priority--) freed += shrinkLruvec(machine, priority, want - freed);
    return freed;
  } finally {
    lru.reclaiming = false;
  }
}

/** shrink_lruvec at one priority: each evictable list scanned in batches, anonymous ones only while swap has room. */
function shrinkLruvec(machine: Machine, priority: number, want: number): number {
  const lru = machine.phys.lru;
  const canSwap = !machine.swap.full;
  for (let l = 0; l < NR_LRU_LISTS; l++) toScan[l] = isAnonList(l) && !canSwap ? 0 : Math.floor(lru.pages[l]! / 2 ** priority);
  let freed = 0;
  while (toScan[LRU_INACTIVE_ANON]! > 0 || toScan[3]! > 0 || toScan[2]! > 0) {
    for (let l = 0; l < NR_LRU_LISTS; l++) {
      if (toScan[l]! <= 0) continue;
      const n = Math.min(toScan[l]!, SWAP_CLUSTER_MAX);
      toScan[l]! -= n;
      freed += shrinkList(machine, l, n);
    }
    if (freed >= want) break;
  }
  // Keep the anonymous lists balanced even when they were not scanned for pages.
  if (canSwap && inactiveIsLow(lru, LRU_INACTIVE_ANON)) shrinkActiveList(machine, SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON);
  return freed;
}

function isAnonList(l: number): boolean {
  return l === LRU_INACTIVE_ANON || l === LRU_ACTIVE_ANON;
}

function shrinkList(machine: Machine, l: number, n: number): number {
  if (l % 2 === 1) {
    if (inactiveIsLow(machine.phys.lru, l - 1)) shrinkActiveList(machine, n, l);
    return 0;
  }
  return shrinkInactiveList(machine, n, l);
}

/** inactive_is_low: inactive * inactive_ratio < active, the ratio sqrt(10 * GiB) on larger lists, else 1. */
function inactiveIsLow(lru: Lruvec, inactiveList: number): boolean {
  const inactive = lru.pages[inactiveList]!;
  const active = lru.pages[inactiveList + 1]!;
  const gb = Math.floor((inactive + active) / PAGES_PER_GIB);
  const ratio = gb ? Math.floor(Math.sqrt(10 * gb)) : 1;
  return inactive * ratio < active;
}

/** shrink_active_list: the oldest active folios go to the inactive list; their young bits are read and cleared on the way. */
function shrinkActiveList(machine: Machine, n: number, l: number): void {
  const lru = machine.phys.lru;
  const f = machine.phys.frames;
  for (let scanned = 0; scanned < n && lru.last[l]! >= 0; ) {
    const pfn = lru.last[l]!;
    scanned += 2 ** f.order(pfn);
    folioReferenced(machine, pfn);
    lru.move(pfn, false);
    lru.stat.pgdeactivate++;
  }
}

/** shrink_inactive_list: take a batch off the old end, try each folio, put back what stays. */
function shrinkInactiveList(machine: Machine, n: number, l: number): number {
  const phys = machine.phys;
  const lru = phys.lru;
  const f = phys.frames;
  let freed = 0;
  for (let scanned = 0; scanned < n && lru.last[l]! >= 0; ) {
    let taken = 0;
    while (taken < SWAP_CLUSTER_MAX && scanned < n && lru.last[l]! >= 0) {
      const pfn = lru.last[l]!;
      scanned += 2 ** f.order(pfn);
      lru.del(pfn); // isolated: PG_lru clear while reclaim holds it
      batch[taken++] = pfn;
    }
    lru.stat.pgscan += taken;
    for (let i = 0; i < taken; i++) {
      const pfn = batch[i]!;
      const r = shrinkFolio(machine, pfn);
      if (r === FREED) {
        freed++;
        lru.stat.pgsteal++;
        continue;
      }
      if (f.refcount[pfn] === 0 || f.flags[pfn]! & PG_lru || !lru.evictable(pfn)) continue;
      if (r === ACTIVATE) {
        f.flags[pfn]! |= PG_active;
        lru.stat.pgactivate++;
      }
      lru.add(pfn);
    }
  }
  return freed;
}

/**
 * folio_referenced: how many mappings of the folio were used since the last look (their
 * young bits, cleared here as ptep_clear_flush_young does). A THP mapped by a PMD counts once.
 */
function folioReferenced(machine: Machine, head: number): number {
  const f = machine.phys.frames;
  let young = 0;
  for (let p = head, end = head + 2 ** f.order(head); p < end; p++) {
    const n = machine.rmap.entriesInto(p, scratch);
    const buf = scratch.buf;
    for (let e = 0; e < n; e++) {
      const mm = machine.mmById(buf[2 * e]!);
      if (!mm) continue;
      const vpn = keyVpn(buf[2 * e + 1]!);
      mm.pt.lookup(vpn, slot);
      const flg = ptFlags(slot.node, slot.idx);
      if (!ptePresent(flg) || !pteYoung(flg)) continue;
      setPtFlags(slot.node, slot.idx, pteMkold(flg));
      young++;
    }
  }
  return young;
}

/** folio_check_references: activate on a second reference, keep after a first, else reclaim. */
function checkReferences(machine: Machine, head: number): number {
  const f = machine.phys.frames;
  const ptes = folioReferenced(machine, head);
  const referenced = (f.flags[head]! & PG_referenced) !== 0;
  f.flags[head]! &= ~PG_referenced;
  if (ptes > 0) {
    // Every mapped folio starts with the reference of the fault that mapped it: look twice.
    f.flags[head]! |= PG_referenced;
    return referenced || ptes > 1 ? ACTIVATE : KEEP;
  }
  return RECLAIM;
}

/** shrink_folio_list for one isolated folio: ACTIVATE, KEEP or FREED. */
function shrinkFolio(machine: Machine, head: number): number {
  const phys = machine.phys;
  const f = phys.frames;
  if (f.flags[head]! & PG_locked) return KEEP; // folio_trylock failed: under migration or I/O
  if (phys.pinned(head) > 0) return ACTIVATE; // folio_maybe_dma_pinned
  const refs = checkReferences(machine, head);
  if (refs !== RECLAIM) return refs;
  const flags = f.flags[head]!;
  if (flags & PG_anon) {
    if (flags & PG_head) {
      // No THP swap: split_folio, the tails go back to the old end to be tried next.
      const n = 2 ** f.order(head);
      if (!splitFolio(machine, head)) return ACTIVATE;
      for (let p = head + 1; p < head + n; p++) if (f.refcount[p]! > 0 && phys.lru.evictable(p)) phys.lru.addTail(p);
    }
    return reclaimAnon(machine, head);
  }
  if (flags & PG_swapbacked && f.mapping[head] !== 0) return reclaimShmem(machine, head);
  return KEEP;
}

/** An anonymous page whose only references are its PTE mappings: to swap, or discarded if MADV_FREE and clean. */
function reclaimAnon(machine: Machine, pfn: number): number {
  if (mappingBlocker(machine, pfn, 0, scratch)) return KEEP;
  const n = machine.rmap.entriesInto(pfn, scratch);
  const lazyClean = (machine.phys.frames.flags[pfn]! & PG_lazyfree) !== 0 && !anyDirty(machine, pfn, scratch.buf, n);
  if (!lazyClean && machine.swap.full) return ACTIVATE; // add_to_swap failed
  unmapToSwap(machine, pfn, scratch.buf, n, lazyClean);
  return FREED;
}

/**
 * A tmpfs page whose only references are its PTE mappings and the page cache's: unmapped,
 * then written to swap (shmem_writeout) if it holds data, or dropped from the page cache if
 * it reads as zeros (a hole again). A page with data counts as dirty whatever its flag says,
 * so that nothing written is lost.
 */
function reclaimShmem(machine: Machine, pfn: number): number {
  const phys = machine.phys;
  const f = phys.frames;
  const file = machine.fs.fileById(f.mapping[pfn]!);
  if (!file || file.pages.get(f.index[pfn]!) !== pfn) return KEEP;
  if (mappingBlocker(machine, pfn, 1, scratch)) return KEEP;
  const n = machine.rmap.entriesInto(pfn, scratch);
  const buf = scratch.buf;
  const dirty = (f.flags[pfn]! & PG_dirty) !== 0 || anyDirty(machine, pfn, buf, n) || phys.data.hasData(pfn);
  if (dirty && machine.swap.full) return ACTIVATE;
  for (let e = n - 1; e >= 0; e--) {
    const mm = machine.mmById(buf[2 * e]!)!;
    const vpn = keyVpn(buf[2 * e + 1]!);
    const addr = vpn * PAGE_SIZE;
    const range = mm.invalidateStart('CLEAR', addr, addr + PAGE_SIZE);
    mm.pt.lookup(vpn, slot);
    if (ptePresent(ptFlags(slot.node, slot.idx)) && ptVal(slot.node, slot.idx) === pfn) {
      removeMapping(mm, pfn, vpn, 0);
      PageTable.clear(slot.node, slot.idx);
      phys.putPage(pfn);
    }
    mm.invalidateEnd(range);
  }
  if (f.refcount[pfn] !== 1) return KEEP; // a mapping changed under a callback: the page stays cached
  const swapSlot = dirty ? machine.swap.alloc(phys.data.takeSlot(pfn), 1) : -1;
  if (dirty) phys.lru.stat.pswpout++;
  else phys.lru.stat.pgdrop++;
  file.evicted(f.index[pfn]!, swapSlot);
  phys.putPage(pfn);
  return FREED;
}

/**
 * Why the page's mappings keep it, or null: a reference besides its PTE mappings and
 * `cached` (the page cache's), a huge mapping, or a mapping that is not a present PTE.
 * Reads the rmap into `into`.
 */
function mappingBlocker(machine: Machine, pfn: number, cached: number, into: { buf: Float64Array }): string | null {
  const f = machine.phys.frames;
  const n = machine.rmap.entriesInto(pfn, into);
  if (f.refcount[pfn] !== n + cached || f.mapcount[pfn] !== n) return 'page has references besides its mappings';
  const buf = into.buf;
  for (let e = 0; e < n; e++) {
    const key = buf[2 * e + 1]!;
    if (keyLevel(key) !== 0) return 'page is mapped by a huge entry';
    const mm = machine.mmById(buf[2 * e]!);
    if (!mm) return 'page is mapped by an mm that is gone';
    mm.pt.lookup(keyVpn(key), slot);
    if (slot.level !== 0 || !ptePresent(ptFlags(slot.node, slot.idx)) || ptVal(slot.node, slot.idx) !== pfn) return 'page is not mapped present at every location';
  }
  return null;
}

function anyDirty(machine: Machine, pfn: number, buf: Float64Array, n: number): boolean {
  if (machine.phys.frames.flags[pfn]! & PG_dirty) return true;
  for (let e = 0; e < n; e++) {
    const mm = machine.mmById(buf[2 * e]!)!;
    mm.pt.lookup(keyVpn(buf[2 * e + 1]!), slot);
    if (pteDirty(ptFlags(slot.node, slot.idx))) return true;
  }
  return false;
}

/**
 * try_to_unmap to swap for an anonymous page every mapping of which is a present PTE (the
 * caller checked): its data moves to one swap slot (no copy), each mapping becomes a swap
 * entry under its own CLEAR invalidation, and the mappings' references go (freeing it).
 */
function unmapToSwap(machine: Machine, pfn: number, buf: Float64Array, n: number, discard: boolean): void {
  const phys = machine.phys;
  const swapSlot = discard ? -1 : machine.swap.alloc(phys.data.takeSlot(pfn), n);
  if (!discard) phys.lru.stat.pswpout++;
  for (let e = 0; e < n; e++) {
    const mm = machine.mmById(buf[2 * e]!)!;
    const vpn = keyVpn(buf[2 * e + 1]!);
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
  for (let e = 0; e < n; e++) phys.putPage(pfn);
}

/** Install direct reclaim in the machine's allocator. */
export function installReclaim(machine: Machine): void {
  machine.phys.directReclaim = (order) => tryToFreePages(machine, order);
}

/** The LRU list a folio is on, or -1 (for tests and checks). */
export function folioLru(machine: Machine, pfn: number): number {
  const flags = machine.phys.frames.flags[machine.phys.frames.compoundHead(pfn)]!;
  return flags & PG_lru ? Lruvec.listOf(flags) : -1;
}
