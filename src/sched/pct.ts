// PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, "A
// Randomized Scheduler with Probabilistic Guarantees of Finding Bugs", ASPLOS 2010). Each task
// gets a random distinct priority, at least d; the highest-priority ready task always runs.
// d - 1 change points are drawn uniformly among the k steps of a run; when the step at change
// point i has run, the task that ran it drops to priority d - i, below every initial one.
//
// The guarantee: a bug of depth d (one that shows when d ordering constraints between steps
// hold) is found by one run with probability at least 1 / (n * k^(d-1)), for n tasks and k
// steps; the runs are independent, so N runs miss it with probability at most
// (1 - 1/(n k^(d-1)))^N. k is not known before a run: it is the longest run seen so far.

import type { Chooser, Decision, Task } from './scheduler.js';
import { CoverageCounter, rngOf, type RunSummary, type ScheduleSpec, type Strategy, type StrategyCoverage } from './strategy.js';

export interface PctOptions {
  /** The bug depth d to aim for (d - 1 priority change points). Default 3. */
  depth?: number;
  seed?: number;
  /** The number of steps k (an upper bound). Default: 32 for the first run, then the longest run seen. */
  steps?: number;
}

class PctChooser implements Chooser {
  private readonly prio: number[] = [];
  /** Step index -> the priority the task that ran it drops to. */
  private readonly change = new Map<number, number>();

  constructor(private readonly rng: ReturnType<typeof rngOf>, private readonly d: number, n: number, k: number) {
    // A random permutation of d .. d + n - 1.
    for (let i = 0; i < n; i++) this.prio.push(this.d + i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      [this.prio[i], this.prio[j]] = [this.prio[j]!, this.prio[i]!];
    }
    // d - 1 distinct change points among steps 0 .. k - 1 (fewer when k is smaller).
    for (let i = 1; i < this.d && this.change.size < k; ) {
      const s = rng.below(k);
      if (this.change.has(s)) continue;
      this.change.set(s, this.d - i);
      i++;
    }
  }

  private priority(t: Task): number {
    let p = this.prio[t.id];
    if (p === undefined) {
      // A task beyond the estimate of n: a fresh distinct priority above the others.
      p = this.d + this.prio.length + this.rng.below(1 << 20) / (1 << 20);
      this.prio[t.id] = p;
    }
    return p;
  }

  choose(d: Decision): Task {
    if (d.step > 0 && d.current) {
      const drop = this.change.get(d.step - 1);
      if (drop !== undefined) this.prio[d.current.id] = drop;
    }
    let best = d.ready[0]!;
    let bp = this.priority(best);
    for (let i = 1; i < d.ready.length; i++) {
      const t = d.ready[i]!;
      const p = this.priority(t);
      if (p > bp) {
        best = t;
        bp = p;
      }
    }
    return best;
  }
}

export class Pct implements Strategy {
  readonly name = 'pct';
  readonly depth: number;
  readonly seed: number;
  private n = 0;
  private k: number;
  /** k is a guess until a run has been seen (no `steps` option). */
  private kGuessed: boolean;
  private tasks = 2;
  private readonly cov = new CoverageCounter();

  constructor(opts: PctOptions = {}) {
    this.depth = opts.depth ?? 3;
    if (!Number.isInteger(this.depth) || this.depth < 1) throw new RangeError(`PCT depth must be an integer >= 1, got ${opts.depth}`);
    this.seed = opts.seed ?? 1;
    this.k = opts.steps ?? 32;
    this.kGuessed = opts.steps === undefined;
    if (!Number.isInteger(this.k) || this.k < 1) throw new RangeError(`PCT steps must be an integer >= 1, got ${opts.steps}`);
  }

  next(): ScheduleSpec {
    const stream = this.n++;
    const { seed, depth } = this;
    const n = this.tasks;
    const k = this.k;
    return {
      label: `pct d=${depth} #${stream}`,
      chooser: () => new PctChooser(rngOf(seed, stream), depth, n, k),
    };
  }

  done(run: RunSummary): void {
    this.cov.add(run);
    // Learn k (the longest run) and n (the most tasks) for the next schedules.
    if (this.kGuessed) {
      this.k = Math.max(1, run.choices.length);
      this.kGuessed = false;
    } else if (run.choices.length > this.k) this.k = run.choices.length;
    for (const c of run.choices) if (c + 1 > this.tasks) this.tasks = c + 1;
  }

  level(): number {
    return 0;
  }

  /** The guarantee for the runs so far: a depth-d bug is missed by one run with at most this probability. */
  missProbability(): number {
    return 1 - 1 / (this.tasks * this.k ** (this.depth - 1));
  }

  coverage(): StrategyCoverage {
    return { schedules: this.cov.schedules, distinct: this.cov.distinct, maxSteps: this.cov.maxSteps, complete: false };
  }
}
