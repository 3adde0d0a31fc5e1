// The one page-table walk behind every HMM snapshot and fault (walk_page_range with HMM's
// callbacks), and the two per-API policies on top of it.
//
// PageWalker visits [start, end) in address order. It finds the lowest existing entry for an
// address, classifies it into a CpuEntry (none/hole, present with its write, zero-page,
// special, protnone and devmap bits, swap, migration, device-private with its owner,
// device-exclusive, hwpoison, bad) and hands it to the policy: one call per PTE (`pte`, with
// the end of its page-table chunk, as the kernel's pmd callback passes it) and one call per
// higher-level entry or hole (`span`: a huge PMD/PUD leaf, a hugetlb page, a non-present huge
// entry, a missing table). Across VMAs (mainline), gaps go to `noVma` and each VMA first to
// `testVma`. Nothing is allocated per page: one CpuEntry is reused, entries are read straight
// from the typed arrays of the page-table nodes.
//
// A policy returns 0 to go on, or a code that stops the walk: a negative errno (-EFAULT,
// -EPERM), RESTART (the kernel's "fault done, walk again from `last`": -EAGAIN in 4.17,
// -EBUSY in mainline) or SLEEP (the kernel would sleep here, on a page lock or a migration
// entry: the policy has stored what to wait for in `wait`, and `last` where to resume).
//
// Policy417 is 4.17's hmm_vma_walk_pmd/hole/pte (need_fault with the driver's encoding);
// PolicyMainline is hmm_range_fault's walk (fixed HMM_PFN_* bits, dev_private_owner,
// per-VMA test, orders). Their differences from the kernel are listed in docs/api.md.

import { ERRNO, type Errno } from '../mm/errno.js';
import { PAGE_SIZE } from '../mm/constants.js';
import type { Mm } from '../mm/mm.js';
import {
  E_DEVMAP, E_PROTNONE, E_SPECIAL, E_WRITE, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION, K_NONE,
  K_PRESENT, K_SWAP, K_TABLE, KIND_MASK, LEVEL_PAGES, PageTable,
} from '../mm/pagetable.js';
import { VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, type Vma } from '../mm/vma.js';
import {
  FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, handleMmFault, VM_FAULT_ERROR, VM_FAULT_RETRY,
} from '../mm/fault.js';
import {
  HMM_PFN_ERROR, HMM_PFN_FLAG_DEVICE_PRIVATE, HMM_PFN_FLAG_VALID, HMM_PFN_FLAG_WRITE, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID, HMM_PFN_VALUE_ERROR, HMM_PFN_VALUE_NONE, HMM_PFN_WRITE, type HmmRange, type HmmRange417,
} from './range.js';

// ---- classification ----

export const CE_NONE = 0; // pte_none, pmd_none, a missing directory
export const CE_PRESENT = 1;
export const CE_SWAP = 2; // a regular swap entry
export const CE_MIGRATION = 3;
export const CE_DEVICE_PRIVATE = 4;
export const CE_DEVICE_EXCLUSIVE = 5;
export const CE_HWPOISON = 6; // hwpoison and other special swap entries
export const CE_BAD = 7; // pmd_bad

/** What the CPU page table holds for an address (reused for every entry of a walk). */
export class CpuEntry {
  kind = CE_NONE;
  /** Level of the entry: 0 PTE, 1 PMD, 2 PUD; for a hole, the level of the none entry. */
  level = 0;
  /**
   * For CE_NONE at the hugetlb level of a hugetlb VMA: false (an empty huge entry in an
   * existing table, the kernel's hugetlb_entry); true for every other hole (pte_hole).
   */
  hole = true;
  /** Frame at the first address of the visit (the entry's pfn plus the offset into a huge leaf). */
  pfn = 0;
  write = false;
  /** The shared zero page or the huge zero page. */
  zero = false;
  /** Present without a struct page (a pfnmap PTE) and not a zero page. */
  special = false;
  /** NUMA hinting: present but inaccessible. */
  protnone = false;
  /** Maps ZONE_DEVICE memory the CPU can address (device-coherent). */
  devmap = false;
  /** For CE_DEVICE_PRIVATE: the owner of the page's dev_pagemap. */
  owner: unknown = null;
}

