// amdkfd's migration between system memory and VRAM (drivers/gpu/drm/amd/amdkfd/kfd_migrate.c):
// a range's window to VRAM on its BO and back through migrate_vma, the SDMA copies, and the
// dev_pagemap_ops of kfd's VRAM pages (page_free, migrate_to_ram). kfd_svm.ts decides when.

import { KernelError } from '../../../mm/errno.js';
import { VM_FAULT_SIGBUS, type VmFault } from '../../../mm/fault.js';
import type { Vma } from '../../../mm/vma.js';
import { copyPages, migrateVmaToRam, migrateVmaToVram } from '../devmem.js';
import type { GpuMigrateCause } from '../events.js';
import type { Gpu } from '../gpu.js';
import type { KfdOwner, KfdStats } from './kfd_svm.js';
import type { SvmBo, SvmVram } from './svm_bo.js';
import type { SvmRange } from './svm_range.js';

/** AMDGPU_GTT_MAX_TRANSFER_SIZE: one SDMA copy moves at most 512 pages. */
export const AMDGPU_GTT_MAX_TRANSFER_SIZE = 512;

/** What each VRAM frame backs, and the moves between system memory and VRAM. */
export class KfdMigrate {
  /** The range and page index each VRAM frame backs (svm_bo and the page's zone_device_data). */
  private readonly frameRange: (SvmRange | null)[];
  private readonly framePage: Int32Array;

  /** `makeRoom(n, keep)` evicts BOs (not `keep`) until n frames are free, as TTM does for a new BO. */
  constructor(
    private readonly gpu: Gpu,
    private readonly owner: KfdOwner,
    private readonly vram: SvmVram,
    private readonly stats: KfdStats,
    private readonly makeRoom: (n: number, keep: SvmBo | null) => void,
  ) {
    this.frameRange = new Array<SvmRange | null>(vram.frames).fill(null);
    this.framePage = new Int32Array(vram.frames);
  }

  /**
   * svm_migrate_to_vram over [start, end) of the range (each VMA in it): the range's BO is
   * created on its first migration (svm_range_vram_node_new, the whole range's size, evicting
   * other BOs if VRAM is short); pages move with migrate_vma (untouched pages are populated, not
   * copied), the copies go through SDMA in runs of at most 512 pages. Returns when the copies
   * complete, or -1 if no VRAM could be had (the caller falls back to system memory).
   */
  toVram(r: SvmRange, start: number, end: number, cause: GpuMigrateCause): number {
    const svms = r.svms;
    const now = this.gpu.queue.now();
    if (!r.bo) {
      if (r.npages > this.vram.frames) return -1;
      this.makeRoom(r.npages, null);
      const bo = this.vram.create(r.npages, now);
      if (!bo) return -1; // -ENOSPC: amdgpu_amdkfd_reserve_mem_limit / TTM could not place it
      bo.rangeRefs++;
      r.bo = bo;
    }
    const bo = r.bo;
    let done = now;
    let moved = 0;
    for (let a = Math.max(start, r.start); a < Math.min(end, r.end); ) {
      const vma = svms.mm.vmas.findVma(a);
      if (!vma || vma.start >= end) break;
      const s = Math.max(a, vma.start);
      const e = Math.min(end, r.end, vma.end);
      a = e;
      if (!vma.isAnonymous() || vma.isHugetlb()) continue; // migrate_vma moves anonymous memory only
      const base = r.pageIndex(s);
      const res = migrateVmaToVram(this.gpu, vma, s, e, this.owner, (k) => r.vramPfn[base + k]! < 0, () => this.vram.allocPage(bo));
      const copied: number[] = [];
      for (let i = 0; i < res.pages.length; i++) {
        const p = base + res.pages[i]!;
        const pfn = res.frames[i]!;
        const f = pfn - this.vram.firstPfn;
        r.vramPfn[p] = pfn;
        r.vramPages++;
        this.frameRange[f] = r;
        this.framePage[f] = p;
        if (res.copied[i]) copied.push(res.pages[i]!);
      }
      moved += res.pages.length;
      done = Math.max(done, copyPages(this.gpu, svms.asid, s, copied, 'htod', cause, AMDGPU_GTT_MAX_TRANSFER_SIZE, now));
    }
    if (moved > 0) {
      r.actualLoc = 'gpu';
      this.stats.migrationsToDevice++;
      this.stats.pagesMigratedToDevice += moved;
    }
    return done;
  }

