// Servicing the pages of one VA block once the per-fault decisions are made
// (uvm_va_block_service_locked and its HMM arm, uvm_hmm_va_block_service_locked): pages going
// to the GPU get the prefetcher's pages added (uvm_perf_prefetch_get_hint_va_block) and are
// migrated into VRAM; pages staying in system memory are faulted in by hmm_range_fault and
// mapped remotely. The GPU mappings are planned, not written: the caller applies them when
// the copies complete (PendingMaps), skipping any an invalidation made stale meanwhile.

import type { Vma } from '../../../mm/vma.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE } from '../../../hmm/range.js';
import { PROT_READ, PROT_READ_WRITE_ATOMIC, PTE_SYSMEM, SIZE_4K } from '../page_table.js';
import { stagePte, writeStaged } from './block_ptes.js';
import { makeResidentCpuAndMap, migrateToGpu, RANK_WRITE } from './hmm.js';
import { snapshot } from './hmm_block.js';
import { UVM_ID_CPU, UVM_ID_GPU, type MakeResidentCause, type ProcessorId } from './policy_types.js';
import { PendingMaps, type UvmVaBlock } from './va_space.js';
import type { UvmDriver } from './uvm.js';

export interface BlockServiceResult {
  plan: PendingMaps;
  /** When the copies complete (the mappings may be applied). */
  doneAt: number;
  /** Pages that cannot be serviced (to cancel). */
  fatal: number[];
}

/**
 * Service pages [first, outer) of a block whose `dest[p]` is UVM_ID_GPU or UVM_ID_CPU (anything
 * else: nothing to do) with access rank rank[p], for faults (or `cause`) of the GPU.
 */
export function blockService(uvm: UvmDriver, block: UvmVaBlock, vma: Vma, dest: Int8Array, rank: Uint8Array, first: number, outer: number, cause: MakeResidentCause): BlockServiceResult {
  const plan = new PendingMaps();
  const result: BlockServiceResult = { plan, doneAt: uvm.gpu.queue.now(), fatal: [] };
  const gpuFaulted = uvm.scratchFaulted;
  gpuFaulted.fill(0);
  const cpuPages: number[] = [];
  // Faulted pages already in VRAM need only a mapping, writable if the CPU entry is.
  const resident: number[] = [];
  const toMigrate: number[] = [];
  const vram = block.vramPfn;
  let gpuCount = 0;
  // One pass over the region, four pages a word where the scratch array allows (most of a
  // region between two faults is no one's: UVM_ID_INVALID in every byte).
  const dest32 = dest === uvm.scratchDest ? uvm.scratchDest32 : null;
  for (let p = first; p < outer; p++) {
    if (dest32 !== null && (p & 3) === 0 && p + 4 <= outer && dest32[p >> 2] === -1) {
      p += 3;
      continue;
    }
    const d = dest[p];
    if (d === UVM_ID_GPU) {
      gpuFaulted[p] = 1;
      gpuCount++;
      if (vram[p]! >= 0) resident.push(p);
      else toMigrate.push(p);
    } else if (d === UVM_ID_CPU) cpuPages.push(p);
  }
  if (gpuCount > 0) {
    if (cause !== 'api') {
      const vs = block.vaSpace;
      const at = block.pageAddr(first);
      const lo = block.pageIndex(vs.policyStart(at, Math.max(block.start, vma.start)));
      const hi = block.pageIndex(vs.policyEnd(at, Math.min(block.end, vma.end)) - 1) + 1;
      // The prefetcher's pages follow the faulted ones (sorted below); they are in none of them.
      let sorted = true;
      for (const p of uvm.computePrefetch(block, UVM_ID_GPU, gpuFaulted, gpuCount, lo, hi)) {
        if (vram[p]! >= 0) continue;
        if (toMigrate.length > 0 && p < toMigrate[toMigrate.length - 1]!) sorted = false;
        toMigrate.push(p);
      }
      if (!sorted) toMigrate.sort((a, b) => a - b);
    }
    if (resident.length > 0) mapResident(uvm, block, resident, rank, plan, cpuPages);
    const r = migrateToGpu(uvm, block, vma, toMigrate, gpuFaulted, plan, cause);
    result.doneAt = Math.max(result.doneAt, r.doneAt);
    for (const p of r.fallback) cpuPages.push(p);
    if (cpuPages.length > 1) cpuPages.sort((a, b) => a - b);
  }
  if (cpuPages.length > 0) {
    uvm.lastCopyDoneAt = uvm.gpu.queue.now();
    for (const p of makeResidentCpuAndMap(uvm, block, vma, cpuPages, rank, plan, cause)) result.fatal.push(p);
    result.doneAt = Math.max(result.doneAt, uvm.lastCopyDoneAt);
  }
  return result;
}

/**
 * Map faulted pages that are already in VRAM. A write to a page whose CPU entry is read-only
 * (shared copy-on-write after fork) cannot be served in VRAM: the page goes to `cpuPages`,
 * where hmm_range_fault breaks the COW in system memory.
 */
function mapResident(uvm: UvmDriver, block: UvmVaBlock, pages: number[], rank: Uint8Array, plan: PendingMaps, cpuPages: number[]): void {
  const a = pages[0]!;
  const b = pages[pages.length - 1]! + 1;
  const range = snapshot(uvm, block, a, b, null);
  if (!range) return;
  for (const p of pages) {
    const f = range.hmmFlags[p - a]!;
    const pfn = range.hmmPfns[p - a]!;
    if (!(f & HMM_PFN_VALID) || pfn !== block.vramPfn[p]) continue;
    if (f & HMM_PFN_WRITE) plan.add(p, pfn, PROT_READ_WRITE_ATOMIC, false);
    else if (rank[p]! >= RANK_WRITE) cpuPages.push(p);
    else plan.add(p, pfn, PROT_READ, false);
  }
}

/**
 * Apply a plan's mappings (the block lock is taken again after the copies): a page whose plan
 * went stale, or whose VRAM page changed, is left unmapped and will fault again. With
 * largePages, with the largest leaves the block's mappings then allow (block_ptes.ts).
 */
export function commitPlan(uvm: UvmDriver, block: UvmVaBlock, plan: PendingMaps): number {
  if (block.pending === plan) block.pending = null;
  const vs = block.vaSpace;
  if (vs.dead) return 0;
  let mapped = 0;
  const base = block.start / 4096;
  const stale = plan.stale;
  const large = uvm.largePages;
  for (let i = 0; i < plan.length; i++) {
    const p = plan.page[i]!;
    if (stale && stale[p]) {
      uvm.stats.mapsDropped++;
      continue;
    }
    const pfn = plan.pfn[i]!;
    if (!plan.sysmem[i] && block.vramPfn[p] !== pfn) {
      uvm.stats.mapsDropped++;
      continue;
    }
    const flags = plan.prot[i]! | (plan.sysmem[i] ? PTE_SYSMEM : 0);
    if (large) stagePte(p, pfn, flags);
    else uvm.gpu.mmu.map(vs.gpuVaSpace, base + p, pfn, SIZE_4K, flags);
    mapped++;
  }
  if (large && mapped > 0) writeStaged(uvm, block);
  return mapped;
}

export type { ProcessorId };
