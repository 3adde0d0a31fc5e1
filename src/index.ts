// hmmsim's public API.

export * from './mm/constants.js';
export * from './mm/errno.js';
export { Machine, DEFAULT_CONFIG, type MachineConfig } from './mm/machine.js';
export { Process } from './mm/process.js';
export { Mm } from './mm/mm.js';
export * from './mm/vma.js';
export { TmpFile, Tmpfs } from './mm/file.js';
export * from './mm/notifier.js';
export * from './mm/events.js';
export * from './mm/fault.js';
export {
  DevPagemap, type DevPagemapOps, type MemoryType, memremapPages, memunmapPages, pagePgmap, isZoneDevicePage, isDevicePrivatePage,
  isDeviceCoherentPage,
} from './mm/memremap.js';
export { swapOutPage } from './mm/vmscan.js';
export { pagemap, pagemapRange, type PagemapEntry, type PagemapKind } from './mm/pagemap.js';
export * as pagetable from './mm/pagetable.js';
// HMM (src/hmm): mainline hmm_range_fault, the 4.17 mirror API, and the shared range types.
export {
  HmmRange, type HmmRangeInit, hmmPfnToPage, hmmPfnToPhys, hmmPfnToMapOrder, hmmPfnEncode, hmmPfnDecode, HMM_PFN_VALID,
  HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_ORDER_MASK, HMM_PFN_ORDER_SHIFT, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_FLAGS,
} from './hmm/range.js';
export {
  HmmRange417, type HmmRange417Init, hmmPfnToPage417, hmmPfnToPfn, hmmPfnFromPage, hmmPfnFromPfn, HMM_PFN_FLAG_VALID,
  HMM_PFN_FLAG_WRITE, HMM_PFN_FLAG_DEVICE_PRIVATE, HMM_PFN_FLAG_MAX, HMM_PFN_VALUE_ERROR, HMM_PFN_VALUE_NONE,
  HMM_PFN_VALUE_SPECIAL, HMM_PFN_VALUE_MAX, HMM_PFN_SHIFT_MAX,
} from './hmm/v417/range.js';
export { hmmRangeFault, hmmRangeFaultAsync } from './hmm/hmm.js';
export {
  HMM_UPDATE_INVALIDATE, type HmmUpdateType, type HmmMirrorOps, HmmMirror, Hmm, type HmmSyncTiming, type HmmMirrorRegisterOptions,
  hmmMirrorRegister, hmmMirrorUnregister, hmmVmaGetPfns, hmmVmaFault, hmmVmaFaultAsync, hmmVmaRangeDone, hmmOf,
  hmmInjectAllocFailure,
} from './hmm/v417/mirror.js';
export * as hmm417 from './hmm/v417/index.js';
export {
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_PFN_VALID, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_PFN_SHIFT, type MigratePfnArray, type MigrateVma, migratePfn, migratePfnToPage, migratePfnHas, newMigrateVma,
  migrateVmaSetup, migrateVmaPages, migrateVmaFinalize, migrateDeviceRange, migrateDevicePfns, migrateDevicePages,
  migrateDeviceFinalize, migrateDeviceCoherentFolio, splitFolio, mainlineMigratePolicy, type MigratePolicy,
} from './mm/migrate.js';
export {
  MIGRATE_PFN_LOCKED, MIGRATE_PFN_DEVICE, MIGRATE_PFN_ERROR, MIGRATE_ANY_OWNER, migrateVma417, type MigrateVmaOps417, v417MigratePolicy,
} from './hmm/v417/migrate.js';
export { makeDeviceExclusive } from './mm/exclusive.js';
export { getUserPages, putUserPages, unpinUserPages, type GupFlags } from './mm/gup.js';
export * from './hmm/v417/devmem.js';
// The kernel's HMM test driver (dmirror, lib/test_hmm.c) and its selftests (hmm-tests.c).
export * from './drivers/dmirror/index.js';
export {
  runSelftests, runSelftestsSummary, runSelftestCase, selftestCases, formatSelftestSummary, HMM_SELFTESTS,
  HMM_VARIANTS, HMM2_VARIANTS, type SelftestOptions, type SelftestResult, type SelftestCase,
} from './drivers/dmirror/selftests.js';
// GPU-SVM (src/drivers/gpusvm): the shared core for GPU drivers, after DRM's drm_gpusvm and
// drm_pagemap (docs/gpusvm.md), and svmdev, the small driver of `hmmsim demo` built on it.
export {
  DrmGpusvm, drmGpusvmInit, DRM_GPUSVM_DEFAULT_CHUNK_SIZES, DRM_GPUSVM_DEFAULT_NOTIFIER_SIZE, SZ_4K, SZ_64K, SZ_2M, SZ_512M,
  newDrmGpusvmStats, type DrmGpusvmCtx, type DrmGpusvmStats, type DrmGpusvmOptions, type GpusvmOwnMigration, type DrmGpusvmOps,
  DrmGpusvmNotifier, drmGpusvmNotifierFind, drmGpusvmNotifiersIn, drmGpusvmNotifierAlloc, drmGpusvmNotifierInsert,
  drmGpusvmNotifierRemove, DrmGpusvmRange, type DrmGpusvmRangeFlags, drmGpusvmRangeFind, drmGpusvmRangeFirstIndex,
  drmGpusvmRangesIn, drmGpusvmRangeLookup, drmGpusvmRangeFindOrInsert, drmGpusvmRangeGet, drmGpusvmRangePut,
  drmGpusvmRangeRemove, drmGpusvmRangeSetUnmapped, drmGpusvmHasMapping, drmGpusvmFindVmaStart, drmGpusvmFini, DrmGpusvmPages,
  type DrmGpusvmPagesFlags, drmGpusvmPagesValid, drmGpusvmRangePagesValid, drmGpusvmUnmapPages, drmGpusvmRangeUnmapPages,
  drmGpusvmFreePages, drmGpusvmGetPages, drmGpusvmGetPagesAsync, drmGpusvmGetPagesSteps, drmGpusvmRangeGetPages,
  drmGpusvmRangeGetPagesAsync, drmGpusvmRangeGetPagesSteps, drmGpusvmRangeEvict, drmGpusvmRangeEvictAsync,
  drmGpusvmRangeEvictSteps, drmGpusvmCheckPages, drmGpusvmScanMm, DRM_GPUSVM_SCAN_UNPOPULATED, DRM_GPUSVM_SCAN_EQUAL,
  DRM_GPUSVM_SCAN_OTHER, DRM_GPUSVM_SCAN_SYSTEM, DRM_GPUSVM_SCAN_MIXED_DEVICE, DRM_GPUSVM_SCAN_MIXED, DrmPagemap, DrmPagemapDevmem, DrmPagemapZdd, drmPagemapDevmemInit,
  drmPagemapMigrateToDevmem, drmPagemapMigrateToRam, drmPagemapEvictToRam, drmPagemapPopulateMm, drmPagemapPageToDpagemap,
  type DrmPagemapOps, type DrmPagemapDevmemOps, Vram, VramAllocation, type VramStats, DevicePageTable, DPTE_VALID, DPTE_WRITE,
  DPTE_DEVMEM, gpusvmInvalidateRanges, gpusvmGarbageCollectorAdd, gpusvmGarbageCollect, gpusvmRangeDestroy,
  gpusvmRangeMigrateToDevmem, gpusvmHandleFault, gpusvmHandleFaultAsync, gpusvmHandleFaultSteps, GPUSVM_FAULT_RETRIES,
  type GpusvmFaultPolicy, checkDeviceMirror, type MirrorCheck, blockingSteps, runSteps, runStepsAsync, type Step, type Steps, type SleepHooks,
  type GpusvmHooks,
  HMM_RANGE_DEFAULT_TIMEOUT, GPUSVM_TIMEOUT_PASSES, GPUSVM_TIMEOUT_BACKSTOP_PASSES, HmmRangeTimeout,
} from './drivers/gpusvm/index.js';
export { SvmDevice, type SvmDeviceOptions, type SvmDeviceStats, type SvmFaultResult } from './drivers/svmdev/index.js';
