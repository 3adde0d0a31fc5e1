// The deterministic scheduler (DESIGN.md decision 2). Kernel operations are synchronous and
// atomic; what the kernel runs as separate threads (a CPU thread, a device's fault handler,
// a driver's worker) are async tasks here. A task runs until it reaches a preemption point
// (`await task.yield()`) or must sleep (`await task.sleep(promise)`); then the scheduler
// picks the next task with a seeded PRNG. The same seed gives the same interleaving, so
// every race it finds can be replayed; `explore` tries many seeds.

import { blocking } from '../mm/wait.js';
import { checkSeed, SeededRandom } from './random.js';

type State = 'ready' | 'running' | 'blocked' | 'done';

export class Task<T = unknown> {
  state: State = 'ready';
  result: T | undefined;
  error: unknown = undefined;
  private resumeFn: (() => void) | null = null;
  /** Preemption points passed, for traces. */
  steps = 0;

  constructor(readonly id: number, readonly name: string, private readonly sched: Scheduler) {}

  /** A preemption point: let the scheduler run any ready task (possibly this one) next. */
  yield(label?: string): Promise<void> {
    this.steps++;
    this.sched.trace(this, label ?? 'yield');
    return this.park('ready');
  }

  /** Sleep until `p` settles (a page unlock, an invalidation's end, another task's result). */
  async sleep(p: Promise<unknown>, label = 'sleep'): Promise<void> {
    this.sched.trace(this, label);
    const park = this.park('blocked');
    p.then(
      () => this.sched.wake(this),
      () => this.sched.wake(this),
    );
    await park;
  }

  /** Run a kernel call that may sleep: on WouldBlock, sleep on its wait and retry (mm's blocking()). */
  blocking<R>(fn: () => R, label = 'blocked'): Promise<R> {
    return blocking(fn, (w) => this.sleep(w, label));
  }

  private park(state: State): Promise<void> {
    this.state = state;
    const p = new Promise<void>((resolve) => {
      this.resumeFn = resolve;
    });
    this.sched.parked();
    return p;
  }

  /** Called by the scheduler: continue this task. */
  resume(): void {
    const r = this.resumeFn!;
    this.resumeFn = null;
    this.state = 'running';
    r();
  }
}

export interface TraceEntry {
  task: string;
  label: string;
}

export class Scheduler {
  private readonly tasks: Task[] = [];
  private readonly rand: SeededRandom;
  private parkedSignal: (() => void) | null = null;
  private wakeSignal: (() => void) | null = null;
  readonly log: TraceEntry[] = [];
  /** Keep a trace of every preemption point (off by default: it allocates). */
  tracing = false;

  /** `seed`: an integer from 0 to 2^53-1 (SEED_MAX); a RangeError otherwise. */
  constructor(readonly seed: number) {
    this.rand = SeededRandom.of(seed);
  }

  /** Add a task; it starts at the first scheduling decision. */
  spawn<T>(name: string, body: (task: Task<T>) => Promise<T>): Task<T> {
    const task = new Task<T>(this.tasks.length, name, this);
    this.tasks.push(task as Task);
    // Every task begins parked, so the scheduler decides who runs first.
    const start = new Promise<void>((resolve) => {
      (task as unknown as { resumeFn: () => void }).resumeFn = resolve;
    });
    void start.then(async () => {
      try {
        task.result = await body(task);
      } catch (e) {
        task.error = e;
      }
      task.state = 'done';
      this.parked();
    });
    return task;
  }

  trace(task: Task, label: string): void {
    if (this.tracing) this.log.push({ task: task.name, label });
  }

  /** A running task stopped (parked, blocked or finished). */
  parked(): void {
    const s = this.parkedSignal;
    this.parkedSignal = null;
    s?.();
  }

  wake(task: Task): void {
    if (task.state === 'blocked') task.state = 'ready';
    const s = this.wakeSignal;
    this.wakeSignal = null;
    s?.();
  }

  /** Run every task to completion. Rejects with the first task error, or on a deadlock. */
  async run(): Promise<void> {
    for (;;) {
      const ready = this.tasks.filter((t) => t.state === 'ready');
      if (ready.length === 0) {
        if (this.tasks.every((t) => t.state === 'done')) break;
        // Everyone is asleep: wait for a wake-up (a promise some task sleeps on settling).
        const woke = await Promise.race([
          new Promise<boolean>((r) => { this.wakeSignal = () => r(true); }),
          new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
        ]);
        if (!woke) throw new Error(`deadlock: ${this.tasks.filter((t) => t.state === 'blocked').map((t) => t.name).join(', ')} asleep forever`);
        continue;
      }
      const task = ready[this.rand.below(ready.length)]!;
      const stopped = new Promise<void>((r) => { this.parkedSignal = r; });
      task.resume();
      await stopped;
    }
    const failed = this.tasks.find((t) => t.error !== undefined);
    if (failed) throw failed.error;
  }
}

/**
 * Run `scenario` under `runs` seeds starting at `firstSeed`; return the first seed whose run
 * throws (with the error), or null if every interleaving passed. Every seed tried must be one
 * (0..SEED_MAX): a RangeError before anything runs otherwise.
 */
export async function explore(
  scenario: (sched: Scheduler) => Promise<void>,
  runs: number,
  firstSeed = 1,
): Promise<{ seed: number; error: unknown } | null> {
  checkSeed(firstSeed);
  if (runs > 0) checkSeed(firstSeed + (runs - 1));
  for (let i = 0; i < runs; i++) {
    const seed = firstSeed + i;
    const sched = new Scheduler(seed);
    try {
      await scenario(sched);
    } catch (error) {
      return { seed, error };
    }
  }
  return null;
}
