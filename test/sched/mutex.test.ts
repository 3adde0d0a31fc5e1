// The scheduler's mutex: sleeping waiters, and lock waits learned in code that cannot sleep
// (an invalidate callback inside an atomic operation), then honoured by re-execution.

import { describe, expect, it } from 'vitest';
import { BoundedPreemption } from '../../src/sched/bounded.js';
import { execute, exploreSchedules, replaySchedule, type Program } from '../../src/sched/explore.js';
import { Mutex } from '../../src/sched/mutex.js';
import { DeadlockError, Scheduler, UnscheduledAwaitError } from '../../src/sched/scheduler.js';
import { Pct } from '../../src/sched/pct.js';
import { RandomWalk } from '../../src/sched/strategy.js';

/**
 * A "device" holds the lock across a preemption point while it programs two entries; a "cpu"
 * runs an atomic operation whose callback takes the lock (lockSync) and clears the entries.
 * The kernel never lets the callback run inside the device's critical section.
 */
function program(observed: string[]): Program {
  return async (sched) => {
    const lock = new Mutex(sched, 'driver lock');
    const entries = new Set<number>();
    let inside = false;
    sched.spawn('device', async (t) => {
      await lock.lock(t);
      inside = true;
      entries.add(1);
      await t.yield('programming');
      entries.add(2);
      inside = false;
      lock.unlock();
    });
    sched.spawn('cpu', async (t) => {
      await t.yield('before the operation');
      // The atomic operation: its callback takes the lock without sleeping.
      lock.lockSync();
      observed.push(inside ? 'inside' : 'outside');
      entries.clear();
      lock.unlock();
    });
    await sched.run();
  };
}

describe('mutex', () => {
  it('a callback never runs inside the critical section, in every schedule with up to 3 preemptions', async () => {
    const observed: string[] = [];
    const strategy = new BoundedPreemption({ preemptions: 3 });
    let learned = 0;
    for (let spec = strategy.next(); spec; spec = strategy.next()) {
      const run = await execute(program(observed), () => spec.chooser());
      strategy.done(run);
      expect(run.failed, String(run.error)).toBe(false);
      learned += run.lockWaits.length;
    }
    expect(observed).not.toContain('inside');
    expect(observed.length).toBeGreaterThan(3);
    // Some schedule tried to run the callback while the device held the lock.
    expect(learned).toBeGreaterThan(0);
  });

  it('a schedule with a learned wait replays from its token without learning it again', async () => {
    const strategy = new BoundedPreemption({ preemptions: 2 });
    for (let spec = strategy.next(); spec; spec = strategy.next()) {
      const run = await execute(program([]), () => spec.chooser());
      strategy.done(run);
      if (run.lockWaits.length === 0) continue;
      const again = await replaySchedule(program([]), run.token);
      expect(again.token).toBe(run.token);
      expect(again.lockWaits).toEqual([]);
      return;
    }
    throw new Error('no schedule learned a lock wait');
  });

  it('sleeping waiters are woken one at a time and each gets the lock', async () => {
    for (let seed = 1; seed <= 30; seed++) {
      const sched = new Scheduler(seed);
      const m = new Mutex(sched, 'm');
      let holders = 0;
      let done = 0;
      for (let i = 0; i < 4; i++) {
        sched.spawn(`t${i}`, async (t) => {
          await m.lock(t);
          holders++;
          expect(holders).toBe(1);
          await t.yield('held');
          holders--;
          m.unlock();
          done++;
        });
      }
      await sched.run();
      expect(done).toBe(4);
    }
  });

  it('ABBA is a deadlock; taking a held lock again in a callback is one too', async () => {
    const abba: Program = async (sched) => {
      const a = new Mutex(sched, 'A');
      const b = new Mutex(sched, 'B');
      sched.spawn('one', async (t) => { await a.lock(t); await b.lock(t); b.unlock(); a.unlock(); });
      sched.spawn('two', async (t) => { await b.lock(t); await a.lock(t); a.unlock(); b.unlock(); });
      await sched.run();
    };
    const r = await exploreSchedules(abba, new Pct({ seed: 1 }), { schedules: 200 });
    expect(r.failure).not.toBeNull();
    const e = r.failure!.minimised.error as DeadlockError;
    expect(e).toBeInstanceOf(DeadlockError);
    expect(e.kind).toBe('deadlock');
    expect(e.message).toMatch(/one waits for B \(held by two\).*two waits for A \(held by one\)|two waits for A.*one waits for B/);

    const self: Program = async (sched) => {
      const m = new Mutex(sched, 'driver lock');
      sched.spawn('device', async (t) => { await m.lock(t); m.lockSync(); });
      await sched.run();
    };
    const s = await execute(self, () => new RandomWalk(1).next().chooser());
    expect((s.error as DeadlockError).kind).toBe('deadlock');
  });

  it('a sleep nobody ends is a lost wake-up; an await outside the scheduler is reported, not hung', async () => {
    const s1 = new Scheduler(1);
    s1.spawn('waiter', async (t) => { await t.sleep(new Promise(() => {}), 'completion'); });
    const e = await s1.run().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DeadlockError);
    expect((e as DeadlockError).kind).toBe('lost-wakeup');
    expect((e as Error).message).toMatch(/waiter asleep on completion/);

    const s2 = new Scheduler(1);
    s2.spawn('rogue', async () => { await new Promise(() => {}); });
    await expect(s2.run()).rejects.toBeInstanceOf(UnscheduledAwaitError);
  });
});
