// Zoo: a driver that maps writable after a read-only fault. Otherwise minimal.ts.
//
// THE MISTAKE: it decides the device's write permission from the VMA (VM_WRITE) instead of
// HMM_PFN_WRITE, so a read fault on a page the CPU maps read-only (copy-on-write after fork,
// the zero page, a swapped-in shared page) gives the device a writable mapping: the device can
// write a page another process shares.
//
// Run it: npx tsx src/cli/main.ts check examples/drivers/writable-from-vma.ts

import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HmmRange, hmmRangeFault, KernelError, MmuIntervalNotifier, mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq, mmuNotifierRangeBlockable,
  PAGE_SIZE, VM_WRITE, type Mm, type Process, DevicePageTable, DPTE_WRITE,
} from 'hmmsim';
import type { CheckDriver, CheckMirror, DriverCtx, Mutex } from 'hmmsim/check';

class ZooMirror implements CheckMirror {
  readonly pt = new DevicePageTable();
  private readonly notifier: MmuIntervalNotifier;

  private readonly mm: Mm;

  constructor(proc: Process, private readonly lock: Mutex) {
    this.mm = proc.mm;
    this.notifier = new MmuIntervalNotifier({
      invalidate: (sub, range, seq) => {
        // The callback runs inside the CPU's operation: it may not sleep, but it waits for the lock.
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
      notifier: this.notifier, start: addr, end: addr + PAGE_SIZE,
      defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    });
    for (;;) {
      range.notifierSeq = await ctx.blocking(() => mmuIntervalReadBegin(this.notifier));
      try {
        await ctx.blocking(() => hmmRangeFault(range));
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue; // invalidated meanwhile: again
        throw e; // EFAULT, EPERM, ESRCH: the access fails
      }
      await ctx.yield('between hmm_range_fault and the driver lock');
      await ctx.lock(this.lock);
      if (mmuIntervalReadRetry(this.notifier, range.notifierSeq)) {
        this.lock.unlock();
        continue;
      }
      // Programming the device may sleep (a command queue), with the lock held.
      await ctx.yield('programming the device page table');
      // MISTAKE: the VMA's permission, not the page's (HMM_PFN_WRITE).
      const vma = this.mm.findVma(addr);
      this.pt.map(addr / PAGE_SIZE, range.hmmPfns[0]!, vma !== undefined && vma.flags & VM_WRITE ? DPTE_WRITE : 0);
      this.lock.unlock();
      return;
    }
  }

  async detach(ctx: DriverCtx): Promise<void> {
    await ctx.blocking(() => mmuIntervalNotifierRemove(this.notifier));
    this.pt.clear();
  }
}

const driver: CheckDriver = {
  name: 'writable-from-vma',
  probe(env) {
    return { attach: (proc) => new ZooMirror(proc, env.mutex('driver lock')) };
  },
};
export default driver;
