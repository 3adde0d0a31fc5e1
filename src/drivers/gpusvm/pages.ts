// struct drm_gpusvm_pages and drm_gpusvm_get_pages: the pages a range maps on the device, got
// with the protocol of Documentation/mm/hmm.rst, written once here for every gpusvm driver:
//
//   again:  seq = mmu_interval_read_begin(notifier)
//           (pages still valid? done)
//           hmm_range_fault(range)            -EBUSY: again (until HMM_RANGE_DEFAULT_TIMEOUT)
//           take the notifier lock
//           mmu_interval_read_retry(seq)?     unlock, again
//           record the pages (the kernel DMA-maps them here); unlock
//
// Between hmm_range_fault and the lock the CPU page tables may change: that is what the
// sequence check catches. The async form yields there ('gpusvm: get_pages, before the notifier
// lock') so a race explorer can run CPU operations in the window, and sleeps where the kernel
// would (a page under migration, an invalidation in progress).
//
// Per page the range keeps the pfn and the HMM flags byte (VALID, WRITE, map order): the
// kernel's dma_addr array, which hmmsim needs no DMA mapping for. Pages are valid from a
// successful get_pages until an invalidation unmaps them (drm_gpusvm_range_unmap_pages).

import { fail, KernelError, WouldBlock } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { DevPagemap } from '../../mm/memremap.js';
import type { Mm } from '../../mm/mm.js';
import { mmuIntervalReadBegin, mmuIntervalReadRetry, type MmuIntervalNotifier } from '../../mm/notifier.js';
import { hmmRangeFault } from '../../hmm/hmm.js';
import { HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HmmRange } from '../../hmm/range.js';
import type { DrmGpusvm, DrmGpusvmCtx } from './gpusvm.js';
import type { DrmGpusvmNotifier } from './notifier.js';
import { DrmPagemap, type DrmPagemapZdd } from './pagemap.js';
import type { DrmGpusvmRange } from './range.js';
import { blockingSteps, runSteps, runStepsAsync, type SleepHooks, type Steps } from '../../mm/wait.js';

/** struct drm_gpusvm_pages_flags (set and cleared under the notifier lock). */
export interface DrmGpusvmPagesFlags {
  unmapped: boolean;
  hasDevmemPages: boolean;
  hasDmaMapping: boolean;
  /** hmmsim: every page was got for write (get_pages without ctx.readOnly). */
  writable: boolean;
}

/** struct drm_gpusvm_pages */
export class DrmGpusvmPages {
  /** Per page: the pfn the device maps (the kernel's dma_addr). Allocated by the first get_pages. */
  pfns: Uint32Array | null = null;
  /** Per page: HMM_PFN_VALID, HMM_PFN_WRITE and the map order, as hmm_range_fault returned them. */
  hmmFlags: Uint8Array | null = null;
  /** The drm_pagemap of the device pages, when the pages are in device memory. */
  dpagemap: DrmPagemap | null = null;
  /** The sequence the pages were got under (LONG_MAX before the first get_pages). */
  notifierSeq = Number.MAX_SAFE_INTEGER;
  readonly flags: DrmGpusvmPagesFlags = { unmapped: false, hasDevmemPages: false, hasDmaMapping: false, writable: false };
}

/** drm_gpusvm_pages_valid: caller holds the notifier lock. */
export function drmGpusvmPagesValid(gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages): boolean {
  if (!gpusvm.notifierLocked) throw new Error('drm_gpusvm_pages_valid: the notifier lock is not held');
  return svmPages.flags.hasDevmemPages || svmPages.flags.hasDmaMapping;
}

/** drm_gpusvm_range_pages_valid: the last check before committing device PTEs, under the notifier lock. */
export function drmGpusvmRangePagesValid(gpusvm: DrmGpusvm, range: DrmGpusvmRange): boolean {
  return drmGpusvmPagesValid(gpusvm, range.pages);
}

/** __drm_gpusvm_unmap_pages: the pages are no longer valid (the kernel DMA-unmaps them). Lock held. */
export function drmGpusvmUnmapPagesLocked(gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages): void {
  if (!gpusvm.notifierLocked) throw new Error('__drm_gpusvm_unmap_pages: the notifier lock is not held');
  const f = svmPages.flags;
  f.hasDevmemPages = false;
  f.hasDmaMapping = false;
  f.writable = false;
  svmPages.dpagemap = null;
}

/** __drm_gpusvm_free_pages: drop the per-page arrays. Lock held. */
export function drmGpusvmFreePagesLocked(svmPages: DrmGpusvmPages): void {
  svmPages.pfns = null;
  svmPages.hmmFlags = null;
}

