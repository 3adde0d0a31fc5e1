// 4.17's walk policy: hmm_vma_walk_pmd/hole/pte with need_fault in the driver's encoding,
// on the shared PageWalker (walk.ts). Its differences from the kernel are in docs/api.md.

import { ERRNO } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Mm } from '../../mm/mm.js';
import { VM_WRITE, type Vma } from '../../mm/vma.js';
import {
  FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, faultRetryWait, handleMmFault, newFaultRetry, VM_FAULT_ERROR, VM_FAULT_RETRY,
} from '../../mm/fault.js';
import { HMM_PFN_FLAG_DEVICE_PRIVATE, HMM_PFN_FLAG_VALID, HMM_PFN_FLAG_WRITE, HMM_PFN_VALUE_ERROR, HMM_PFN_VALUE_NONE, type HmmRange417 } from './range.js';
import { CE_BAD, CE_DEVICE_PRIVATE, CE_HWPOISON, CE_MIGRATION, CE_NONE, CE_PRESENT, CpuEntry, pageUnlockWait, WALK_RESTART, WALK_SLEEP, EFAULT, NEED_FAULT, NEED_WRITE_FAULT, NEED_ALL, type WalkOps } from '../walk.js';

// ---------------------------------------------------------------------------------------
// 4.17: hmm_vma_get_pfns / hmm_vma_fault
// ---------------------------------------------------------------------------------------


/**
 * The 4.17 walk callbacks. Per entry it computes need_fault(request, cpu_flags) (§5.2) from
 * the request the caller left in pfns[i]; in fault mode it faults exactly the pages whose own
 * request needs it (the documented per-page intent of "allow write fault on page basis";
 * 4.17 itself faulted every page from the first needing one to the chunk end with that
 * page's write bit and erased the later requests, §5.3, row 24), one page at a time, each
 * fault followed by a new walk from that page (-EAGAIN).
 */
export class PolicyV417 implements WalkOps {
  /** Resume address (hmm_vma_walk.last). */
  last = 0;
  /** Address whose entry holds V[ERROR] after a -EFAULT, or -1. */
  errAt = -1;
  /** What to wait for after WALK_SLEEP. */
  wait: (() => Promise<void>) | null = null;
  private vmaWritable = true;
  // No-progress guard: the entry seen before the last fault at faultAddr.
  private faultAddr = -1;
  private faultKind = -1;
  private faultPfn = -1;
  private faultWrite = false;
  private faultProt = false;
  private faultTries = 0;
  /** Faults issued by this call, and the most it may issue (a bound that no progress can pass). */
  private faults = 0;
  private readonly maxFaults: number;
  private readonly retry = newFaultRetry();

  constructor(readonly mm: Mm, readonly range: HmmRange417, readonly fault: boolean, readonly block: boolean) {
    this.maxFaults = 64 + 8 * range.npages;
  }

  /** hmm_pte_need_fault in the driver's encoding; returns NEED_* bits. */
  needFault(orig: number, cpu: number): number {
    if (!this.fault) return 0;
    const F = this.range.flags;
    const req = orig % this.range.pfnMul;
    if (!(req & F[HMM_PFN_FLAG_VALID])) return 0;
    if (cpu & F[HMM_PFN_FLAG_DEVICE_PRIVATE]) {
      if (req & F[HMM_PFN_FLAG_DEVICE_PRIVATE]) return req & F[HMM_PFN_FLAG_WRITE] ? NEED_ALL : NEED_FAULT;
      return 0;
    }
    let need = cpu & F[HMM_PFN_FLAG_VALID] ? 0 : NEED_FAULT;
    if (req & F[HMM_PFN_FLAG_WRITE] && !(cpu & F[HMM_PFN_FLAG_WRITE])) need = NEED_ALL;
    if (need === NEED_ALL && !this.vmaWritable) {
      // HMM does not check VM_WRITE, and the core fault cannot grant write in such a VMA
      // (row 20): the page is faulted for read if it has to be, and comes back without WRITE.
      need = cpu & F[HMM_PFN_FLAG_VALID] ? 0 : NEED_FAULT;
    }
    return need;
  }

  private cpuFlags(e: CpuEntry): number {
    const F = this.range.flags;
    switch (e.kind) {
      case CE_PRESENT:
        // A protnone PTE counts as present (row 17); a protnone huge PMD as none (row 16).
        if (e.level > 0 && e.protnone) return 0;
        return F[HMM_PFN_FLAG_VALID] | (e.write ? F[HMM_PFN_FLAG_WRITE] : 0);
      case CE_DEVICE_PRIVATE:
        return F[HMM_PFN_FLAG_VALID] | F[HMM_PFN_FLAG_DEVICE_PRIVATE] | (e.write ? F[HMM_PFN_FLAG_WRITE] : 0);
      default:
        return 0;
    }
  }

  testVma(vma: Vma): number {
    this.vmaWritable = (vma.flags & VM_WRITE) !== 0;
    return 0;
  }

  noVma(): number {
    // 4.17 walks one VMA only; the caller has checked the bounds.
    return EFAULT;
  }

