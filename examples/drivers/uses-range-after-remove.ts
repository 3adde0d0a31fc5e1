// Zoo: a driver that keeps using its mappings after removing their notifier. Otherwise minimal.ts.
//
// THE MISTAKE: on detach it removes the interval notifier first and only then, after waiting
// for the device to go idle (a sleep), clears the device page table. In between, no
// invalidation reaches the driver: a CPU munmap frees pages the device still maps.
//
// Run it: npx tsx src/cli/main.ts check examples/drivers/uses-range-after-remove.ts

import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_WRITE, HmmRange, hmmRangeFault, KernelError, MmuIntervalNotifier,
  mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq,
  mmuNotifierRangeBlockable, PAGE_SIZE, DevicePageTable, DPTE_WRITE, type Process,
} from 'hmmsim';
import type { CheckDriver, CheckMirror, DriverCtx, Mutex } from 'hmmsim/check';

class ZooMirror implements CheckMirror {
  readonly pt = new DevicePageTable();
  private readonly notifier: MmuIntervalNotifier;

  constructor(proc: Process, private readonly lock: Mutex) {
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
      this.pt.map(addr / PAGE_SIZE, range.hmmPfns[0]!, range.hmmFlags[0]! & HMM_PFN_WRITE ? DPTE_WRITE : 0);
      this.lock.unlock();
      return;
    }
  }

  async detach(ctx: DriverCtx): Promise<void> {
    await ctx.blocking(() => mmuIntervalNotifierRemove(this.notifier));
    // MISTAKE: the device keeps its mappings across a sleep with no notifier to zap them.
    await ctx.yield('waiting for the device to go idle');
    this.pt.clear();
  }
}

const driver: CheckDriver = {
  name: 'uses-range-after-remove',
  probe(env) {
    return { attach: (proc) => new ZooMirror(proc, env.mutex('driver lock')) };
  },
};
export default driver;
