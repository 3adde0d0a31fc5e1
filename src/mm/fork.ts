// fork's copy of an address space (dup_mmap, copy_page_range). Private writable mappings
// become copy-on-write: the parent's entries are write-protected under one PROTECTION_PAGE
// invalidation per VMA, and both processes share the frames. Shared mappings are not copied
// at all; the child faults them in from the page cache.

import { PAGE_SIZE, PTRS_PER_TABLE } from './constants.js';
import type { Mm } from './mm.js';
import {
  badKind, E_SPECIAL, E_WRITE, entryKind, entryWithKind, isLeafEntry, isTableEntry, K_BAD, K_NONE, K_TABLE, K_DEVICE_EXCLUSIVE,
  K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION, K_PRESENT, K_SWAP, KIND_MASK, LEVEL_ORDER, LEVEL_PAGES, PageTable, pteNone, pteSpecial,
  pteWrite, pteWrprotect, ptFlags, ptFlagsArray, ptFlagsArrayMut, type PtNode, ptVal, ptValArray, ptValArrayMut, setPtFlags,
} from './pagetable.js';
import { addMapping, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, mmCounter, splitHugePmd } from './memory.js';
import { rmapKey } from './rmap.js';
import { type Frames, PG_anon, PG_anon_exclusive, PG_head, PG_reserved, PG_tail } from './page.js';
import { VM_DONTCOPY, VM_MIXEDMAP, VM_PFNMAP, type Vma } from './vma.js';

/** vma_needs_copy: page tables are copied for COW mappings that have anonymous pages, and for pfn maps. */
function needsCopy(v: Vma): boolean {
  return (v.isCow() && v.anonVma) || (v.flags & (VM_PFNMAP | VM_MIXEDMAP)) !== 0 || v.isHugetlb() && v.isCow();
}

export function dupMm(parent: Mm): Mm {
  parent.mmapLock('fork');
  const machine = parent.machine;
  const child = machine.newMm();
  try {
    copyVmas(parent, child);
  } catch (e) {
    // dup_mmap failed (ENOMEM copying a pinned page): the half-built child is torn down, as
    // fork's error path does with mmput; the parent keeps its write-protected entries.
    child.exit();
    throw e;
  }
  return child;
}

function copyVmas(parent: Mm, child: Mm): void {
  const machine = parent.machine;
  const mapEvents = machine.events.on.map;
  for (const v of parent.vmas.all) {
    if (v.flags & VM_DONTCOPY) continue;
    const cv = v.clone();
    child.insertVma(cv);
    if (!needsCopy(v)) continue;
    const cow = v.isCow();
    const range = cow ? parent.invalidateStart('PROTECTION_PAGE', v.start, v.end) : null;
    try {
      copyRange(parent, child, v, cow, mapEvents);
    } finally {
      parent.invalidateEnd(range);
    }
  }
}

/**
 * copy_page_range: the tables of the parent under [v.start, v.end), top down, each into the
 * child's table at the same place (allocated on the way, as copy_pud_range / copy_pmd_range
 * allocate), the lower tables before the huge leaves of the table above them.
 */
function copyRange(parent: Mm, child: Mm, v: Vma, cow: boolean, mapEvents: boolean): void {
  copyTable(parent, child, parent.pt.root, child.pt.root, v.start / PAGE_SIZE, v.end / PAGE_SIZE, 0, cow, mapEvents);
}

/** The entries of table `node` (covering vpns from base) inside [s, e) into the child's table dst. */
function copyTable(parent: Mm, child: Mm, node: PtNode, dst: PtNode, s: number, e: number, base: number, cow: boolean, mapEvents: boolean): void {
  const level = node.level;
  const span = LEVEL_PAGES[level]!;
  const first = Math.max(0, Math.floor((s - base) / span));
  const last = Math.min(511, Math.floor((e - 1 - base) / span));
  if (level === 0) {
    copyPteRange(parent, child, node, first, last, base, dst, cow, mapEvents);
    return;
  }
  const flgs = ptFlagsArray(node);
  let leaves = false;
  for (let i = first; i <= last; i++) {
    const flg = flgs[i]!;
    if (isTableEntry(flg)) copyTable(parent, child, node.child![i]!, child.pt.ensureChild(dst, i)!, s, e, base + i * span, cow, mapEvents);
    else if (!pteNone(flg)) leaves = true;
  }
  if (!leaves) return;
  for (let i = first; i <= last; i++) if (isLeafEntry(ptFlags(node, i))) copyEntry(parent, child, node, i, dst, level, base + i * span, cow);
}

