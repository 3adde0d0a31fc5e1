// Page-table entry surgery shared by every operation (mm/memory.c, mm/huge_memory.c):
// installing and zapping entries with their refcount, mapcount, reverse-map and rss
// bookkeeping, and splitting huge PMD leaves.

import {
  badKind, E_DIRTY, E_SPECIAL, entryKind, isLeafEntry, KIND_MASK, ptFlagsArrayMut, ptValArrayMut, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION,
  K_NONE, K_PRESENT, K_SWAP, K_TABLE, LEVEL_PAGES, PageTable, pteDirty, pteSpecial, ptFlags, PtNode, ptVal,
} from './pagetable.js';
import { rmapKey } from './rmap.js';
import { PG_anon, PG_dirty, PG_head, PG_lazyfree, PG_tail } from './page.js';
import type { Mm } from './mm.js';
import type { Vma } from './vma.js';
import { PAGE_SIZE, PMD_NR } from './constants.js';

// rss counters (mm_struct.rss_stat)
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;

/** Pages whose last reference is dropped only after the invalidation ends (the mmu_gather). */
export class PageGather {
  /** @internal The gathered pfns, pfns[0..n); a table-at-a-time loop stores into them after reserve(). */
  pfns = new Int32Array(256);
  /** @internal */
  n = 0;
  add(pfn: number): void {
    if (this.n === this.pfns.length) this.grow(this.n + 1);
    this.pfns[this.n++] = pfn;
  }
  /** Room for `more` pfns past n (a whole table's), without a check per page. */
  reserve(more: number): Int32Array {
    if (this.n + more > this.pfns.length) this.grow(this.n + more);
    return this.pfns;
  }
  private grow(need: number): void {
    let len = this.pfns.length * 2;
    while (len < need) len *= 2;
    const g = new Int32Array(len);
    g.set(this.pfns.subarray(0, this.n));
    this.pfns = g;
  }
  /** tlb_finish_mmu: drop the references. */
  flush(mm: Mm): void {
    mm.machine.phys.releasePages(this.pfns, this.n);
    this.n = 0;
  }
}

