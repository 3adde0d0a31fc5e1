// The harness holds drivers to each invariant: hand-made drivers that break exactly one are
// reported with that invariant (and a correct one is not); setup errors, unknown scenarios,
// skipped scenarios and the --record document.

import { describe, expect, it } from 'vitest';
import {
  DevicePageTable, DPTE_WRITE, checkDriver, checkTraceDoc, CHECK_TRACE_FORMAT, driverFromModule, loadDriver, replayCheck, SCENARIOS,
  type CheckDriver,
  type CheckMirror, type DeviceMappings, type DriverCtx, type DriverEnv, type Mutex,
} from '../../src/check/index.js';
import {
  DevPagemap, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_WRITE, HmmRange, hmmRangeFault, KernelError, MADV_DONTNEED,
  memremapPages, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin,
  mmuIntervalReadRetry, mmuIntervalSetSeq, PAGE_SIZE, type Process,
} from '../../src/index.js';

interface Hooks {
  /** Called with the lock held, instead of mapping the fault's page (flags: DPTE_WRITE or 0); true when it mapped itself. */
  program?(m: TestMirror, addr: number, pfn: number, flags: number, ctx: DriverCtx): Promise<boolean> | boolean;
  /** Replaces the page table the harness sees. */
  pt?(m: TestMirror): DeviceMappings;
  probe?(env: DriverEnv): void;
}

/** minimal.ts, with hooks to plant one bug. */
class TestMirror implements CheckMirror {
  readonly table = new DevicePageTable();
  readonly pt: DeviceMappings;
  readonly notifier: MmuIntervalNotifier;
  constructor(readonly env: DriverEnv, readonly proc: Process, readonly lock: Mutex, private readonly hooks: Hooks) {
    this.pt = hooks.pt?.(this) ?? this.table;
    this.notifier = new MmuIntervalNotifier({
      invalidate: (sub, range, seq) => {
        this.lock.lockSync();
        mmuIntervalSetSeq(sub, seq);
        this.table.unmapRange(range.start / PAGE_SIZE, range.end / PAGE_SIZE);
        this.lock.unlock();
        return true;
      },
    });
    mmuIntervalNotifierInsert(this.notifier, proc.mm, 0, proc.mm.taskSize);
  }
  async fault(addr: number, write: boolean, ctx: DriverCtx): Promise<void> {
    const range = new HmmRange({ notifier: this.notifier, start: addr, end: addr + PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0) });
    for (;;) {
      range.notifierSeq = await ctx.blocking(() => mmuIntervalReadBegin(this.notifier));
      try {
        await ctx.blocking(() => hmmRangeFault(range));
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue;
        throw e;
      }
      await ctx.lock(this.lock);
      if (mmuIntervalReadRetry(this.notifier, range.notifierSeq)) {
        this.lock.unlock();
        continue;
      }
      const pfn = range.hmmPfns[0]!;
      const w = range.hmmFlags[0]! & HMM_PFN_WRITE ? DPTE_WRITE : 0;
      if (!(await this.hooks.program?.(this, addr, pfn, w, ctx))) this.table.map(addr / PAGE_SIZE, pfn, w);
      if (this.lock.locked) this.lock.unlock();
      return;
    }
  }
  async detach(ctx: DriverCtx): Promise<void> {
    await ctx.blocking(() => mmuIntervalNotifierRemove(this.notifier));
    this.table.clear();
  }
}

function driver(name: string, hooks: Hooks = {}): CheckDriver {
  return {
    name,
    probe(env) {
      hooks.probe?.(env);
      return { attach: (proc) => new TestMirror(env, proc, env.mutex('driver lock'), hooks) };
    },
  };
}

/** A device with a few private pages, for the page_free tests. */
function devicePages(env: DriverEnv): number {
  const pgmap = new DevPagemap('private', env.owner, { pageFree: () => {}, migrateToRam: () => 0 });
  return memremapPages(env.machine, pgmap, 4);
}

async function violationOf(d: CheckDriver, scenarios: string[], strategies: Array<'pct' | 'bounded' | 'random'> = ['bounded']) {
  const r = await checkDriver(d, { strategies, schedules: 300, scenarios });
  return r.violation;
}

