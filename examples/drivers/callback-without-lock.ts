// Zoo: an invalidate callback that does not take the driver lock. Otherwise minimal.ts.
//
// THE MISTAKE: the callback sets the sequence and zaps the device page table without the lock
// the fault path holds from read_retry to programming the device. An invalidation that runs
// while the fault path is past read_retry (programming the device, which may sleep) is not
// seen by it: the fault path then maps a page the CPU has just unmapped and freed.
//
// Run it: npx tsx src/cli/main.ts check examples/drivers/callback-without-lock.ts

import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_WRITE, HmmRange, hmmRangeFault, KernelError, MmuIntervalNotifier,
  mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq,
  PAGE_SIZE, type Process, DevicePageTable, DPTE_WRITE,
} from 'hmmsim';
import type { CheckDriver, CheckMirror, DriverCtx, Mutex } from 'hmmsim/check';

class ZooMirror implements CheckMirror {
  readonly pt = new DevicePageTable();
  private readonly notifier: MmuIntervalNotifier;

  constructor(proc: Process, private readonly lock: Mutex) {
    this.notifier = new MmuIntervalNotifier({
      invalidate: (sub, range, seq) => {
        // MISTAKE: no driver lock around the sequence and the device page-table update.
        mmuIntervalSetSeq(sub, seq);
        this.pt.unmapRange(range.start / PAGE_SIZE, range.end / PAGE_SIZE);
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
      this.pt.map(addr / PAGE_SIZE, range.hmmPfns[0]!, range.hmmFlags[0]! & HMM_PFN_WRITE ? DPTE_WRITE : 0);
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
  name: 'callback-without-lock',
  probe(env) {
    return { attach: (proc) => new ZooMirror(proc, env.mutex('driver lock')) };
  },
};
export default driver;
