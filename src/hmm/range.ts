// The two forms of struct hmm_range and their pfn encodings.
//
// * HmmRange417: the 4.17 range ("hmm: fixes and documentations v2"). The driver chooses the
//   encoding: flags[] (VALID, WRITE, DEVICE_PRIVATE) are its own bit masks, values[] (ERROR,
//   NONE, SPECIAL) its own complete entry values, and an entry is pfn * 2**pfnShift + flag
//   bits. Entries live in a Float64Array: they may exceed 32 bits, so every encode and decode
//   multiplies and divides by 2**pfnShift (never << or >>), and every flag test works on the
//   low pfnShift bits only, which fit in 32 bits.
//
// * HmmRange: the mainline range of hmm_range_fault. A kernel hmm_pfns[] entry is a u64 with
//   VALID/WRITE/ERROR in bits 63/62/61, the map order in bits 56..60 and the pfn below. Those
//   bits do not fit a double together with a pfn, so hmmsim keeps each entry as two typed
//   arrays: hmmFlags (Uint8Array) holds the top byte of the u64 exactly (bit 7 = bit 63 =
//   VALID, bit 6 = WRITE, bit 5 = ERROR, bits 0..4 = order), and hmmPfns (Uint32Array) holds
//   the pfn (pfns fit in 32 bits, DESIGN.md decision 4). hmmPfnEncode/hmmPfnDecode convert one
//   entry to and from the kernel's u64 (a bigint) at the API edge.

import { fail } from '../mm/errno.js';
import { PAGE_SIZE } from '../mm/constants.js';
import type { Vma } from '../mm/vma.js';
import type { MmuIntervalNotifier } from '../mm/notifier.js';
import type { Hmm } from './mirror.js';

// ---------------------------------------------------------------------------------------
// 4.17
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// mainline
// ---------------------------------------------------------------------------------------

// Bits of hmmFlags[i], the top byte of the kernel's u64 entry (bit n of the byte is bit
// 56 + n of the u64).
/** HMM_PFN_VALID (bit 63): the entry holds a pfn the CPU can at least read. */
export const HMM_PFN_VALID = 0x80;
/** HMM_PFN_WRITE (bit 62): the CPU may write. */
export const HMM_PFN_WRITE = 0x40;
/** HMM_PFN_ERROR (bit 61): the address cannot be mirrored (no VMA, no read permission, pfnmap, poison). */
export const HMM_PFN_ERROR = 0x20;
/** Map order field (bits 56..60 of the u64, bits 0..4 of hmmFlags). */
export const HMM_PFN_ORDER_MASK = 0x1f;
/** HMM_PFN_ORDER_SHIFT: where the order sits in the kernel's u64. */
export const HMM_PFN_ORDER_SHIFT = 56;
/** Input: fault the page in if the CPU entry is not valid (same bit as VALID). */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
/** Input: fault for write if the CPU entry is not writable (same bit as WRITE). */
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;
/** HMM_PFN_FLAGS: every non-pfn bit, as a mask of hmmFlags. */
export const HMM_PFN_FLAGS = 0xff;

export interface HmmRangeInit {
  notifier: MmuIntervalNotifier;
  start: number;
  end: number;
  /** Request bits applied to every page (HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE). */
  defaultFlags?: number;
  /** Which per-page request bits of hmmFlags count. */
  pfnFlagsMask?: number;
  /** device-private pages whose pgmap owner is this are reported, never faulted. */
  devPrivateOwner?: unknown;
  /** Reuse existing arrays (at least one entry per page). */
  hmmPfns?: Uint32Array;
  hmmFlags?: Uint8Array;
}

/**
 * struct hmm_range (mainline). hmmFlags[i] and hmmPfns[i] together are the kernel's
 * hmm_pfns[i]: input request bits in hmmFlags, output flags, order and pfn.
 */
export class HmmRange {
  notifier: MmuIntervalNotifier;
  notifierSeq = 0;
  start: number;
  end: number;
  hmmPfns: Uint32Array;
  hmmFlags: Uint8Array;
  defaultFlags: number;
  pfnFlagsMask: number;
  devPrivateOwner: unknown;

  constructor(init: HmmRangeInit) {
    this.notifier = init.notifier;
    this.start = init.start;
    this.end = init.end;
    const n = Number.isSafeInteger(init.end - init.start) && init.end > init.start ? Math.floor((init.end - init.start) / PAGE_SIZE) : 0;
    this.hmmPfns = init.hmmPfns ?? new Uint32Array(n);
    this.hmmFlags = init.hmmFlags ?? new Uint8Array(n);
    this.defaultFlags = init.defaultFlags ?? 0;
    this.pfnFlagsMask = init.pfnFlagsMask ?? 0;
    this.devPrivateOwner = init.devPrivateOwner ?? null;
  }

  get npages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }
}

/** hmm_pfn_to_page: the page (pfn) of entry i. Meaningful only when the entry is VALID. */
export function hmmPfnToPage(range: HmmRange, i: number): number {
  return range.hmmPfns[i]!;
}

/** hmm_pfn_to_phys: the physical address of entry i. */
export function hmmPfnToPhys(range: HmmRange, i: number): number {
  return range.hmmPfns[i]! * PAGE_SIZE;
}

/** hmm_pfn_to_map_order: log2 of the pages the CPU maps with the entry's mapping (0, 9, 18). */
export function hmmPfnToMapOrder(range: HmmRange, i: number): number {
  return range.hmmFlags[i]! & HMM_PFN_ORDER_MASK;
}

/** The kernel's u64 for entry i (for printing, comparing with kernel traces). */
export function hmmPfnEncode(range: HmmRange, i: number): bigint {
  return (BigInt(range.hmmFlags[i]!) << 56n) | BigInt(range.hmmPfns[i]!);
}

/** Store a kernel u64 into entry i (the inverse of hmmPfnEncode). The pfn must fit 32 bits. */
export function hmmPfnDecode(range: HmmRange, i: number, v: bigint): void {
  const pfn = v & ((1n << 56n) - 1n);
  if (pfn >= 1n << 32n) fail('EINVAL', `pfn ${pfn} does not fit in 32 bits`);
  range.hmmFlags[i] = Number((v >> 56n) & 0xffn);
  range.hmmPfns[i] = Number(pfn);
}