  /**
   * Whether to fault addr (again): false once a successful fault there left the entry as it
   * was (the fault cannot give what was asked, so the page is reported as it is).
   */
  private mayFault(addr: number, e: CpuEntry): boolean {
    if (this.faults >= this.maxFaults) return false;
    if (addr !== this.faultAddr) return true;
    if (this.faultTries > 8) return false;
    return !(e.kind === this.faultKind && e.pfn === this.faultPfn && e.write === this.faultWrite && e.protnone === this.faultProt);
  }

  /**
   * hmm_vma_do_fault for the page at addr (entry i, described by e); afterwards the walk
   * starts again at `resume`.
   */
  private doFault(vma: Vma, addr: number, i: number, need: number, e: CpuEntry, resume: number): number {
    this.last = resume;
    let flags = FAULT_FLAG_REMOTE | (need & NEED_WRITE_FAULT ? FAULT_FLAG_WRITE : 0);
    // Documented intent (the 2019 fix): only a non-blocking fault may be retried.
    if (!this.block) flags |= FAULT_FLAG_ALLOW_RETRY;
    const kind = e.kind;
    const pfn = e.pfn;
    const write = e.write;
    const prot = e.protnone;
    this.faults++;
    const ret = handleMmFault(this.mm, vma, addr, flags, this.retry);
    if (ret & VM_FAULT_RETRY) {
      this.faultAddr = -1;
      if (!this.block) return -ERRNO.EBUSY;
      this.wait = faultRetryWait(this.mm, this.retry);
      return WALK_SLEEP;
    }
    if (ret & VM_FAULT_ERROR) {
      this.range.pfns[i] = this.range.values[HMM_PFN_VALUE_ERROR];
      this.errAt = addr;
      this.last = addr;
      return EFAULT;
    }
    this.faultTries = addr === this.faultAddr ? this.faultTries + 1 : 1;
    this.faultAddr = addr;
    this.faultKind = kind;
    this.faultPfn = pfn;
    this.faultWrite = write;
    this.faultProt = prot;
    return WALK_RESTART;
  }

  pte(vma: Vma, addr: number, _chunkEnd: number, e: CpuEntry): number {
    const range = this.range;
    const i = (addr - range.start) / PAGE_SIZE;
    const orig = range.pfns[i]!;
    switch (e.kind) {
      case CE_HWPOISON:
      case CE_BAD:
        // "Report error for everything else": the walk stops.
        range.pfns[i] = range.values[HMM_PFN_VALUE_ERROR];
        this.last = addr;
        this.errAt = addr;
        return EFAULT;
      case CE_MIGRATION: {
        if (this.needFault(orig, 0)) {
          // Sleep until the migration ends, then walk again from this address.
          this.last = addr;
          this.wait = pageUnlockWait(this.mm, e.pfn);
          return WALK_SLEEP;
        }
        range.pfns[i] = range.values[HMM_PFN_VALUE_NONE];
        return 0;
      }
      default: {
        const cpu = this.cpuFlags(e);
        const need = this.needFault(orig, cpu);
        if (need && this.mayFault(addr, e)) return this.doFault(vma, addr, i, need, e, addr);
        // Present and device-private entries: hmm_pfn_from_pfn(pfn) | cpu_flags; else V[NONE].
        range.pfns[i] = e.kind === CE_PRESENT || e.kind === CE_DEVICE_PRIVATE ? e.pfn * range.pfnMul + cpu : range.values[HMM_PFN_VALUE_NONE];
        return 0;
      }
    }
  }

  span(vma: Vma, start: number, end: number, e: CpuEntry): number {
    const range = this.range;
    const pfns = range.pfns;
    const i0 = (start - range.start) / PAGE_SIZE;
    const n = (end - start) / PAGE_SIZE;
    const NONE = range.values[HMM_PFN_VALUE_NONE];
    if (e.kind === CE_NONE || (e.kind === CE_PRESENT && e.level === 1)) {
      // A hole (pmd_none, missing directory) or a huge PMD (THP, devmap). As the kernel does,
      // look for a page that needs a fault before writing anything; fault that page alone and
      // walk the chunk again, so every page keeps its own request.
      const cpu = this.cpuFlags(e);
      const pfn0 = e.pfn;
      for (let k = 0; k < n; k++) {
        const need = this.needFault(pfns[i0 + k]!, cpu);
        if (!need) continue;
        const addr = start + k * PAGE_SIZE;
        e.pfn = pfn0 + k; // the entry as this page sees it, for the no-progress guard
        const may = this.mayFault(addr, e);
        if (may) return this.doFault(vma, addr, i0 + k, need, e, start);
        e.pfn = pfn0;
      }
      const valid = (cpu & range.flags[HMM_PFN_FLAG_VALID]) !== 0;
      for (let k = 0; k < n; k++) pfns[i0 + k] = valid ? (pfn0 + k) * range.pfnMul + cpu : NONE;
      this.last = end;
      return 0;
    }
    // Any other entry above the PTE level is pmd_bad to 4.17 (a PMD migration entry
    // included, row 18): V[ERROR] for the chunk, and the walk goes on (row 19).
    pfns.fill(range.values[HMM_PFN_VALUE_ERROR], i0, i0 + n);
    this.last = end;
    return 0;
  }
}
