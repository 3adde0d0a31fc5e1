// UVM's HMM residency (uvm_hmm.c) on mainline HMM calls: system-memory residency through
// hmm_range_fault (hmm_make_resident_cpu), migration into VRAM through
// migrate_vma_setup/pages/finalize, migration back for a CPU fault (uvm_hmm_devmem_fault:
// dev_pagemap_ops.migrate_to_ram), and GPU atomics on system memory through
// make_device_exclusive (hmm_block_atomic_fault_locked). A block's basics are in
// hmm_block.ts, eviction in hmm_eviction.ts.

import { KernelError, WouldBlock } from '../../../mm/errno.js';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS, type VmFault } from '../../../mm/fault.js';
import { makeDeviceExclusive } from '../../../mm/exclusive.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
} from '../../../mm/migrate.js';
import { VM_HUGETLB, VM_SHARED, VM_WRITE, type Vma } from '../../../mm/vma.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE } from '../../../hmm/range.js';
import { PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC, PTE_VALID, type GpuPtLeaf } from '../page_table.js';
import { blockMigrateVma, releaseMigrateVma } from './migrate_args.js';
import { FRAME_ALLOCATED } from './pmm.js';
import { PAGES_PER_UVM_VA_BLOCK, UVM_ID_CPU, UVM_ID_GPU, type MakeResidentCause } from './policy_types.js';
import { UvmVaBlock, type PendingMaps } from './va_space.js';
import type { UvmDriver } from './uvm.js';
import { copyRuns, gpuUnmapBlock, gpuUnmapRuns, snapshot } from './hmm_block.js';
import { reserveBlockVram, reserveVram } from './hmm_eviction.js';

/** What a block service planned, and when its copies complete. */
export interface ResidencyResult {
  doneAt: number;
  /** Faulted pages that could not be made resident at the GPU (no VRAM left): the caller maps them remotely. */
  fallback: number[];
}

/**
 * Make the pages `pages` (sorted page indices, with their service access rank) resident in
 * system memory and plan their remote GPU mappings (the GPU-fault arm of
 * hmm_block_cpu_fault_locked: pages in VRAM come back first, then hmm_make_resident_cpu
 * faults the rest in, writable for write faults or writable VMAs; atomics on system memory
 * without native atomics go through make_device_exclusive). Returns the fatal pages.
 */
export function makeResidentCpuAndMap(uvm: UvmDriver, block: UvmVaBlock, vma: Vma, pages: number[], rank: Uint8Array, plan: PendingMaps, cause: MakeResidentCause): number[] {
  const fatal: number[] = [];
  if (pages.length === 0) return fatal;
  const inVram = pages.filter((p) => block.vramPfn[p]! >= 0);
  if (inVram.length > 0) migrateToCpu(uvm, block, vma, inVram, -1, cause);
  const a = pages[0]!;
  const b = pages[pages.length - 1]! + 1;
  const req = uvm.scratchRequest;
  req.fill(0, 0, b - a);
  const writable = (vma.flags & VM_WRITE) !== 0;
  for (const p of pages) req[p - a] = HMM_PFN_REQ_FAULT | (rank[p]! >= RANK_WRITE || writable ? HMM_PFN_REQ_WRITE : 0);
  const range = snapshot(uvm, block, a, b, req);
  if (!range) {
    if (uvm.lastHmmError) {
      uvm.lastHmmError = null;
      for (const p of pages) fatal.push(p);
    }
    return fatal;
  }
  const phys = uvm.machine.phys;
  const native = uvm.gpu.config.nativeSysmemAtomics;
  let foreign: number[] | null = null;
  for (const p of pages) {
    const f = range.hmmFlags[p - a]!;
    if (!(f & HMM_PFN_VALID)) continue;
    let pfn = range.hmmPfns[p - a]!;
    if (uvm.gpu.vram.contains(pfn)) {
      // Still (or again) in VRAM: map it there, if the page is this block's. A VRAM page of
      // another block is one a fork left in both processes' page tables (copy-on-write); it
      // is the other VA space's, and a mapping of it here would be dropped at commit (and the
      // warp would fault on it for ever): this process gets its own copy in system memory,
      // and the next fault maps or migrates that (docs/api.md, UVM deviations).
      if (block.vramPfn[p] === pfn) plan.add(p, pfn, f & HMM_PFN_WRITE ? PROT_READ_WRITE_ATOMIC : PROT_READ, false);
      else (foreign ??= []).push(p);
      continue;
    }
    let prot = f & HMM_PFN_WRITE ? PROT_READ_WRITE : PROT_READ;
    if (rank[p] === RANK_ATOMIC && !native) {
      // hmm_block_atomic_fault_locked: no atomics over the interconnect; take the page exclusively.
      if (vma.flags & (VM_SHARED | VM_HUGETLB)) {
        fatal.push(p); // Bug 4014681: not supported on MAP_SHARED or hugetlb
        continue;
      }
      try {
        pfn = makeDeviceExclusive(block.vaSpace.mm, block.pageAddr(p), uvm.owner);
      } catch (e) {
        if (e instanceof WouldBlock) continue;
        if (e instanceof KernelError) {
          fatal.push(p);
          continue;
        }
        throw e;
      }
      prot = PROT_READ_WRITE_ATOMIC;
      uvm.stats.deviceExclusive++;
    } else if (native && f & HMM_PFN_WRITE) {
      prot = PROT_READ_WRITE_ATOMIC;
    }
    if (phys.isZeroPfn(pfn)) prot = PROT_READ;
    plan.add(p, pfn, prot, true);
    block.cpuResident[p] = 1;
    uvm.stats.remoteMaps++;
  }
  if (foreign) migrateToCpu(uvm, block, vma, foreign, -1, cause);
  return fatal;
}

