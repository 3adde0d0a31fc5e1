// The adversary device: another device with private memory of its own (another owner) that
// migrates the mirrored buffer into its memory while the driver under check mirrors it, and
// gives a page back when the CPU touches it (migrate_to_ram). The driver sees MIGRATE
// invalidations it did not start and must act on them; hmm_range_fault faults such pages back.

import { PAGE_SIZE } from '../mm/constants.js';
import { KernelError } from '../mm/errno.js';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS, type VmFault } from '../mm/fault.js';
import type { Machine } from '../mm/machine.js';
import { DevPagemap, memremapPages } from '../mm/memremap.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn,
  migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, type MigrateVma,
} from '../mm/migrate.js';
import type { Mm } from '../mm/mm.js';

export class OtherOwner {
  toString(): string {
    return 'the other device';
  }
}

export class OtherDevice {
  readonly owner = new OtherOwner();
  readonly pgmap: DevPagemap;
  private readonly free: number[] = [];

  constructor(readonly machine: Machine, frames = 8) {
    this.pgmap = new DevPagemap('private', this.owner, {
      pageFree: (pfn) => this.free.push(pfn),
      migrateToRam: (vmf) => this.migrateToRam(vmf),
    });
    const first = memremapPages(machine, this.pgmap, frames);
    for (let i = frames - 1; i >= 0; i--) this.free.push(first + i);
  }

  /** Migrate [start, end) of mm (one VMA) into this device's memory; `preempt` runs between migrate_vma's phases. */
  async migrateToDevice(mm: Mm, start: number, end: number, preempt: (label: string) => Promise<void>, note: (s: string) => void): Promise<void> {
    const vma = mm.findVma(start);
    if (!vma || vma.start > start || vma.end < end) {
      note('other device: nothing to migrate (no VMA)');
      return;
    }
    const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_SYSTEM, this.owner);
    migrateVmaSetup(args);
    note(`other device: migrate_vma_setup collected ${args.cpages} page(s)`);
    await preempt('other device: after migrate_vma_setup');
    const phys = this.machine.phys;
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      const d = this.free.pop();
      if (d === undefined) break;
      phys.deviceFrameInit(d);
      phys.trylockPage(d);
      const s = migratePfnToPage(args.src[i]!);
      if (s >= 0) phys.copyPage(d, s);
      else phys.clearPage(d);
      args.dst[i] = migratePfn(d) + (migratePfnHas(args.src[i]!, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    }
    migrateVmaPages(args);
    note('other device: copied, migrate_vma_pages');
    await preempt('other device: after migrate_vma_pages');
    migrateVmaFinalize(args);
    note(`other device: migrate_vma_finalize (${moved(args)} page(s) moved)`);
  }

  /** dev_pagemap_ops.migrate_to_ram: the CPU touched one of this device's pages. */
  private migrateToRam(vmf: VmFault): number {
    const args = newMigrateVma(vmf.vma, vmf.address, vmf.address + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, this.owner, vmf.page);
    try {
      migrateVmaSetup(args);
    } catch (e) {
      if (e instanceof KernelError) return VM_FAULT_SIGBUS;
      throw e;
    }
    let ok = true;
    const phys = this.machine.phys;
    const s = args.src[0]!;
    if (migratePfnHas(s, MIGRATE_PFN_MIGRATE)) {
      const page = phys.tryAllocPages(0);
      if (page < 0) ok = false;
      else {
        phys.trylockPage(page);
        phys.copyPage(page, migratePfnToPage(s));
        args.dst[0] = migratePfn(page) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
      }
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return ok ? 0 : VM_FAULT_OOM;
  }
}

function moved(args: MigrateVma): number {
  let n = 0;
  for (let i = 0; i < args.npages; i++) if (migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) n++;
  return n;
}