/** drm_gpusvm_unmap_pages: takes the notifier lock unless ctx.inNotifier (then it must be held for writing). */
export function drmGpusvmUnmapPages(gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages, ctx: DrmGpusvmCtx = {}): void {
  if (ctx.inNotifier) {
    if (!gpusvm.notifierLockedWrite) throw new Error('drm_gpusvm_unmap_pages: in_notifier without the notifier lock held for writing');
    drmGpusvmUnmapPagesLocked(gpusvm, svmPages);
    return;
  }
  gpusvm.notifierLock();
  try {
    drmGpusvmUnmapPagesLocked(gpusvm, svmPages);
  } finally {
    gpusvm.notifierUnlock();
  }
}

/** drm_gpusvm_range_unmap_pages: call it from ops.invalidate for every range the invalidation hits. */
export function drmGpusvmRangeUnmapPages(gpusvm: DrmGpusvm, range: DrmGpusvmRange, ctx: DrmGpusvmCtx = {}): void {
  drmGpusvmUnmapPages(gpusvm, range.pages, ctx);
}

/** drm_gpusvm_free_pages: unmap and free, under the notifier lock. */
export function drmGpusvmFreePages(gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages): void {
  gpusvm.notifierLock();
  try {
    drmGpusvmUnmapPagesLocked(gpusvm, svmPages);
    drmGpusvmFreePagesLocked(svmPages);
  } finally {
    gpusvm.notifierUnlock();
  }
}

/** drm_gpusvm_pages_valid_unlocked, plus hmmsim's write check: valid pages a read-only get left do not satisfy a write. */
function pagesValidUnlocked(gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages, ctx: DrmGpusvmCtx): boolean {
  if (!svmPages.pfns) return false;
  gpusvm.notifierLock();
  const valid = drmGpusvmPagesValid(gpusvm, svmPages);
  if (!valid) drmGpusvmFreePagesLocked(svmPages);
  gpusvm.notifierUnlock();
  return valid && (!!ctx.readOnly || svmPages.flags.writable);
}

/** An hmm_range for [start, end): the synchronous path borrows gpusvm's arrays, a concurrent one gets its own. */
function takeHmmRange(gpusvm: DrmGpusvm, notifier: MmuIntervalNotifier, start: number, end: number, defaultFlags: number, owner: unknown): HmmRange {
  const npages = (end - start) / PAGE_SIZE;
  let r = gpusvm.scratch;
  gpusvm.scratch = null;
  if (!r || r.hmmPfns.length < npages) {
    const n = Math.max(npages, gpusvm.chunkSizes[0]! / PAGE_SIZE);
    r = new HmmRange({ notifier, start, end, hmmPfns: new Uint32Array(n), hmmFlags: new Uint8Array(n) });
  }
  r.notifier = notifier;
  r.start = start;
  r.end = end;
  r.defaultFlags = defaultFlags;
  r.pfnFlagsMask = 0;
  r.devPrivateOwner = owner ?? null;
  return r;
}

function giveHmmRange(gpusvm: DrmGpusvm, r: HmmRange): void {
  if (!gpusvm.scratch || gpusvm.scratch.hmmPfns.length < r.hmmPfns.length) gpusvm.scratch = r;
}

/** The zone_device_data (zdd) of a device page that drm_pagemap populated, or null. */
function pageZdd(dpagemap: DrmPagemap | null, pfn: number): DrmPagemapZdd | null {
  return dpagemap ? dpagemap.zddOf(pfn) : null;
}

const OK = 0;
const AGAIN = 1;

/**
 * The map_pages step of drm_gpusvm_get_pages, under the notifier lock: record every page, and
 * refuse (EOPNOTSUPP) a range mixing device and system pages or two device pagemaps (unless
 * ctx.allowMixed, and then only system pages after one pagemap's, as the kernel checks), or
 * system pages when ctx.devmemOnly (EFAULT). Returns AGAIN if a device page has no
 * drm_pagemap (the kernel's -EAGAIN race).
 */
