// The mainline HMM calls the kfd and nouveau drivers make the same way, each around its own
// bookkeeping: hmm_range_fault with the interval notifier's retry loop
// (amdgpu_hmm_range_get_pages, nouveau_range_fault), migrate_vma_setup/pages/finalize into
// VRAM with a frame allocator (svm_migrate_vma_to_vram, nouveau_dmem_migrate_chunk) and back
// (svm_migrate_vma_to_ram, nouveau_dmem_migrate_to_ram), and the copy-engine time of the
// pages moved. UVM keeps its own (uvm/hmm_eviction.ts): it allocates from its PMM with eviction.

import { KernelError, WouldBlock } from '../../mm/errno.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas,
  migratePfnToPage, migrateDeviceFinalize, migrateDevicePages, migrateDeviceRange, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma,
} from '../../mm/migrate.js';
import { mmuIntervalReadBegin, mmuIntervalReadRetry, type MmuIntervalNotifier } from '../../mm/notifier.js';
import { VM_WRITE, type Vma } from '../../mm/vma.js';
import { hmmRangeFault } from '../../hmm/hmm.js';
import { HmmRange } from '../../hmm/range.js';
import type { GpuMigrateCause } from './events.js';
import type { Gpu } from './gpu.js';
import type { GpuVaSpace } from './mmu.js';
import { PTE_VALID, SIZE_4K, type GpuPtLeaf } from './page_table.js';

/** What hmmRangeFaultRetry got: the range, or why not (an errno, or 'again' when the CPU side would sleep or keeps changing). */
export interface HmmFaultResult {
  range: HmmRange | null;
  errno: string | null;
}

/**
 * hmm_range_fault over [start, end) under `notifier`, with the sequence retry every HMM user
 * runs (mmu_interval_read_begin ... read_retry): `defaultFlags` for every page, or per-page
 * `request` flags. Gives up after `tries` passes (HMM_RANGE_DEFAULT_TIMEOUT stands behind
 * this in the kernel).
 */
export function hmmRangeFaultRetry(
  notifier: MmuIntervalNotifier, owner: unknown, start: number, end: number, defaultFlags: number, request: Uint8Array | null, tries = 8,
): HmmFaultResult {
  const range = new HmmRange({ notifier, start, end, defaultFlags, pfnFlagsMask: request ? 0xff : 0, devPrivateOwner: owner });
  for (let t = 0; t < tries; t++) {
    if (request) range.hmmFlags.set(request.subarray(0, range.npages));
    else range.hmmFlags.fill(0);
    try {
      range.notifierSeq = mmuIntervalReadBegin(notifier);
      hmmRangeFault(range);
    } catch (e) {
      if (e instanceof WouldBlock) return { range: null, errno: 'again' };
      if (e instanceof KernelError && e.errno === 'EBUSY') continue;
      if (e instanceof KernelError) return { range: null, errno: e.errno };
      throw e;
    }
    if (!mmuIntervalReadRetry(notifier, range.notifierSeq)) return { range, errno: null };
  }
  return { range: null, errno: 'again' };
}

/** One page a migration moved: its index in the migration window and its new frame. */
export interface MovedPages {
  /** Page indices (from the window's start) that moved, ascending. */
  pages: number[];
  /** The frame each moved page went to (parallel to pages). */
  frames: number[];
  /** Whether the page had data (copied) or was never touched (populated, not copied). */
  copied: boolean[];
  /** Whether the new entry is writable (MIGRATE_PFN_WRITE). */
  writable: boolean[];
  /** Pages a frame was wanted for and none was left. */
  short: number;
}

/**
 * migrate_vma with MIGRATE_VMA_SELECT_SYSTEM over [start, end) of vma: every system page (and
 * every page never touched, which is populated in VRAM) for which `want(i)` is true moves to
 * a frame from `alloc()` (-1: none left). `beforeMove` runs after setup, when the pages are
 * isolated and unmapped and before any data moves (drivers drop their own mappings there).
 */
export function migrateVmaToVram(
  gpu: Gpu, vma: Vma, start: number, end: number, owner: unknown, want: (i: number) => boolean, alloc: () => number,
  beforeMove: (() => void) | null = null,
): MovedPages {
  const phys = gpu.machine.phys;
  const out: MovedPages = { pages: [], frames: [], copied: [], writable: [], short: 0 };
  const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_SYSTEM, owner);
  try {
    migrateVmaSetup(args);
  } catch (e) {
    if (e instanceof KernelError) return out;
    throw e;
  }
  beforeMove?.();
  const n = args.src.length;
  const writable = (vma.flags & VM_WRITE) !== 0;
  const used = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const s = args.src[k]!;
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE) || !want(k)) continue;
    const frame = alloc();
    if (frame < 0) {
      out.short++;
      continue;
    }
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
  for (let k = 0; k < n; k++) {
    if (!used[k]) continue;
    const frame = migratePfnToPage(args.dst[k]!);
    if (!migratePfnHas(args.src[k]!, MIGRATE_PFN_MIGRATE)) continue; // the mm kept the old page; finalize frees the frame (page_free)
    out.pages.push(k);
    out.frames.push(frame);
    out.copied.push(used[k] === 2);
    out.writable.push(migratePfnHas(args.dst[k]!, MIGRATE_PFN_WRITE));
  }
  migrateVmaFinalize(args);
  return out;
}

