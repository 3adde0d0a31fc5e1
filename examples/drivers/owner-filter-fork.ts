// Zoo: the owner filter that hides a migration another mirror of the same device started
// (the dmirror fork hole: lib/test_hmm.c's dmirror_interval_invalidate has it, and so does
// hmmsim's faithful port). Otherwise migrating.ts.
//
// THE MISTAKE: the callback skips every MIGRATE invalidation whose owner is this device,
// meaning "my own migration, which updates my page table itself". But every mirror of the
// device shares that owner. After fork, parent and child both map the same device page, each
// mirrored on the device; when the parent's CPU touches it, migrate_to_ram moves it back to
// system memory for both processes (through the reverse map) and drops only the parent
// mirror's entry. The child's mirror skips the invalidation and keeps mapping the device page,
// which is then freed. hmmsim check finds it in the fork-mirror scenario.
//
// Run it: npx tsx src/cli/main.ts check examples/drivers/owner-filter-fork.ts

import {
  allocPageVma, clearHighpage, copyHighpage, trylockPage, zoneDevicePageInit, DevPagemap, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_WRITE, HmmRange, hmmRangeFault, KernelError, memremapPages,
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn,
  migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, MmuIntervalNotifier,
  mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq,
  mmuNotifierRangeBlockable, newMigrateVma, PAGE_SIZE, VM_FAULT_OOM, VM_FAULT_SIGBUS, type Machine, type Process, type VmFault,
  DevicePageTable, DPTE_WRITE,
} from 'hmmsim';
import type { CheckDriver, CheckMirror, DriverCtx, DriverEnv, Mutex } from 'hmmsim/check';

/** The device: 16 pages of private memory, handed out from a free list. */
class Device {
  readonly pgmap: DevPagemap;
  private readonly free: number[] = [];
  readonly machine: Machine;
  /** Which mirror migrated each device page in (the kernel keeps it in zone_device_data). */
  readonly migratedBy = new Map<number, OwnerFilterMirror>();

  constructor(readonly env: DriverEnv) {
    this.machine = env.machine;
    this.pgmap = new DevPagemap('private', env.owner, {
      pageFree: (pfn) => this.free.push(pfn),
      migrateToRam: (vmf) => this.migrateToRam(vmf),
    });
    const first = memremapPages(env.machine, this.pgmap, 16);
    for (let i = 15; i >= 0; i--) this.free.push(first + i);
  }

  /** A device page for a migration: initialised and locked (zone_device_page_init), or -1. */
  alloc(): number {
    const pfn = this.free.pop();
    if (pfn === undefined) return -1;
    zoneDevicePageInit(this.machine, pfn);
    return pfn;
  }