/**
 * Migrate `pages` (sorted, not in VRAM) of the block into VRAM through migrate_vma with
 * MIGRATE_VMA_SELECT_SYSTEM (pages never touched are populated in VRAM, not copied), and plan
 * their GPU mappings. `faulted` marks the pages that faulted (the rest are prefetched).
 * Returns when the copies complete and the faulted pages that got no VRAM.
 */
export function migrateToGpu(uvm: UvmDriver, block: UvmVaBlock, vma: Vma, pages: number[], faulted: Uint8Array, plan: PendingMaps, cause: MakeResidentCause): ResidencyResult {
  const result: ResidencyResult = { doneAt: uvm.gpu.queue.now(), fallback: [] };
  if (pages.length === 0) return result;
  // largePages: frames[i] is pages[i]'s (or -1); otherwise they are handed out in order.
  const frames = uvm.largePages ? reserveBlockVram(uvm, block, pages, cause === 'fault') : reserveVram(uvm, pages.length);
  const cursor = { next: uvm.largePages ? -1 : 0 };
  const copied: number[] = [];
  // One migrate_vma per cluster of nearby pages: UVM migrates the whole service region
  // [first, outer) at once and restores the pages it does not want; clusters collect fewer
  // bystanders, with the same outcome (docs/gpu.md).
  let c0 = 0;
  for (let k = 1; k <= pages.length; k++) {
    if (k < pages.length && pages[k]! - pages[k - 1]! <= MIGRATE_CLUSTER_GAP) continue;
    migrateCluster(uvm, block, vma, pages, c0, k, frames, cursor, faulted, plan, cause, copied, result);
    c0 = k;
  }
  // Pages reserved and never handed to a migration go back.
  for (let fi = Math.max(0, cursor.next); fi < frames.length; fi++) if (frames[fi]! >= 0) uvm.pmm.free(frames[fi]!);
  const now = uvm.gpu.queue.now();
  result.doneAt = Math.max(now, copyRuns(uvm, block, copied, 'htod', cause === 'api' ? 'explicit' : cause === 'access-counter' ? 'access-counter' : 'fault', Math.max(now, uvm.evictionDoneAt)));
  return result;
}

/** Pages further apart than this start a new migrate_vma. */
const MIGRATE_CLUSTER_GAP = 8;

/** Unmap from the GPU the pages among pages[from..to) it maps, a run at a time. */
function unmapMapped(uvm: UvmDriver, block: UvmVaBlock, pages: number[], from: number, to: number): void {
  const pt = block.vaSpace.gpuVaSpace.pt;
  const base = block.start / 4096;
  let runStart = -1;
  let runEnd = -1;
  for (let i = from; i < to; i++) {
    const p = pages[i]!;
    pt.walk(base + p, scratchLeaf);
    if (!(scratchLeaf.flags & PTE_VALID)) continue;
    if (p === runEnd) {
      runEnd++;
      continue;
    }
    if (runStart >= 0) gpuUnmapBlock(uvm, block, runStart, runEnd, 'migrate to VRAM');
    runStart = p;
    runEnd = p + 1;
  }
  if (runStart >= 0) gpuUnmapBlock(uvm, block, runStart, runEnd, 'migrate to VRAM');
}

const scratchLeaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };

