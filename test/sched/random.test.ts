// Seeds and the seeded stream (src/sched/random.ts): the whole range 0..2^53-1, nothing
// wrapped, the same stream for the same seed, unbiased draws, independent split streams.

import { describe, expect, it } from 'vitest';
import { checkSeed, SEED_MAX, SeededRandom } from '../../src/sched/random.js';
import { explore, Scheduler } from '../../src/sched/scheduler.js';

const draws = (seed: number, n = 8, below = 1000): number[] => {
  const r = SeededRandom.of(seed);
  return Array.from({ length: n }, () => r.below(below));
};

describe('seeds', () => {
  it('accepts 0..2^53-1 and refuses the rest with a RangeError naming the range', () => {
    for (const s of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, SEED_MAX]) expect(() => checkSeed(s)).not.toThrow();
    for (const s of [-1, 0.5, 2 ** 53, Infinity, NaN, '1', null]) {
      expect(() => checkSeed(s), String(s)).toThrow(RangeError);
      expect(() => checkSeed(s), String(s)).toThrow('a seed is an integer from 0 to 2^53-1');
    }
  });

  it('the same seed gives the same stream; seeds that agree in their low 32 bits do not (nothing wraps)', () => {
    expect(draws(42)).toEqual(draws(42));
    expect(draws(1)).not.toEqual(draws(2 ** 32 + 1));
    expect(draws(0)).not.toEqual(draws(2 ** 32));
    expect(draws(SEED_MAX)).not.toEqual(draws(SEED_MAX - 2 ** 32));
  });

  it('consecutive seeds differ from their first draw on (the scheduler tries consecutive seeds)', () => {
    const firsts = new Set(Array.from({ length: 20 }, (_, s) => draws(s, 1, 3)[0]));
    expect(firsts.size).toBe(3);
  });

  it('pins the stream of one seed: a change here changes every recorded seed\'s replay', () => {
    // If this fails, the generator or its seeding changed: every seed a user recorded (a failing
    // interleaving found by explore, a run's report) now replays differently. Say so in the
    // CHANGELOG if it is deliberate.
    expect(draws(42)).toMatchInlineSnapshot(`
      [
        28,
        905,
        842,
        558,
        385,
        927,
        524,
        793,
      ]
    `);
  });
});

describe('SeededRandom', () => {
  it('below(n) covers [0, n) evenly; float() is in [0, 1)', () => {
    const r = SeededRandom.of(7);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 6000; i++) counts[r.below(6)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
    for (let i = 0; i < 1000; i++) {
      const f = r.float();
      expect(f >= 0 && f < 1).toBe(true);
    }
    expect(SeededRandom.of(3).below(1)).toBe(0);
  });

  it('split() gives a stream independent of its parent and leaves the parent unchanged', () => {
    const a = SeededRandom.of(5);
    const child = a.split();
    const fromChild = Array.from({ length: 8 }, () => child.below(1000));
    expect(Array.from({ length: 8 }, () => a.below(1000))).toEqual(draws(5));
    expect(fromChild).not.toEqual(draws(5));
  });
});

describe('the scheduler takes the same seeds', () => {
  it('Scheduler(0) and Scheduler(2^53-1) run; 2^53 and -1 are refused before anything runs', async () => {
    for (const s of [0, SEED_MAX]) {
      const sched = new Scheduler(s);
      let ran = false;
      sched.spawn('t', async () => { ran = true; });
      await sched.run();
      expect(ran).toBe(true);
    }
    expect(() => new Scheduler(2 ** 53)).toThrow(RangeError);
    expect(() => new Scheduler(-1)).toThrow(RangeError);
  });

  it('explore refuses a seed range that leaves 0..2^53-1, without running the scenario', async () => {
    let runs = 0;
    await expect(explore(async () => { runs++; }, 3, SEED_MAX - 1)).rejects.toThrow(RangeError);
    await expect(explore(async () => { runs++; }, 1, -1)).rejects.toThrow(RangeError);
    expect(runs).toBe(0);
    expect(await explore(async () => { runs++; }, 2, SEED_MAX - 1)).toBeNull();
    expect(runs).toBe(2);
  });
});
