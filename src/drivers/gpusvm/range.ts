// struct drm_gpusvm_range: a piece of the mirrored address space the device maps as one unit.
// A GPU fault at an address finds the range there or creates one
// (drm_gpusvm_range_find_or_insert): the largest chunk size whose aligned window around the
// address fits inside the CPU VMA, the notifier and the GPU VA window, and overlaps no
// existing range (drm_gpusvm_range_chunk_size). Ranges are never split: a partial CPU unmap
// marks the whole range for the garbage collector (DOC: Partial Unmapping of Ranges).

import { fail } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import { mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, type MmuNotifierRange } from '../../mm/notifier.js';
import { VM_WRITE, type Vma } from '../../mm/vma.js';
import { SZ_4K, type DrmGpusvm, type DrmGpusvmCtx } from './gpusvm.js';
import {
  drmGpusvmNotifierAlloc, drmGpusvmNotifierFind, drmGpusvmNotifierInsert, drmGpusvmNotifierRemove, drmGpusvmNotifiersIn,
  type DrmGpusvmNotifier,
} from './notifier.js';
import { firstEndingAbove, intervalsIn } from './interval-list.js';
import { drmGpusvmCheckPages, drmGpusvmFreePagesLocked, drmGpusvmUnmapPagesLocked, DrmGpusvmPages } from './pages.js';

/** struct drm_gpusvm_range_flags */
export interface DrmGpusvmRangeFlags {
  /** Set at creation: the range may move to device memory (anonymous, not hugetlb, ctx.devmemPossible). */
  migrateDevmem: boolean;
  /** The CPU unmapped (part of) it: only the garbage collector touches it now. */
  unmapped: boolean;
  /** Only part of it was unmapped: its device pages must be evicted before removal. */
  partialUnmap: boolean;
}

/** struct drm_gpusvm_range. Drivers may extend it (ops.rangeAlloc) with their own state. */
export class DrmGpusvmRange {
  refcount = 1;
  readonly pages = new DrmGpusvmPages();
  readonly flags: DrmGpusvmRangeFlags = { migrateDevmem: false, unmapped: false, partialUnmap: false };
  /** On gpusvm.garbage (the driver's garbage_collector_link). */
  inGarbage = false;

  constructor(
    readonly gpusvm: DrmGpusvm,
    readonly notifier: DrmGpusvmNotifier,
    /** drm_gpusvm_range_start */
    readonly start: number,
    /** drm_gpusvm_range_end (exclusive) */
    readonly end: number,
  ) {}

  /** drm_gpusvm_range_size */
  get size(): number {
    return this.end - this.start;
  }
  get npages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }
}

/** Index of the first range of notifier ending above addr. */
export function drmGpusvmRangeFirstIndex(notifier: DrmGpusvmNotifier, addr: number): number {
  return firstEndingAbove(notifier.ranges, addr);
}

/** drm_gpusvm_range_find: the first range of notifier overlapping [start, end), or null. */
export function drmGpusvmRangeFind(notifier: DrmGpusvmNotifier, start: number, end: number): DrmGpusvmRange | null {
  const r = notifier.ranges[drmGpusvmRangeFirstIndex(notifier, start)];
  return r && r.start < end ? r : null;
}

/** The ranges of notifier overlapping [start, end), in order (drm_gpusvm_for_each_range). */
export function drmGpusvmRangesIn(notifier: DrmGpusvmNotifier, start: number, end: number): DrmGpusvmRange[] {
  return intervalsIn(notifier.ranges, start, end);
}

/** The range of gpusvm holding addr, or null (notifier then range lookup). */
export function drmGpusvmRangeLookup(gpusvm: DrmGpusvm, addr: number): DrmGpusvmRange | null {
  const notifier = drmGpusvmNotifierFind(gpusvm, addr, addr + 1);
  return notifier ? drmGpusvmRangeFind(notifier, addr, addr + 1) : null;
}

/**
 * drm_gpusvm_range_chunk_size: the largest chunk whose aligned window around addr lies inside
 * the VMA, the notifier and [gpuvaStart, gpuvaEnd), overlaps no range, and (for windows up to
 * checkPagesThreshold) is fully faulted in on the CPU. Infinity (the kernel's LONG_MAX) if none.
 */
