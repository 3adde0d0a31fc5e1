// struct hmm_range as of 4.17 ("hmm: fixes and documentations v2") and its driver-defined
// encoding. The driver chooses the encoding: flags[] (VALID, WRITE, DEVICE_PRIVATE) are its
// own bit masks, values[] (ERROR, NONE, SPECIAL) its own complete entry values, and an entry
// is pfn * 2**pfnShift + flag bits. Entries live in a Float64Array: they may exceed 32 bits,
// so every encode and decode multiplies and divides by 2**pfnShift (never << or >>), and
// every flag test works on the low pfnShift bits only, which fit in 32 bits.

import { fail } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Vma } from '../../mm/vma.js';
import type { Hmm } from './mirror.js';


/** enum hmm_pfn_flag_e: indices into HmmRange417.flags. */
export const HMM_PFN_FLAG_VALID = 0;
export const HMM_PFN_FLAG_WRITE = 1;
export const HMM_PFN_FLAG_DEVICE_PRIVATE = 2;
export const HMM_PFN_FLAG_MAX = 3;
/** enum hmm_pfn_value_e: indices into HmmRange417.values. */
export const HMM_PFN_VALUE_ERROR = 0;
export const HMM_PFN_VALUE_NONE = 1;
export const HMM_PFN_VALUE_SPECIAL = 2;
export const HMM_PFN_VALUE_MAX = 3;

/** Largest pfnShift: a 32-bit pfn shifted by it stays below 2^53, exact in a double. */
export const HMM_PFN_SHIFT_MAX = 20;

export interface HmmRange417Init {
  /** The VMA that wholly contains [start, end). */
  vma: Vma;
  start: number;
  end: number;
  /** The driver's bit for [VALID, WRITE, DEVICE_PRIVATE]; 0 means "no such bit". */
  flags: readonly [number, number, number];
  /** The driver's complete values for [ERROR, NONE, SPECIAL]. */
  values: readonly [number, number, number];
  pfnShift: number;
  /** One entry per page; allocated when omitted. */
  pfns?: Float64Array;
}

/**
 * struct hmm_range as of 4.17. The caller fills vma, start, end and pfns (and, for
 * hmmVmaFault, request bits in pfns); HMM sets `valid` and tracks the range until
 * hmmVmaRangeDone.
 */
export class HmmRange417 {
  vma: Vma;
  start: number;
  end: number;
  pfns: Float64Array;
  readonly flags: readonly [number, number, number];
  readonly values: readonly [number, number, number];
  readonly pfnShift: number;
  /** 2 ** pfnShift, the multiplier of the pfn field. */
  readonly pfnMul: number;
  /** Set when tracking starts; cleared by any overlapping invalidation. */
  valid = false;
  /** The per-mm HMM state that tracks this range (the kernel's list linkage), or null. */
  tracker: Hmm | null = null;

  constructor(init: HmmRange417Init) {
    const { flags, values, pfnShift } = init;
    if (!Number.isInteger(pfnShift) || pfnShift < 0 || pfnShift > HMM_PFN_SHIFT_MAX) {
      fail('EINVAL', `pfnShift must be an integer in 0..${HMM_PFN_SHIFT_MAX}, got ${pfnShift}`);
    }
    const mul = 2 ** pfnShift;
    if (!Array.isArray(flags) || flags.length !== HMM_PFN_FLAG_MAX) fail('EINVAL', 'flags must have 3 entries (VALID, WRITE, DEVICE_PRIVATE)');
    if (!Array.isArray(values) || values.length !== HMM_PFN_VALUE_MAX) fail('EINVAL', 'values must have 3 entries (ERROR, NONE, SPECIAL)');
    for (const f of flags) {
      // Decoding only divides by 2**pfnShift, so every flag bit must lie below pfnShift.
      if (!Number.isInteger(f) || f < 0 || f >= mul) fail('EINVAL', `flag 0x${f.toString(16)} is not a bit mask below pfnShift ${pfnShift}`);
    }
    for (const v of values) {
      if (!Number.isSafeInteger(v) || v < 0) fail('EINVAL', `value ${v} is not a non-negative safe integer`);
      // A value that carries the VALID bit would read back as a valid pfn (or a request).
      if (flags[HMM_PFN_FLAG_VALID] && (v % mul) & flags[HMM_PFN_FLAG_VALID]) fail('EINVAL', `value ${v} contains the VALID flag`);
    }
    if (values[HMM_PFN_VALUE_NONE] === values[HMM_PFN_VALUE_ERROR] || values[HMM_PFN_VALUE_NONE] === values[HMM_PFN_VALUE_SPECIAL]) {
      fail('EINVAL', 'values[NONE] must differ from values[ERROR] and values[SPECIAL]');
    }
    this.vma = init.vma;
    this.start = init.start;
    this.end = init.end;
    this.flags = [flags[0], flags[1], flags[2]];
    this.values = [values[0], values[1], values[2]];
    this.pfnShift = pfnShift;
    this.pfnMul = mul;
    const n = Number.isSafeInteger(init.end - init.start) && init.end > init.start ? Math.floor((init.end - init.start) / PAGE_SIZE) : 0;
    this.pfns = init.pfns ?? new Float64Array(n);
  }

  /** Pages in [start, end). */
  get npages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }

  /** The flag bits of an entry (its low pfnShift bits). */
  entryFlags(e: number): number {
    return e % this.pfnMul;
  }
}

function isSpecialValue(range: HmmRange417, e: number): boolean {
  const v = range.values;
  return e === v[HMM_PFN_VALUE_NONE] || e === v[HMM_PFN_VALUE_ERROR] || e === v[HMM_PFN_VALUE_SPECIAL];
}

/**
 * hmm_pfn_to_page (4.17): the page (a pfn in hmmsim) an entry refers to, or null if the entry
 * is one of the special values or lacks the VALID flag.
 */
export function hmmPfnToPage417(range: HmmRange417, e: number): number | null {
  const pfn = hmmPfnToPfn(range, e);
  return pfn < 0 ? null : pfn;
}

/** hmm_pfn_to_pfn (4.17): the pfn of an entry, or -1 (the kernel's -1UL). */
export function hmmPfnToPfn(range: HmmRange417, e: number): number {
  if (isSpecialValue(range, e)) return -1;
  if (!((e % range.pfnMul) & range.flags[HMM_PFN_FLAG_VALID])) return -1;
  return Math.floor(e / range.pfnMul);
}

/** hmm_pfn_from_page (4.17): (pfn << pfn_shift) | flags[VALID]. A page is its pfn in hmmsim. */
export function hmmPfnFromPage(range: HmmRange417, page: number): number {
  return hmmPfnFromPfn(range, page);
}

/** hmm_pfn_from_pfn (4.17): (pfn << pfn_shift) | flags[VALID], computed without shifts. */
export function hmmPfnFromPfn(range: HmmRange417, pfn: number): number {
  return pfn * range.pfnMul + range.flags[HMM_PFN_FLAG_VALID];
}
