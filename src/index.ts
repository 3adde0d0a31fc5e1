/**
 * hmmsim: Linux HMM (Heterogeneous Memory Management) and the mm it sits on, executable.
 *
 * The main entry point holds mainline Linux: the machine and its processes (the mm), HMM's
 * `hmm_range_fault`, MMU notifiers, device memory (`memremap_pages`) and migration
 * (`migrate_vma_*`), device-exclusive access and `get_user_pages`. The 4.17 API is in
 * `hmmsim/v417`, the kernel's test driver in `hmmsim/dmirror`, the scheduler in `hmmsim/sched`,
 * invariant checks in `hmmsim/testing` (docs/architecture.md lists every entry point).
 *
 * @packageDocumentation
 * @module hmmsim
 */

// ---- the machine, processes and their memory (src/mm) ----
export { Machine, DEFAULT_CONFIG, type MachineConfig } from './mm/machine.js';
export { Process } from './mm/process.js';
export { Mm } from './mm/mm.js';
export { type PhysMem } from './mm/physmem.js';
export { type Lruvec, type VmStat } from './mm/lru.js';
export { type SwapDevice } from './mm/swap.js';
export {
  Vma, type VmaSet, type VmOperations, type SpecialVmFault, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC, VM_MAYSHARE, VM_PFNMAP, VM_LOCKED, VM_IO,
  VM_DONTCOPY, VM_DONTEXPAND, VM_HUGETLB, VM_DONTDUMP, VM_MIXEDMAP, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_SPECIAL, VM_ACCESS_FLAGS,
} from './mm/vma.js';
export { TmpFile, Tmpfs } from './mm/file.js';
export {
  PAGE_SHIFT, PAGE_SIZE, PAGE_MASK, PTRS_PER_TABLE, PMD_SHIFT, PMD_SIZE, PMD_NR, PUD_SHIFT, PUD_SIZE, PUD_NR, HPAGE_PMD_ORDER,
  HPAGE_PUD_ORDER, TASK_SIZE_4LEVEL, TASK_SIZE_5LEVEL, PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE,
  MAP_SHARED_VALIDATE, MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE, MAP_POPULATE, MAP_HUGETLB, MAP_FIXED_NOREPLACE, MAP_HUGE_SHIFT,
  MAP_HUGE_MASK, MAP_HUGE_2MB, MAP_HUGE_1GB, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, MADV_NORMAL, MADV_DONTNEED,
  MADV_FREE, MADV_DONTFORK, MADV_DOFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_PAGEOUT, MADV_COLLAPSE, pageAligned, pageAlignUp,
  pageAlignDown,
} from './mm/constants.js';
export { ERRNO, type Errno, KernelError, SignalError, WouldBlock, blocking } from './mm/errno.js';
export {
  EventBus, type EventTally, type EventMap, type EventKind, type FaultKind, type FaultEvent, type MapEvent, type UnmapEvent, type InvalidateEvent,
  type FreeEvent, type MigrateEvent,
} from './mm/events.js';
export { pagemap, pagemapRange, type PagemapEntry, type PagemapKind } from './mm/pagemap.js';
export { swapOutPage } from './mm/vmscan.js';
export { getUserPages, putUserPages, unpinUserPages, type GupFlags } from './mm/gup.js';
export {
  type VmFault, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_MAJOR, VM_FAULT_HWPOISON, VM_FAULT_SIGSEGV, VM_FAULT_NOPAGE,
  VM_FAULT_RETRY, VM_FAULT_FALLBACK, VM_FAULT_ERROR, FAULT_FLAG_WRITE, FAULT_FLAG_MKWRITE, FAULT_FLAG_ALLOW_RETRY,
  FAULT_FLAG_RETRY_NOWAIT, FAULT_FLAG_KILLABLE, FAULT_FLAG_TRIED, FAULT_FLAG_USER, FAULT_FLAG_REMOTE,
} from './mm/fault.js';

