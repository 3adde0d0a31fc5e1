// Zoo: a driver that programs the device with pfns fetched before a retry. Otherwise minimal.ts.
//
// THE MISTAKE: it keeps the pfn of its first hmm_range_fault pass; when read_retry sends it
// round again, it faults the page again but still programs the first pass's pfn. After a
// madvise(DONTNEED) (or reclaim, a migration, a COW break) that pfn is another page, or free.
//
// Run it: npx tsx src/cli/main.ts check examples/drivers/stale-pfns-after-retry.ts

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
    let pfn = -1;
    let writable = false;
    for (;;) {
      range.notifierSeq = await ctx.blocking(() => mmuIntervalReadBegin(this.notifier));
      try {
        await ctx.blocking(() => hmmRangeFault(range));
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue; // invalidated meanwhile: again
        throw e; // EFAULT, EPERM, ESRCH: the access fails
      }
      if (pfn < 0) {
        // MISTAKE: only the first pass's result is kept; later passes' pfns are ignored.
        pfn = range.hmmPfns[0]!;
        writable = (range.hmmFlags[0]! & HMM_PFN_WRITE) !== 0;
      }
      await ctx.yield('between hmm_range_fault and the driver lock');
      await ctx.lock(this.lock);
      if (mmuIntervalReadRetry(this.notifier, range.notifierSeq)) {
        this.lock.unlock();
        continue;
      }
      // Programming the device may sleep (a command queue), with the lock held.
      await ctx.yield('programming the device page table');
      this.pt.map(addr / PAGE_SIZE, pfn, writable ? DPTE_WRITE : 0);
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
  name: 'stale-pfns-after-retry',
  probe(env) {
    return { attach: (proc) => new ZooMirror(proc, env.mutex('driver lock')) };
  },
};
export default driver;