function drmGpusvmRangeChunkSize(
  gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier, vma: Vma, addr: number, gpuvaStart: number, gpuvaEnd: number, ctx: DrmGpusvmCtx,
): number {
  const chunks = gpusvm.chunkSizes;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    const start = Math.floor(addr / c) * c;
    const end = start + c;
    if (start < vma.start || end > vma.end || start < notifier.start || end > notifier.end || start < gpuvaStart || end > gpuvaEnd) continue;
    if (c !== SZ_4K) {
      if (drmGpusvmRangeFind(notifier, start, end)) continue;
      if (c <= (ctx.checkPagesThreshold ?? 0) && !drmGpusvmCheckPages(gpusvm, notifier, start, end, ctx.devicePrivatePageOwner ?? null)) continue;
    }
    return c;
  }
  return Infinity;
}

/** drm_gpusvm_range_insert: into the notifier's ordered list, under the notifier lock. */
function drmGpusvmRangeInsert(notifier: DrmGpusvmNotifier, range: DrmGpusvmRange): void {
  const gpusvm = notifier.gpusvm;
  gpusvm.notifierLock();
  notifier.ranges.splice(drmGpusvmRangeFirstIndex(notifier, range.start), 0, range);
  gpusvm.notifierUnlock();
  gpusvm.stats.rangesInserted++;
}

/**
 * drm_gpusvm_range_find_or_insert: the range holding faultAddr, created if there is none (and
 * its notifier with it). The caller holds its driver lock. Errors (KernelError): EINVAL for an
 * address outside the GPU SVM or when no chunk fits; EFAULT if the mm has exited; ENOENT with
 * no VMA at faultAddr; EPERM for a write (ctx.readOnly unset) to a VMA without VM_WRITE.
 * Nothing is left behind on error.
 */
export function drmGpusvmRangeFindOrInsert(gpusvm: DrmGpusvm, faultAddr: number, gpuvaStart: number, gpuvaEnd: number, ctx: DrmGpusvmCtx): DrmGpusvmRange {
  if (!Number.isSafeInteger(faultAddr) || faultAddr < gpusvm.mmStart || faultAddr > gpusvm.mmStart + gpusvm.mmRange) {
    fail('EINVAL', `${gpusvm.name}: address 0x${Number(faultAddr).toString(16)} is outside the GPU SVM`);
  }
  const mm = gpusvm.mm;
  if (mm.dead || gpusvm.dead) fail('EFAULT', `${gpusvm.name}: the mirrored mm has exited`);
  let notifier = drmGpusvmNotifierFind(gpusvm, faultAddr, faultAddr + 1);
  let fresh = false;
  if (!notifier) {
    notifier = drmGpusvmNotifierAlloc(gpusvm, faultAddr);
    mmuIntervalNotifierInsert(notifier.notifier, mm, notifier.start, notifier.size);
    fresh = true;
  }
  try {
    const vma = mm.vmas.lookup(faultAddr);
    if (!vma) fail('ENOENT', `${gpusvm.name}: no VMA at 0x${faultAddr.toString(16)}`);
    if (!ctx.readOnly && !(vma.flags & VM_WRITE)) fail('EPERM', `${gpusvm.name}: write fault at 0x${faultAddr.toString(16)} in a VMA without VM_WRITE`);
    const found = drmGpusvmRangeFind(notifier, faultAddr, faultAddr + 1);
    if (found) return found;
    const migrateDevmem = !!ctx.devmemPossible && vma.isAnonymous() && !vma.isHugetlb();
    const chunk = drmGpusvmRangeChunkSize(gpusvm, notifier, vma, faultAddr, gpuvaStart, gpuvaEnd, ctx);
    if (chunk === Infinity) fail('EINVAL', `${gpusvm.name}: no chunk size fits at 0x${faultAddr.toString(16)}`);
    const start = Math.floor(faultAddr / chunk) * chunk;
    const range = gpusvm.ops.rangeAlloc ? gpusvm.ops.rangeAlloc(gpusvm, notifier, start, start + chunk) : new DrmGpusvmRange(gpusvm, notifier, start, start + chunk);
    range.flags.migrateDevmem = migrateDevmem;
    drmGpusvmRangeInsert(notifier, range);
    if (fresh) {
      drmGpusvmNotifierInsert(gpusvm, notifier);
      fresh = false;
    }
    return range;
  } finally {
    // Anything failed after a fresh notifier went in: take it out again.
    if (fresh) mmuIntervalNotifierRemove(notifier.notifier);
  }
}

