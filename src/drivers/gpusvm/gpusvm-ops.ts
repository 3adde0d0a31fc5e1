// What a device driver built on gpusvm provides: struct drm_gpusvm_ops (include/drm/drm_gpusvm.h)
// plus the two device page-table hooks hmmsim's helpers call. The device-memory side is
// struct drm_pagemap_devmem_ops (pagemap.ts), which vram.ts implements for a plain VRAM.
//
// Who calls what, and with which lock:
//
//   invalidate(gpusvm, notifier, mmuRange)   required. The CPU page tables of [mmuRange.start,
//        mmuRange.end) are about to change and the range overlaps `notifier`. Called from the
//        notifier's mmu_interval_notifier callback with the notifier lock held for writing and
//        the sequence already set (drm_gpusvm_notifier_invalidate); not called for this
//        instance's own migrations (the owner filter, notifier.ts). Stop device access to the
//        affected ranges and unmap their pages; gpusvmInvalidateRanges (invalidate.ts) is the
//        usual body (Xe's xe_svm_invalidate): unbind, drm_gpusvm_range_unmap_pages, and on
//        MMU_NOTIFY_UNMAP mark the range unmapped for the garbage collector.
//   bind(gpusvm, range)                      program the device PTEs of `range` from range.pages
//        (per page: pfn, HMM_PFN_WRITE). Called with the notifier lock held, only while the
//        range's pages are valid (drm_gpusvm_range_pages_valid): by gpusvmRangeBind after
//        get_pages (the DOC's driver_bind_range) and by an own migration that re-points the
//        range at device memory.
//   unbind(gpusvm, range)                    zap the device PTEs of `range` (and flush the
//        device TLB). Called with the notifier lock held: from gpusvmInvalidateRanges and from
//        the garbage collector before drm_gpusvm_range_remove.
//   rangeAlloc(gpusvm) / rangeFree(range)    optional: a driver's own range type (xe_svm_range).

import type { MmuNotifierRange } from '../../mm/notifier.js';
import type { DrmGpusvm } from './gpusvm.js';
import type { DrmGpusvmNotifier } from './notifier.js';
import type { DrmGpusvmRange } from './range.js';

/** struct drm_gpusvm_ops, with hmmsim's device page-table hooks. */
export interface DrmGpusvmOps {
  /** `invalidate` (required): called under the notifier lock (write); see the header of gpusvm-ops.ts. */
  invalidate(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier, mmuRange: MmuNotifierRange): void;
  /** Program the device PTEs of range from range.pages; called under the notifier lock. */
  bind?(gpusvm: DrmGpusvm, range: DrmGpusvmRange): void;
  /** Zap the device PTEs of range; called under the notifier lock. */
  unbind?(gpusvm: DrmGpusvm, range: DrmGpusvmRange): void;
  /** @range_alloc (optional) */
  rangeAlloc?(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier, start: number, end: number): DrmGpusvmRange;
  /** @range_free (optional) */
  rangeFree?(range: DrmGpusvmRange): void;
}
