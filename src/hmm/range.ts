// struct hmm_range of hmm_range_fault and its pfn encoding.
//
// A kernel hmm_pfns[] entry is a u64 with VALID/WRITE/ERROR in bits 63/62/61, the map order
// in bits 56..60 and the pfn below. Those bits do not fit a double together with a pfn, so
// hmmsim keeps each entry as two typed arrays: hmmFlags (Uint8Array) holds the top byte of the
// u64 exactly (bit 7 = bit 63 = VALID, bit 6 = WRITE, bit 5 = ERROR, bits 0..4 = order), and
// hmmPfns (Uint32Array) holds the pfn (pfns fit in 32 bits, docs/architecture.md decision 4).
// hmmPfnEncode/hmmPfnDecode convert one entry to and from the kernel's u64 (a bigint) at the
// API edge. The 4.17 range, with its driver-defined encoding, is src/hmm/v417/range.ts.

import { fail } from '../mm/errno.js';
import { PAGE_SIZE } from '../mm/constants.js';
import type { MmuIntervalNotifier } from '../mm/notifier.js';

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