/**
 * migrate_vma with MIGRATE_VMA_SELECT_DEVICE_PRIVATE over [start, end) of vma: this driver's
 * VRAM pages for which `want(i)` is true (and `faultPage`, the page a CPU fault holds, always)
 * move to fresh system pages. `beforeMove` runs after setup (drivers drop their mappings
 * there). Returns the indices moved; `sources` gets the device page each came from.
 */
export function migrateVmaToRam(
  gpu: Gpu, vma: Vma, start: number, end: number, owner: unknown, faultPage: number, want: (i: number) => boolean,
  beforeMove: (() => void) | null = null, sources: number[] | null = null,
): number[] {
  const phys = gpu.machine.phys;
  const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, owner, faultPage);
  migrateVmaSetup(args);
  beforeMove?.();
  const n = args.src.length;
  for (let k = 0; k < n; k++) {
    const s = args.src[k]!;
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
    const spage = migratePfnToPage(s);
    if (spage < 0 || !gpu.vram.contains(spage)) continue;
    if (!want(k) && spage !== faultPage) continue;
    const dpage = phys.tryAllocPages(0);
    if (dpage < 0) continue;
    phys.trylockPage(dpage);
    phys.copyPage(dpage, spage);
    args.dst[k] = migratePfn(dpage) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
  }
  migrateVmaPages(args);
  const moved: number[] = [];
  for (let k = 0; k < n; k++) {
    if (!migratePfnHas(args.src[k]!, MIGRATE_PFN_MIGRATE) || migratePfnToPage(args.dst[k]!) < 0) continue;
    moved.push(k);
    if (sources) sources.push(migratePfnToPage(args.src[k]!));
  }
  migrateVmaFinalize(args);
  return moved;
}

/**
 * Queue the copies of `pages` (ascending page indices from `base`, all copied) on the copy
 * engines: contiguous runs, each cut at `maxPages`, one transfer each. Emits a migrate event per
 * transfer. Returns when the last completes.
 */
export function copyPages(
  gpu: Gpu, asid: number, base: number, pages: readonly number[], dir: 'htod' | 'dtoh', cause: GpuMigrateCause, maxPages: number, earliest: number,
): number {
  const now = gpu.queue.now();
  let done = Math.max(now, earliest);
  let i = 0;
  while (i < pages.length) {
    let j = i + 1;
    while (j < pages.length && j - i < maxPages && pages[j] === pages[j - 1]! + 1) j++;
    const n = j - i;
    const end = gpu.copy(n * 4096, dir, earliest);
    if (end > done) done = end;
    if (gpu.events.on.migrate) {
      gpu.events.emit({ type: 'migrate', gpu: gpu.id, asid, addr: base + pages[i]! * 4096, npages: n, toDevice: dir === 'htod', cause, bytes: n * 4096, startNs: now, endNs: end });
    }
    i = j;
  }
  return done;
}

/**
 * migrate_device_range over [firstPfn, firstPfn + n): every in-use device page of it moves to a
 * fresh system page wherever it is mapped (a driver's teardown: nouveau_dmem_evict_chunk,
 * svm_migrate_fini). Returns the pages moved; `cause` names them in the migrate events.
 */
export function evictDeviceRange(gpu: Gpu, firstPfn: number, n: number, cause: GpuMigrateCause): number {
  const machine = gpu.machine;
  const phys = machine.phys;
  const src = new Float64Array(n);
  const dst = new Float64Array(n);
  migrateDeviceRange(machine, src, firstPfn, n);
  for (let i = 0; i < n; i++) {
    if (!migratePfnHas(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
    const dpage = phys.tryAllocPages(0);
    if (dpage < 0) break; // system memory is out: the rest stays in VRAM
    phys.trylockPage(dpage);
    phys.copyPage(dpage, migratePfnToPage(src[i]!));
    dst[i] = migratePfn(dpage);
  }
  migrateDevicePages(machine, src, dst, n);
  const moved: number[] = [];
  for (let i = 0; i < n; i++) if (migratePfnHas(src[i]!, MIGRATE_PFN_MIGRATE) && migratePfnToPage(dst[i]!) >= 0) moved.push(i);
  migrateDeviceFinalize(machine, src, dst, n);
  copyPages(gpu, 0, 0, moved, 'dtoh', cause, 1, gpu.queue.now());
  return moved.length;
}

const scratchLeaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };

/**
 * Write one GPU PTE (the drivers' PFNMAP / map_to_gpu). A PTE that pointed at another frame is
 * cleared and its TLB entries flushed first: a TLB may cache the old frame, and raising
 * permissions alone is the only change that needs no flush. Returns whether it flushed.
 */
export function gpuMapPage(gpu: Gpu, vs: GpuVaSpace, vpn: number, pfn: number, flags: number): boolean {
  vs.pt.walk(vpn, scratchLeaf);
  let flushed = false;
  if (scratchLeaf.flags & PTE_VALID && scratchLeaf.pfn !== pfn) {
    gpu.mmu.unmap(vs, vpn, vpn + 1, 'remap');
    gpu.mmu.tlbInvalidate(vs, vpn, vpn + 1, gpu.queue.now());
    flushed = true;
  }
  gpu.mmu.map(vs, vpn, pfn, SIZE_4K, flags);
  return flushed;
}