  /** dev_pagemap_ops.migrate_to_ram: the CPU touched one of our pages; bring it back. */
  private migrateToRam(vmf: VmFault): number {
    const machine = this.machine;
    const args = newMigrateVma(vmf.vma, vmf.address, vmf.address + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, this.env.owner, vmf.page);
    try {
      migrateVmaSetup(args);
    } catch (e) {
      if (e instanceof KernelError) return VM_FAULT_SIGBUS;
      throw e;
    }
    let ret = 0;
    const src = args.src[0]!;
    // The mirror that migrated the page in drops its entry; no other mirror is told.
    this.migratedBy.get(vmf.page)?.erase(vmf.address);
    if (migratePfnHas(src, MIGRATE_PFN_MIGRATE)) {
      const page = allocPageVma(vmf.vma, vmf.address);
      if (page < 0) ret = VM_FAULT_OOM;
      else {
        trylockPage(machine, page);
        copyHighpage(machine, page, migratePfnToPage(src));
        args.dst[0] = migratePfn(page) + (migratePfnHas(src, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
      }
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return ret;
  }
}

class OwnerFilterMirror implements CheckMirror {
  readonly pt = new DevicePageTable();
  private readonly notifier: MmuIntervalNotifier;

  constructor(private readonly dev: Device, private readonly proc: Process, private readonly lock: Mutex) {
    this.notifier = new MmuIntervalNotifier({
      invalidate: (sub, range, seq) => {
        // MISTAKE: "a migration owned by my device is mine": every mirror of the device matches.
        if (range.event === 'MIGRATE' && range.owner === this.dev.env.owner) return true;
        if (mmuNotifierRangeBlockable(range)) this.lock.lockSync();
        else if (!this.lock.trylock()) return false;
        mmuIntervalSetSeq(sub, seq);
        this.pt.unmapRange(range.start / PAGE_SIZE, range.end / PAGE_SIZE);
        this.lock.unlock();
        return true;
      },
    });
    mmuIntervalNotifierInsert(this.notifier, proc.mm, 0, proc.mm.taskSize);
  }

  async fault(addr: number, write: boolean, ctx: DriverCtx): Promise<void> {
    const range = new HmmRange({
      notifier: this.notifier, start: addr, end: addr + PAGE_SIZE, devPrivateOwner: this.dev.env.owner,
      defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    });
    for (;;) {
      range.notifierSeq = await ctx.blocking(() => mmuIntervalReadBegin(this.notifier));
      try {
        await ctx.blocking(() => hmmRangeFault(range));
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue;
        throw e;
      }
      await ctx.yield('between hmm_range_fault and the driver lock');
      await ctx.lock(this.lock);
      if (mmuIntervalReadRetry(this.notifier, range.notifierSeq)) {
        this.lock.unlock();
        continue;
      }
      await ctx.yield('programming the device page table');
      this.pt.map(addr / PAGE_SIZE, range.hmmPfns[0]!, range.hmmFlags[0]! & HMM_PFN_WRITE ? DPTE_WRITE : 0);
      this.lock.unlock();
      return;
    }
  }

  async migrateToDevice(addr: number, npages: number, ctx: DriverCtx): Promise<void> {
    const vma = this.proc.mm.findVma(addr);
    if (!vma || vma.end < addr + npages * PAGE_SIZE) throw new KernelError('EFAULT', 'no VMA covers the range');
    const args = newMigrateVma(vma, addr, addr + npages * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM, this.dev.env.owner);
    migrateVmaSetup(args);
    await ctx.yield('after migrate_vma_setup');
    const machine = this.dev.machine;
    for (let i = 0; i < args.npages; i++) {
      const s = args.src[i]!;
      if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
      const d = this.dev.alloc();
      if (d < 0) continue;
      const spage = migratePfnToPage(s);
      if (spage >= 0) copyHighpage(machine, d, spage);
      else clearHighpage(machine, d);
      args.dst[i] = migratePfn(d) + (migratePfnHas(s, MIGRATE_PFN_WRITE) || spage < 0 ? MIGRATE_PFN_WRITE : 0);
      this.dev.migratedBy.set(d, this);
    }
    migrateVmaPages(args);
    // Map what moved, under the lock, before finalize drops the old pages.
    await ctx.lock(this.lock);
    for (let i = 0; i < args.npages; i++) {
      const d = migratePfnToPage(args.dst[i]!);
      if (d < 0 || !migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      this.pt.map(addr / PAGE_SIZE + i, d, migratePfnHas(args.dst[i]!, MIGRATE_PFN_WRITE) ? DPTE_WRITE : 0);
    }
    this.lock.unlock();
    migrateVmaFinalize(args);
  }

  /** Drop the entry of one page (migrate_to_ram of a page this mirror migrated in). */
  erase(addr: number): void {
    this.lock.lockSync();
    this.pt.unmapRange(addr / PAGE_SIZE, addr / PAGE_SIZE + 1);
    this.lock.unlock();
  }

  async detach(ctx: DriverCtx): Promise<void> {
    await ctx.blocking(() => mmuIntervalNotifierRemove(this.notifier));
    this.pt.clear();
  }
}

const driver: CheckDriver = {
  name: 'owner-filter-fork',
  probe(env) {
    const dev = new Device(env);
    return { attach: (proc) => new OwnerFilterMirror(dev, proc, env.mutex('driver lock')) };
  },
};
export default driver;
