// The 4.17 HMM API under its kernel names, as one namespace (`import { hmm417 } from
// 'hmmsim'`): hmm417.HmmRange, hmm417.hmmPfnToPage, ... Mainline's struct hmm_range and
// hmm_pfn_to_page own the plain names; the same 4.17 symbols are also exported flat, with a
// 417 suffix where a name would collide (HmmRange417, hmmPfnToPage417).

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