describe('each invariant, broken on purpose', () => {
  it('the control: the hook-free driver passes', async () => {
    expect(await violationOf(driver('control'), ['munmap', 'fork', 'migrate'], ['pct', 'bounded'])).toBeNull();
  });

  it('device-map-beyond-cpu: a driver that maps the frame next to the one hmm_range_fault gave', async () => {
    const v = await violationOf(driver('off-by-one', { program: (m, addr, pfn, w) => (m.table.map(addr / PAGE_SIZE, pfn + 1, w), true) }), ['munmap']);
    expect(v?.invariant).toBe('device-map-beyond-cpu');
    expect(v?.message).toMatch(/the device maps p0 -> pfn (\d+) writable; the CPU maps pfn \d+ writable/);
    expect(v?.preemptions).toBe(0);
  });

  it('device-read-stale: a device that reads through a stale translation the page table does not show', async () => {
    // The table the invariant sees is empty; the hardware's lookup answers p0 with p1's frame.
    const v = await violationOf(driver('stale-tlb', {
      pt: (m) => ({
        size: 0,
        forEach: () => {},
        // A translation the hardware kept from before the page was written: the zero page.
        lookup: (vpn) => (m.table.lookup(vpn) >= 0 ? m.env.machine.phys.zeroPfn : -1),
        flagsOf: () => 0,
      }),
    }), ['munmap']);
    expect(v?.invariant).toBe('device-read-stale');
    expect(v?.message).toMatch(/the device read 0 at p0 \(pfn \d+\); the CPU's data there is \d+/);
  });

  it('device-write-lost: device writes that land in a page of the driver\'s own, not the process\'s', async () => {
    const copies = new WeakMap<TestMirror, number>();
    const v = await violationOf(driver('private-copy', {
      pt: (m) => {
        // The driver's own copy of p0: reads see the right data, writes stay in it.
        const copyOf = (vpn: number): number => {
          const pfn = m.table.lookup(vpn);
          if (pfn < 0 || vpn * PAGE_SIZE !== m.proc.mm.findVma(vpn * PAGE_SIZE)?.start) return pfn;
          let copy = copies.get(m);
          if (copy === undefined) {
            copy = m.env.machine.phys.allocPages(0);
            m.env.machine.phys.copyPage(copy, pfn);
            copies.set(m, copy);
          }
          return copy;
        };
        return { size: 0, forEach: () => {}, lookup: copyOf, flagsOf: (vpn) => (m.table.lookup(vpn) >= 0 ? DPTE_WRITE : 0) };
      },
    }), ['migrate'], ['bounded']);
    expect(v?.invariant, v?.message).toBe('device-write-lost');
    expect(v?.message).toMatch(/reads \d+ at p0, but the last write there \(by the device\) stored \d+/);
  });

  it('page-free-once (twice): a driver that drops a device page\'s reference twice', async () => {
    let first = -1;
    const v = await violationOf(driver('double-put', {
      probe: (env) => { first = devicePages(env); },
      program: (m, addr, pfn, w) => {
        const phys = m.env.machine.phys;
        phys.deviceFrameInit(first);
        phys.putPage(first);
        phys.putPage(first);
        m.table.map(addr / PAGE_SIZE, pfn, w);
        return true;
      },
    }), ['munmap']);
    expect(v?.invariant).toBe('page-free-once');
    expect(v?.message).toMatch(/double free/);
  });

  it('page-free-once (never): a device page still referenced after teardown', async () => {
    const v = await violationOf(driver('leak', {
      probe: (env) => { env.machine.phys.deviceFrameInit(devicePages(env)); },
    }), ['exit']);
    expect(v?.invariant).toBe('page-free-once');
    expect(v?.message).toMatch(/device page pfn \d+ .*still has 1 reference\(s\).*page_free never ran/);
    // Seen at teardown, after the last step.
    expect(v?.violationStep).toBeGreaterThan(v!.trace.at(-1)!.step - 1);
  });

  it('deadlock: a fault path that returns with the lock held (the CPU waits for it forever)', async () => {
    const held = await violationOf(driver('keeps-lock-2', {
      program: (m, addr, pfn, w) => {
        m.table.map(addr / PAGE_SIZE, pfn, w);
        (m.lock as { unlock(): void }).unlock = () => {}; // the lock is never released again
        return true;
      },
    }), ['munmap']);
    expect(held?.invariant).toBe('deadlock');
    expect(held?.message).toMatch(/device takes driver lock, which it holds|cpu waits for driver lock \(held by device\)/);
  });

  it('deadlock: an mm operation under the driver lock whose invalidation takes it again', async () => {
    const v = await violationOf(driver('self-deadlock', {
      program: (m, addr) => {
        m.proc.madvise(addr, PAGE_SIZE, MADV_DONTNEED);
        return true;
      },
    }), ['munmap']);
    expect(v?.invariant).toBe('deadlock');
    expect(v?.message).toMatch(/takes driver lock, which it holds/);
  });

  it('lost-wakeup: a fault that sleeps on a completion nobody signals', async () => {
    const v = await violationOf(driver('sleeps-forever', {
      program: async (_m, _a, _p, _w, ctx) => {
        await ctx.sleep(new Promise(() => {}), 'wait_for_completion(&fence)');
        return true;
      },
    }), ['munmap']);
    expect(v?.invariant).toBe('lost-wakeup');
    expect(v?.message).toMatch(/device asleep on wait_for_completion\(&fence\)/);
  });

  it('driver-error: a TypeError, an EINVAL, an await the scheduler does not know about', async () => {
    const boom = await violationOf(driver('type-error', { program: () => { throw new TypeError('pfns is undefined'); } }), ['munmap']);
    expect(boom?.invariant).toBe('driver-error');
    expect(boom?.message).toMatch(/device threw TypeError: pfns is undefined/);
    const inval = await violationOf(driver('einval', { program: () => { throw new KernelError('EINVAL', 'bad range'); } }), ['munmap']);
    expect(inval?.invariant).toBe('driver-error');
    const timer = await violationOf(driver('timer', { program: () => new Promise((r) => setTimeout(() => r(false), 5)) }), ['munmap']);
    expect(timer?.invariant).toBe('driver-error');
    expect(timer?.message).toMatch(/awaited something the scheduler does not know about/);
    const setup = await violationOf({ name: 'no-probe', probe: () => { throw new Error('no device'); } }, ['munmap']);
    expect(setup?.invariant).toBe('driver-error');
    expect(setup?.message).toMatch(/during setup .*no device/);
  });
});

describe('the harness around the checks', () => {
  it('a driver module exports a CheckDriver or a probe function, as default or as driver', () => {
    const probe = () => ({ attach: () => { throw new Error('unused'); } });
    expect(driverFromModule({ default: { name: 'd', probe } }, 'file').name).toBe('d');
    expect(driverFromModule({ default: { probe } }, 'file').name).toBe('file');
    expect(driverFromModule({ driver: probe }, 'file').probe).toBe(probe);
    expect(() => driverFromModule({ default: 42 }, 'cow')).toThrow(/cow: the module must export a CheckDriver/);
    expect(() => driverFromModule({}, 'empty')).toThrow(TypeError);
  });

  it('an unknown scenario or a bad token is refused; a driver without migration skips fork-mirror', async () => {
    await expect(checkDriver(driver('x'), { scenarios: ['nope'] })).rejects.toThrow(/no scenario 'nope'/);
    await expect(replayCheck(driver('x'), 'munmap')).rejects.toThrow(SyntaxError);
    await expect(replayCheck(driver('x'), 'nope:a')).rejects.toThrow(/no scenario/);
    const r = await checkDriver(driver('x'), { strategies: ['random'], schedules: 20 });
    expect(r.skipped.map((s) => s.scenario)).toEqual(['fork-mirror']);
    expect(r.scenarios).toEqual(SCENARIOS.map((s) => s.name).filter((n) => n !== 'fork-mirror'));
  });

  it('a replay past a schedule\'s end runs the default policy; a token for another scenario\'s threads diverges', async () => {
    const d = await loadDriver('examples/drivers/minimal.ts');
    expect((await replayCheck(d, 'munmap:b')).ok).toBe(true);
    // munmap has two threads: task letter c does not exist.
    await expect(replayCheck(d, 'munmap:c')).rejects.toThrow(/diverged/);
  });

  it('the --record document: threads, steps per thread, the violating step', async () => {
    const d = await loadDriver('examples/drivers/skips-read-retry.ts');
    const r = await checkDriver(d, { strategies: ['bounded'], schedules: 200 });
    const doc = checkTraceDoc(r, 'examples/drivers/skips-read-retry.ts');
    expect(doc.format).toBe(CHECK_TRACE_FORMAT);
    expect(doc.version).toBe(1);
    expect(doc.driver).toBe('examples/drivers/skips-read-retry.ts');
    expect(doc.token).toBe(r.violation!.token);
    expect(doc.threads).toEqual(r.violation!.threads.map((t) => t.name));
    expect(doc.steps.length).toBe(r.violation!.steps);
    expect(doc.violation).toBe(doc.steps.length - 1);
    for (const s of doc.steps) {
      expect(s.thread).toBeGreaterThanOrEqual(0);
      expect(s.thread).toBeLessThan(doc.threads.length);
      expect(s.label.length).toBeGreaterThan(0);
    }
    expect(doc.steps.filter((s) => s.preemption).length).toBe(r.violation!.preemptions);
    const clean = checkTraceDoc(await checkDriver(driver('x'), { strategies: ['random'], schedules: 5 }));
    expect(clean).toMatchObject({ invariant: '', steps: [], violation: -1, schedules: 5 });
  });
});
