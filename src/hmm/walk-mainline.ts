// Mainline's walk policy: hmm_range_fault's callbacks (fixed HMM_PFN_* bits,
// dev_private_owner, per-VMA test, orders), on the shared PageWalker (walk.ts).

import { HPAGE_PMD_ORDER, PAGE_SHIFT, PAGE_SIZE } from '../mm/constants.js';
import { E_PROTNONE, E_SPECIAL, E_WRITE, K_NONE, K_PRESENT, KIND_MASK, LEVEL_ORDER, ptFlagsArray, type PtNode, ptValArray } from '../mm/pagetable.js';
import type { Mm } from '../mm/mm.js';
import { VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, type Vma } from '../mm/vma.js';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, faultRetryWait, handleMmFault, newFaultRetry, VM_FAULT_ERROR, VM_FAULT_RETRY } from '../mm/fault.js';
import { HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, type HmmRange } from './range.js';
import { CE_DEVICE_EXCLUSIVE, CE_DEVICE_PRIVATE, CE_MIGRATION, CE_NONE, CE_PRESENT, CE_SWAP, CpuEntry, pageUnlockWait, WALK_RESTART, WALK_SKIP, WALK_SLEEP, EFAULT, EPERM, NEED_FAULT, NEED_WRITE_FAULT, NEED_ALL, type WalkOps } from './walk.js';

// ---------------------------------------------------------------------------------------
// mainline: hmm_range_fault
// ---------------------------------------------------------------------------------------

/** The hmm_range_fault walk callbacks (mm/hmm.c), entry by entry as the kernel has them. */
export class PolicyMainline implements WalkOps {
  last = 0;
  wait: (() => Promise<void>) | null = null;
  private readonly anyFault: boolean;
  private readonly retry = newFaultRetry();

  constructor(readonly mm: Mm, readonly range: HmmRange) {
    this.anyFault = ((range.defaultFlags | range.pfnFlagsMask) & HMM_PFN_REQ_FAULT) !== 0;
  }

  /** hmm_pte_need_fault */
  needFault(i: number, cpu: number): number {
    const range = this.range;
    const req = (range.hmmFlags[i]! & range.pfnFlagsMask) | range.defaultFlags;
    if (!(req & HMM_PFN_REQ_FAULT)) return 0;
    if (req & HMM_PFN_REQ_WRITE && !(cpu & HMM_PFN_WRITE)) return NEED_ALL;
    return cpu & HMM_PFN_VALID ? 0 : NEED_FAULT;
  }

  /** hmm_range_need_fault */
  rangeNeedFault(i0: number, n: number, cpu: number): number {
    if (!this.anyFault) return 0;
    let need = 0;
    for (let k = 0; k < n; k++) {
      need |= this.needFault(i0 + k, cpu);
      if (need === NEED_ALL) break;
    }
    return need;
  }

  private fill(i0: number, n: number, flags: number): void {
    this.range.hmmFlags.fill(flags, i0, i0 + n);
    this.range.hmmPfns.fill(0, i0, i0 + n);
  }

  private out(i: number, flags: number, pfn: number): void {
    // An entry without VALID carries no pfn (see docs/api.md).
    this.range.hmmFlags[i] = flags;
    this.range.hmmPfns[i] = flags & HMM_PFN_VALID ? pfn : 0;
  }

  /** hmm_vma_fault: fault every page of [addr, end), then walk again from addr. */
  private vmaFault(vma: Vma, addr: number, end: number, need: number): number {
    this.last = addr;
    let flags = FAULT_FLAG_REMOTE;
    if (need & NEED_WRITE_FAULT) {
      if (!(vma.flags & VM_WRITE)) return EPERM;
      flags |= FAULT_FLAG_WRITE;
    }
    for (let a = addr; a < end; a += PAGE_SIZE) {
      const ret = handleMmFault(this.mm, vma, a, flags, this.retry);
      if (ret & VM_FAULT_RETRY) {
        // handle_mm_fault without ALLOW_RETRY sleeps here; hmmsim waits, then walks again from addr.
        this.wait = faultRetryWait(this.mm, this.retry);
        return WALK_SLEEP;
      }
      if (ret & VM_FAULT_ERROR) return EFAULT;
    }
    return WALK_RESTART;
  }

  private idx(addr: number): number {
    return (addr - this.range.start) / PAGE_SIZE;
  }

  testVma(vma: Vma, start: number, end: number): number {
    if (!(vma.flags & (VM_IO | VM_PFNMAP)) && vma.flags & VM_READ) return 0;
    const i0 = this.idx(start);
    const n = (end - start) / PAGE_SIZE;
    if (this.rangeNeedFault(i0, n, 0)) return EFAULT;
    this.fill(i0, n, HMM_PFN_ERROR);
    return WALK_SKIP;
  }

