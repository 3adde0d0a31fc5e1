// Exploration strategies (docs/architecture.md decision 9: policies are objects). A strategy hands out
// schedules one after another; a schedule is a recipe for a Chooser (scheduler.ts), made
// afresh for each execution of it, so that running it again makes the same choices. After a
// schedule ran, the strategy is told what it did (the decisions, for strategies that learn
// from them: PCT's estimate of the run length, bounded search's frontier).
//
//   RandomWalk          a uniformly random ready task at every decision (random.ts' streams)
//   Pct                 probabilistic concurrency testing (pct.ts)
//   BoundedPreemption   every schedule with at most P preemptions, iterative deepening (bounded.ts)

import { SeededRandom, SEED_MAX } from './random.js';
import type { Chooser, Decision, Task } from './scheduler.js';

/** One schedule a strategy proposes. */
export interface ScheduleSpec {
  /** A fresh chooser for one execution of the schedule; every call gives one that chooses the same way. */
  chooser(): Chooser;
  /** What the schedule is, for reports ("pct #12", "bounded, 2 preemptions"). */
  readonly label: string;
}

/** What one schedule did, as its decisions were recorded (Scheduler.choices and friends). */
export interface RunSummary {
  /** Per decision, the id of the task chosen. */
  readonly choices: readonly number[];
  /** Per decision, the ready tasks as a bit mask of ids. */
  readonly readyMasks: readonly number[];
  /** Per decision, whether the task that ran before could have gone on. */
  readonly currentReady: readonly boolean[];
  readonly preemptions: number;
  readonly failed: boolean;
}

/** How much of the space of schedules a strategy has covered. */
export interface StrategyCoverage {
  /** Schedules run. */
  schedules: number;
  /** Distinct schedules among them (by their decisions). */
  distinct: number;
  /** Longest run, in steps. */
  maxSteps: number;
  /** True when the strategy has no schedule left (bounded search exhausted its bound). */
  complete: boolean;
  /** Bounded search: per preemption count, schedules run, and whether every one was. */
  bounds?: Array<{ preemptions: number; schedules: number; complete: boolean }>;
}

export interface Strategy {
  readonly name: string;
  /** The next schedule, or null when there is none left. */
  next(): ScheduleSpec | null;
  /** What the schedule `next` returned last did. */
  done(run: RunSummary): void;
  /**
   * The preemption bound the next schedule belongs to (bounded search; 0 for the others). A
   * harness that explores several programs runs the lowest level first, so iterative
   * deepening stays breadth-first across them.
   */
  level(): number;
  coverage(): StrategyCoverage;
}

/** The scheduler's default decision: go on with the current task if it can, else the lowest id ready. */
export function defaultChoice(d: Decision): Task {
  return d.currentReady ? d.current! : d.ready[0]!;
}

/** A uniform integer below n. */
export interface Rng {
  below(n: number): number;
}

/**
 * The PRNG stream strategies draw from for schedule number `stream` of seed `seed`: a
 * SeededRandom (random.ts) whose seed mixes the two, so neighbouring seeds and streams differ
 * and any schedule's stream is made without drawing the ones before it.
 */
export function rngOf(seed: number, stream: number): Rng {
  let h = Math.imul((seed % 2 ** 32) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(Math.floor(seed / 2 ** 32) + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) ^ Math.imul((stream % 2 ** 32) + 0x632be5ab, 0x846ca68b);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  // 53 bits: the mixed hash in the low 32, the stream's own bits above, so no two streams of one seed collide.
  return SeededRandom.of(((stream % 2 ** 21) * 2 ** 32 + h) % (SEED_MAX + 1));
}

/** Counts schedules, distinct ones and the longest run, for coverage(). */
export class CoverageCounter {
  schedules = 0;
  maxSteps = 0;
  private readonly seen = new Set<number>();
  private static readonly MAX_SEEN = 1 << 20;

  add(run: RunSummary): void {
    this.schedules++;
    if (run.choices.length > this.maxSteps) this.maxSteps = run.choices.length;
    if (this.seen.size < CoverageCounter.MAX_SEEN) this.seen.add(hashChoices(run.choices));
  }
  get distinct(): number {
    return this.seen.size;
  }
}

/** FNV-1a of a decision list (distinct-schedule counting). */
export function hashChoices(choices: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const c of choices) h = Math.imul(h ^ (c + 1), 0x01000193);
  return (h ^ choices.length) >>> 0;
}

/** A uniformly random ready task at every decision. */
export class RandomWalk implements Strategy {
  readonly name = 'random';
  private n = 0;
  private readonly cov = new CoverageCounter();
  constructor(readonly seed = 1) {}

  next(): ScheduleSpec {
    const stream = this.n++;
    const seed = this.seed;
    return {
      label: `random #${stream}`,
      chooser: () => {
        const rng = rngOf(seed, stream);
        return { choose: (d) => d.ready[rng.below(d.ready.length)]! };
      },
    };
  }
  done(run: RunSummary): void {
    this.cov.add(run);
  }
  level(): number {
    return 0;
  }
  coverage(): StrategyCoverage {
    return { schedules: this.cov.schedules, distinct: this.cov.distinct, maxSteps: this.cov.maxSteps, complete: false };
  }
}