function migrateCluster(
  uvm: UvmDriver, block: UvmVaBlock, vma: Vma, pages: number[], from: number, to: number, frames: number[], cursor: { next: number },
  faulted: Uint8Array, plan: PendingMaps, cause: MakeResidentCause, copied: number[], result: ResidencyResult,
): void {
  const phys = uvm.machine.phys;
  const a = pages[from]!;
  const b = pages[to - 1]! + 1;
  const args = blockMigrateVma(vma, block.pageAddr(a), block.pageAddr(b), MIGRATE_VMA_SELECT_SYSTEM, uvm.owner);
  const used = uvm.scratchUsed;
  used.fill(0, 0, b - a);
  const want = uvm.scratchWant;
  want.fill(0, 0, b - a);
  for (let i = from; i < to; i++) want[pages[i]! - a] = 1;
  // The pages leave system memory: their remote GPU mappings go first, TLBs included.
  unmapMapped(uvm, block, pages, from, to);
  try {
    migrateVmaSetup(args);
  } catch (e) {
    releaseMigrateVma(args);
    if (!(e instanceof KernelError)) throw e;
    for (let i = from; i < to; i++) if (faulted[pages[i]!]) result.fallback.push(pages[i]!);
    return;
  }
  const writable = (vma.flags & VM_WRITE) !== 0;
  const inOrder = cursor.next >= 0;
  let at = from;
  for (let k = 0; k < b - a; k++) {
    if (!want[k]) continue;
    const i = at++;
    const s = args.src[k]!;
    // A faulted page migrate_vma did not collect (device-exclusive, locked, pinned) is served
    // where it is, mapped remotely: left alone, its warp would fault on it forever.
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) {
      if (faulted[a + k]) result.fallback.push(a + k);
      continue;
    }
    const frame = inOrder ? (cursor.next < frames.length ? frames[cursor.next++]! : -1) : frames[i]!;
    if (frame < 0) {
      if (faulted[a + k]) result.fallback.push(a + k);
      continue;
    }
    if (!inOrder) frames[i] = -1; // handed out
    const spage = migratePfnToPage(s);
    phys.deviceFrameInit(frame);
    phys.trylockPage(frame);
    if (spage >= 0) phys.copyPage(frame, spage);
    else phys.clearPage(frame);
    const write = migratePfnHas(s, MIGRATE_PFN_WRITE) || (spage < 0 && writable);
    args.dst[k] = migratePfn(frame) + (write ? MIGRATE_PFN_WRITE : 0);
    used[k] = spage >= 0 ? 2 : 1;
  }
  migrateVmaPages(args);
  const now = uvm.gpu.queue.now();
  // Runs of pages migrated for the same cause, each one thrashing event (no closure: this is per page).
  const thrashing = uvm.thrashing;
  let runStart = -1;
  let runCause: MakeResidentCause = cause;
  for (let k = 0; k < b - a; k++) {
    const p = a + k;
    if (!used[k] || !migratePfnHas(args.src[k]!, MIGRATE_PFN_MIGRATE)) {
      if (runStart >= 0) thrashing.onMigration(block, runStart, p - runStart, UVM_ID_GPU, runCause, now);
      runStart = -1;
      continue;
    }
    const frame = migratePfnToPage(args.dst[k]!);
    const write = migratePfnHas(args.dst[k]!, MIGRATE_PFN_WRITE);
    block.setVram(p, frame);
    block.cpuResident[p] = 0;
    uvm.pmm.unpinAllocated(frame, block.id, p, now);
    plan.add(p, frame, write ? PROT_READ_WRITE_ATOMIC : PROT_READ, false);
    if (used[k] === 2) copied.push(p);
    else uvm.stats.pagesPopulated++;
    uvm.stats.pagesMigratedToDevice++;
    const c: MakeResidentCause = faulted[p] ? cause : 'prefetch';
    if (!faulted[p]) uvm.stats.pagesPrefetched++;
    // compared on every page, so that the compiled loop has seen it (a cluster of one page never gets here otherwise)
    const changed = c !== runCause;
    if (runStart >= 0 && changed) {
      thrashing.onMigration(block, runStart, p - runStart, UVM_ID_GPU, runCause, now);
      runStart = -1;
    }
    if (runStart < 0) {
      runStart = p;
      runCause = c;
    }
  }
  if (runStart >= 0) thrashing.onMigration(block, runStart, b - runStart, UVM_ID_GPU, runCause, now);
  migrateVmaFinalize(args);
  releaseMigrateVma(args);
}