/**
 * copy_pte_range: entries first..last of one PTE table into the child's. The common case, a
 * small page with a struct page, no pins and the parent's reverse-map entry alone, goes
 * through copyPresentPtes, a loop over typed arrays with no call, PRESENT_CHUNK entries a
 * call, and finishRun, native copies for the run of entries it copied; the entries it stops
 * at take copyPte, one at a time. The child's rss is counted per table and added once
 * (add_mm_rss_vec).
 */
function copyPteRange(parent: Mm, child: Mm, node: PtNode, first: number, last: number, base: number, dst: PtNode, cow: boolean, mapEvents: boolean): void {
  const phys = parent.machine.phys;
  // With a pin anywhere, or a listener for `map` events, every entry takes copyEntry's path
  // (copy_present_page's pin check, addMapping's event).
  const slowAll = phys.pincount.size > 0 || mapEvents;
  const wp = cow ? ~E_WRITE : -1; // pte_wrprotect of a COW mapping's entries, parent and child
  const flgs = ptFlagsArrayMut(node);
  const vals = ptValArray(node);
  const dflgs = ptFlagsArrayMut(dst);
  const dvals = ptValArrayMut(dst);
  const f = phys.frames;
  const rss = RSS;
  rss.fill(0);
  // The child's values in one native copy: every entry copied takes the parent's (copyEntry
  // rewrites one that gets a page of its own), and a none entry's is 0 on both sides.
  if (first === 0 && last === PTRS_PER_TABLE - 1) dvals.set(vals);
  else dvals.set(vals.subarray(first, last + 1), first);
  let i = first;
  let run = first; // the first entry of copyPresentPtes' current run
  while (i <= last) {
    if (!slowAll) {
      if (i === run) rss[CONSECUTIVE] = 1;
      const end = Math.min(last, i | (PRESENT_CHUNK - 1));
      i = copyPresentPtes(flgs, vals, i, end, wp, f, child.id, vals[run]! - run);
      if (i > end) continue;
      finishRun(flgs, vals, dflgs, run, i, rss[CONSECUTIVE]!, f);
    }
    if ((flgs[i]! & KIND_MASK) !== K_NONE) copyPte(parent, child, node, i, dst, base, cow, wp, slowAll, rss);
    run = ++i;
  }
  if (run <= last) finishRun(flgs, vals, dflgs, run, last + 1, rss[CONSECUTIVE]!, f);
  dst.used += rss[0]! + rss[1]! + rss[2]!;
  child.rss[MM_ANONPAGES]! += rss[0]!;
  child.rss[MM_SHMEMPAGES]! += rss[1]!;
  child.rss[MM_FILEPAGES]! += rss[2]!;
}

/**
 * Entries per copyPresentPtes call: a call ends soon, so V8 runs the optimized code from the
 * next call on, rather than compiling the loop a second time to replace the running call.
 */
const PRESENT_CHUNK = 64;

/**
 * copyPteRange's per-table counts: anon, shmem and file pages given to the child; and at
 * CONSECUTIVE, 1 while the run copyPresentPtes is copying maps consecutive frames, with no
 * none entry between them.
 */
const RSS = new Int32Array(4);
const CONSECUTIVE = 3;

// What copyPresentPtes tests, as constants of this module: an imported binding read in its
// loop costs the optimizing compile a load and a hole check at each read (a fifth of a cold
// fork's instructions, callgrind says), a constant of this module nothing.
const KIND_SPECIAL = KIND_MASK | E_SPECIAL;
const PRESENT = K_PRESENT;
const NOT_SMALL = PG_head | PG_tail | PG_reserved; // compound pages and the zero pages (reserved) take copyPte
const ANON = PG_anon;
const NOT_EXCLUSIVE = ~PG_anon_exclusive;

/**
 * copy_present_pte for the entries from i on while each is a small page with a struct page,
 * mapped by the parent alone (one reverse-map entry): the page is shared with the child
 * (reference, mapcount, no longer exclusive), write-protected in the parent if `wp` says so,
 * and the child's reverse-map entry fills the frame's second slot; finishRun writes the
 * child's entries and that entry's key. Returns the index of the first entry it did not copy
 * (a none entry is skipped): last + 1 when it copied them all. Entry j of the run maps frame
 * delta + j while CONSECUTIVE holds. A small leaf over typed arrays: V8 optimizes it after a
 * few tables of a process's first fork, and its compile is most of that fork's cold cost.
 */