  /**
   * svm_migrate_vram_to_ram over [start, end) of the range: its VRAM pages come back through
   * migrate_vma (MIGRATE_VMA_SELECT_DEVICE_PRIVATE), in `vma` if given (a CPU fault, maybe a
   * forked child's) or in each VMA of the process. With no VRAM page left, the range lets go
   * of its BO (svm_range_vram_node_free). Returns when the copies complete.
   */
  toRam(r: SvmRange, start: number, end: number, cause: GpuMigrateCause, faultPage = -1, vmaOf: Vma | null = null): number {
    const now = this.gpu.queue.now();
    let done = now;
    let moved = 0;
    const mm = vmaOf?.mm ?? r.svms.mm;
    for (let a = Math.max(start, r.start); a < Math.min(end, r.end); ) {
      const vma = vmaOf ?? mm.vmas.findVma(a);
      if (!vma || vma.start >= end || vma.end <= a) break;
      const s = Math.max(a, vma.start);
      const e = Math.min(end, r.end, vma.end);
      a = e;
      const sources: number[] = [];
      const pages = migrateVmaToRam(this.gpu, vma, s, e, this.owner, faultPage, () => true, null, sources);
      moved += pages.length;
      // vram_pages counts what the migration moved; a page another process still maps (a
      // forked child's COW copy) stays the range's until its page_free.
      const base = r.pageIndex(s);
      const mapcount = this.gpu.machine.phys.frames.mapcount;
      for (let i = 0; i < pages.length; i++) {
        const p = base + pages[i]!;
        if (r.vramPfn[p] === sources[i] && mapcount[sources[i]!] === 0) {
          r.vramPfn[p] = -1;
          r.vramPages--;
        }
      }
      done = Math.max(done, copyPages(this.gpu, r.svms.asid, s, pages, 'dtoh', cause, AMDGPU_GTT_MAX_TRANSFER_SIZE, now));
      if (vmaOf) break;
    }
    if (moved > 0) {
      this.stats.migrationsToSystem++;
      this.stats.pagesMigratedToSystem += moved;
    }
    this.maybeReleaseBo(r);
    return done;
  }

  /** svm_range_vram_node_free once no VRAM page is left: the range lets go of its BO. */
  private maybeReleaseBo(r: SvmRange): void {
    if (r.vramPages > 0) return;
    r.actualLoc = 'sysmem';
    if (r.bo) {
      const bo = r.bo;
      r.bo = null;
      this.vram.unrefRange(bo);
    }
  }

  /** svm_migrate_page_free: the page's frame goes back to its BO. */
  pageFree(pfn: number): void {
    const f = pfn - this.vram.firstPfn;
    const r = this.frameRange[f];
    if (r) {
      const p = this.framePage[f]!;
      if (r.vramPfn[p] === pfn) {
        r.vramPfn[p] = -1;
        r.vramPages--;
      }
      this.frameRange[f] = null;
    }
    this.vram.freePage(pfn);
  }

  /**
   * svm_migrate_to_ram: the CPU touched a VRAM page. The granularity window around it (clipped
   * to its range and the faulting VMA) comes back, in the faulting process's VMA (a forked
   * child's COW mapping included). A page whose range is gone cannot be placed: SIGBUS.
   */
  migrateToRam(vmf: VmFault): number {
    const f = vmf.page - this.vram.firstPfn;
    const r = f >= 0 && f < this.vram.frames ? this.frameRange[f] : null;
    if (!r || r.removed) return VM_FAULT_SIGBUS;
    this.stats.cpuFaults++;
    const [ws, we] = r.window(vmf.address);
    const s = Math.max(ws, vmf.vma.start);
    const e = Math.min(we, vmf.vma.end);
    try {
      this.toRam(r, s, e, 'cpu-fault', vmf.page, vmf.vma);
    } catch (err) {
      if (err instanceof KernelError) return VM_FAULT_SIGBUS;
      throw err;
    }
    return 0;
  }
}
