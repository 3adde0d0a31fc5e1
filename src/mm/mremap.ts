// mremap(2): shrink in place, grow in place, or move the VMA and its page-table entries
// (move_vma, move_page_tables) under one UNMAP invalidation of the old range. Huge PMD
// leaves move whole when source and destination are PMD aligned, and are split otherwise.

import { fail } from './errno.js';
import { MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PMD_NR, PMD_SIZE, pageAligned, pageAlignUp } from './constants.js';
import type { Mm } from './mm.js';
import {
  badKind, entryKind, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE, PageTable,
  pteNone, pteSpecial, ptFlags, type PtNode, ptVal,
} from './pagetable.js';
import { splitBoundary, splitHugePmd } from './memory.js';
import { rmapKey } from './rmap.js';
import { VM_DONTEXPAND, VM_PFNMAP, type Vma } from './vma.js';

export function mremap(mm: Mm, old: number, oldLength: number, newLength: number, flags: number, newAddr: number): number {
  mm.mmapLock('mremap');
  if (!Number.isInteger(flags) || flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) fail('EINVAL', 'unknown mremap flags');
  if (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) fail('EINVAL', 'MREMAP_FIXED needs MREMAP_MAYMOVE');
  if (flags & MREMAP_DONTUNMAP && (!(flags & MREMAP_MAYMOVE) || oldLength !== newLength)) fail('EINVAL', 'MREMAP_DONTUNMAP needs MREMAP_MAYMOVE and equal lengths');
  if (!Number.isSafeInteger(old) || old < 0 || !pageAligned(old)) fail('EINVAL', 'old address is not page aligned');
  if (!Number.isSafeInteger(oldLength) || oldLength <= 0) fail('EINVAL', 'old length must be positive (duplicating shared mappings with 0 is not modelled)');
  if (!Number.isSafeInteger(newLength) || newLength <= 0) fail('EINVAL', 'new length must be positive');
  const oldLen = pageAlignUp(oldLength);
  const newLen = pageAlignUp(newLength);
  if (old + oldLen > mm.taskSize || newLen > mm.taskSize) fail('EINVAL', 'range above the user address space');
  const vma = mm.vmas.lookup(old);
  if (!vma || old + oldLen > vma.end) fail('EFAULT', 'old range is not within one mapping');
  if (vma.isHugetlb()) fail('EINVAL', 'mremap of hugetlb mappings is not modelled');
  if (vma.flags & (VM_DONTEXPAND | VM_PFNMAP) && newLen > oldLen) fail('EFAULT', 'mapping cannot grow');
  if (flags & MREMAP_DONTUNMAP && !(vma.isAnonymous() && vma.isCow())) fail('EINVAL', 'MREMAP_DONTUNMAP needs a private anonymous mapping');
  if (flags & MREMAP_FIXED) {
    if (!Number.isSafeInteger(newAddr) || newAddr < 0 || !pageAligned(newAddr)) fail('EINVAL', 'new address is not page aligned');
    if (newAddr < 65536) fail('EPERM', 'new address below mmap_min_addr'); // security_mmap_addr
    if (newAddr + newLen > mm.taskSize) fail('EINVAL', 'new range above the user address space');
    if (newAddr < old + oldLen && old < newAddr + newLen) fail('EINVAL', 'old and new ranges overlap');
    for (const v of mm.vmas.overlapping(newAddr, newAddr + newLen)) {
      if (v.isHugetlb() && (newAddr > v.start || newAddr + newLen < v.end)) fail('EINVAL', 'new range splits a hugetlb mapping');
    }
    mm.munmapValidated(newAddr, newAddr + newLen);
    let len = oldLen;
    if (newLen < oldLen) {
      mm.munmapValidated(old + newLen, old + oldLen);
      len = newLen;
    }
    return moveVma(mm, old, len, newAddr, newLen, (flags & MREMAP_DONTUNMAP) !== 0);
  }
  if (!(flags & MREMAP_DONTUNMAP)) {
    if (newLen <= oldLen) {
      if (newLen < oldLen) mm.munmapValidated(old + newLen, old + oldLen);
      return old;
    }
    if (vma.end === old + oldLen && old + newLen <= mm.taskSize && mm.vmas.isFree(vma.end, old + newLen)) {
      vma.end = old + newLen;
      mm.mergeVma(vma);
      return old;
    }
    if (!(flags & MREMAP_MAYMOVE)) fail('ENOMEM', 'cannot grow in place and MREMAP_MAYMOVE not given');
  }
  // get_unmapped_area with no hint, as for mmap: private anonymous memory of a 2 MiB multiple is PMD aligned.
  const align = vma.isAnonymous() && vma.isCow() && newLen % PMD_SIZE === 0 ? PMD_SIZE : PAGE_SIZE;
  const dst = mm.vmas.findGapTopDown(newLen, 65536, mm.mmapBase, align);
  if (dst < 0) fail('ENOMEM', 'no free address range');
  return moveVma(mm, old, oldLen, dst, newLen, (flags & MREMAP_DONTUNMAP) !== 0);
}