  noVma(start: number, end: number): number {
    const i0 = this.idx(start);
    const n = (end - start) / PAGE_SIZE;
    if (this.rangeNeedFault(i0, n, 0)) return EFAULT;
    this.fill(i0, n, HMM_PFN_ERROR);
    return 0;
  }

  /**
   * hmm_vma_walk_pmd's loop over one PTE table, for the two common entries: a present one with
   * a struct page (not special, not protnone) whose request it satisfies, and a none one with
   * no fault requested. It stops at any other entry, which `pte` then handles. The flags are
   * tested with pagetable.ts's masks in place: this loop runs before V8 has optimized it. The
   * loop (ptesChunk, 64 entries a call) writes only the output flags: the pfns of the entries
   * it took are copied after it in one native copy (a typed array's set), and an entry without
   * VALID then gets its 0.
   */
  ptes(node: PtNode, idx: number, addr: number, chunkEnd: number): number {
    const range = this.range;
    const flagsOut = range.hmmFlags;
    const flgs = ptFlagsArray(node);
    // Indices, not addresses, in the loop: an address is past the small-integer range.
    const k0 = (addr - range.start) / PAGE_SIZE - idx;
    const stop = idx + (chunkEnd - addr) / PAGE_SIZE;
    chunkNones = 0;
    let i = idx;
    while (i < stop) {
      const to = Math.min(stop, i + PTES_CHUNK);
      i = ptesChunk(flgs, flagsOut, k0, i, to, range.pfnFlagsMask, range.defaultFlags);
      if (i < to) break;
    }
    if (i > idx) outPfns(range.hmmPfns, flagsOut, ptValArray(node), idx, i, k0, chunkNones);
    return addr + (i - idx) * PAGE_SIZE;
  }

  pte(vma: Vma, addr: number, chunkEnd: number, e: CpuEntry): number {
    const i = this.idx(addr);
    let need: number;
    switch (e.kind) {
      case CE_NONE:
        need = this.needFault(i, 0);
        if (need) return this.vmaFault(vma, addr, chunkEnd, need);
        this.out(i, 0, 0);
        return 0;
      case CE_PRESENT: {
        const cpu = e.protnone ? 0 : HMM_PFN_VALID | (e.write ? HMM_PFN_WRITE : 0);
        need = this.needFault(i, cpu);
        if (need) return this.vmaFault(vma, addr, chunkEnd, need);
        if (e.special && !e.devmap) {
          // No struct page (vm_normal_page() is NULL) and not the zero page.
          if (this.needFault(i, 0)) return EFAULT;
          this.out(i, HMM_PFN_ERROR, 0);
          return 0;
        }
        this.out(i, cpu, e.pfn);
        return 0;
      }
      case CE_DEVICE_PRIVATE:
        if (e.owner !== null && e.owner === this.range.devPrivateOwner) {
          this.out(i, HMM_PFN_VALID | (e.write ? HMM_PFN_WRITE : 0), e.pfn);
          return 0;
        }
        need = this.needFault(i, 0);
        if (!need) {
          this.out(i, 0, 0);
          return 0;
        }
        return this.vmaFault(vma, addr, chunkEnd, need);
      case CE_SWAP:
      case CE_DEVICE_EXCLUSIVE:
        need = this.needFault(i, 0);
        if (!need) {
          this.out(i, 0, 0);
          return 0;
        }
        return this.vmaFault(vma, addr, chunkEnd, need);
      case CE_MIGRATION:
        if (!this.needFault(i, 0)) {
          this.out(i, 0, 0);
          return 0;
        }
        this.last = addr;
        this.wait = pageUnlockWait(this.mm, e.pfn);
        return WALK_SLEEP;
      default:
        // hwpoison and other special swap entries
        if (!this.needFault(i, 0)) {
          this.out(i, 0, 0);
          return 0;
        }
        return EFAULT;
    }
  }

