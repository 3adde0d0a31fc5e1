// Bounded-preemption search: every schedule with at most P preemptions, fewest first
// (iterative context bounding, as in Musuvathi and Qadeer's CHESS, PLDI 2007). A preemption
// is a decision that stops a task that could have gone on; a decision where the running task
// blocked or finished may pick any ready task at no cost.
//
// Each schedule is a prefix of decisions followed by the default policy (go on with the
// current task, else the lowest id ready). After a run, every decision past its prefix offers
// the other ready tasks as alternatives: a new prefix (the run's decisions up to there, then
// the alternative) whose preemption count is the run's up to there, plus one if the
// alternative preempts. Prefixes wait in one stack per preemption count; all of count 0 run
// before any of count 1, and so on. Every schedule is run once. A cap bounds the work; the
// coverage report says, per count, how many ran and whether that count was exhausted.

import type { Chooser, Decision, Task } from './scheduler.js';
import {
  CoverageCounter, defaultChoice, type RunSummary, type ScheduleSpec, type Strategy, type StrategyCoverage,
} from './strategy.js';

/** A prefix: the first `len` decisions of `base`, then the task `alt`. */
interface Item {
  base: readonly number[];
  len: number;
  alt: number;
  preemptions: number;
}

/**
 * Follows a list of decisions, then the default policy. A listed task that is not ready is an
 * error, unless it waits for a lock the run learned it needs (a schedule that would run a CPU
 * operation whose callback then sleeps on the driver lock): such a schedule does not exist,
 * and the chooser goes on with the default policy from there (`cutAt`).
 */
export class PrefixChooser implements Chooser {
  /** The decision where the prefix was left for a task waiting for a lock, or -1. */
  cutAt = -1;
  constructor(private readonly prefix: readonly number[]) {}
  choose(d: Decision): Task {
    if (d.step < this.prefix.length && this.cutAt < 0) {
      const id = this.prefix[d.step]!;
      for (const t of d.ready) if (t.id === id) return t;
      if (d.tasks[id]?.state !== 'ready') throw new ScheduleDivergedError(d.step, id, d.ready.map((t) => t.id));
      this.cutAt = d.step;
    }
    return defaultChoice(d);
  }
}

/** A schedule asked for a task that was not ready: the program is not the one the schedule was made for. */
export class ScheduleDivergedError extends Error {
  override readonly name = 'ScheduleDivergedError';
  constructor(readonly step: number, readonly wanted: number, readonly ready: readonly number[]) {
    super(`the schedule diverged at decision ${step}: it runs task ${wanted}, but the ready tasks are ${ready.join(', ') || 'none'} (a different driver, scenario or version?)`);
  }
}

export interface BoundedOptions {
  /** The most preemptions a schedule may have. Default 2. */
  preemptions?: number;
}

export class BoundedPreemption implements Strategy {
  readonly name = 'bounded';
  readonly maxPreemptions: number;
  private readonly stacks: Item[][];
  private readonly ran: number[];
  private pending: Item | null = null;
  private started = false;
  private readonly cov = new CoverageCounter();

  constructor(opts: BoundedOptions = {}) {
    this.maxPreemptions = opts.preemptions ?? 2;
    if (!Number.isInteger(this.maxPreemptions) || this.maxPreemptions < 0) throw new RangeError(`preemption bound must be an integer >= 0, got ${opts.preemptions}`);
    this.stacks = Array.from({ length: this.maxPreemptions + 1 }, () => []);
    this.ran = new Array<number>(this.maxPreemptions + 1).fill(0);
  }

  level(): number {
    if (!this.started) return 0;
    for (let b = 0; b <= this.maxPreemptions; b++) if (this.stacks[b]!.length > 0) return b;
    return Infinity;
  }

  next(): ScheduleSpec | null {
    if (!this.started) {
      this.started = true;
      this.pending = { base: [], len: 0, alt: -1, preemptions: 0 };
      return { label: 'bounded, 0 preemptions', chooser: () => new PrefixChooser([]) };
    }
    for (let b = 0; b <= this.maxPreemptions; b++) {
      const item = this.stacks[b]!.pop();
      if (!item) continue;
      this.pending = item;
      const prefix = item.base.slice(0, item.len);
      prefix.push(item.alt);
      return { label: `bounded, ${b} preemption${b === 1 ? '' : 's'}`, chooser: () => new PrefixChooser(prefix) };
    }
    return null;
  }

  done(run: RunSummary): void {
    this.cov.add(run);
    const item = this.pending;
    this.pending = null;
    if (!item) return;
    this.ran[Math.min(run.preemptions, this.maxPreemptions)]!++;
    const start = item.alt < 0 ? 0 : item.len + 1;
    const base = run.choices;
    let count = 0;
    for (let i = 0; i < base.length; i++) {
      const chosen = base[i]!;
      const cur = i > 0 ? base[i - 1]! : -1;
      const curReady = run.currentReady[i]!;
      if (i >= start) {
        const mask = run.readyMasks[i]!;
        for (let id = 0; id < 31; id++) {
          if (!(mask & (1 << id)) || id === chosen) continue;
          const cost = count + (curReady && id !== cur ? 1 : 0);
          if (cost <= this.maxPreemptions) this.stacks[cost]!.push({ base, len: i, alt: id, preemptions: cost });
        }
      }
      if (curReady && chosen !== cur) count++;
    }
  }

  /** Prefixes not yet run, per preemption count. */
  frontier(): number[] {
    return this.stacks.map((s) => s.length);
  }

  coverage(): StrategyCoverage {
    const left = this.frontier();
    return {
      schedules: this.cov.schedules,
      distinct: this.cov.distinct,
      maxSteps: this.cov.maxSteps,
      complete: this.started && left.every((n) => n === 0) && this.pending === null,
      bounds: this.ran.map((n, b) => ({ preemptions: b, schedules: n, complete: this.started && left.slice(0, b + 1).every((x) => x === 0) })),
    };
  }
}