/** Stop codes besides negative errnos. */
export const WALK_RESTART = 1;
export const WALK_SLEEP = 2;
/** testVma: skip this VMA (its entries were filled by the policy). */
export const WALK_SKIP = 1;

const EFAULT = -ERRNO.EFAULT;

/** The errno name of a positive errno number (for turning a walk's -errno into a KernelError). */
export function errnoName(n: number): Errno {
  for (const k of Object.keys(ERRNO) as Errno[]) if (ERRNO[k] === n) return k;
  throw new Error(`unknown errno ${n}`);
}
const EPERM = -ERRNO.EPERM;

export interface WalkOps {
  /** A VMA about to be walked over [start, end): 0 walk it, WALK_SKIP skip it, < 0 stop. */
  testVma(vma: Vma, start: number, end: number): number;
  /** [start, end) lies in no VMA. */
  noVma(start: number, end: number): number;
  /** One entry at level >= 1, or a hole, covering [start, end). */
  span(vma: Vma, start: number, end: number, e: CpuEntry): number;
  /** One PTE at addr; chunkEnd is the end of its PTE table or of the walk, whichever is first. */
  pte(vma: Vma, addr: number, chunkEnd: number, e: CpuEntry): number;
}

export class PageWalker {
  readonly e = new CpuEntry();
  constructor(readonly mm: Mm) {}

  private classify(flg: number, val: number, level: number, offset: number): void {
    const e = this.e;
    const phys = this.mm.machine.phys;
    e.level = level;
    e.hole = false;
    e.write = (flg & E_WRITE) !== 0;
    e.protnone = (flg & E_PROTNONE) !== 0;
    e.devmap = (flg & E_DEVMAP) !== 0;
    e.zero = false;
    e.special = false;
    e.owner = null;
    e.pfn = val + offset;
    switch (flg & KIND_MASK) {
      case K_NONE:
        e.kind = CE_NONE;
        e.pfn = 0;
        break;
      case K_PRESENT:
        e.kind = CE_PRESENT;
        e.zero = phys.isZeroPfn(val);
        e.special = (flg & E_SPECIAL) !== 0 && !e.zero;
        break;
      case K_SWAP:
        e.kind = CE_SWAP;
        e.pfn = 0;
        break;
      case K_MIGRATION:
        e.kind = CE_MIGRATION;
        break;
      case K_DEVICE_PRIVATE:
        e.kind = CE_DEVICE_PRIVATE;
        e.owner = phys.pagemapOf(val)?.owner ?? null;
        break;
      case K_DEVICE_EXCLUSIVE:
        e.kind = CE_DEVICE_EXCLUSIVE;
        break;
      case K_HWPOISON:
        e.kind = CE_HWPOISON;
        break;
      case K_BAD:
      default:
        e.kind = CE_BAD;
        break;
    }
  }

  /** walk_page_range over [start, end) of one VMA (the range must lie inside it). */
  walkVma(vma: Vma, start: number, end: number, ops: WalkOps): number {
    const pt = this.mm.pt;
    const e = this.e;
    const hugeLevel = vma.isHugetlb() ? (vma.hugeShift === 30 ? 2 : 1) : 0;
    let addr = start;
    while (addr < end) {
      const vpn = addr / PAGE_SIZE;
      let node = pt.root;
      let idx = PageTable.index(vpn, node.level);
      while (node.level > 0 && (node.flg[idx]! & KIND_MASK) === K_TABLE) {
        node = node.child![idx]!;
        idx = PageTable.index(vpn, node.level);
      }
      if (node.level === 0) {
        const chunkEnd = Math.min(end, (vpn - (vpn % 512) + 512) * PAGE_SIZE);
        const flg = node.flg;
        const val = node.val;
        for (let i = idx; addr < chunkEnd; addr += PAGE_SIZE, i++) {
          this.classify(flg[i]!, val[i]!, 0, 0);
          const r = ops.pte(vma, addr, chunkEnd, e);
          if (r !== 0) return r;
        }
        continue;
      }
      const level = node.level;
      const span = LEVEL_PAGES[level]!;
      const base = vpn - (vpn % span);
      const spanEnd = Math.min(end, (base + span) * PAGE_SIZE);
      this.classify(node.flg[idx]!, node.val[idx]!, level, vpn - base);
      if (e.kind === CE_NONE) e.hole = hugeLevel === 0 || level > hugeLevel;
      const r = ops.span(vma, addr, spanEnd, e);
      if (r !== 0) return r;
      addr = spanEnd;
    }
    return 0;
  }

