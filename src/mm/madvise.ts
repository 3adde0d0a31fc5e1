// madvise(2): DONTNEED, FREE, PAGEOUT, HUGEPAGE/NOHUGEPAGE, DONTFORK/DOFORK, COLLAPSE.

import { fail } from './errno.js';
import {
  MADV_COLLAPSE, MADV_DOFORK, MADV_DONTFORK, MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_NORMAL,
  MADV_PAGEOUT, PAGE_SIZE, PMD_SIZE, pageAligned, pageAlignUp,
} from './constants.js';
import type { Mm } from './mm.js';
import { entryKind, K_PRESENT, K_SWAP, PageTable, pteMkclean, ptePresent, pteSpecial, ptFlags, ptVal, setPtFlags } from './pagetable.js';
import { MM_SWAPENTS, splitBoundary, totalMapcount, zapRange } from './memory.js';
import { PG_dirty, PG_lazyfree } from './page.js';
import { VM_DONTCOPY, VM_HUGEPAGE, VM_LOCKED, VM_NOHUGEPAGE, VM_PFNMAP, type Vma } from './vma.js';
import { swapOutBlocker, swapOutPage } from './vmscan.js';
import { collapseHugePage } from './khugepaged.js';

const KNOWN = new Set([MADV_NORMAL, MADV_DONTNEED, MADV_FREE, MADV_PAGEOUT, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTFORK, MADV_DOFORK, MADV_COLLAPSE]);

export function madvise(mm: Mm, start: number, length: number, advice: number): void {
  mm.mmapLock('madvise');
  if (!KNOWN.has(advice)) fail('EINVAL', `unknown advice ${advice}`);
  if (!Number.isSafeInteger(start) || start < 0 || !pageAligned(start)) fail('EINVAL', 'start is not page aligned');
  if (!Number.isSafeInteger(length) || length < 0) fail('EINVAL', `bad length ${length}`);
  const end = start + pageAlignUp(length);
  if (end === start) return;
  // No VMA lies above TASK_SIZE: madvise_walk_vmas finds none there (ENOMEM).
  if (end > mm.taskSize) fail('ENOMEM', 'range ends above the user address space');
  // The kernel applies the advice to the mapped parts and then reports ENOMEM; we refuse
  // up front so that a failed call changes nothing (docs/api.md).
  if (!mm.fullyMapped(start, end)) fail('ENOMEM', 'range is not fully mapped');
  const vmas = mm.vmas.overlapping(start, end);
  for (const v of vmas) validate(v, advice, Math.max(start, v.start), Math.min(end, v.end));

  switch (advice) {
    case MADV_NORMAL:
      return;
    case MADV_DONTNEED:
      for (const v of vmas) dontneed(mm, v, Math.max(start, v.start), Math.min(end, v.end));
      return;
    case MADV_FREE:
      for (const v of vmas) free(mm, v, Math.max(start, v.start), Math.min(end, v.end));
      return;
    case MADV_PAGEOUT:
      pageout(mm, start, end);
      return;
    case MADV_COLLAPSE:
      for (let a = Math.ceil(start / PMD_SIZE) * PMD_SIZE; a + PMD_SIZE <= end; a += PMD_SIZE) collapseHugePage(mm, a);
      return;
    case MADV_HUGEPAGE:
      setFlags(mm, start, end, VM_HUGEPAGE, VM_NOHUGEPAGE);
      return;
    case MADV_NOHUGEPAGE:
      setFlags(mm, start, end, VM_NOHUGEPAGE, VM_HUGEPAGE);
      return;
    case MADV_DONTFORK:
      setFlags(mm, start, end, VM_DONTCOPY, 0);
      return;
    case MADV_DOFORK:
      setFlags(mm, start, end, 0, VM_DONTCOPY);
      return;
  }
}

