// The 4.17 HMM API ("hmm: fixes and documentations v2") under its kernel names, as one module:
// the range and its driver-defined encoding, the mirror (sync, release, snapshot and fault),
// the hmm_devmem / hmm_device helpers and migrate_vma(ops). It is a layer on mainline: it uses
// src/hmm's page-table walk with its own policy (walk.ts) and src/mm's migration with its own
// rules (migrate.ts). Mainline's struct hmm_range and hmm_pfn_to_page own the plain names in
// the main entry point, where these 4.17 symbols are also exported flat, with a 417 suffix
// where a name would collide (HmmRange417, hmmPfnToPage417, migrateVma417).

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
