// The one test-only device driver of the mm, migration and HMM tests: a dev_pagemap (private or
// coherent), a free list of its frames, migration both ways through migrate_vma, eviction
// through migrate_device_range, and a migrate_to_ram that migrates the faulting page back (as
// lib/test_hmm.c's dmirror_devmem_fault does). It keeps the books a test needs: how often each
// frame was handed out and freed, so "page_free exactly once per device page" is checkable.
// (The kernel's test driver, dmirror, is src/drivers/dmirror.)

import {
  type Machine, type Mm, type VmFault, DevPagemap, memremapPages, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migrateDeviceFinalize, migrateDevicePages, migrateDeviceRange, migratePfn,
  migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, PAGE_SIZE, VM_FAULT_OOM,
  VM_FAULT_SIGBUS, type MemoryType, type MigrateVma,
} from '../../../src/index.js';

export interface TestDeviceOptions {
  type?: MemoryType;
  frames?: number;
  owner?: object;
}

export class TestDevice {
  readonly pgmap: DevPagemap;
  readonly owner: object;
  private free: number[] = [];
  /** Times each frame was handed out (deviceFrameInit) and freed (page_free). */
  readonly handedOut = new Map<number, number>();
  readonly freedTimes = new Map<number, number>();
  /** page_free calls in all. */
  freed = 0;
  /** migrate_to_ram calls, and those that moved the page. */
  faults = 0;
  toRam = 0;
  /** Fault injection: the next n destination allocations fail (the page is not migrated). */
  failAllocs = 0;
  /** Fault injection: migrate_to_ram answers with this VM_FAULT_* code without migrating. */
  faultResult = 0;
  /** Fault injection: migrate_to_ram returns 0 without migrating (as when the page lock is contended). */
  stall = false;
  /** Set by the last migration: its MigrateVma after finalize. */
  last: MigrateVma | null = null;
  /** Called between migrate_vma_pages and finalize with the args (the driver's finalize_and_map). */
  onPages: ((args: MigrateVma) => void) | null = null;

  constructor(readonly machine: Machine, opts: TestDeviceOptions = {}) {
    this.owner = opts.owner ?? { device: 'test' };
    const type = opts.type ?? 'private';
    this.pgmap = new DevPagemap(type, this.owner, {
      pageFree: (pfn) => {
        this.freed++;
        this.freedTimes.set(pfn, (this.freedTimes.get(pfn) ?? 0) + 1);
        this.free.push(pfn);
      },
      migrateToRam: type === 'private' ? (vmf) => this.migrateToRam(vmf) : undefined,
    });
    const frames = opts.frames ?? 256;
    const first = memremapPages(machine, this.pgmap, frames);
    for (let i = frames - 1; i >= 0; i--) this.free.push(first + i);
  }

  get freePages(): number {
    return this.free.length;
  }
  get selectFlags(): number {
    return this.pgmap.type === 'private' ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
  }

  /** Hand out an idle frame, initialised (refcount 1) and locked, as a driver's alloc does; -1 when none. */
  allocPage(): number {
    if (this.failAllocs > 0) {
      this.failAllocs--;
      return -1;
    }
    const pfn = this.free.pop();
    if (pfn === undefined) return -1;
    this.machine.phys.deviceFrameInit(pfn);
    this.machine.phys.trylockPage(pfn);
    this.handedOut.set(pfn, (this.handedOut.get(pfn) ?? 0) + 1);
    return pfn;
  }

  /** Every frame was freed exactly as often as it was handed out (page_free once per use). */
  freedOncePerUse(): string[] {
    const bad: string[] = [];
    for (const [pfn, n] of this.handedOut) if ((this.freedTimes.get(pfn) ?? 0) !== n) bad.push(`frame ${pfn}: handed out ${n}, freed ${this.freedTimes.get(pfn) ?? 0}`);
    for (const [pfn, n] of this.freedTimes) if (!this.handedOut.has(pfn)) bad.push(`frame ${pfn}: freed ${n} times, never handed out`);
    return bad;
  }

  /** The device writes (or reads) its own memory. */
  write(pfn: number, off: number, bytes: Uint8Array): void {
    this.machine.phys.writePage(pfn, off, bytes, 0, bytes.length);
  }
  read(pfn: number, off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.machine.phys.readPage(pfn, off, out, 0, len);
    return out;
  }