function mapPages(gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages, hr: HmmRange, npages: number, ctx: DrmGpusvmCtx): number {
  if (!svmPages.pfns || svmPages.pfns.length !== npages) {
    svmPages.pfns = new Uint32Array(npages);
    svmPages.hmmFlags = new Uint8Array(npages);
  }
  const pfns = svmPages.pfns;
  const flags = svmPages.hmmFlags!;
  pfns.set(hr.hmmPfns.subarray(0, npages));
  flags.set(hr.hmmFlags.subarray(0, npages));
  const phys = gpusvm.mm.machine.phys;
  const ramFrames = phys.ramFrames;
  let pagemapSeen: DrmPagemap | null = null;
  let zdd: DrmPagemapZdd | null = null;
  let writable = true;
  let err: 'EOPNOTSUPP' | 'EFAULT' | null = null;
  for (let i = 0; i < npages; i++) {
    const f = flags[i]!;
    if (!(f & HMM_PFN_VALID) || f & HMM_PFN_ERROR) {
      err = 'EFAULT'; // cannot happen with HMM_PFN_REQ_FAULT on every page
      break;
    }
    if (!(f & HMM_PFN_WRITE)) writable = false;
    const pfn = pfns[i]!;
    const pgmap = pfn >= ramFrames ? phys.pagemapOf(pfn) : undefined;
    if (pgmap) {
      const dp = DrmPagemap.fromPgmap(pgmap);
      const z = pageZdd(dp, pfn);
      if (!ctx.allowMixed && zdd !== z && i > 0) {
        err = 'EOPNOTSUPP';
        break;
      }
      zdd = z;
      if (pagemapSeen !== dp || dp === null) {
        if (i > 0) {
          err = 'EOPNOTSUPP';
          break;
        }
        if (!dp || !z) {
          drmGpusvmUnmapPagesLocked(gpusvm, svmPages);
          return AGAIN;
        }
        pagemapSeen = dp;
      }
    } else {
      if (pagemapSeen && !ctx.allowMixed) {
        err = 'EOPNOTSUPP';
        break;
      }
      if (ctx.devmemOnly) {
        err = 'EFAULT';
        break;
      }
    }
  }
  if (err) {
    drmGpusvmUnmapPagesLocked(gpusvm, svmPages);
    fail(err, err === 'EOPNOTSUPP' ? `${gpusvm.name}: range mixes device and system pages` : `${gpusvm.name}: system page where only device memory will do`);
  }
  const fl = svmPages.flags;
  fl.hasDmaMapping = npages > 0;
  fl.hasDevmemPages = pagemapSeen !== null;
  fl.writable = writable;
  svmPages.dpagemap = pagemapSeen;
  return OK;
}

/** drm_gpusvm_get_pages as steps (see the header). */
export function* drmGpusvmGetPagesSteps(
  gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages, mm: Mm, notifier: MmuIntervalNotifier, start: number, end: number, ctx: DrmGpusvmCtx,
): Steps<void> {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start % PAGE_SIZE || end % PAGE_SIZE || end <= start) {
    fail('EINVAL', `${gpusvm.name}: get_pages needs a page-aligned, non-empty range`);
  }
  const npages = (end - start) / PAGE_SIZE;
  gpusvm.stats.getPages++;
  const timeout = gpusvm.timeout();
  const hr = takeHmmRange(gpusvm, notifier, start, end, HMM_PFN_REQ_FAULT | (ctx.readOnly ? 0 : HMM_PFN_REQ_WRITE), ctx.devicePrivatePageOwner);
  try {
    for (;;) {
      if (timeout.expired()) fail('EBUSY', `${gpusvm.name}: get_pages timed out (HMM_RANGE_DEFAULT_TIMEOUT)`);
      const seq = yield* blockingSteps(() => mmuIntervalReadBegin(notifier));
      if (pagesValidUnlocked(gpusvm, svmPages, ctx)) {
        svmPages.notifierSeq = seq;
        gpusvm.stats.getPagesValid++;
        return;
      }
      if (mm.dead) fail('EFAULT', `${gpusvm.name}: the mirrored mm has exited`); // mmget_not_zero
      hr.notifierSeq = seq;
      gpusvm.stats.hmmRangeFaults++;
      try {
        hmmRangeFault(hr);
      } catch (e) {
        if (e instanceof WouldBlock) {
          yield e;
          continue;
        }
        if (e instanceof KernelError && e.errno === 'EBUSY') {
          gpusvm.stats.retries++;
          continue;
        }
        throw e;
      }
      yield 'gpusvm: get_pages, before the notifier lock';
      gpusvm.notifierLock();
      let r = OK;
      try {
        if (svmPages.flags.unmapped) fail('EFAULT', `${gpusvm.name}: the range was unmapped by the CPU`);
        if (mmuIntervalReadRetry(notifier, seq)) r = AGAIN;
        else r = mapPages(gpusvm, svmPages, hr, npages, ctx);
      } finally {
        gpusvm.notifierUnlock();
      }
      if (r === AGAIN) {
        gpusvm.stats.retries++;
        continue;
      }
      svmPages.notifierSeq = seq;
      return;
    }
  } finally {
    giveHmmRange(gpusvm, hr);
  }
}

