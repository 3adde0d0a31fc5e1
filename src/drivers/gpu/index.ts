/**
 * The GPU hardware model (SMs, GPU MMU and TLBs, the replayable fault buffer, copy engines,
 * VRAM, access counters) and the drivers real GPUs run on HMM (NVIDIA UVM, ...).
 *
 * @packageDocumentation
 * @module hmmsim/gpu
 */

export {
  ACCESS_READ, ACCESS_WRITE, ACCESS_ATOMIC, ACCESS_PREFETCH, type AccessType, AccessChunk, type WarpProgram, type GpuKernel,
} from './access.js';
export { type GpuCosts, type TransferDirection, DEFAULT_GPU_COSTS } from './costs.js';
export {
  type GpuFaultEvent, type GpuBatchEvent, type GpuReplayKind, type GpuReplayEvent, type GpuCancelEvent, type GpuMigrateCause,
  type GpuMigrateEvent, type GpuEvictEvent, type GpuMapEvent, type GpuUnmapEvent, type GpuTlbInvalidateEvent,
  type GpuThrashingEvent, type GpuAccessCounterEvent, type GpuKernelEvent, type GpuEventMap, type GpuEventKind, GpuEventBus,
} from './events.js';
export {
  GpuPageTable, GpuPtNode, type GpuPtLeaf, type LeafSize, PTE_VALID, PTE_WRITE, PTE_ATOMIC, PTE_SYSMEM, PTE_BIG, PTE_TABLE, PROT_MASK, PROT_NONE,
  PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC, SIZE_4K, SIZE_64K, SIZE_2M, SIZE_PAGES,
} from './page_table.js';
export { Tlb } from './tlb.js';
export { FaultBuffer, FAULT_BUFFER_ENTRY_SIZE, FAULT_TYPE_INVALID_PDE, FAULT_TYPE_INVALID_PTE, FAULT_TYPE_PROTECTION } from './fault_buffer.js';
export { CopyEngine } from './copy_engine.js';
export { Vram, VRAM_CHUNK_FRAMES } from './vram.js';
export { AccessCounters, DEFAULT_ACCESS_COUNTER_CONFIG, type AccessCounterConfig } from './access_counters.js';
export { GpuMmu, GpuVaSpace, ACCESS_REQUIRED, requiredProt, XLATE_HIT, type MmuStats } from './mmu.js';
export {
  KernelRun, Warp, SmArray, type GpuAccessObserver, type SmStats, WARP_WAITING, WARP_RUNNING, WARP_STALLED, WARP_DONE, WARP_CANCELLED,
} from './sm.js';
export { Gpu, DEFAULT_GPU_CONFIG, type GpuConfig, type GpuDriver, type GpuStats } from './gpu.js';
export { KThread, type KThreadBody } from './kthread.js';
export { checkGpuInvariants, type GpuCheckOptions } from './check.js';
export type { HmmGpuDriver } from './driver.js';
export { createGpuSystem, GPU_DRIVERS, type GpuSystem, type GpuSystemOptions, type GpuDriverName } from './system.js';
// NVIDIA UVM
export { UvmDriver, UvmOwner, DEFAULT_UVM_OPTIONS, type UvmOptions, type UvmStats } from './uvm/uvm.js';
export { UvmVaSpace, UvmVaBlock, UVM_VA_BLOCK_SIZE, type UvmPolicyRange, type PendingMaps } from './uvm/va_space.js';
export { type FaultBatch } from './uvm/replayable_faults.js';
export {
  UVM_ID_INVALID, UVM_ID_CPU, UVM_ID_GPU, type ProcessorId, PAGES_PER_UVM_VA_BLOCK, BIG_PAGE_PAGES, type PrefetchInput,
  type PrefetchPolicy, THRASHING_HINT_NONE, THRASHING_HINT_THROTTLE, THRASHING_HINT_PIN, type ThrashingHint,
  type MakeResidentCause, type ThrashingBlock, type ThrashingPolicy, type EvictionView, type EvictionPolicy,
  type BatchReplayAction, type ReplayPolicy, type ResidencyInput, type ResidencyPolicy,
} from './uvm/policy_types.js';
export {
  PREFETCH_POLICIES, EVICTION_POLICIES, REPLAY_POLICIES, RESIDENCY_POLICIES, THRASHING_POLICIES, REPLAY_BLOCK, REPLAY_BATCH,
  REPLAY_BATCH_FLUSH, REPLAY_ONCE, RESIDENCY_UVM, RESIDENCY_SYSMEM,
} from './uvm/policies.js';
export { TreePrefetcher, NoPrefetcher, Seq64kPrefetcher, Random4kPrefetcher } from './uvm/perf_prefetch.js';
export { UvmThrashing, NoThrashing, DEFAULT_THRASHING_PARAMS, type ThrashingParams } from './uvm/perf_thrashing.js';
export { UvmEvictionOrder, LruEvictionOrder, LfuEvictionOrder, FifoEvictionOrder, RandomEvictionOrder } from './uvm/pmm_eviction.js';
export { UvmPmm } from './uvm/pmm.js';
// amdkfd SVM
export { KfdDriver, KfdOwner, type KfdStats } from './kfd/kfd_svm.js';
export { DEFAULT_KFD_OPTIONS, type KfdOptions } from './kfd/kfd_options.js';
export { AMDGPU_GTT_MAX_TRANSFER_SIZE } from './kfd/kfd_migrate.js';
export { SvmRange, SvmRangeList, svmRangeMaxPages, type SvmAttrs, type SvmLocation } from './kfd/svm_range.js';
export { SvmBo, SvmVram, KFD_EVICTION_POLICIES, TTM_EVICTION, LRU_EVICTION, RANDOM_EVICTION, type KfdEvictionPolicy } from './kfd/svm_bo.js';
// nouveau
export { NouveauDriver, NouveauOwner, NouveauSvmm, DEFAULT_NOUVEAU_OPTIONS, type NouveauOptions, type NouveauStats } from './nouveau/nouveau_svm.js';
export { NouveauDmem, DMEM_CHUNK_PAGES, SG_MAX_SINGLE_ALLOC } from './nouveau/nouveau_dmem.js';
export { WARP_SUSPENDED } from './sm.js';