function copyPresentPtes(
  flgs: Uint16Array, vals: Readonly<Uint32Array>, i: number, last: number, wp: number, f: Frames, childId: number,
  delta: number,
): number {
  const refcount = f.refcount;
  const mapcount = f.mapcount;
  const flags = f.flags;
  const mapping = f.mapping;
  const rmapMm = f.rmapMm;
  const rmapMm2 = f.rmapMm2;
  let consecutive = 1;
  let anon = 0;
  let shmem = 0;
  let file = 0;
  for (; i <= last; i++) {
    const flg = flgs[i]!;
    const kind = flg & KIND_SPECIAL;
    if (kind === 0) {
      consecutive = 0;
      continue;
    }
    if (kind !== PRESENT) break;
    const val = vals[i]!;
    const pflags = flags[val]!;
    if (pflags & NOT_SMALL || rmapMm2[val] !== 0 || rmapMm[val] === 0) break;
    if (val !== delta + i) consecutive = 0;
    refcount[val]!++;
    mapcount[val]!++;
    if (pflags & ANON) {
      flags[val] = pflags & NOT_EXCLUSIVE;
      anon++;
    } else if (mapping[val] !== 0) shmem++;
    else file++;
    flgs[i] = flg & wp;
    rmapMm2[val] = childId;
  }
  const rss = RSS;
  rss[0]! += anon;
  rss[1]! += shmem;
  rss[2]! += file;
  rss[CONSECUTIVE]! &= consecutive;
  return i;
}

/**
 * The rest of the run [start, end) copyPresentPtes copied, in native copies: the child's
 * entries take the parent's flags, write-protected by now (a none entry's are 0 on both
 * sides), and each frame's second reverse-map key is its first, the same address. When the
 * run maps consecutive frames, those keys are one range; else they are copied one at a time
 * (a key is a double, which unoptimized code boxes at each read).
 */
function finishRun(
  flgs: Readonly<Uint16Array>, vals: Readonly<Uint32Array>, dflgs: Uint16Array, start: number, end: number, consecutive: number, f: Frames,
): void {
  if (start === end) return;
  if (end - start === PTRS_PER_TABLE) dflgs.set(flgs);
  else dflgs.set(flgs.subarray(start, end), start);
  const rmapKey = f.rmapKey;
  const rmapKey2 = f.rmapKey2;
  if (consecutive) {
    const pfn = vals[start]!;
    rmapKey2.set(rmapKey.subarray(pfn, pfn + end - start), pfn);
    return;
  }
  for (let i = start; i < end; i++) {
    if ((flgs[i]! & KIND_MASK) === K_NONE) continue;
    const val = vals[i]!;
    rmapKey2[val] = rmapKey[val]!;
  }
}

/** One entry copyPresentPtes left: a small page another mapping shares too, or copyEntry's. */
function copyPte(parent: Mm, child: Mm, node: PtNode, i: number, dst: PtNode, base: number, cow: boolean, wp: number, slowAll: boolean, rss: Int32Array): void {
  const phys = parent.machine.phys;
  const f = phys.frames;
  const flg = ptFlags(node, i);
  const val = ptVal(node, i);
  const pflags = (flg & (KIND_MASK | E_SPECIAL)) === K_PRESENT ? f.flags[val]! : -1;
  if (pflags < 0 || pflags & (PG_head | PG_tail) || slowAll || val === phys.zeroPfn) {
    copyEntry(parent, child, node, i, dst, 0, base + i, cow);
    return;
  }
  f.refcount[val]!++;
  f.mapcount[val]!++;
  if (pflags & PG_anon) {
    f.flags[val] = pflags & ~PG_anon_exclusive;
    rss[0]!++;
  } else if (f.mapping[val] !== 0) rss[1]!++;
  else rss[2]!++;
  setPtFlags(node, i, flg & wp);
  ptFlagsArrayMut(dst)[i] = flg & wp; // the child's table is new: none before
  ptValArrayMut(dst)[i] = val;
  parent.machine.rmap.add(val, child.id, rmapKey(base + i, 0));
}

/**
 * A pinned exclusive huge page cannot be shared with the child: the parent's writes must keep
 * going to the pinned frames (the GUP-after-fork rule that PageAnonExclusive enforces).
 * hugetlb (copy_hugetlb_page_range): the child gets a copy of the whole huge page now. THP
 * (copy_huge_pmd): the parent's PMD is split and its PTEs copied one by one, each pinned
 * exclusive subpage through copy_present_page.
 */