/**
 * drm_gpusvm_get_pages: get (fault in as needed) the pages of [start, end) under notifier and
 * record them in svmPages. Errors (KernelError): EINVAL (bad range), EBUSY (timed out),
 * EFAULT (mm gone, range unmapped, a fault failed, devmemOnly), EPERM (write to a read-only
 * VMA), EOPNOTSUPP (mixed pages: the caller evicts and retries); WouldBlock where the kernel
 * would sleep (nothing held: wait and call again, or use the async form).
 */
export function drmGpusvmGetPages(
  gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages, mm: Mm, notifier: MmuIntervalNotifier, start: number, end: number, ctx: DrmGpusvmCtx = {},
): void {
  runSteps(drmGpusvmGetPagesSteps(gpusvm, svmPages, mm, notifier, start, end, ctx));
}

/** drm_gpusvm_get_pages as a task: preemptible between the snapshot and the lock, sleeping where the kernel sleeps. */
export function drmGpusvmGetPagesAsync(
  gpusvm: DrmGpusvm, svmPages: DrmGpusvmPages, mm: Mm, notifier: MmuIntervalNotifier, start: number, end: number, ctx: DrmGpusvmCtx = {},
  hooks: SleepHooks = {},
): Promise<void> {
  return runStepsAsync(drmGpusvmGetPagesSteps(gpusvm, svmPages, mm, notifier, start, end, ctx), hooks);
}

/** drm_gpusvm_range_get_pages, as steps. */
export function drmGpusvmRangeGetPagesSteps(gpusvm: DrmGpusvm, range: DrmGpusvmRange, ctx: DrmGpusvmCtx): Steps<void> {
  return drmGpusvmGetPagesSteps(gpusvm, range.pages, gpusvm.mm, range.notifier.notifier, range.start, range.end, ctx);
}

/** drm_gpusvm_range_get_pages: drmGpusvmGetPages over the whole range. */
export function drmGpusvmRangeGetPages(gpusvm: DrmGpusvm, range: DrmGpusvmRange, ctx: DrmGpusvmCtx = {}): void {
  runSteps(drmGpusvmRangeGetPagesSteps(gpusvm, range, ctx));
}

/** drm_gpusvm_range_get_pages as a task. */
export function drmGpusvmRangeGetPagesAsync(gpusvm: DrmGpusvm, range: DrmGpusvmRange, ctx: DrmGpusvmCtx = {}, hooks: SleepHooks = {}): Promise<void> {
  return runStepsAsync(drmGpusvmRangeGetPagesSteps(gpusvm, range, ctx), hooks);
}

/** drm_gpusvm_range_evict, as steps. */
export function* drmGpusvmRangeEvictSteps(gpusvm: DrmGpusvm, range: DrmGpusvmRange): Steps<void> {
  const mm = gpusvm.mm;
  if (mm.dead) fail('EFAULT', `${gpusvm.name}: the mirrored mm has exited`);
  const notifier = range.notifier.notifier;
  const timeout = gpusvm.timeout();
  // No dev_private_owner: every device page of the range is faulted back to system memory.
  const hr = takeHmmRange(gpusvm, notifier, range.start, range.end, HMM_PFN_REQ_FAULT, null);
  try {
    for (;;) {
      if (timeout.expired()) fail('ETIME', `${gpusvm.name}: range evict timed out`);
      hr.notifierSeq = yield* blockingSteps(() => mmuIntervalReadBegin(notifier));
      gpusvm.stats.hmmRangeFaults++;
      try {
        hmmRangeFault(hr);
        return;
      } catch (e) {
        if (e instanceof WouldBlock) yield e;
        else if (e instanceof KernelError && e.errno === 'EBUSY') gpusvm.stats.retries++;
        else throw e;
      }
    }
  } finally {
    giveHmmRange(gpusvm, hr);
  }
}

/**
 * drm_gpusvm_range_evict: fault every page of the range into system memory (hmm_range_fault
 * with no dev_private_owner), e.g. before removing a partially unmapped range. Errors: EFAULT
 * (mm gone, or a page could not be faulted), ETIME (timed out), WouldBlock.
 */
export function drmGpusvmRangeEvict(gpusvm: DrmGpusvm, range: DrmGpusvmRange): void {
  runSteps(drmGpusvmRangeEvictSteps(gpusvm, range));
}

/** drm_gpusvm_range_evict as a task. */
export function drmGpusvmRangeEvictAsync(gpusvm: DrmGpusvm, range: DrmGpusvmRange, hooks: SleepHooks = {}): Promise<void> {
  return runStepsAsync(drmGpusvmRangeEvictSteps(gpusvm, range), hooks);
}