/**
 * Migrate this GPU's pages among `pages` (sorted) of the block back to system memory through
 * migrate_vma with MIGRATE_VMA_SELECT_DEVICE_PRIVATE: the GPU mappings go first. `faultPage`
 * is the device page a CPU fault holds locked (migrate_to_ram), or -1. Returns the pages moved
 * and sets uvm.lastCopyDoneAt.
 */
export function migrateToCpu(uvm: UvmDriver, block: UvmVaBlock, vma: Vma, pages: number[], faultPage: number, cause: MakeResidentCause): number {
  if (pages.length === 0) return 0;
  const machine = uvm.machine;
  const phys = machine.phys;
  const a = pages[0]!;
  const b = pages[pages.length - 1]! + 1;
  gpuUnmapRuns(uvm, block, pages, 'migrate to system memory');
  const args = blockMigrateVma(vma, block.pageAddr(a), block.pageAddr(b), MIGRATE_VMA_SELECT_DEVICE_PRIVATE, uvm.owner, faultPage);
  try {
    migrateVmaSetup(args);
  } catch (e) {
    releaseMigrateVma(args);
    throw e;
  }
  const want = uvm.scratchWant;
  want.fill(0, 0, b - a);
  for (const p of pages) want[p - a] = 1;
  for (let k = 0; k < b - a; k++) {
    const s = args.src[k]!;
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
    const spage = migratePfnToPage(s);
    // The faulting page always moves; the others only if asked for.
    if (!want[k] && spage !== faultPage) continue;
    if (spage < 0 || !uvm.gpu.vram.contains(spage)) continue;
    const dpage = phys.tryAllocPages(0);
    if (dpage < 0) continue;
    phys.trylockPage(dpage);
    phys.copyPage(dpage, spage);
    args.dst[k] = migratePfn(dpage) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
  }
  migrateVmaPages(args);
  const moved: number[] = [];
  for (let k = 0; k < b - a; k++) {
    if (migratePfnHas(args.src[k]!, MIGRATE_PFN_MIGRATE) && migratePfnToPage(args.dst[k]!) >= 0) moved.push(a + k);
  }
  migrateVmaFinalize(args);
  releaseMigrateVma(args);
  for (const p of moved) block.cpuResident[p] = 1;
  uvm.stats.pagesMigratedToSystem += moved.length;
  const now = uvm.gpu.queue.now();
  if (moved.length > 0) uvm.thrashing.onMigration(block, moved[0]!, moved[moved.length - 1]! - moved[0]! + 1, UVM_ID_CPU, cause, now);
  uvm.lastCopyDoneAt = copyRuns(uvm, block, moved, 'dtoh', cause === 'cpu-fault' ? 'cpu-fault' : cause === 'api' ? 'explicit' : 'fault', now);
  return moved.length;
}

/**
 * dev_pagemap_ops.migrate_to_ram (uvm_hmm_devmem_fault): the CPU touched one of this GPU's
 * pages. Migrate it, and the pages the prefetcher picks toward the CPU, back to system memory.
 */
export function devmemFault(uvm: UvmDriver, vmf: VmFault): number {
  const pmm = uvm.pmm;
  const f = vmf.page - pmm.firstPfn;
  if (f < 0 || f >= pmm.frames || pmm.state[f] !== FRAME_ALLOCATED) return VM_FAULT_SIGBUS;
  const block = uvm.blocks[pmm.owner[f]!]!;
  const page = pmm.page[f]!;
  uvm.stats.cpuFaults++;
  const vs = block.vaSpace;
  const first = block.pageIndex(vs.policyStart(vmf.address, Math.max(block.start, vmf.vma.start)));
  const outer = block.pageIndex(vs.policyEnd(vmf.address, Math.min(block.end, vmf.vma.end)) - 1) + 1;
  const pages = uvm.prefetchForCpuFault(block, page, first, outer);
  const before = uvm.machine.phys.freeRamFrames;
  try {
    const moved = migrateToCpu(uvm, block, vmf.vma, pages, vmf.page, 'cpu-fault');
    if (moved === 0 && before === 0) return VM_FAULT_OOM;
  } catch (e) {
    if (e instanceof KernelError) return VM_FAULT_SIGBUS;
    throw e;
  }
  return 0;
}

/** Intrusiveness ranks of fault access types (UVM_FAULT_ACCESS_TYPE_*: prefetch < read < write < atomic). */
export const RANK_PREFETCH = 0;
export const RANK_READ = 1;
export const RANK_WRITE = 2;
export const RANK_ATOMIC = 3;

export { PAGES_PER_UVM_VA_BLOCK };
