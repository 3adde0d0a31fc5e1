// Exploration strategies, schedule tokens, replay and minimisation (src/sched).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundedPreemption, PrefixChooser } from '../../src/sched/bounded.js';
import { execute, exploreSchedules, replaySchedule, type Program } from '../../src/sched/explore.js';
import { minimiseSchedule } from '../../src/sched/minimise.js';
import { Pct } from '../../src/sched/pct.js';
import type { Scheduler } from '../../src/sched/scheduler.js';
import { RandomWalk, type Strategy } from '../../src/sched/strategy.js';
import { decodeSchedule, encodeSchedule } from '../../src/sched/token.js';

/** Tasks that each pass `yields[i]` preemption points; records the order of steps. */
function steps(yields: number[], out: string[]): Program {
  return async (sched: Scheduler) => {
    yields.forEach((n, i) => {
      const name = String.fromCharCode(97 + i);
      sched.spawn(name, async (t) => {
        for (let k = 0; k < n; k++) {
          out.push(name);
          await t.yield();
        }
        out.push(name);
      });
    });
    await sched.run();
  };
}

/** Two increments that lose an update when one runs between the other's read and write. */
const lostUpdate: Program = async (sched) => {
  let counter = 0;
  for (const name of ['x', 'y']) {
    sched.spawn(name, async (t) => {
      await t.yield('start');
      await t.yield('work');
      const v = counter;
      await t.yield('between read and write');
      counter = v + 1;
      await t.yield('after');
    });
  }
  await sched.run();
  if (counter !== 2) throw Object.assign(new Error(`lost update: ${counter}`), { invariant: 'lost-update' });
};

/** Every interleaving of tasks with the given yields, with its preemption count (brute force). */
function allInterleavings(yields: number[]): Map<string, number> {
  const out = new Map<string, number>();
  const left = yields.map((n) => n + 1);
  const rec = (seq: number[], cur: number, pre: number): void => {
    const ready = left.map((n, i) => (n > 0 ? i : -1)).filter((i) => i >= 0);
    if (ready.length === 0) {
      out.set(encodeSchedule(seq), pre);
      return;
    }
    for (const i of ready) {
      left[i]!--;
      seq.push(i);
      rec(seq, i, pre + (cur >= 0 && left[cur]! > 0 && cur !== i && ready.includes(cur) ? 1 : 0));
      seq.pop();
      left[i]!++;
    }
  };
  rec([], -1, 0);
  return out;
}

describe('schedule tokens', () => {
  it('encode and decode are inverse, and a token is run-length encoded', () => {
    expect(encodeSchedule([0, 0, 0, 1, 0, 0])).toBe('a3ba2');
    expect(decodeSchedule('a3ba2')).toEqual([0, 0, 0, 1, 0, 0]);
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 51 }), { maxLength: 200 }), (xs) => {
      expect(decodeSchedule(encodeSchedule(xs))).toEqual(xs);
    }));
  });

  it('a malformed token is a SyntaxError', () => {
    for (const bad of ['a0', '3a', 'a1', 'a-b', 'a b']) expect(() => decodeSchedule(bad), bad).toThrow(SyntaxError);
  });
});

describe('bounded-preemption search', () => {
  it('runs exactly the schedules with at most P preemptions, each once (brute-force reference)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 3 }),
      async (yields, bound) => {
        const reference = allInterleavings(yields);
        const want = [...reference].filter(([, p]) => p <= bound).map(([s]) => s).sort();
        const strategy = new BoundedPreemption({ preemptions: bound });
        const seen: string[] = [];
        for (let spec = strategy.next(); spec; spec = strategy.next()) {
          const run = await execute(steps(yields, []), () => spec.chooser());
          strategy.done(run);
          expect(run.preemptions).toBeLessThanOrEqual(bound);
          expect(reference.get(run.token)).toBe(run.preemptions);
          seen.push(run.token);
        }
        expect(seen.sort()).toEqual(want);
        const cov = strategy.coverage();
        expect(cov.complete).toBe(true);
        expect(cov.bounds!.every((b) => b.complete)).toBe(true);
      },
    ), { numRuns: 60 });
  });

  it('schedules with fewer preemptions run first (iterative deepening)', async () => {
    const strategy = new BoundedPreemption({ preemptions: 2 });
    const counts: number[] = [];
    for (let spec = strategy.next(); spec; spec = strategy.next()) {
      const run = await execute(steps([2, 2, 1], []), () => spec.chooser());
      strategy.done(run);
      counts.push(run.preemptions);
    }
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts[0]).toBe(0);
    expect(counts.at(-1)).toBe(2);
  });
});