  span(vma: Vma, start: number, end: number, e: CpuEntry): number {
    const i0 = this.idx(start);
    const n = (end - start) / PAGE_SIZE;
    const range = this.range;
    if (e.kind === CE_NONE && e.hole) {
      // hmm_vma_walk_hole
      const need = this.rangeNeedFault(i0, n, 0);
      if (need) return this.vmaFault(vma, start, end, need);
      this.fill(i0, n, 0);
      return 0;
    }
    if (vma.isHugetlb()) {
      // hmm_vma_walk_hugetlb_entry: the request of the first entry decides for the huge page.
      const order = vma.hugeShift - PAGE_SHIFT;
      const present = e.kind === CE_PRESENT && !e.protnone;
      const cpu = (present ? HMM_PFN_VALID | (e.write ? HMM_PFN_WRITE : 0) : 0) | order;
      const need = this.needFault(i0, cpu);
      if (need) return this.vmaFault(vma, start, end, need);
      if (!present) {
        this.fill(i0, n, 0);
        return 0;
      }
      for (let k = 0; k < n; k++) {
        range.hmmFlags[i0 + k] = cpu;
        range.hmmPfns[i0 + k] = e.pfn + k;
      }
      return 0;
    }
    switch (e.kind) {
      case CE_PRESENT: {
        // hmm_vma_handle_pmd / the PUD leaf case: the leaf's order.
        const cpu = e.protnone ? 0 : HMM_PFN_VALID | (e.write ? HMM_PFN_WRITE : 0) | LEVEL_ORDER[e.level]!;
        const need = this.rangeNeedFault(i0, n, cpu);
        if (need) return this.vmaFault(vma, start, end, need);
        if (!cpu) {
          this.fill(i0, n, 0);
          return 0;
        }
        for (let k = 0; k < n; k++) {
          range.hmmFlags[i0 + k] = cpu;
          range.hmmPfns[i0 + k] = e.pfn + k;
        }
        return 0;
      }
      case CE_MIGRATION:
        if (this.rangeNeedFault(i0, n, 0)) {
          this.last = start;
          this.wait = pageUnlockWait(this.mm, e.pfn);
          return WALK_SLEEP;
        }
        this.fill(i0, n, 0);
        return 0;
      case CE_DEVICE_PRIVATE: {
        // A device-private PMD (a 2 MiB device folio).
        if (e.owner !== null && e.owner === range.devPrivateOwner) {
          const cpu = HMM_PFN_VALID | (e.write ? HMM_PFN_WRITE : 0) | HPAGE_PMD_ORDER;
          for (let k = 0; k < n; k++) {
            range.hmmFlags[i0 + k] = cpu;
            range.hmmPfns[i0 + k] = e.pfn + k;
          }
          return 0;
        }
        const need = this.rangeNeedFault(i0, n, 0);
        if (need) return this.vmaFault(vma, start, end, need);
        this.fill(i0, n, 0);
        return 0;
      }
      default:
        // pmd_bad and any other non-present huge entry
        if (this.rangeNeedFault(i0, n, 0)) return EFAULT;
        this.fill(i0, n, HMM_PFN_ERROR);
        return 0;
    }
  }
}

/**
 * Entries per call of ptesChunk: a call ends soon, so V8 compiles the loop once, for its next
 * call, and not once more on stack for a call still running (a table is 512 entries).
 */
const PTES_CHUNK = 64;
/** None entries ptesChunk took since ptes reset it (their pfns are zeroed after the copy). */
let chunkNones = 0;

/** ptes' loop over table entries [from, to); returns the index of the first entry it left (to when none). */
function ptesChunk(flgs: Readonly<Uint16Array>, flagsOut: Uint8Array, k0: number, from: number, to: number, mask: number, dflt: number): number {
  let i = from;
  for (; i < to; i++) {
    const flg = flgs[i]!;
    // Without per-page request bits (a mask of 0) the request is the default: no array read.
    const req = mask === 0 ? dflt : (flagsOut[k0 + i]! & mask) | dflt;
    if ((flg & (KIND_MASK | E_SPECIAL | E_PROTNONE)) === K_PRESENT) {
      const w = (flg & E_WRITE) !== 0;
      // hmm_pte_need_fault: a write requested of a read-only entry faults.
      if (!w && (req & (HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)) === (HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)) break;
      flagsOut[k0 + i] = w ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
    } else if ((flg & KIND_MASK) === K_NONE && !(req & HMM_PFN_REQ_FAULT)) {
      flagsOut[k0 + i] = 0;
      chunkNones++;
    } else {
      break;
    }
  }
  return i;
}

/**
 * The pfns of the table entries [from, to) that ptes took, into pfnsOut at k0 + each index:
 * copied as a block, then 0 for each of the `nones` entries that got no VALID (a none entry
 * carries no pfn; its value word need not be 0).
 */
function outPfns(pfnsOut: Uint32Array, flagsOut: Uint8Array, vals: Readonly<Uint32Array>, from: number, to: number, k0: number, nones: number): void {
  pfnsOut.set(vals.subarray(from, to), k0 + from);
  for (let i = from; nones > 0 && i < to; i++) {
    if (flagsOut[k0 + i] === 0) {
      pfnsOut[k0 + i] = 0;
      nones--;
    }
  }
}