  /**
   * Migrate [start, end) of mm (one VMA) into this device's memory (SELECT_SYSTEM): the
   * dmirror_migrate_to_device steps. Returns the pages that moved (empties populated included).
   */
  migrateToDevice(mm: Mm, start: number, end: number): number {
    const args = newMigrateVma(mm.findVma(start)!, start, end, MIGRATE_VMA_SELECT_SYSTEM, this.owner);
    migrateVmaSetup(args);
    const phys = this.machine.phys;
    for (let i = 0; i < args.npages; i++) {
      const s = args.src[i]!;
      if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
      const spage = migratePfnToPage(s);
      const d = this.allocPage();
      if (d < 0) continue;
      if (spage >= 0) phys.copyPage(d, spage);
      else phys.clearPage(d);
      args.dst[i] = migratePfn(d) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    }
    return this.finish(args);
  }

  /** Migrate the one page at addr into this device's memory; its device pfn, or -1 if it did not move. */
  migratePageToDevice(mm: Mm, addr: number): number {
    if (this.migrateToDevice(mm, addr, addr + PAGE_SIZE) !== 1) return -1;
    return migratePfnToPage(this.last!.dst[0]!);
  }

  /** Migrate this device's pages in [start, end) back to system memory (dmirror_migrate_to_system). */
  migrateToSystem(mm: Mm, start: number, end: number): number {
    const args = newMigrateVma(mm.findVma(start)!, start, end, this.selectFlags, this.owner);
    migrateVmaSetup(args);
    if (!this.toSystemPages(args)) {
      this.finish(args);
      return -1;
    }
    return this.finish(args);
  }

  private toSystemPages(args: MigrateVma): boolean {
    const phys = this.machine.phys;
    for (let i = 0; i < args.npages; i++) {
      const s = args.src[i]!;
      const spage = migratePfnToPage(s);
      if (spage < 0 || !migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
      const page = phys.tryAllocPages(0);
      if (page < 0) return false;
      phys.trylockPage(page);
      phys.copyPage(page, spage);
      args.dst[i] = migratePfn(page);
    }
    return true;
  }

  private finish(args: MigrateVma): number {
    migrateVmaPages(args);
    let moved = 0;
    for (let i = 0; i < args.npages; i++) if (migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE) && migratePfnToPage(args.dst[i]!) >= 0) moved++;
    this.onPages?.(args);
    migrateVmaFinalize(args);
    this.last = args;
    return moved;
  }

  /** dev_pagemap_ops.migrate_to_ram: bring the faulting page back (fault_page set, SELECT_DEVICE_PRIVATE, own owner). */
  migrateToRam(vmf: VmFault): number {
    this.faults++;
    if (this.faultResult) return this.faultResult;
    if (this.stall) return 0;
    const args = newMigrateVma(vmf.vma, vmf.address, vmf.address + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, this.owner, vmf.page);
    try {
      migrateVmaSetup(args);
    } catch {
      return VM_FAULT_SIGBUS;
    }
    if (!this.toSystemPages(args)) {
      this.finish(args);
      return VM_FAULT_OOM;
    }
    if (migratePfnToPage(args.dst[0]!) >= 0) this.toRam++;
    this.finish(args);
    return 0;
  }

  /** Evict every in-use page of this device to system memory, whoever maps it (migrate_device_range). */
  evictAll(): number {
    const n = this.pgmap.nframes;
    const src = new Float64Array(n);
    const dst = new Float64Array(n);
    migrateDeviceRange(this.machine, src, this.pgmap.firstPfn, n);
    const phys = this.machine.phys;
    let moved = 0;
    for (let i = 0; i < n; i++) {
      const s = migratePfnToPage(src[i]!);
      if (s < 0) continue;
      const page = phys.tryAllocPages(0);
      if (page < 0) break;
      phys.trylockPage(page);
      phys.copyPage(page, s);
      dst[i] = migratePfn(page);
      moved++;
    }
    migrateDevicePages(this.machine, src, dst, n);
    migrateDeviceFinalize(this.machine, src, dst, n);
    return moved;
  }
}
