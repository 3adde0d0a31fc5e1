// UVM's per-process state for HMM memory: the VA space (uvm_va_space_t) with its GPU address
// space, its user policies (preferred location, accessed-by: uvm_va_policy_t ranges), and
// the HMM VA blocks (uvm_va_block_t): one per 2 MiB-aligned window the GPU touched, each with
// its own mmu_interval_notifier (uvm_hmm.c), the VRAM page backing each of its pages, and the
// prefetch and thrashing bookkeeping UVM keeps per block.

import type { Mm } from '../../../mm/mm.js';
import { MmuIntervalNotifier } from '../../../mm/notifier.js';
import type { Process } from '../../../mm/process.js';
import type { GpuVaSpace } from '../mmu.js';
import { PAGES_PER_UVM_VA_BLOCK, UVM_ID_INVALID, type ProcessorId, type ThrashingBlock } from './policy_types.js';

/** UVM_VA_BLOCK_SIZE: 2 MiB (UVM_VA_BLOCK_BITS 21). */
export const UVM_VA_BLOCK_SIZE = 2 << 20;

/** A range of user policy (uvm_va_policy_node_t): [start, end) with its hints. */
export interface UvmPolicyRange {
  start: number;
  end: number;
  preferredLocation: ProcessorId;
  /** The GPU is in the accessed-by set. */
  accessedBy: boolean;
  /** UvmSetReadDuplication: recorded but, as in UVM for HMM memory, without effect. */
  readMostly: boolean;
}

/** GPU mappings planned by a block service, applied when its copies complete. */
export class PendingMaps {
  readonly page: number[] = [];
  readonly pfn: number[] = [];
  readonly prot: number[] = [];
  readonly sysmem: boolean[] = [];
  /** Pages whose plan an invalidation or a migration made stale since it was made (made on the first such). */
  stale: Uint8Array | null = null;
  add(page: number, pfn: number, prot: number, sysmem: boolean): void {
    this.page.push(page);
    this.pfn.push(pfn);
    this.prot.push(prot);
    this.sysmem.push(sysmem);
  }
  get length(): number {
    return this.page.length;
  }
}

export class UvmVaBlock implements ThrashingBlock {
  readonly end: number;
  readonly notifier: MmuIntervalNotifier;
  /** The VRAM page backing each page of the block, or -1 (set and cleared through setVram/clearVram). */
  readonly vramPfn = new Int32Array(PAGES_PER_UVM_VA_BLOCK).fill(-1);
  /** 1 where vramPfn is set: the GPU resident mask, kept as it changes (the prefetcher reads it). */
  readonly gpuResident = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  /** Pages UVM has seen resident in system memory (its CPU residency knowledge). */
  readonly cpuResident = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  gpuResidentPages = 0;
  /** prefetch_info */
  lastMigrationProc: ProcessorId = UVM_ID_INVALID;
  faultMigrationsToLastProc = 0;
  /** The thrashing detector's state. */
  thrashing: unknown = null;
  /** largePages: the root chunk the block's VRAM pages were last allocated from (valid while the PMM says it owns it). */
  gpuChunk = -1;
  /** The service plan whose mappings are waiting for their copies. */
  pending: PendingMaps | null = null;

  constructor(readonly id: number, readonly vaSpace: UvmVaSpace, readonly start: number, notifier: (block: UvmVaBlock) => MmuIntervalNotifier) {
    this.end = start + UVM_VA_BLOCK_SIZE;
    this.notifier = notifier(this);
  }

  /** The page is now backed by VRAM page pfn. */
  setVram(page: number, pfn: number): void {
    this.vramPfn[page] = pfn;
    this.gpuResident[page] = 1;
    this.gpuResidentPages++;
  }

  /** The page's VRAM page went. */
  clearVram(page: number): void {
    this.vramPfn[page] = -1;
    this.gpuResident[page] = 0;
    this.gpuResidentPages--;
  }

  pageIndex(addr: number): number {
    return Math.floor((addr - this.start) / 4096);
  }
  pageAddr(page: number): number {
    return this.start + page * 4096;
  }

