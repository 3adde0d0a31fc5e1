// Device-private memory for a simulated device: a dev_pagemap, a free list of its frames,
// and migration both ways through migrate_vma, with migrate_to_ram for CPU faults.

import { PAGE_SIZE } from '../mm/constants.js';
import { fail } from '../mm/errno.js';
import type { VmFault } from '../mm/fault.js';
import type { Machine } from '../mm/machine.js';
import { DevPagemap } from '../mm/memremap.js';
import type { Mm } from '../mm/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas, migratePfnToPage,
  migrateDeviceFinalize, migrateDevicePages, migrateDeviceRange, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma,
} from '../mm/migrate.js';
import { VM_FAULT_OOM } from '../mm/fault.js';

export class DeviceMemory {
  readonly pgmap: DevPagemap;
  private readonly free: number[] = [];
  /** Called when a page of this device is about to leave it (the device drops its entry). */
  onEvict: ((mm: Mm, addr: number) => void) | null = null;
  /** page_free calls, and migrate_to_ram calls that moved a page. */
  pagesFreed = 0;
  faultsServed = 0;
  /** Fault injection: the next n destination allocations fail (the page is not migrated). */
  failNextAllocs = 0;

  constructor(readonly machine: Machine, readonly owner: unknown, frames: number) {
    if (!Number.isSafeInteger(frames) || frames <= 0) fail('EINVAL', 'device memory needs at least one frame');
    this.pgmap = new DevPagemap('private', owner, {
      pageFree: (pfn) => {
        this.pagesFreed++;
        this.free.push(pfn);
      },
      migrateToRam: (vmf) => this.migrateToRam(vmf),
    });
    const first = machine.phys.addPagemap(this.pgmap, frames);
    for (let i = frames - 1; i >= 0; i--) this.free.push(first + i);
  }

  get freePages(): number {
    return this.free.length;
  }
  get usedPages(): number {
    return this.pgmap.nframes - this.free.length;
  }

  /**
   * Migrate [start, end) of mm (one VMA) into device memory; returns the pages moved.
   * `map` is called for each page that moved, between migrate_vma_pages and finalize (the
   * driver's finalize_and_map: its device page table now points at the device page).
   */
  migrateToDevice(mm: Mm, start: number, end: number, map?: (addr: number, pfn: number, write: boolean) => void): number {
    const vma = mm.findVma(start);
    if (!vma || vma.start > start || vma.end < end) fail('EINVAL', 'range is not within one VMA');
    const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_SYSTEM, this.owner);
    migrateVmaSetup(args);
    const phys = this.machine.phys;
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      if (this.failNextAllocs > 0) {
        this.failNextAllocs--;
        continue;
      }
      const d = this.free.pop();
      if (d === undefined) break;
      phys.deviceFrameInit(d);
      phys.trylockPage(d);
      const s = migratePfnToPage(args.src[i]!);
      if (s >= 0) phys.copyPage(d, s); // the copy engine
      else phys.clearPage(d);
      args.dst[i] = migratePfn(d);
    }
    migrateVmaPages(args);
    let moved = 0;
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      moved++;
      map?.(start + i * PAGE_SIZE, migratePfnToPage(args.dst[i]!), migratePfnHas(args.src[i]!, MIGRATE_PFN_WRITE) || migratePfnToPage(args.src[i]!) < 0);
    }
    migrateVmaFinalize(args);
    return moved;
  }

  /** Migrate this device's pages in [start, end) of mm back to system memory (MIGRATE_TO_SYS); returns the pages moved. */
  migrateToSystem(mm: Mm, start: number, end: number): number {
    const vma = mm.findVma(start);
    if (!vma || vma.start > start || vma.end < end) fail('EINVAL', 'range is not within one VMA');
    const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, this.owner);
    migrateVmaSetup(args);
    let moved = 0;
    for (let i = 0; i < args.npages; i++) {
      const s = migratePfnToPage(args.src[i]!);
      if (s < 0 || !migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      const page = this.copyToSystemPage(s);
      if (page < 0) break;
      args.dst[i] = migratePfn(page);
      this.onEvict?.(mm, start + i * PAGE_SIZE);
      moved++;
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return moved;
  }

  /**
   * Evict every page of this device back to system memory, whoever maps it
   * (migrate_device_range; the test driver's RELEASE). Returns the pages moved.
   */
  evictAll(): number {
    const n = this.pgmap.nframes;
    const src = new Float64Array(n);
    const dst = new Float64Array(n);
    migrateDeviceRange(this.machine, src, this.pgmap.firstPfn, n);
    let moved = 0;
    for (let i = 0; i < n; i++) {
      const s = migratePfnToPage(src[i]!);
      if (s < 0) continue;
      const page = this.copyToSystemPage(s);
      if (page < 0) break;
      dst[i] = migratePfn(page);
      moved++;
    }
    migrateDevicePages(this.machine, src, dst, n);
    migrateDeviceFinalize(this.machine, src, dst, n);
    return moved;
  }

  /** dev_pagemap_ops.migrate_to_ram: bring the faulting page back to system memory. */
  migrateToRam(vmf: VmFault): number {
    this.onEvict?.(vmf.mm, vmf.address);
    const args = newMigrateVma(vmf.vma, vmf.address, vmf.address + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, this.owner, vmf.page);
    migrateVmaSetup(args);
    if (migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)) {
      const page = this.copyToSystemPage(migratePfnToPage(args.src[0]!));
      if (page < 0) {
        migrateVmaPages(args);
        migrateVmaFinalize(args);
        return VM_FAULT_OOM;
      }
      args.dst[0] = migratePfn(page);
      this.faultsServed++;
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return 0;
  }

  /** A new, locked system page holding device page `spage`'s data (the copy engine), or -1 when memory is out. */
  private copyToSystemPage(spage: number): number {
    const phys = this.machine.phys;
    const page = phys.tryAllocPages(0);
    if (page < 0) return -1;
    phys.trylockPage(page);
    phys.copyPage(page, spage);
    return page;
  }
}