  /** walk_page_range across VMAs, with test_walk per VMA and pte_hole for gaps. */
  walkRange(start: number, end: number, ops: WalkOps): number {
    const vmas = this.mm.vmas;
    let addr = start;
    while (addr < end) {
      const vma = vmas.findVma(addr);
      if (!vma || vma.start >= end) return ops.noVma(addr, end);
      if (vma.start > addr) {
        const r = ops.noVma(addr, vma.start);
        if (r !== 0) return r;
        addr = vma.start;
      }
      const vend = Math.min(end, vma.end);
      const t = ops.testVma(vma, addr, vend);
      if (t < 0) return t;
      if (t === 0) {
        const r = this.walkVma(vma, addr, vend, ops);
        if (r !== 0) return r;
      }
      addr = vend;
    }
    return 0;
  }
}

/** Where a policy would sleep: a page lock (migration entry, locked page) to wait for. */
function pageUnlockWait(mm: Mm, pfn: number): () => Promise<void> {
  const phys = mm.machine.phys;
  return () => phys.waitUnlocked(pfn);
}

// ---------------------------------------------------------------------------------------
// 4.17: hmm_vma_get_pfns / hmm_vma_fault
// ---------------------------------------------------------------------------------------

const NEED_FAULT = 1;
const NEED_WRITE_FAULT = 2;
const NEED_ALL = NEED_FAULT | NEED_WRITE_FAULT;

/**
 * The 4.17 walk callbacks. Per entry it computes need_fault(request, cpu_flags) (§5.2) from
 * the request the caller left in pfns[i]; in fault mode it faults exactly the pages whose own
 * request needs it (the documented per-page intent of "allow write fault on page basis";
 * 4.17 itself faulted every page from the first needing one to the chunk end with that
 * page's write bit and erased the later requests, §5.3, row 24), one page at a time, each
 * fault followed by a new walk from that page (-EAGAIN).
 */
export class Policy417 implements WalkOps {
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
    const ret = handleMmFault(this.mm, vma, addr, flags);
    if (ret & VM_FAULT_RETRY) {
      this.faultAddr = -1;
      if (!this.block) return -ERRNO.EBUSY;
      this.wait = this.mm.machine.faultWait;
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

// ---------------------------------------------------------------------------------------
// mainline: hmm_range_fault
// ---------------------------------------------------------------------------------------

/** The hmm_range_fault walk callbacks (mm/hmm.c), entry by entry as the kernel has them. */
export class PolicyMainline implements WalkOps {
  last = 0;
  wait: (() => Promise<void>) | null = null;
  private readonly anyFault: boolean;

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
      const ret = handleMmFault(this.mm, vma, a, flags);
      if (ret & VM_FAULT_RETRY) {
        // handle_mm_fault without ALLOW_RETRY sleeps here; hmmsim waits, then walks again from addr.
        this.wait = this.mm.machine.faultWait;
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
      const order = vma.hugeShift - 12;
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
        // hmm_vma_handle_pmd / the PUD leaf case: order 9 or 18.
        const cpu = e.protnone ? 0 : HMM_PFN_VALID | (e.write ? HMM_PFN_WRITE : 0) | (e.level === 1 ? 9 : 18);
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
          const cpu = HMM_PFN_VALID | (e.write ? HMM_PFN_WRITE : 0) | 9;
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