  /** Any page resident anywhere UVM knows of (va_block->resident not empty). */
  get hasResident(): boolean {
    if (this.gpuResidentPages > 0) return true;
    for (let p = 0; p < PAGES_PER_UVM_VA_BLOCK; p++) if (this.cpuResident[p]) return true;
    return false;
  }

  /** Mark planned mappings of pages [first, outer) stale: an invalidation or a migration changed them. */
  stalePending(first: number, outer: number): void {
    const p = this.pending;
    if (p) (p.stale ??= new Uint8Array(PAGES_PER_UVM_VA_BLOCK)).fill(1, Math.max(0, first), Math.min(PAGES_PER_UVM_VA_BLOCK, outer));
  }
}

export class UvmVaSpace {
  readonly mm: Mm;
  readonly blocks = new Map<number, UvmVaBlock>();
  /** Policy ranges, sorted and disjoint; addresses outside any use the default policy. */
  readonly policies: UvmPolicyRange[] = [];
  dead = false;

  constructor(readonly process: Process, readonly gpuVaSpace: GpuVaSpace) {
    this.mm = process.mm;
  }

  get asid(): number {
    return this.gpuVaSpace.asid;
  }

  /** The policy covering addr (null: default). */
  policyAt(addr: number): UvmPolicyRange | null {
    const ps = this.policies;
    let lo = 0;
    let hi = ps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = ps[mid]!;
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return r;
    }
    return null;
  }

  /**
   * [start, end) around addr over which the policy is the same as at addr, clipped to
   * [lo, hi) (uvm_hmm_find_policy_end / the hole search of uvm_hmm_get_prefetch_region).
   */
  policyExtent(addr: number, lo: number, hi: number): [number, number] {
    return [this.policyStart(addr, lo), this.policyEnd(addr, hi)];
  }

  /** The start of policyExtent(addr, lo, hi), without the pair. */
  policyStart(addr: number, lo: number): number {
    let s = lo;
    for (const r of this.policies) {
      if (r.end <= addr) {
        if (r.end > s) s = r.end;
      } else if (r.start <= addr && r.start > s) s = r.start;
    }
    return s;
  }

  /** The end of policyExtent(addr, lo, hi), without the pair. */
  policyEnd(addr: number, hi: number): number {
    let e = hi;
    for (const r of this.policies) {
      if (r.end <= addr) continue;
      if (r.start > addr) {
        if (r.start < e) e = r.start;
      } else if (r.end < e) e = r.end;
    }
    return e;
  }

  /** Set fields of the policy over [start, end), splitting ranges as needed (uvm_va_policy_set_range). */
  setPolicy(start: number, end: number, set: (r: UvmPolicyRange) => void): void {
    const out: UvmPolicyRange[] = [];
    let at = start;
    for (const r of this.policies) {
      if (r.end <= start || r.start >= end) {
        out.push(r);
        continue;
      }
      if (r.start < start) out.push({ ...r, end: start });
      if (r.start > at) {
        const gap: UvmPolicyRange = { start: at, end: r.start, preferredLocation: UVM_ID_INVALID, accessedBy: false, readMostly: false };
        set(gap);
        out.push(gap);
      }
      const mid: UvmPolicyRange = { ...r, start: Math.max(r.start, start), end: Math.min(r.end, end) };
      set(mid);
      out.push(mid);
      if (r.end > end) out.push({ ...r, start: end });
      at = Math.min(r.end, end);
    }
    if (at < end) {
      const tail: UvmPolicyRange = { start: at, end, preferredLocation: UVM_ID_INVALID, accessedBy: false, readMostly: false };
      set(tail);
      out.push(tail);
    }
    out.sort((a, b) => a.start - b.start);
    // Drop default ranges and merge equal neighbours.
    this.policies.length = 0;
    for (const r of out) {
      if (r.preferredLocation === UVM_ID_INVALID && !r.accessedBy && !r.readMostly) continue;
      const last = this.policies[this.policies.length - 1];
      if (last && last.end === r.start && last.preferredLocation === r.preferredLocation && last.accessedBy === r.accessedBy && last.readMostly === r.readMostly) last.end = r.end;
      else this.policies.push(r);
    }
  }
}