function validate(v: Vma, advice: number, s: number, _e: number): void {
  switch (advice) {
    case MADV_DONTNEED:
      if (v.flags & (VM_LOCKED | VM_PFNMAP)) fail('EINVAL', `MADV_DONTNEED on locked or pfnmap ${v}`);
      // madvise_dontneed_free_valid_vma: a hugetlb range must start on a huge page (its end is rounded down).
      if (v.isHugetlb() && s % 2 ** v.hugeShift) fail('EINVAL', 'MADV_DONTNEED must start on a huge page boundary');
      break;
    case MADV_PAGEOUT:
      // can_madv_lru_vma
      if (v.flags & (VM_LOCKED | VM_PFNMAP) || v.isHugetlb()) fail('EINVAL', `MADV_PAGEOUT on locked, pfnmap or hugetlb ${v}`);
      break;
    case MADV_FREE:
      if (!v.isAnonymous() || v.isHugetlb() || !v.isCow()) fail('EINVAL', `MADV_FREE needs private anonymous memory, not ${v}`);
      break;
    case MADV_COLLAPSE:
      if (!v.isAnonymous() || v.isHugetlb()) fail('EINVAL', `MADV_COLLAPSE needs anonymous memory, not ${v}`);
      // thp_vma_allowable_order: VM_NOHUGEPAGE forbids THPs even for MADV_COLLAPSE (sysfs settings do not).
      if (v.flags & VM_NOHUGEPAGE) fail('EINVAL', `MADV_COLLAPSE in a MADV_NOHUGEPAGE range ${v}`);
      break;
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
      if (v.isHugetlb()) fail('EINVAL', 'hugetlb VMAs take no THP advice');
      break;
  }
}

/** zap_page_range_single per VMA: one CLEAR invalidation, page tables stay. */
function dontneed(mm: Mm, v: Vma, s: number, e: number): void {
  if (v.isHugetlb()) {
    e = Math.floor(e / 2 ** v.hugeShift) * 2 ** v.hugeShift; // ALIGN_DOWN(end, huge_page_size)
    if (e <= s) return;
  }
  splitBoundary(mm, v, s);
  splitBoundary(mm, v, e);
  const range = mm.invalidateStart('CLEAR', s, e);
  zapRange(mm, s, e, mm.gather);
  mm.invalidateEnd(range);
  if (mm.machine.events.on.unmap) mm.machine.events.emit({ type: 'unmap', mmId: mm.id, start: s, end: e, reason: 'madvise' });
  mm.gather.flush(mm);
}

/** madvise_free_pte_range: swap entries are dropped; exclusive anonymous pages become clean and lazily freeable. */
function free(mm: Mm, v: Vma, s: number, e: number): void {
  splitBoundary(mm, v, s);
  splitBoundary(mm, v, e);
  const range = mm.invalidateStart('CLEAR', s, e);
  const phys = mm.machine.phys;
  mm.pt.forEach(s / PAGE_SIZE, e / PAGE_SIZE, (node, idx) => {
    const flg = ptFlags(node, idx);
    const kind = entryKind(flg);
    if (kind === K_SWAP) {
      mm.machine.swap.free(ptVal(node, idx));
      mm.rss[MM_SWAPENTS]!--;
      PageTable.clear(node, idx);
    } else if (kind === K_PRESENT && !pteSpecial(flg)) {
      const pfn = ptVal(node, idx);
      if (phys.isZeroPfn(pfn) || !phys.isAnon(pfn) || totalMapcount(mm, pfn) !== 1) return;
      setPtFlags(node, idx, pteMkclean(flg));
      const head = phys.frames.compoundHead(pfn);
      phys.frames.flags[head] = (phys.frames.flags[head]! & ~PG_dirty) | PG_lazyfree;
    }
  });
  mm.invalidateEnd(range);
}

/** MADV_PAGEOUT: reclaim the exclusive small anonymous pages of the range. */
function pageout(mm: Mm, s: number, e: number): void {
  const pfns: number[] = [];
  mm.pt.forEach(s / PAGE_SIZE, e / PAGE_SIZE, (node, idx, level) => {
    if (level !== 0 || !ptePresent(ptFlags(node, idx))) return;
    const pfn = ptVal(node, idx);
    if (totalMapcount(mm, pfn) === 1 && swapOutBlocker(mm.machine, pfn) === null) pfns.push(pfn);
  });
  for (const pfn of pfns) {
    if (mm.machine.swap.full) break;
    swapOutPage(mm.machine, pfn);
  }
}

function setFlags(mm: Mm, s: number, e: number, set: number, clear: number): void {
  for (const v of mm.isolateRange(s, e)) {
    const flags = (v.flags | set) & ~clear;
    if (flags !== v.flags) {
      // __split_vma -> vma_adjust_trans_huge: a huge PMD leaf may not straddle the new VMA bounds.
      splitBoundary(mm, v, v.start);
      splitBoundary(mm, v, v.end);
      v.flags = flags;
    }
    mm.mergeVma(v);
  }
  mm.mergeTail(e);
}
