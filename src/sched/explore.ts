// Running schedules. A program is a function that builds its tasks on a fresh Scheduler,
// runs it and checks what it must (the shape `explore` in scheduler.ts already takes); it
// throws when something is wrong. `execute` runs one schedule of a program: if a lock wait is
// learned on the way (mutex.ts), it runs the schedule again with that wait, until the run
// completes or fails. `exploreSchedules` runs a strategy's schedules until one fails or the
// budget is spent, then minimises the failing one (minimise.ts); `replaySchedule` runs a token.

import { PrefixChooser } from './bounded.js';
import { minimiseSchedule, type MinimiseOptions } from './minimise.js';
import { LockWaitLearned, Scheduler, type Chooser, type LockWait } from './scheduler.js';
import type { RunSummary, Strategy, StrategyCoverage } from './strategy.js';
import { decodeSchedule, encodeSchedule } from './token.js';

/** A program under test: builds tasks on `sched`, awaits sched.run(), throws on a failure. */
export type Program = (sched: Scheduler) => Promise<void>;

/** One executed schedule. */
export interface Execution extends RunSummary {
  /** The schedule's token (token.ts). */
  readonly token: string;
  /** Decisions made (steps run) before the program finished or failed. */
  readonly steps: number;
  /** What the program threw, or undefined when it passed. */
  readonly error: unknown;
  /** Lock waits learned on the way (each cost one more execution). */
  readonly lockWaits: readonly LockWait[];
  /** The scheduler of the final execution (its tasks, its trace when tracing was on). */
  readonly sched: Scheduler;
}

export interface ExecuteOptions {
  /** Called on each new scheduler before the program (turn tracing on, add hooks). */
  prepare?: (sched: Scheduler) => void;
  /** Give up after this many lock waits in one schedule. Default 64. */
  maxLockWaits?: number;
}

/** Run one schedule of `program`: `makeChooser` gives the chooser of each execution. */
export async function execute(program: Program, makeChooser: () => Chooser, opts: ExecuteOptions = {}): Promise<Execution> {
  const waits: LockWait[] = [];
  const max = opts.maxLockWaits ?? 64;
  for (;;) {
    const sched = new Scheduler(makeChooser());
    sched.lockWaits = waits;
    opts.prepare?.(sched);
    let error: unknown;
    try {
      await program(sched);
    } catch (e) {
      error = e;
    }
    if (error instanceof LockWaitLearned) {
      if (waits.length >= max) throw new Error(`more than ${max} lock waits in one schedule: ${error.message}`);
      waits.push(error.wait);
      continue;
    }
    return {
      token: encodeSchedule(sched.choices), choices: sched.choices, readyMasks: sched.readyMasks, currentReady: sched.currentReady,
      preemptions: sched.preemptions, steps: sched.step, failed: error !== undefined, error, lockWaits: waits, sched,
    };
  }
}

/** Run the schedule a token names (then the default policy past its end). */
export function replaySchedule(program: Program, token: string, opts: ExecuteOptions = {}): Promise<Execution> {
  const choices = decodeSchedule(token);
  return execute(program, () => new PrefixChooser(choices), opts);
}

export interface ExploreOptions extends ExecuteOptions {
  /** Schedules to run at most. Default 1000. */
  schedules?: number;
  /** Minimise a failing schedule before returning it (default true). */
  minimise?: boolean | MinimiseOptions;
}

export interface ExploreResult {
  /** Schedules run (not counting minimisation). */
  schedules: number;
  /** The failing schedule as found, and minimised; null when every schedule passed. */
  failure: null | { found: Execution; foundAt: number; minimised: Execution };
  coverage: StrategyCoverage;
}

/** Run `strategy`'s schedules of `program` until one fails or `schedules` have run. */
export async function exploreSchedules(program: Program, strategy: Strategy, opts: ExploreOptions = {}): Promise<ExploreResult> {
  const budget = opts.schedules ?? 1000;
  let n = 0;
  while (n < budget) {
    const spec = strategy.next();
    if (!spec) break;
    const run = await execute(program, () => spec.chooser(), opts);
    n++;
    strategy.done(run);
    if (run.failed) {
      const m = opts.minimise ?? true;
      const minimised = m === false ? run : await minimiseSchedule(program, run, { ...opts, ...(typeof m === 'object' ? m : {}) });
      return { schedules: n, failure: { found: run, foundAt: n, minimised }, coverage: strategy.coverage() };
    }
  }
  return { schedules: n, failure: null, coverage: strategy.coverage() };
}