describe('strategies find a lost update, and its token replays it', () => {
  const strategies: Array<[string, () => Strategy]> = [
    ['random', () => new RandomWalk(3)],
    ['pct', () => new Pct({ depth: 2, seed: 5 })],
    ['bounded', () => new BoundedPreemption({ preemptions: 1 })],
  ];
  for (const [name, make] of strategies) {
    it(name, async () => {
      const result = await exploreSchedules(lostUpdate, make(), { schedules: 500 });
      expect(result.failure).not.toBeNull();
      const { found, minimised } = result.failure!;
      expect((found.error as Error).message).toMatch(/lost update/);
      // One preemption suffices (switch between the read and the write); the minimiser finds it.
      expect(minimised.preemptions).toBe(1);
      expect(minimised.steps).toBeLessThanOrEqual(found.steps);
      for (const run of [found, minimised]) {
        const again = await replaySchedule(lostUpdate, run.token);
        expect(again.failed).toBe(true);
        expect(again.token).toBe(run.token);
        expect((again.error as Error).message).toBe((run.error as Error).message);
      }
    });
  }

  it('the same strategy seed gives the same schedules; another seed others', async () => {
    const tokens = async (s: Strategy): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < 20; i++) {
        const spec = s.next()!;
        const run = await execute(steps([3, 3, 2], []), () => spec.chooser());
        s.done(run);
        out.push(run.token);
      }
      return out;
    };
    expect(await tokens(new Pct({ seed: 9 }))).toEqual(await tokens(new Pct({ seed: 9 })));
    expect(await tokens(new RandomWalk(9))).toEqual(await tokens(new RandomWalk(9)));
    expect(await tokens(new Pct({ seed: 9 }))).not.toEqual(await tokens(new Pct({ seed: 10 })));
    expect(new Set(await tokens(new RandomWalk(4))).size).toBeGreaterThan(10);
  });

  it('a token runs the default policy past its end, and one that asks for a task that is not ready diverges', async () => {
    const order: string[] = [];
    const run = await replaySchedule(steps([2, 2], order), 'b');
    expect(run.token).toBe('b3a3');
    expect(order.join('')).toBe('bbbaaa');
    await expect(replaySchedule(steps([0], []), 'b')).resolves.toMatchObject({ failed: true });
    const bad = await execute(steps([0], []), () => new PrefixChooser([1]));
    expect((bad.error as Error).name).toBe('ScheduleDivergedError');
  });
});

describe('minimisation', () => {
  it('cuts a random failing schedule down to one preemption and no more steps than needed', async () => {
    // Ten filler steps per task make random schedules long and switch-happy.
    const program: Program = async (sched) => {
      let counter = 0;
      for (const name of ['x', 'y', 'z']) {
        sched.spawn(name, async (t) => {
          for (let i = 0; i < 10; i++) await t.yield('filler');
          if (name === 'z') return;
          const v = counter;
          await t.yield('between read and write');
          counter = v + 1;
        });
      }
      await sched.run();
      if (counter !== 2) throw Object.assign(new Error('lost update'), { invariant: 'lost-update' });
    };
    const found = await exploreSchedules(program, new RandomWalk(1), { schedules: 200, minimise: false });
    expect(found.failure).not.toBeNull();
    const run = found.failure!.found;
    expect(run.preemptions).toBeGreaterThan(3);
    const min = await minimiseSchedule(program, run);
    expect(min.preemptions).toBe(1);
    // The failure shows only when every task has ended: every schedule has the same length.
    expect(min.steps).toBe(run.steps);
    expect((await replaySchedule(program, min.token)).failed).toBe(true);
  });
});

describe('PCT\'s guarantee', () => {
  it('finds a depth-2 bug in about 1/(n k) of its runs, the bound (and never without a change point)', async () => {
    // Thread b's first step must run after a's third and before a's fourth: two ordering
    // constraints, a bug of depth 2. Without priority change points PCT runs one thread to
    // its end before the other and never sees it.
    const program: Program = async (sched) => {
      let aSteps = 0;
      let bad = false;
      sched.spawn('a', async (t) => {
        for (let i = 0; i < 6; i++) {
          aSteps++;
          await t.yield();
        }
      });
      sched.spawn('b', async (t) => {
        if (aSteps === 3) bad = true;
        for (let i = 0; i < 5; i++) await t.yield();
      });
      await sched.run();
      if (bad) throw new Error('b ran between a3 and a4');
    };
    // Here the bound is tight: the one change point must fall on a's third step, and a must
    // start with the higher priority. 2,000 runs put the count within a few standard deviations.
    const RUNS = 2000;
    const count = async (depth: number): Promise<{ hits: number; k: number }> => {
      const pct = new Pct({ depth, seed: 11 });
      let hits = 0;
      let k = 0;
      for (let i = 0; i < RUNS; i++) {
        const spec = pct.next();
        const run = await execute(program, () => spec.chooser());
        pct.done(run);
        k = Math.max(k, run.steps);
        if (run.failed) hits++;
      }
      return { hits, k };
    };
    const d2 = await count(2);
    expect(d2.k).toBe(13);
    expect(d2.hits).toBeGreaterThanOrEqual(0.75 * RUNS / (2 * d2.k));
    expect(d2.hits).toBeLessThanOrEqual(1.25 * RUNS / (2 * d2.k));
    expect((await count(1)).hits).toBe(0);
  });
});
