/**
 * The HMM API of Linux 4.17 ("hmm: fixes and documentations v2") under its kernel names:
 * `hmm_mirror` and its sync callbacks, the driver-defined pfn encoding of `struct hmm_range`,
 * `hmm_vma_get_pfns` / `hmm_vma_fault` / `hmm_vma_range_done`, the `hmm_devmem` helpers and the
 * single-call `migrate_vma(ops, ...)`. It is a layer on mainline: src/hmm's page-table walk with
 * its own policy (walk.ts) and src/mm's migration with its own rules (migrate.ts), on the same
 * machine; take the machine, processes and errors from `hmmsim`. Inside hmmsim's sources the
 * names that collide with mainline carry a 417 suffix (HmmRange417, migrateVma417).
 *
 * @packageDocumentation
 * @module hmmsim/v417
 */

export {
  HmmRange417 as HmmRange, type HmmRange417Init as HmmRangeInit, hmmPfnToPage417 as hmmPfnToPage, hmmPfnToPfn, hmmPfnFromPage,
  hmmPfnFromPfn, HMM_PFN_FLAG_VALID as HMM_PFN_VALID, HMM_PFN_FLAG_WRITE as HMM_PFN_WRITE,
  HMM_PFN_FLAG_DEVICE_PRIVATE as HMM_PFN_DEVICE_PRIVATE, HMM_PFN_FLAG_MAX, HMM_PFN_VALUE_ERROR as HMM_PFN_ERROR,
  HMM_PFN_VALUE_NONE as HMM_PFN_NONE, HMM_PFN_VALUE_SPECIAL as HMM_PFN_SPECIAL, HMM_PFN_VALUE_MAX,
} from './range.js';
export {
  HMM_UPDATE_INVALIDATE, type HmmUpdateType, type HmmMirrorOps, HmmMirror, Hmm, type HmmSyncTiming, type HmmMirrorRegisterOptions,
  hmmMirrorRegister, hmmMirrorUnregister, hmmVmaGetPfns, hmmVmaFault, hmmVmaFaultAsync, hmmVmaRangeDone, hmmOf,
  hmmInjectAllocFailure,
} from './mirror.js';
export {
  type HmmDevmemOps, HmmDevice, HmmDevmem, hmmDevmemAdd, hmmDevmemAddResource, hmmDevmemRemove, hmmDevmemPageSetDrvdata,
  hmmDevmemPageGetDrvdata, hmmDeviceNew, hmmDevicePut, hmmVmaAllocLockedPage, IORES_DESC_DEVICE_PRIVATE_MEMORY,
  IORES_DESC_DEVICE_PUBLIC_MEMORY,
} from './devmem.js';
export {
  migrateVma417 as migrateVma, type MigrateVmaOps417 as MigrateVmaOps, MIGRATE_PFN_LOCKED, MIGRATE_PFN_DEVICE, MIGRATE_PFN_ERROR,
  MIGRATE_ANY_OWNER, v417MigratePolicy,
} from './migrate.js';