function moveVma(mm: Mm, old: number, oldLen: number, dst: number, newLen: number, dontUnmap: boolean): number {
  const [src] = mm.isolateRange(old, old + oldLen) as [Vma];
  splitBoundary(mm, src, old);
  splitBoundary(mm, src, old + oldLen);
  const nv = src.clone();
  nv.start = dst;
  nv.end = dst + newLen;
  nv.pgoff = src.pgoff;
  mm.insertVma(nv);
  const range = mm.invalidateStart('UNMAP', old, old + oldLen);
  movePageTables(mm, old, dst, oldLen);
  if (!dontUnmap) {
    mm.removeVma(src);
    mm.pt.freeEmpty(old / PAGE_SIZE, (old + oldLen) / PAGE_SIZE);
  }
  mm.invalidateEnd(range);
  if (mm.machine.events.on.unmap) mm.machine.events.emit({ type: 'unmap', mmId: mm.id, start: old, end: old + oldLen, reason: 'mremap' });
  // MREMAP_DONTUNMAP leaves the old VMA whole (move_vma never splits it): undo isolateRange's split.
  if (dontUnmap) mm.mergeVma(src);
  mm.mergeVma(nv);
  return dst;
}

function hasRmap(mm: Mm, flg: number, val: number): boolean {
  const kind = entryKind(flg);
  switch (kind) {
    case K_PRESENT:
      return !pteSpecial(flg) && !mm.machine.phys.isZeroPfn(val);
    case K_MIGRATION:
    case K_DEVICE_PRIVATE:
    case K_DEVICE_EXCLUSIVE:
      return true;
    case K_SWAP:
    case K_HWPOISON:
    case K_BAD:
    case K_NONE:
    case K_TABLE:
      return false;
    default:
      return badKind(kind);
  }
}

function movePageTables(mm: Mm, old: number, dst: number, len: number): void {
  const s = old / PAGE_SIZE;
  const e = s + len / PAGE_SIZE;
  const delta = (dst - old) / PAGE_SIZE;
  const aligned = delta % PMD_NR === 0;
  const entries: Array<[PtNode, number, number, number]> = [];
  mm.pt.forEach(s, e, (node, idx, level, vpn) => entries.push([node, idx, level, vpn]));
  const rmap = mm.machine.rmap;
  for (const [node, idx, level, vpn] of entries) {
    if (level === 1 && !aligned) {
      // Split, then move the 512 entries one by one.
      const table = splitHugePmd(mm, node, idx, vpn);
      for (let i = 0; i < PMD_NR; i++) moveEntry(mm, table, i, 0, vpn + i, delta, rmap);
      continue;
    }
    moveEntry(mm, node, idx, level, vpn, delta, rmap);
  }
}

function moveEntry(mm: Mm, node: PtNode, idx: number, level: number, vpn: number, delta: number, rmap: Mm['machine']['rmap']): void {
  const flg = ptFlags(node, idx);
  const val = ptVal(node, idx);
  if (pteNone(flg)) return;
  const to = vpn + delta;
  const table = mm.pt.ensureTable(to, level)!;
  PageTable.set(table, PageTable.index(to, level), flg, val);
  PageTable.clear(node, idx);
  if (hasRmap(mm, flg, val)) rmap.move(val, mm.id, rmapKey(vpn, level), rmapKey(to, level));
}