/** drm_gpusvm_range_get */
export function drmGpusvmRangeGet(range: DrmGpusvmRange): DrmGpusvmRange {
  range.refcount++;
  return range;
}

/** drm_gpusvm_range_put: the last reference frees the range (ops.rangeFree). */
export function drmGpusvmRangePut(range: DrmGpusvmRange): void {
  if (range.refcount <= 0) throw new Error('drm_gpusvm_range_put: range already freed');
  if (--range.refcount === 0) range.gpusvm.ops.rangeFree?.(range);
}

/**
 * drm_gpusvm_range_remove: unmap and free the range's pages, take it out of its notifier,
 * drop the list's reference, and remove the notifier with its last range. The caller holds
 * its driver lock and has unbound the device PTEs (the garbage collector does both).
 */
export function drmGpusvmRangeRemove(gpusvm: DrmGpusvm, range: DrmGpusvmRange): void {
  const notifier = range.notifier;
  const i = notifier.ranges.indexOf(range);
  if (i < 0) return; // WARN_ON_ONCE(!notifier) in the kernel: removed twice
  gpusvm.notifierLock();
  drmGpusvmUnmapPagesLocked(gpusvm, range.pages);
  drmGpusvmFreePagesLocked(range.pages);
  notifier.ranges.splice(i, 1);
  gpusvm.notifierUnlock();
  gpusvm.stats.rangesRemoved++;
  drmGpusvmRangePut(range);
  if (notifier.ranges.length === 0) {
    if (!notifier.removed) mmuIntervalNotifierRemove(notifier.notifier);
    drmGpusvmNotifierRemove(gpusvm, notifier);
  }
}

/**
 * drm_gpusvm_range_set_unmapped: the CPU unmapped the range (MMU_NOTIFY_UNMAP); partial if the
 * unmap did not cover all of it. Called from the invalidate callback.
 */
export function drmGpusvmRangeSetUnmapped(range: DrmGpusvmRange, mmuRange: MmuNotifierRange): void {
  if (!range.gpusvm.notifierLockedWrite) throw new Error('drm_gpusvm_range_set_unmapped: the notifier lock is not held for writing');
  range.flags.unmapped = true;
  range.pages.flags.unmapped = true;
  if (range.start < mmuRange.start || range.end > mmuRange.end) range.flags.partialUnmap = true;
}

/** drm_gpusvm_has_mapping: whether any range overlaps [start, end). */
export function drmGpusvmHasMapping(gpusvm: DrmGpusvm, start: number, end: number): boolean {
  for (const notifier of drmGpusvmNotifiersIn(gpusvm, start, end)) if (drmGpusvmRangeFind(notifier, start, end)) return true;
  return false;
}

/** drm_gpusvm_find_vma_start: the start of the first VMA in [start, end), or Infinity (ULONG_MAX). */
export function drmGpusvmFindVmaStart(gpusvm: DrmGpusvm, start: number, end: number): number {
  if (gpusvm.mm.dead) return Infinity;
  const vma = gpusvm.mm.vmas.findVma(start);
  return vma && vma.start < end ? vma.start : Infinity;
}

/**
 * drm_gpusvm_fini: remove every notifier (first, so no invalidation races the teardown), then
 * every range. The device PTEs are the driver's to drop first.
 */
export function drmGpusvmFini(gpusvm: DrmGpusvm): void {
  for (const notifier of [...gpusvm.notifiers]) {
    mmuIntervalNotifierRemove(notifier.notifier);
    notifier.removed = true;
    for (const range of [...notifier.ranges]) drmGpusvmRangeRemove(gpusvm, range);
    // A notifier whose ranges were all gone already (none left to remove it) goes here.
    drmGpusvmNotifierRemove(gpusvm, notifier);
  }
  gpusvm.garbage.length = 0;
  gpusvm.dead = true;
}
