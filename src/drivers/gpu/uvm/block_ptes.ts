// The GPU page sizes UVM maps a VA block's pages with, when `largePages` is on: the rule of
// block_gpu_compute_new_pte_state for managed memory, applied whenever a service commits its
// mappings ("PTEs are merged eagerly"). A 2 MiB leaf when, after the change, every page of the
// block is mapped with the same permissions to its VRAM, which is then one aligned root chunk
// (block_gpu_supports_2m, is_block_phys_contig); otherwise a 64 KiB leaf for every big-page
// region whose 16 pages are all mapped alike to VRAM (GPU chunks are at least 64 KiB, so they
// are contiguous); 4 KiB PTEs for the rest, and for system memory mapped remotely (UVM needs
// CPU chunks of 64 KiB for that, and HMM has none). Splits happen in the page table
// (page_table.ts: block_gpu_split_2m, block_gpu_split_big) when part of a leaf is unmapped,
// downgraded or remapped. Default off: UVM on HMM with 4 KiB kernel pages returns from
// block_gpu_compute_new_pte_state before any of this (Bug 3368756) and maps 4 KiB only.

import { PROT_MASK, PTE_SYSMEM, PTE_VALID, SIZE_2M, SIZE_4K, SIZE_64K, type GpuPtLeaf } from '../page_table.js';
import { PAGES_PER_UVM_VA_BLOCK } from './policy_types.js';
import type { UvmVaBlock } from './va_space.js';
import type { UvmDriver } from './uvm.js';

const BIG = 16;
const REGIONS = PAGES_PER_UVM_VA_BLOCK / BIG;
const KEEP = PROT_MASK | PTE_SYSMEM;

/** Mappings staged by one commit, and the block's state after it (typed arrays reused from commit to commit). */
const pfnAfter = new Int32Array(PAGES_PER_UVM_VA_BLOCK);
const flagsAfter = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
const staged = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
const touched = new Uint8Array(REGIONS);
/** Touched regions with a page mapped before the commit (their merge must flush the TLBs). */
const wasMapped = new Uint8Array(REGIONS);
const regionList: number[] = [];
const leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };

/** Stage a 4 KiB mapping of page p (flags: PROT bits and PTE_SYSMEM) for writeStaged. */
export function stagePte(p: number, pfn: number, flags: number): void {
  staged[p] = 1;
  pfnAfter[p] = pfn;
  flagsAfter[p] = flags;
  const r = p >> 4;
  if (!touched[r]) {
    touched[r] = 1;
    regionList.push(r);
  }
}

/** Whether region r's 16 pages, after the commit, can be one 64 KiB leaf of VRAM. */
function regionUniform(r: number): boolean {
  const p0 = r * BIG;
  const f = flagsAfter[p0]!;
  const pfn = pfnAfter[p0]!;
  if (!(f & PTE_VALID) || f & PTE_SYSMEM || pfn % BIG) return false;
  for (let k = 1; k < BIG; k++) if (flagsAfter[p0 + k] !== f || pfnAfter[p0 + k] !== pfn + k) return false;
  return true;
}

/** Write the staged mappings of the block with the largest leaves they allow; returns the leaves written. */
export function writeStaged(uvm: UvmDriver, block: UvmVaBlock): number {
  const vs = block.vaSpace.gpuVaSpace;
  const pt = vs.pt;
  const mmu = uvm.gpu.mmu;
  const base = block.start / 4096;
  // The after state of the touched regions: staged pages, and what the page table holds for the others.
  for (const r of regionList) {
    let was = 0;
    for (let p = r * BIG; p < r * BIG + BIG; p++) {
      pt.walk(base + p, leaf);
      if (leaf.flags & PTE_VALID) was = 1;
      if (staged[p]) continue;
      flagsAfter[p] = leaf.flags & PTE_VALID ? leaf.flags & KEEP : 0;
      pfnAfter[p] = leaf.pfn;
    }
    wasMapped[r] = was;
  }
  // 2 MiB: every region one leaf's worth, alike, consecutive from an aligned first frame.
  let whole = true;
  let flags2m = -1;
  let pfn2m = -1;
  let flushWhole = false;
  for (let r = 0; r < REGIONS && whole; r++) {
    let f: number;
    let pfn: number;
    if (touched[r]) {
      if (!regionUniform(r)) whole = false;
      f = flagsAfter[r * BIG]!;
      pfn = pfnAfter[r * BIG]!;
      if (wasMapped[r]) flushWhole = true;
    } else {
      if (!pt.uniform(base + r * BIG, SIZE_64K, leaf) || leaf.flags & PTE_SYSMEM) whole = false;
      f = leaf.flags & KEEP;
      pfn = leaf.pfn;
      flushWhole = true;
    }
    if (r === 0) {
      flags2m = f;
      pfn2m = pfn;
      if (pfn % PAGES_PER_UVM_VA_BLOCK) whole = false;
    } else if (f !== flags2m || pfn !== pfn2m + r * BIG) whole = false;
  }
  let leaves = 0;
  if (whole) {
    mmu.map(vs, base, pfn2m, SIZE_2M, flags2m);
    if (flushWhole) flush(uvm, block, 0, PAGES_PER_UVM_VA_BLOCK);
    leaves = 1;
  } else {
    for (const r of regionList) {
      const p0 = r * BIG;
      if (regionUniform(r)) {
        mmu.map(vs, base + p0, pfnAfter[p0]!, SIZE_64K, flagsAfter[p0]!);
        if (wasMapped[r]) flush(uvm, block, p0, p0 + BIG);
        leaves++;
        continue;
      }
      for (let p = p0; p < p0 + BIG; p++) {
        if (!staged[p]) continue;
        mmu.map(vs, base + p, pfnAfter[p]!, SIZE_4K, flagsAfter[p]!);
        leaves++;
      }
    }
  }
  for (const r of regionList) {
    touched[r] = 0;
    staged.fill(0, r * BIG, r * BIG + BIG);
  }
  regionList.length = 0;
  return leaves;
}

/** A merge replaced translations the TLBs may hold: UVM invalidates them (uvm_tlb_batch_invalidate). */
function flush(uvm: UvmDriver, block: UvmVaBlock, first: number, outer: number): void {
  const base = block.start / 4096;
  uvm.gpu.mmu.tlbInvalidate(block.vaSpace.gpuVaSpace, base + first, base + outer, uvm.gpu.queue.now());
  uvm.stats.tlbInvalidateNs += uvm.gpu.costs.tlbInvalidateNs;
}
