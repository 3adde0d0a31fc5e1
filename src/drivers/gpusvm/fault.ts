// A GPU page fault handled the gpusvm way (the DOC example "GPU page fault handler" of
// drm_gpusvm.c; Xe's xe_svm_handle_pagefault):
//
//   retry:  run the garbage collector (so the view of the ranges is current)
//           range = drm_gpusvm_range_find_or_insert(fault address)
//           migrate it to device memory if the policy says so (best effort)
//           drm_gpusvm_range_get_pages(range)   EOPNOTSUPP: evict the range, retry
//                                               EFAULT/EPERM and the range no longer fits
//                                               its VMA: destroy it, retry
//                                               a write got read-only pages: evict, retry
//           under the notifier lock: pages still valid? ops.bind(range) : retry
//
// The read-only case: hmm_range_fault never faults the caller's own device-private pages,
// not even a read-only one a write asked for (a device page fork shared copy-on-write), so
// the range is evicted to system memory, where the write fault breaks the sharing.
// hmmsim's other addition is the "no longer fits" case: ranges are cut to fit the VMA when
// created and never split (DOC: Partial Unmapping), so after an mprotect or mremap that
// splits the VMA a range may straddle two VMAs; Xe retries and fails the fault, hmmsim drops
// the stale range and cuts a new one for the VMA as it is now. Retries are bounded by
// GPUSVM_FAULT_RETRIES (and get_pages by its timeout).

import { fail, KernelError } from '../../mm/errno.js';
import type { DrmGpusvm, DrmGpusvmCtx } from './gpusvm.js';
import { gpusvmGarbageCollect, gpusvmRangeDestroy } from './garbage.js';
import { gpusvmRangeMigrateToDevmem } from './migrate.js';
import type { DrmPagemap } from './pagemap.js';
import { drmGpusvmRangeEvictSteps, drmGpusvmRangeGetPagesSteps, drmGpusvmRangePagesValid } from './pages.js';
import { drmGpusvmRangeFindOrInsert, type DrmGpusvmRange } from './range.js';
import { runSteps, runStepsAsync, type SleepHooks, type Steps } from '../../mm/wait.js';

/** Passes of the fault handler's retry loop before the fault fails with the last error. */
export const GPUSVM_FAULT_RETRIES = 8;

/** The driver's migration policy (driver_migration_policy): where a faulting range should live. */
export interface GpusvmFaultPolicy {
  /** The device memory to migrate the range into before mapping it, or null to map it where it is. */
  migrateTo?(range: DrmGpusvmRange, write: boolean): DrmPagemap | null;
}

/** Whether the range still lies inside one VMA of its mm. */
function fitsVma(gpusvm: DrmGpusvm, range: DrmGpusvmRange): boolean {
  const vma = gpusvm.mm.vmas.lookup(range.start);
  return vma !== undefined && vma.end >= range.end;
}

/** The fault handler as steps (see the header); returns the range now bound on the device. */
export function* gpusvmHandleFaultSteps(gpusvm: DrmGpusvm, addr: number, write: boolean, ctx: DrmGpusvmCtx, policy: GpusvmFaultPolicy = {}): Steps<DrmGpusvmRange> {
  const c: DrmGpusvmCtx = { ...ctx, readOnly: !write || !!ctx.readOnly };
  let lastError: KernelError | null = null;
  for (let tries = 0; tries < GPUSVM_FAULT_RETRIES; tries++) {
    gpusvmGarbageCollect(gpusvm);
    const range = drmGpusvmRangeFindOrInsert(gpusvm, addr, gpusvm.mmStart, gpusvm.mmStart + gpusvm.mmRange, c);
    const dp = policy.migrateTo?.(range, write) ?? null;
    if (dp && range.flags.migrateDevmem && !range.pages.flags.hasDevmemPages) gpusvmRangeMigrateToDevmem(gpusvm, range, dp, c);
    try {
      yield* drmGpusvmRangeGetPagesSteps(gpusvm, range, c);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      lastError = e;
      if (e.errno === 'EOPNOTSUPP') {
        // Mixed device and system pages: bring the range back to system memory and retry.
        try {
          yield* drmGpusvmRangeEvictSteps(gpusvm, range);
        } catch (e2) {
          if (!(e2 instanceof KernelError)) throw e2;
        }
        continue;
      }
      if ((e.errno === 'EFAULT' || e.errno === 'EPERM') && (range.flags.unmapped || !fitsVma(gpusvm, range))) {
        if (!range.flags.unmapped) gpusvmRangeDestroy(gpusvm, range); // unmapped ones the collector takes
        continue;
      }
      throw e;
    }
    if (!c.readOnly && !range.pages.flags.writable) {
      // hmm_range_fault reports this device's own private pages without faulting them, even
      // read-only ones (a device page shared copy-on-write after fork): a write needs them in
      // system memory, where the write fault can break the sharing. Evict and retry.
      lastError = new KernelError('EAGAIN', `${gpusvm.name}: read-only device pages for a write fault`);
      try {
        yield* drmGpusvmRangeEvictSteps(gpusvm, range);
      } catch (e2) {
        if (!(e2 instanceof KernelError)) throw e2;
      }
      continue;
    }
    yield 'gpusvm: fault, before bind';
    // driver_bind_range: commit only if no invalidation came in between.
    gpusvm.notifierLock();
    let bound = false;
    try {
      if (drmGpusvmRangePagesValid(gpusvm, range) && (c.readOnly || range.pages.flags.writable)) {
        gpusvm.ops.bind?.(gpusvm, range);
        bound = true;
      }
    } finally {
      gpusvm.notifierUnlock();
    }
    if (bound) return range;
    lastError = new KernelError('EAGAIN', `${gpusvm.name}: range invalidated before it was bound`);
  }
  if (lastError) throw lastError;
  fail('EBUSY', `${gpusvm.name}: fault at 0x${addr.toString(16)} did not settle`);
}

/**
 * Handle a device fault at addr (write: the device wants to write). Returns the range, its
 * pages valid and bound (ops.bind). Throws a KernelError when the access cannot be allowed
 * (ENOENT: no VMA; EPERM: no write permission; EFAULT: no access), EBUSY after too many
 * retries, or WouldBlock where the kernel would sleep.
 */
export function gpusvmHandleFault(gpusvm: DrmGpusvm, addr: number, write: boolean, ctx: DrmGpusvmCtx = {}, policy: GpusvmFaultPolicy = {}): DrmGpusvmRange {
  return runSteps(gpusvmHandleFaultSteps(gpusvm, addr, write, ctx, policy));
}

/** gpusvmHandleFault as a task: preemptible inside get_pages and before the bind, sleeping where the kernel sleeps. */
export function gpusvmHandleFaultAsync(
  gpusvm: DrmGpusvm, addr: number, write: boolean, ctx: DrmGpusvmCtx = {}, policy: GpusvmFaultPolicy = {}, hooks: SleepHooks = {},
): Promise<DrmGpusvmRange> {
  return runStepsAsync(gpusvmHandleFaultSteps(gpusvm, addr, write, ctx, policy), hooks);
}
