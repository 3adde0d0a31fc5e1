// gpusvm: the shared core for GPU drivers on HMM, after DRM's drm_gpusvm and drm_pagemap.
// docs/gpusvm.md explains it with runnable examples; gpusvm-ops.ts is the driver interface.

export {
  DrmGpusvm, drmGpusvmInit, DRM_GPUSVM_DEFAULT_CHUNK_SIZES, DRM_GPUSVM_DEFAULT_NOTIFIER_SIZE, SZ_4K, SZ_64K, SZ_2M, SZ_512M,
  newDrmGpusvmStats, type DrmGpusvmCtx, type DrmGpusvmStats, type DrmGpusvmOptions, type GpusvmOwnMigration,
} from './gpusvm.js';
export type { DrmGpusvmOps } from './gpusvm-ops.js';
export {
  DrmGpusvmNotifier, drmGpusvmNotifierFind, drmGpusvmNotifiersIn, drmGpusvmNotifierAlloc, drmGpusvmNotifierInsert, drmGpusvmNotifierRemove,
} from './notifier.js';
export {
  DrmGpusvmRange, type DrmGpusvmRangeFlags, drmGpusvmRangeFind, drmGpusvmRangeFirstIndex, drmGpusvmRangesIn, drmGpusvmRangeLookup,
  drmGpusvmRangeFindOrInsert, drmGpusvmRangeGet, drmGpusvmRangePut, drmGpusvmRangeRemove, drmGpusvmRangeSetUnmapped,
  drmGpusvmHasMapping, drmGpusvmFindVmaStart, drmGpusvmFini,
} from './range.js';
export {
  DrmGpusvmPages, type DrmGpusvmPagesFlags, drmGpusvmPagesValid, drmGpusvmRangePagesValid, drmGpusvmUnmapPages, drmGpusvmRangeUnmapPages,
  drmGpusvmFreePages, drmGpusvmGetPages, drmGpusvmGetPagesAsync, drmGpusvmGetPagesSteps, drmGpusvmRangeGetPages,
  drmGpusvmRangeGetPagesAsync, drmGpusvmRangeGetPagesSteps, drmGpusvmRangeEvict, drmGpusvmRangeEvictAsync, drmGpusvmRangeEvictSteps,
  drmGpusvmCheckPages, drmGpusvmScanMm, DRM_GPUSVM_SCAN_UNPOPULATED, DRM_GPUSVM_SCAN_EQUAL, DRM_GPUSVM_SCAN_OTHER,
  DRM_GPUSVM_SCAN_SYSTEM, DRM_GPUSVM_SCAN_MIXED_DEVICE, DRM_GPUSVM_SCAN_MIXED,
} from './pages.js';
export {
  DrmPagemap, DrmPagemapDevmem, DrmPagemapZdd, drmPagemapDevmemInit, drmPagemapMigrateToDevmem, drmPagemapMigrateToRam,
  drmPagemapEvictToRam, drmPagemapPopulateMm, drmPagemapPageToDpagemap, type DrmPagemapOps, type DrmPagemapDevmemOps,
} from './pagemap.js';
export { Vram, VramAllocation, EAGER_PAGE_COPY, LAZY_PAGE_COPY, type PageCopy, type VramStats } from './vram.js';
export { DevicePageTable, DPTE_VALID, DPTE_WRITE, DPTE_DEVMEM } from './device-pagetable.js';
export { gpusvmInvalidateRanges } from './invalidate.js';
export { gpusvmGarbageCollectorAdd, gpusvmGarbageCollect, gpusvmRangeDestroy } from './garbage.js';
export { gpusvmRangeMigrateToDevmem } from './migrate.js';
export {
  gpusvmHandleFault, gpusvmHandleFaultAsync, gpusvmHandleFaultSteps, GPUSVM_FAULT_RETRIES, type GpusvmFaultPolicy,
} from './fault.js';
export { checkDeviceMirror, type MirrorCheck } from './check.js';
export { blockingSteps, runSteps, runStepsAsync, type Step, type Steps, type SleepHooks, type SleepHooks as GpusvmHooks } from '../../mm/wait.js';
export { HMM_RANGE_DEFAULT_TIMEOUT, GPUSVM_TIMEOUT_PASSES, GPUSVM_TIMEOUT_BACKSTOP_PASSES, HmmRangeTimeout } from './timeout.js';