/**
 * drm_gpusvm_check_pages: whether every page of [start, end) is present on the CPU (a
 * snapshot, nothing faulted). Used by range creation to keep small ranges where the CPU has
 * pages (check_pages_threshold).
 */
export function drmGpusvmCheckPages(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier, start: number, end: number, owner: unknown): boolean {
  const timeout = gpusvm.timeout();
  const hr = takeHmmRange(gpusvm, notifier.notifier, start, end, 0, owner);
  try {
    for (;;) {
      if (timeout.expired()) return false;
      hr.notifierSeq = mmuIntervalReadBegin(notifier.notifier);
      gpusvm.stats.hmmRangeFaults++;
      try {
        hmmRangeFault(hr);
        break;
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue;
        if (e instanceof KernelError) return false;
        throw e;
      }
    }
    const n = (end - start) / PAGE_SIZE;
    for (let i = 0; i < n; i++) if (!(hr.hmmFlags[i]! & HMM_PFN_VALID) || hr.hmmFlags[i]! & HMM_PFN_ERROR) return false;
    return true;
  } finally {
    giveHmmRange(gpusvm, hr);
  }
}

/** enum drm_gpusvm_scan_result */
export const DRM_GPUSVM_SCAN_UNPOPULATED = 0;
export const DRM_GPUSVM_SCAN_EQUAL = 1;
export const DRM_GPUSVM_SCAN_OTHER = 2;
export const DRM_GPUSVM_SCAN_SYSTEM = 3;
export const DRM_GPUSVM_SCAN_MIXED_DEVICE = 4;
export const DRM_GPUSVM_SCAN_MIXED = 5;

/**
 * drm_gpusvm_scan_mm: where the pages of a range are now (advisory: the answer may be stale at
 * once). UNPOPULATED if a page is not present; EQUAL if all are in `pgmap`; OTHER if all are in
 * one other pagemap; SYSTEM if all are system pages; MIXED_DEVICE for pages of several
 * pagemaps; MIXED for system and device pages. A snapshot: nothing is faulted.
 */
export function drmGpusvmScanMm(range: DrmGpusvmRange, devPrivateOwner: unknown, pgmap: DevPagemap | null): number {
  const gpusvm = range.gpusvm;
  const notifier = range.notifier.notifier;
  const timeout = gpusvm.timeout();
  const hr = takeHmmRange(gpusvm, notifier, range.start, range.end, 0, devPrivateOwner);
  const phys = gpusvm.mm.machine.phys;
  try {
    for (;;) {
      hr.notifierSeq = mmuIntervalReadBegin(notifier);
      gpusvm.stats.hmmRangeFaults++;
      try {
        hmmRangeFault(hr);
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY' && !timeout.expired()) continue;
        if (e instanceof KernelError) return DRM_GPUSVM_SCAN_UNPOPULATED;
        throw e;
      }
      gpusvm.notifierLock();
      try {
        if (mmuIntervalReadRetry(notifier, hr.notifierSeq)) continue;
        let state = DRM_GPUSVM_SCAN_UNPOPULATED;
        let other: DevPagemap | null = null;
        for (let i = 0; i < range.npages; i++) {
          if (!(hr.hmmFlags[i]! & HMM_PFN_VALID)) return DRM_GPUSVM_SCAN_UNPOPULATED;
          const cur = phys.pagemapOf(hr.hmmPfns[i]!) ?? null;
          let next: number;
          if (cur === pgmap && cur !== null) next = DRM_GPUSVM_SCAN_EQUAL;
          else if (cur && (cur === other || !other)) {
            next = DRM_GPUSVM_SCAN_OTHER;
            other = cur;
          } else if (cur) next = DRM_GPUSVM_SCAN_MIXED_DEVICE;
          else next = DRM_GPUSVM_SCAN_SYSTEM;
          if (state === DRM_GPUSVM_SCAN_UNPOPULATED) state = next;
          else if (state !== next) {
            if (next === DRM_GPUSVM_SCAN_SYSTEM || state === DRM_GPUSVM_SCAN_SYSTEM) state = DRM_GPUSVM_SCAN_MIXED;
            else if (state !== DRM_GPUSVM_SCAN_MIXED) state = DRM_GPUSVM_SCAN_MIXED_DEVICE;
          }
        }
        return state;
      } finally {
        gpusvm.notifierUnlock();
      }
    }
  } finally {
    giveHmmRange(gpusvm, hr);
  }
}
