// amdkfd's SVM ranges (kfd_svm.c): a process's svm_range_list (svms) holds disjoint ranges,
// each an interval of the address space with its own mmu_interval_notifier, its attributes
// (preferred and prefetch location, granularity, flags, whether the GPU may access it), where
// its pages are (actual_loc, and the VRAM page backing each page), the BO its VRAM comes
// from, and validate_timestamp, the last time the GPU mappings were rebuilt. Ranges are
// created by svm_range_set_attr (the SVM ioctl) or, with XNACK on, by the first GPU fault on an
// address no range holds (svm_range_create_unregistered_range).

import { MmuIntervalNotifier } from '../../../mm/notifier.js';
import type { Mm } from '../../../mm/mm.js';
import type { Process } from '../../../mm/process.js';
import type { GpuVaSpace } from '../mmu.js';
import type { SvmBo } from './svm_bo.js';

/**
 * svm_range_set_max_pages: ranges registered through the ioctl are split to at most 1/32 of
 * VRAM, between 2 MiB and 1 GiB, rounded down to a power of two (in pages).
 */
export function svmRangeMaxPages(vramBytes: number): number {
  let pages = Math.floor(vramBytes / 4096 / 32);
  pages = Math.min(Math.max(pages, 1 << 9), 1 << 18);
  return 2 ** Math.floor(Math.log2(pages));
}

/** KFD_IOCTL_SVM_LOCATION_*: undefined, system memory, or this GPU. */
export type SvmLocation = 'undefined' | 'sysmem' | 'gpu';

/** The attributes svm_range_set_attr sets (KFD_IOCTL_SVM_ATTR_*). */
export interface SvmAttrs {
  /** KFD_IOCTL_SVM_ATTR_PREFERRED_LOC */
  preferredLoc: SvmLocation;
  /** KFD_IOCTL_SVM_ATTR_PREFETCH_LOC: migrate the whole range there now. */
  prefetchLoc: SvmLocation;
  /** KFD_IOCTL_SVM_ATTR_ACCESS / NO_ACCESS: the GPU may map the range. */
  access: boolean;
  /** KFD_IOCTL_SVM_ATTR_GRANULARITY: log2 of the migration window in pages. */
  granularity: number;
  /** KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED: evict queues on invalidation even with XNACK on. */
  gpuAlwaysMapped: boolean;
}

export class SvmRange {
  /** [start, end) in bytes; the kernel keeps start and last in pages. */
  start: number;
  end: number;
  readonly notifier: MmuIntervalNotifier;
  attrs: SvmAttrs;
  /** actual_loc: 'gpu' once any page went to VRAM, back to 'sysmem' when none is left there. */
  actualLoc: 'sysmem' | 'gpu' = 'sysmem';
  /** The VRAM page backing each page, or -1. */
  vramPfn: Int32Array;
  vramPages = 0;
  bo: SvmBo | null = null;
  /** ktime of the last validate_and_map (-Infinity: never; a fresh range is always served). */
  validateTimestamp = -Infinity;
  /** mapped_to_gpu */
  mappedToGpu = false;
  /** Needs svm_range_restore_work (XNACK off: evicted while the queues were quiesced). */
  invalid = false;
  /** Removed from the list (unmapped by the CPU, or the process detached). */
  removed = false;

  constructor(readonly id: number, readonly svms: SvmRangeList, start: number, end: number, attrs: SvmAttrs, notifier: (r: SvmRange) => MmuIntervalNotifier) {
    this.start = start;
    this.end = end;
    this.attrs = { ...attrs };
    this.vramPfn = new Int32Array((end - start) / 4096).fill(-1);
    this.notifier = notifier(this);
  }

  get npages(): number {
    return (this.end - this.start) / 4096;
  }

  pageIndex(addr: number): number {
    return Math.floor((addr - this.start) / 4096);
  }

  /**
   * The migration window around addr: the granularity-aligned block, clipped to the range
   * (svm_range_restore_pages, svm_migrate_to_ram). [start, end) in bytes.
   */
  window(addr: number): [number, number] {
    const size = 4096 * 2 ** this.attrs.granularity;
    const s = Math.floor(addr / size) * size;
    return [Math.max(s, this.start), Math.min(s + size, this.end)];
  }
}

/** struct svm_range_list: one process's ranges, sorted and disjoint. */
export class SvmRangeList {
  readonly mm: Mm;
  readonly ranges: SvmRange[] = [];
  /** evicted_ranges: XNACK-off evictions waiting for the restore worker. */
  evictedRanges = 0;
  /** The queues are quiesced (kgd2kfd_quiesce_mm) until restore. */
  quiesced = false;
  /** A restore_work is scheduled. */
  restorePending = false;
  dead = false;

  constructor(readonly process: Process, readonly gpuVaSpace: GpuVaSpace) {
    this.mm = process.mm;
  }

  get asid(): number {
    return this.gpuVaSpace.asid;
  }

  private firstEndingAbove(addr: number): number {
    const rs = this.ranges;
    let lo = 0;
    let hi = rs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rs[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** svm_range_from_addr: the range holding addr, or null. */
  find(addr: number): SvmRange | null {
    const r = this.ranges[this.firstEndingAbove(addr)];
    return r && r.start <= addr ? r : null;
  }

  /** The ranges overlapping [start, end), in order. */
  overlapping(start: number, end: number): SvmRange[] {
    const out: SvmRange[] = [];
    for (let i = this.firstEndingAbove(start); i < this.ranges.length && this.ranges[i]!.start < end; i++) out.push(this.ranges[i]!);
    return out;
  }

  /** The end of the last range below addr, and the start of the first above it (neighbours for new ranges). */
  neighbours(addr: number): [number, number] {
    const i = this.firstEndingAbove(addr);
    const prev = i > 0 ? this.ranges[i - 1]!.end : 0;
    const next = i < this.ranges.length ? this.ranges[i]!.start : Infinity;
    return [prev, next];
  }

  insert(r: SvmRange): void {
    this.ranges.splice(this.firstEndingAbove(r.start), 0, r);
  }

  remove(r: SvmRange): void {
    const i = this.ranges.indexOf(r);
    if (i >= 0) this.ranges.splice(i, 1);
    r.removed = true;
  }
}