function copyPinnedHuge(parent: Mm, child: Mm, node: PtNode, idx: number, dst: PtNode, level: number, vpn: number, cow: boolean): void {
  const phys = parent.machine.phys;
  const val = ptVal(node, idx);
  const n = LEVEL_PAGES[level]!;
  if (phys.isHugetlb(val)) {
    const copy = phys.allocPages(LEVEL_ORDER[level]!);
    phys.markHugetlb(copy);
    phys.setAnon(copy);
    for (let i = 0; i < n; i++) if (phys.data.hasData(val + i)) phys.copyPage(copy + i, val + i);
    PageTable.set(dst, idx, ptFlags(node, idx), copy);
    addMapping(child, copy, vpn, level);
    return;
  }
  const range = parent.invalidateStart('CLEAR', vpn * PAGE_SIZE, (vpn + n) * PAGE_SIZE);
  const table = splitHugePmd(parent, node, idx, vpn);
  parent.invalidateEnd(range);
  const cpte = child.pt.ensureTable(vpn, 0)!;
  for (let i = 0; i < n; i++) copyEntry(parent, child, table, i, cpte, 0, vpn + i, cow);
}

/** copy_present_pte / copy_nonpresent_pte / copy_huge_pmd for one entry, into dst[same index]. */
function copyEntry(parent: Mm, child: Mm, node: PtNode, idx: number, dst: PtNode, level: number, vpn: number, cow: boolean): void {
  const machine = parent.machine;
  const phys = machine.phys;
  let flg = ptFlags(node, idx);
  const val = ptVal(node, idx);
  const didx = idx;
  if (entryKind(flg) === K_DEVICE_EXCLUSIVE) {
    // try_restore_exclusive_pte: the parent gets its ordinary mapping back first.
    flg = entryWithKind(flg, K_PRESENT);
    setPtFlags(node, idx, flg);
  }
  const kind = entryKind(flg);
  switch (kind) {
    case K_PRESENT: {
      if (pteSpecial(flg) || phys.isZeroPfn(val)) break;
      if (level === 0 && phys.isAnon(val) && phys.pinned(val) > 0 && phys.frames.flags[val]! & PG_anon_exclusive) {
        // A pinned exclusive page stays the parent's: the child gets a copy now (copy_present_page).
        const copy = phys.allocPages(0);
        phys.setAnon(copy);
        phys.copyPage(copy, val);
        PageTable.set(dst, didx, flg, copy);
        addMapping(child, copy, vpn, 0);
        return;
      }
      if (level > 0 && phys.isAnon(val) && phys.pinned(val) > 0 && phys.frames.flags[val]! & PG_anon_exclusive) {
        copyPinnedHuge(parent, child, node, idx, dst, level, vpn, cow);
        return;
      }
      phys.getPage(val);
      if (phys.isAnon(val)) {
        const n = level === 0 ? 1 : LEVEL_PAGES[level]!;
        for (let i = 0; i < n; i++) phys.frames.flags[val + i]! &= ~PG_anon_exclusive;
      }
      if (cow && pteWrite(flg)) setPtFlags(node, idx, (flg = pteWrprotect(flg)));
      addMapping(child, val, vpn, level);
      break;
    }
    case K_DEVICE_PRIVATE:
      // copy_nonpresent_pte / copy_huge_non_present_pmd: the folio is shared from now on.
      phys.getPage(val);
      for (let i = 0, n = LEVEL_PAGES[level]!; i < n; i++) phys.frames.flags[val + i]! &= ~PG_anon_exclusive;
      if (cow && pteWrite(flg)) setPtFlags(node, idx, (flg = pteWrprotect(flg)));
      addMapping(child, val, vpn, level);
      break;
    case K_MIGRATION:
      if (cow && pteWrite(flg)) setPtFlags(node, idx, (flg = pteWrprotect(flg)));
      // The page under migration is shared from now on: the remapped entries must not treat
      // it as exclusive (an exclusive migration entry becomes a readable one).
      if (phys.isAnon(val)) phys.frames.flags[val]! &= ~PG_anon_exclusive;
      machine.rmap.add(val, child.id, rmapKey(vpn, level));
      child.rss[mmCounter(child, val)]! += LEVEL_PAGES[level]!;
      break;
    case K_SWAP:
      machine.swap.dup(val);
      child.rss[MM_SWAPENTS]!++;
      break;
    case K_HWPOISON:
    case K_BAD:
      break;
    case K_DEVICE_EXCLUSIVE: // restored above
    case K_NONE:
    case K_TABLE:
      return;
    default:
      badKind(kind);
  }
  PageTable.set(dst, didx, flg, val);
}

