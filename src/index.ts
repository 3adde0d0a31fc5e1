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
export { DevPagemap, type DevPagemapOps, type MemoryType } from './mm/memremap.js';
export { swapOutPage } from './mm/vmscan.js';
export * as pagetable from './mm/pagetable.js';
// HMM (src/hmm): mainline hmm_range_fault, the 4.17 mirror API, and the shared range types.
export {
  HmmRange, type HmmRangeInit, hmmPfnToPage, hmmPfnToPhys, hmmPfnToMapOrder, hmmPfnEncode, hmmPfnDecode, HMM_PFN_VALID,
  HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_ORDER_MASK, HMM_PFN_ORDER_SHIFT, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_FLAGS,
  HmmRange417, type HmmRange417Init, hmmPfnToPage417, hmmPfnToPfn, hmmPfnFromPage, hmmPfnFromPfn, HMM_PFN_FLAG_VALID,
  HMM_PFN_FLAG_WRITE, HMM_PFN_FLAG_DEVICE_PRIVATE, HMM_PFN_FLAG_MAX, HMM_PFN_VALUE_ERROR, HMM_PFN_VALUE_NONE,
  HMM_PFN_VALUE_SPECIAL, HMM_PFN_VALUE_MAX, HMM_PFN_SHIFT_MAX,
} from './hmm/range.js';
export { hmmRangeFault, hmmRangeFaultAsync } from './hmm/hmm.js';
export {
  HMM_UPDATE_INVALIDATE, type HmmUpdateType, type HmmMirrorOps, HmmMirror, Hmm, type HmmSyncTiming, type HmmMirrorRegisterOptions,
  hmmMirrorRegister, hmmMirrorUnregister, hmmVmaGetPfns, hmmVmaFault, hmmVmaFaultAsync, hmmVmaRangeDone, hmmOf,
  hmmInjectAllocFailure,
} from './hmm/mirror.js';
export * as hmm417 from './hmm/v417.js';
export * from './mm/migrate.js';
export { makeDeviceExclusive } from './mm/exclusive.js';
export { getUserPages, putUserPages, unpinUserPages, type GupFlags } from './mm/gup.js';
export * from './hmm/devmem.js';
