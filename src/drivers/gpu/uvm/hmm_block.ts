// A UVM VA block's HMM basics (uvm_hmm.c): finding or creating the block of a 2 MiB window
// with its mmu_interval_notifier (hmm_va_block_find_create), the invalidate callback
// (hmm_invalidate), unmapping its pages from the GPU, one copy per contiguous run, and the
// hmm_range_fault snapshot with its retry. Residency (hmm.ts) and eviction (hmm_eviction.ts)
// are built on these.

import { KernelError, WouldBlock } from '../../../mm/errno.js';
import {
  MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq, type MmuNotifierRange,
} from '../../../mm/notifier.js';
import { VM_SPECIAL, type Vma } from '../../../mm/vma.js';
import { HmmRange, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE } from '../../../hmm/range.js';
import { hmmRangeFault } from '../../../hmm/hmm.js';
import type { GpuMigrateCause } from '../events.js';
import { UVM_ID_CPU } from './policy_types.js';
import { UvmVaBlock, UVM_VA_BLOCK_SIZE, type UvmVaSpace } from './va_space.js';
import type { UvmDriver } from './uvm.js';

/** uvm_hmm_must_use_sysmem: migrate_vma cannot move pages of this VMA. */
export function mustUseSysmem(vma: Vma): boolean {
  return !vma.isAnonymous() || (vma.flags & VM_SPECIAL) !== 0 || vma.isHugetlb();
}

/** hmm_va_block_find_create: the block of the 2 MiB window around addr, with its notifier. */
export function blockFindCreate(uvm: UvmDriver, vs: UvmVaSpace, addr: number): UvmVaBlock {
  const key = Math.floor(addr / UVM_VA_BLOCK_SIZE);
  let block = vs.blocks.get(key);
  if (block) return block;
  block = new UvmVaBlock(uvm.blocks.length, vs, key * UVM_VA_BLOCK_SIZE, (b) => {
    const sub = new MmuIntervalNotifier({ invalidate: (_s, range, seq) => hmmInvalidate(uvm, b, range, seq) });
    mmuIntervalNotifierInsert(sub, vs.mm, b.start, UVM_VA_BLOCK_SIZE);
    return sub;
  });
  uvm.blocks.push(block);
  vs.blocks.set(key, block);
  return block;
}

/** Unmap pages [first, outer) of a block from the GPU and invalidate its TLBs; returns the pages unmapped. */
export function gpuUnmapBlock(uvm: UvmDriver, block: UvmVaBlock, first: number, outer: number, reason: string): number {
  const vs = block.vaSpace.gpuVaSpace;
  const s = block.start / 4096 + first;
  const e = block.start / 4096 + outer;
  const n = uvm.gpu.mmu.unmap(vs, s, e, reason);
  if (n > 0) {
    uvm.gpu.mmu.tlbInvalidate(vs, s, e, uvm.gpu.queue.now());
    uvm.stats.tlbInvalidateNs += uvm.gpu.costs.tlbInvalidateNs;
  }
  block.stalePending(first, outer);
  return n;
}

/**
 * Unmap `pages` (sorted page indices) of a block from the GPU a contiguous run at a time, one
 * TLB invalidation per run: UVM unmaps by page mask (block_unmap_gpu over a region).
 */
export function gpuUnmapRuns(uvm: UvmDriver, block: UvmVaBlock, pages: readonly number[], reason: string): void {
  let i = 0;
  while (i < pages.length) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
    gpuUnmapBlock(uvm, block, pages[i]!, pages[j - 1]! + 1, reason);
    i = j;
  }
}

/**
 * hmm_invalidate: the CPU page table of the block's window is about to change. Invalidations
 * UVM started itself (MIGRATE or EXCLUSIVE with its owner, or an eviction of this block) are
 * ignored: UVM updates its GPU mappings itself around its own migrations.
 */
export function hmmInvalidate(uvm: UvmDriver, block: UvmVaBlock, range: MmuNotifierRange, curSeq: number): boolean {
  if (range.event === 'SOFT_DIRTY' || range.event === 'RELEASE') return true;
  if (!(range.flags & 1)) return false; // not blockable: the OOM reaper; the driver would sleep
  if (uvm.ignoreInvalidate === block || ((range.event === 'MIGRATE' || range.event === 'EXCLUSIVE') && range.owner === uvm.owner)) return true;
  mmuIntervalSetSeq(block.notifier, curSeq);
  const start = Math.max(range.start, block.start);
  const end = Math.min(range.end, block.end);
  if (start >= end) return true;
  const first = Math.floor((start - block.start) / 4096);
  const outer = Math.ceil((end - block.start) / 4096);
  gpuUnmapBlock(uvm, block, first, outer, `invalidate ${range.event}`);
  if (range.event === 'UNMAP' || range.event === 'CLEAR') {
    // uvm_va_block_munmap_region: forget the CPU residency UVM knew of.
    block.cpuResident.fill(0, first, outer);
    if (range.event === 'UNMAP') uvm.thrashing.reset(block, first, outer - first);
  } else if (range.event === 'EXCLUSIVE' && range.owner === null) {
    // The CPU took back a page it had made device-exclusive: a revocation of the GPU's atomics.
    for (let p = first; p < outer; p++) uvm.thrashing.onRevocation(block, p, UVM_ID_CPU, uvm.gpu.queue.now());
  }
  return true;
}

/** Contiguous runs of `pages` (sorted page indices) with data, each one copy. */
export function copyRuns(uvm: UvmDriver, block: UvmVaBlock, pages: number[], dir: 'htod' | 'dtoh', cause: GpuMigrateCause, earliest: number): number {
  let done = earliest;
  let i = 0;
  const now = uvm.gpu.queue.now();
  while (i < pages.length) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
    const n = j - i;
    const end = uvm.gpu.copy(n * 4096, dir, earliest);
    if (end > done) done = end;
    const ev = uvm.gpu.events;
    if (ev.on.migrate) {
      ev.emit({ type: 'migrate', gpu: uvm.gpu.id, asid: block.vaSpace.asid, addr: block.pageAddr(pages[i]!), npages: n, toDevice: dir === 'htod', cause, bytes: n * 4096, startNs: now, endNs: end });
    }
    i = j;
  }
  return done;
}

/**
 * hmm_range_fault over pages [a, b) of the block: with `request` (per page HMM_PFN_REQ_*
 * bits, or null for a snapshot that faults nothing), retrying on EBUSY and on a sequence
 * change as hmm_make_resident_cpu does. Returns the range, or null when it could not
 * complete now (the CPU would sleep, or the range keeps changing) or failed.
 */
export function snapshot(uvm: UvmDriver, block: UvmVaBlock, a: number, b: number, request: Uint8Array | null): HmmRange | null {
  const n = b - a;
  const range = new HmmRange({
    notifier: block.notifier, start: block.pageAddr(a), end: block.pageAddr(b), pfnFlagsMask: request ? HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE : 0,
    devPrivateOwner: uvm.owner,
  });
  for (let tries = 0; tries < 8; tries++) {
    if (request) range.hmmFlags.set(request.subarray(0, n));
    else range.hmmFlags.fill(0);
    try {
      range.notifierSeq = mmuIntervalReadBegin(block.notifier);
      hmmRangeFault(range);
    } catch (e) {
      if (e instanceof WouldBlock) return null;
      if (e instanceof KernelError && e.errno === 'EBUSY') continue;
      if (e instanceof KernelError) {
        uvm.lastHmmError = e.errno;
        return null;
      }
      throw e;
    }
    if (!mmuIntervalReadRetry(block.notifier, range.notifierSeq)) return range;
  }
  return null;
}