/** mm_counter(): which rss counter a mapped frame counts in. */
export function mmCounter(mm: Mm, pfn: number): number {
  const f = mm.machine.phys.frames;
  const head = f.compoundHead(pfn);
  if (f.flags[head]! & PG_anon) return MM_ANONPAGES;
  return f.mapping[head] !== 0 ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/**
 * Account a new mapping of `pfn` at `vpn` by an entry at `level`: mapcount (entire mapcount
 * for a huge leaf), reverse map and rss, and the `map` event. The reference the entry holds
 * is the caller's.
 */
export function addMapping(mm: Mm, pfn: number, vpn: number, level: number): void {
  const phys = mm.machine.phys;
  if (level === 0) phys.frames.mapcount[pfn]!++;
  else phys.entireMapcount.set(pfn, (phys.entireMapcount.get(pfn) ?? 0) + 1);
  mm.machine.rmap.add(pfn, mm.id, rmapKey(vpn, level));
  mm.rss[mmCounter(mm, pfn)]! += LEVEL_PAGES[level]!;
  // folio_add_lru_vma / putback after migration: a folio of RAM that gets mapped is on the LRU.
  const head = phys.frames.compoundHead(pfn);
  if (phys.lru.evictable(head)) phys.lru.add(head);
  const events = mm.machine.events;
  if (events.on.map) events.emit({ type: 'map', mmId: mm.id, addr: vpn * PAGE_SIZE, pfn, nr: LEVEL_PAGES[level]! });
}

/** Undo addMapping (the caller drops the entry's reference). */
export function removeMapping(mm: Mm, pfn: number, vpn: number, level: number): void {
  const phys = mm.machine.phys;
  if (level === 0) phys.frames.mapcount[pfn]!--;
  else {
    const n = (phys.entireMapcount.get(pfn) ?? 0) - 1;
    if (n > 0) phys.entireMapcount.set(pfn, n);
    else phys.entireMapcount.delete(pfn);
  }
  mm.machine.rmap.remove(pfn, mm.id, rmapKey(vpn, level));
  mm.rss[mmCounter(mm, pfn)]! -= LEVEL_PAGES[level]!;
}

/** Total mappings of a frame: its own PTE mappings plus the huge mappings of its folio. */
export function totalMapcount(mm: Mm, pfn: number): number {
  const phys = mm.machine.phys;
  return phys.frames.mapcount[pfn]! + (phys.entireMapcount.get(phys.frames.compoundHead(pfn)) ?? 0);
}

/**
 * Zap one entry (zap_pte_range / zap_huge_pmd for a fully covered leaf). References that
 * mappings held go to the gather; swap slots are released at once.
 */
export function zapEntry(mm: Mm, node: PtNode, idx: number, level: number, vpn: number, gather: PageGather): void {
  const flg = ptFlags(node, idx);
  const val = ptVal(node, idx);
  const machine = mm.machine;
  const kind = entryKind(flg);
  switch (kind) {
    case K_PRESENT:
      if (!pteSpecial(flg) && !machine.phys.isZeroPfn(val)) {
        if (pteDirty(flg)) machine.phys.setDirty(val);
        removeMapping(mm, val, vpn, level);
        gather.add(val);
      }
      break;
    case K_DEVICE_PRIVATE:
    case K_DEVICE_EXCLUSIVE:
      removeMapping(mm, val, vpn, level);
      gather.add(val);
      break;
    case K_MIGRATION:
      // No mapcount and no reference: the migration holds the page. Only rss and rmap.
      machine.rmap.remove(val, mm.id, rmapKey(vpn, level));
      mm.rss[mmCounter(mm, val)]! -= LEVEL_PAGES[level]!;
      break;
    case K_SWAP:
      machine.swap.free(val);
      mm.rss[MM_SWAPENTS]!--;
      break;
    case K_HWPOISON:
    case K_BAD: // nothing to account
    case K_NONE:
    case K_TABLE:
      break;
    default:
      badKind(kind);
  }
  PageTable.clear(node, idx);
}

/** Zap every entry of [start, end) in `vma`; huge leaves must not straddle the bounds (splitBoundary first). */
export function zapRange(mm: Mm, start: number, end: number, gather: PageGather): void {
  // Table by table, with the loop here: no callback on the hottest path of munmap, exit and
  // MADV_DONTNEED.
  for (const { node, first, last, base } of mm.pt.tables(start / PAGE_SIZE, end / PAGE_SIZE)) {
    if (node.level === 0) {
      zapPteRange(mm, node, first, last, base, gather);
      continue;
    }
    const span = LEVEL_PAGES[node.level]!;
    for (let i = first; i <= last; i++) {
      if (isLeafEntry(ptFlags(node, i))) zapEntry(mm, node, i, node.level, base + i * span, gather);
    }
  }
}

/**
 * zap_pte_range: entries first..last of one PTE table. The common entry, a present small page
 * with a struct page, is zapped inline in one loop over the table's arrays with no call (as
 * zapEntry would: dirty to the page, mapcount, reverse map, the reference to the gather, the
 * entry cleared); every other goes to zapEntry. rss is counted per table and taken off once
 * (add_mm_rss_vec).
 */
function zapPteRange(mm: Mm, node: PtNode, first: number, last: number, base: number, gather: PageGather): void {
  const machine = mm.machine;
  const f = machine.phys.frames;
  const flags = f.flags;
  const mapcount = f.mapcount;
  const mapping = f.mapping;
  const rmapMm = f.rmapMm;
  const rmapMm2 = f.rmapMm2;
  const rmap = machine.rmap;
  const zero = machine.phys.zeroPfn;
  const flgs = ptFlagsArrayMut(node);
  const vals = ptValArrayMut(node);
  const mmId = mm.id;
  let out = gather.reserve(last - first + 1);
  let n = gather.n;
  let anon = 0;
  let file = 0;
  let shmem = 0;
  let cleared = 0;
  for (let i = first; i <= last; i++) {
    const flg = flgs[i]!;
    if ((flg & KIND_MASK) === K_NONE) continue;
    const val = vals[i]!;
    const pflags = (flg & (KIND_MASK | E_SPECIAL)) === K_PRESENT ? flags[val]! : -1;
    if (pflags < 0 || pflags & (PG_head | PG_tail) || val === zero) {
      gather.n = n;
      zapEntry(mm, node, i, 0, base + i, gather);
      out = gather.pfns;
      n = gather.n;
      continue;
    }
    if (flg & E_DIRTY) flags[val] = (pflags | PG_dirty) & ~PG_lazyfree; // set_page_dirty: a small page is its own head
    mapcount[val]!--;
    // A frame with one reverse-map entry, this mm's, is mapped by this entry alone: clear it
    // in place (Rmap.remove's fast case, with no key to box); any other goes to Rmap.remove.
    if (rmapMm2[val] === 0 && rmapMm[val] === mmId) rmapMm[val] = 0;
    else rmap.remove(val, mmId, rmapKey(base + i, 0));
    if (pflags & PG_anon) anon++;
    else if (mapping[val] !== 0) shmem++;
    else file++;
    out[n++] = val;
    flgs[i] = 0;
    vals[i] = 0;
    cleared++;
  }
  gather.n = n;
  node.used -= cleared;
  mm.rss[MM_ANONPAGES]! -= anon;
  mm.rss[MM_SHMEMPAGES]! -= shmem;
  mm.rss[MM_FILEPAGES]! -= file;
}

/**
 * __split_huge_pmd_locked: turn the huge PMD leaf (or non-present huge entry) at
 * parent[idx] into a PTE table of 512 entries with the same permissions. The folio stays
 * whole (PTE-mapped); every PTE takes its own reference and mapcount. The caller is
 * responsible for the invalidation around it.
 */
export function splitHugePmd(mm: Mm, parent: PtNode, idx: number, baseVpn: number): PtNode {
  const flg = ptFlags(parent, idx);
  const val = ptVal(parent, idx);
  const kind = entryKind(flg);
  const table = new PtNode(0);
  const phys = mm.machine.phys;
  const zero = kind === K_PRESENT && phys.isZeroPfn(val);
  const pteFlags = zero ? (K_PRESENT | E_SPECIAL) : flg;
  for (let i = 0; i < PMD_NR; i++) PageTable.set(table, i, pteFlags, zero ? phys.zeroPfn : val + i);
  if (!zero && kind !== K_SWAP && kind !== K_HWPOISON) {
    const rmap = mm.machine.rmap;
    rmap.remove(val, mm.id, rmapKey(baseVpn, 1));
    for (let i = 0; i < PMD_NR; i++) rmap.add(val + i, mm.id, rmapKey(baseVpn + i, 0));
    if (kind !== K_MIGRATION) {
      const n = (phys.entireMapcount.get(val) ?? 0) - 1;
      if (n > 0) phys.entireMapcount.set(val, n);
      else phys.entireMapcount.delete(val);
      for (let i = 0; i < PMD_NR; i++) phys.frames.mapcount[val + i]!++;
      phys.frames.refcount[val]! += PMD_NR - 1;
    }
  }
  mm.pt.installTable(parent, idx, table);
  return table;
}

/**
 * If a splittable huge PMD leaf straddles `addr` (not PMD aligned), split it so that an
 * operation can act on one side. Returns false for a leaf that cannot be split (hugetlb).
 */
export function splitBoundary(mm: Mm, vma: Vma, addr: number): boolean {
  const vpn = addr / PAGE_SIZE;
  if (vpn % PMD_NR === 0) return true;
  const pmd = mm.pt.tableAt(vpn, 1);
  if (!pmd) return true;
  const idx = PageTable.index(vpn, 1);
  if (!isLeafEntry(ptFlags(pmd, idx))) return true;
  if (vma.isHugetlb()) return false;
  // __split_huge_pmd notifies the whole huge range: a huge zero page becomes small zero
  // pages (other frames), and a mirror must drop its view of the leaf.
  const base = vpn - (vpn % PMD_NR);
  const range = mm.invalidateStart('CLEAR', base * PAGE_SIZE, (base + PMD_NR) * PAGE_SIZE);
  splitHugePmd(mm, pmd, idx, base);
  mm.invalidateEnd(range);
  return true;
}
