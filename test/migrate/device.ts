// A minimal test-only device driver with device-private memory: a pagemap, a free list, and
// migration both ways through migrate_vma (the kernel's test driver, dmirror, is richer).
import {
  DevPagemap, MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, type Machine, type Mm,
  migratePfn, migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, PAGE_SIZE,
  type VmFault,
} from '../../src/index.js';

export class TestDevice {
  readonly pgmap: DevPagemap;
  private readonly free: number[] = [];
  freed = 0;
  toRam = 0;
  /** Make the next n destination allocations fail (dst left 0). */
  failAllocs = 0;

  constructor(readonly machine: Machine, frames = 1024) {
    this.pgmap = new DevPagemap('private', this, {
      pageFree: (pfn) => { this.freed++; this.free.push(pfn); },
      migrateToRam: (vmf) => this.migrateToRam(vmf),
    });
    const first = machine.phys.addPagemap(this.pgmap, frames);
    for (let i = frames - 1; i >= 0; i--) this.free.push(first + i);
  }

  get freePages(): number {
    return this.free.length;
  }

  private alloc(): number {
    const pfn = this.free.pop();
    if (pfn === undefined) return -1;
    this.machine.phys.deviceFrameInit(pfn);
    this.machine.phys.trylockPage(pfn);
    return pfn;
  }

  /** Migrate [start, end) of mm to device memory; returns the pages that moved. */
  migrateToDevice(mm: Mm, start: number, end: number): number {
    const vma = mm.findVma(start)!;
    const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_SYSTEM, this);
    migrateVmaSetup(args);
    const phys = this.machine.phys;
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      if (this.failAllocs > 0) { this.failAllocs--; continue; }
      const d = this.alloc();
      if (d < 0) continue;
      const s = migratePfnToPage(args.src[i]!);
      if (s >= 0) phys.copyPage(d, s);
      else phys.clearPage(d);
      args.dst[i] = migratePfn(d);
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    let moved = 0;
    for (let i = 0; i < args.npages; i++) if (migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) moved++;
    void PAGE_SIZE;
    return moved;
  }

  migrateToRam(vmf: VmFault): number {
    const args = newMigrateVma(vmf.vma, vmf.address, vmf.address + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, this, vmf.page);
    migrateVmaSetup(args);
    const phys = this.machine.phys;
    if (migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)) {
      const page = phys.tryAllocPages(0);
      if (page < 0) return 0x1; // VM_FAULT_OOM
      phys.trylockPage(page);
      phys.copyPage(page, migratePfnToPage(args.src[0]!));
      args.dst[0] = migratePfn(page);
      this.toRam++;
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return 0;
  }
}
