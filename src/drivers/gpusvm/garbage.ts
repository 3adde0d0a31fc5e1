// The garbage collector a gpusvm driver runs (the DOC example "Garbage Collector" of
// drm_gpusvm.c; Xe's xe_svm_garbage_collector): ranges the CPU unmapped (MMU_NOTIFY_UNMAP)
// are queued by the invalidate callback, which cannot remove them itself (removing the last
// range of a notifier removes its mmu_interval_notifier, which waits for the running
// invalidation). The driver empties the queue before it handles a fault, so its view of the
// ranges is current: a partially unmapped range has its remaining device pages evicted, its
// device PTEs dropped, and is removed (with its notifier when it was the last).

import { KernelError } from '../../mm/errno.js';
import type { DrmGpusvm } from './gpusvm.js';
import { drmGpusvmRangeEvict } from './pages.js';
import { drmGpusvmRangeRemove, type DrmGpusvmRange } from './range.js';

/** driver_garbage_collector_add: queue an unmapped range (from the invalidate callback). */
export function gpusvmGarbageCollectorAdd(gpusvm: DrmGpusvm, range: DrmGpusvmRange): void {
  if (range.inGarbage) return;
  range.inGarbage = true;
  gpusvm.garbage.push(range);
}

/** Unbind and remove one range (__driver_garbage_collector); the driver lock is the caller's. */
export function gpusvmRangeDestroy(gpusvm: DrmGpusvm, range: DrmGpusvmRange): void {
  if (range.flags.partialUnmap) {
    // Best effort: pages the CPU no longer maps make it fail, and those stay where they are.
    try {
      drmGpusvmRangeEvict(gpusvm, range);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
    }
  }
  if (gpusvm.ops.unbind) {
    gpusvm.notifierLock();
    try {
      gpusvm.ops.unbind(gpusvm, range);
    } finally {
      gpusvm.notifierUnlock();
    }
  }
  drmGpusvmRangeRemove(gpusvm, range);
}

/** driver_garbage_collector: destroy every queued range; returns how many. */
export function gpusvmGarbageCollect(gpusvm: DrmGpusvm): number {
  let n = 0;
  while (gpusvm.garbage.length > 0) {
    const range = gpusvm.garbage.shift()!;
    range.inGarbage = false;
    gpusvmRangeDestroy(gpusvm, range);
    n++;
  }
  return n;
}