// ---- MMU notifiers (include/linux/mmu_notifier.h) ----
export {
  type MmuNotifyEvent, MMU_NOTIFIER_RANGE_BLOCKABLE, MMU_RANGE_END_ALL, type MmuNotifierRange, mmuNotifierRangeBlockable,
  type MmuNotifierOps, MmuNotifier, type MmuIntervalNotifierOps, MmuIntervalNotifier, mmuNotifierRegister, mmuNotifierUnregister,
  mmuNotifierUnregisterNoRelease, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin,
  mmuIntervalReadRetry, mmuIntervalCheckRetry, mmuIntervalSetSeq,
} from './mm/notifier.js';

// ---- HMM: hmm_range_fault (include/linux/hmm.h) ----
export {
  HmmRange, type HmmRangeInit, hmmPfnToPage, hmmPfnToPhys, hmmPfnToMapOrder, hmmPfnEncode, hmmPfnDecode, HMM_PFN_VALID,
  HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_ORDER_MASK, HMM_PFN_ORDER_SHIFT, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_FLAGS,
} from './hmm/range.js';
export { hmmRangeFault, hmmRangeFaultAsync } from './hmm/hmm.js';

// ---- device memory (memremap_pages) and migration (migrate_vma_*, migrate_device_*) ----
export {
  DevPagemap, type DevPagemapOps, type MemoryType, memremapPages, memunmapPages, pagePgmap, isZoneDevicePage,
  isDevicePrivatePage, isDeviceCoherentPage, zoneDevicePageInit,
} from './mm/memremap.js';
// A driver's access to page contents (include/linux/highmem.h), device pages included, and the
// page calls around a migration (alloc_page_vma, get_page / put_page, trylock_page / unlock_page).
export { copyHighpage, clearHighpage, memcpyToPage, memcpyFromPage } from './mm/highmem.js';
export { allocPages, allocPageVma, getPage, putPage, trylockPage, unlockPage } from './mm/page_alloc.js';
// Special mappings a driver's mmap makes (mm/memory.c): remap_pfn_range, vm_insert_page, vmf_insert_mixed / _pfn.
export { mmapDevice, remapPfnRange, vmInsertPage, vmfInsertMixed, vmfInsertPfn, type DeviceFileOperations } from './mm/special.js';
export {
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_PFN_VALID, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_PFN_SHIFT, type MigratePfnArray,
  type MigrateVma, migratePfn, migratePfnToPage, migratePfnHas, newMigrateVma, migrateVmaSetup, migrateVmaPages,
  migrateVmaFinalize, migrateDeviceRange, migrateDevicePfns, migrateDevicePages, migrateDeviceFinalize,
  migrateDeviceCoherentFolio, splitFolio, mainlineMigratePolicy, type MigratePolicy,
} from './mm/migrate.js';
export { makeDeviceExclusive } from './mm/exclusive.js';

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
  type DrmPagemapOps, type DrmPagemapDevmemOps, Vram, VramAllocation, type VramStats, EAGER_PAGE_COPY, LAZY_PAGE_COPY, type PageCopy, DevicePageTable, DPTE_VALID, DPTE_WRITE,
  DPTE_DEVMEM, gpusvmInvalidateRanges, gpusvmGarbageCollectorAdd, gpusvmGarbageCollect, gpusvmRangeDestroy,
  gpusvmRangeMigrateToDevmem, gpusvmHandleFault, gpusvmHandleFaultAsync, gpusvmHandleFaultSteps, GPUSVM_FAULT_RETRIES,
  type GpusvmFaultPolicy, checkDeviceMirror, type MirrorCheck, blockingSteps, runSteps, runStepsAsync, type Step, type Steps, type SleepHooks,
  type GpusvmHooks,
  HMM_RANGE_DEFAULT_TIMEOUT, GPUSVM_TIMEOUT_PASSES, GPUSVM_TIMEOUT_BACKSTOP_PASSES, HmmRangeTimeout,
} from './drivers/gpusvm/index.js';
export { SvmDevice, type SvmDeviceOptions, type SvmDeviceStats, type SvmFaultResult } from './drivers/svmdev/index.js';
