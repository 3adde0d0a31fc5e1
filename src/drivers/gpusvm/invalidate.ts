// The usual body of a gpusvm driver's invalidate op (Xe's xe_svm_invalidate, the DOC example
// "Notifier callback" of drm_gpusvm.c): for every range of the notifier that the CPU change
// overlaps, stop the device using it (ops.unbind: zap its PTEs, flush its TLB), unmap its pages
// (drm_gpusvm_range_unmap_pages), and on MMU_NOTIFY_UNMAP mark it unmapped and hand it to the
// garbage collector (garbage.ts). Whole ranges are invalidated: ranges are the unit the
// device maps, so a one-page change unmaps the range around it (as in Xe).

import type { MmuNotifierRange } from '../../mm/notifier.js';
import type { DrmGpusvm } from './gpusvm.js';
import type { DrmGpusvmNotifier } from './notifier.js';
import { drmGpusvmRangeUnmapPages } from './pages.js';
import { drmGpusvmRangeFirstIndex, drmGpusvmRangeSetUnmapped } from './range.js';
import { gpusvmGarbageCollectorAdd } from './garbage.js';

const IN_NOTIFIER = { inNotifier: true };

/**
 * Invalidate the ranges of `notifier` that [mmuRange.start, mmuRange.end) overlaps; returns
 * how many. Call it from ops.invalidate (the notifier lock is held for writing there).
 */
export function gpusvmInvalidateRanges(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier, mmuRange: MmuNotifierRange): number {
  // Adjust the invalidation to the notifier's bounds.
  const start = Math.max(notifier.start, mmuRange.start);
  const end = Math.min(notifier.end, mmuRange.end);
  const list = notifier.ranges;
  const unbind = gpusvm.ops.unbind;
  let n = 0;
  for (let i = drmGpusvmRangeFirstIndex(notifier, start); i < list.length && list[i]!.start < end; i++) {
    const range = list[i]!;
    if (!range.flags.unmapped) unbind?.(gpusvm, range);
    gpusvm.invalidatePoint('gpusvm: invalidate, range unbound');
    drmGpusvmRangeUnmapPages(gpusvm, range, IN_NOTIFIER);
    if (mmuRange.event === 'UNMAP') {
      drmGpusvmRangeSetUnmapped(range, mmuRange);
      gpusvmGarbageCollectorAdd(gpusvm, range);
    }
    n++;
  }
  return n;
}
