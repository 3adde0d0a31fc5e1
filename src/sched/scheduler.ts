// The deterministic scheduler. Kernel operations are synchronous and
// atomic; what the kernel runs as separate threads (a CPU thread, a device's fault handler,
// a driver's worker) are async tasks here. A task runs until it reaches a preemption point
// (`await task.yield()`) or must sleep (`await task.sleep(promise)`); then the scheduler
// asks its chooser which ready task runs next. `new Scheduler(seed)` chooses with a seeded
// PRNG, so the same seed gives the same interleaving and every race it finds can be
// replayed; the exploration strategies (strategy.ts, pct.ts, bounded.ts) are other choosers.
//
// Each time a task runs from one preemption point to the next is a step; before each step the
// scheduler makes a decision (which ready task runs). Decisions are recorded (the task chosen,
// who was ready, whether the choice preempted a task that could have gone on), so a run
// prints as a schedule token (token.ts) that replays it exactly.

import { blocking } from '../mm/wait.js';
import type { Mutex } from './mutex.js';
import { checkSeed, SeededRandom } from './random.js';

export type TaskState = 'ready' | 'running' | 'blocked' | 'done';

export class Task<T = unknown> {
  state: TaskState = 'ready';
  result: T | undefined;
  error: unknown = undefined;
  private resumeFn: (() => void) | null = null;
  /** Preemption points passed, for traces. */
  steps = 0;
  /** Steps this task has started (times the scheduler resumed it). */
  segments = 0;
  /** The preemption point or sleep the task stopped at last. */
  label = 'start';
  /** While blocked: the mutex it waits for, or what it sleeps on. */
  waitingOn: Mutex | string | null = null;

  constructor(readonly id: number, readonly name: string, private readonly sched: Scheduler) {}

  /** A preemption point: let the scheduler run any ready task (possibly this one) next. */
  yield(label?: string): Promise<void> {
    this.steps++;
    this.label = label ?? 'yield';
    this.sched.trace(this, this.label);
    return this.park('ready');
  }

  /** Sleep until `p` settles (a page unlock, an invalidation's end, another task's result). */
  async sleep(p: Promise<unknown>, label = 'sleep', on: Mutex | null = null): Promise<void> {
    this.label = label;
    this.waitingOn = on ?? label;
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

  private park(state: TaskState): Promise<void> {
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
    this.waitingOn = null;
    r();
  }
}

export interface TraceEntry {
  task: string;
  label: string;
}

/** What the scheduler knows when it decides which task runs next. */
export interface Decision {
  /** The decision's index in the run (0 for the first). */
  readonly step: number;
  /** The ready tasks, in id order (never empty). */
  readonly ready: readonly Task[];
  /** The task that ran the last step (null before the first). */
  readonly current: Task | null;
  /** Whether `current` is among `ready`: choosing another task then is a preemption. */
  readonly currentReady: boolean;
  /** Every task of the run, by id (a task that is ready but not in `ready` waits for a lock: see LockWait). */
  readonly tasks: readonly Task[];
}

/** Picks the task that runs next: one of `d.ready`. Strategies are choosers (strategy.ts). */
export interface Chooser {
  choose(d: Decision): Task;
}

/** The seeded choice: a uniformly random ready task. */
class SeededChooser implements Chooser {
  private readonly rand: SeededRandom;
  constructor(seed: number) {
    this.rand = SeededRandom.of(seed);
  }
  choose(d: Decision): Task {
    return d.ready[this.rand.below(d.ready.length)]!;
  }
}

/** A run stopped because every task that has not finished is asleep or waits for a lock. */
export class DeadlockError extends Error {
  override readonly name = 'DeadlockError';
  constructor(
    /** 'deadlock': tasks wait for locks that tasks in the set hold; 'lost-wakeup': a task sleeps on something nobody will signal. */
    readonly kind: 'deadlock' | 'lost-wakeup',
    message: string,
    readonly tasks: readonly string[],
  ) {
    super(message);
  }
}

/** A task awaited a promise the scheduler does not know about (not through yield, sleep or blocking). */
export class UnscheduledAwaitError extends Error {
  override readonly name = 'UnscheduledAwaitError';
}

/**
 * A lock wait learned during a run (Mutex.lockSync found the lock taken by another task, in
 * code that cannot sleep: an invalidate callback inside an atomic mm operation). From the
 * decision `fromStep` on, the task may not start its step number `segment` while the mutex
 * (the `mutex`-th created in the run) is held: the run is executed again with this knowledge
 * (explore.ts), which is how a CPU thread waits in a callback for a driver lock.
 */
export interface LockWait {
  readonly task: number;
  readonly segment: number;
  readonly mutex: number;
  readonly fromStep: number;
}

/** Thrown (and the run aborted) when a lock wait is learned; explore.ts runs the schedule again. */
export class LockWaitLearned extends Error {
  override readonly name = 'LockWaitLearned';
  constructor(readonly wait: LockWait, message: string) {
    super(message);
  }
}

export class Scheduler {
  readonly tasks: Task[] = [];
  readonly mutexes: Mutex[] = [];
  private readonly chooser: Chooser;
  private parkedSignal: (() => void) | null = null;
  private wakeSignal: (() => void) | null = null;
  readonly log: TraceEntry[] = [];
  /** Keep a trace of every preemption point (off by default: it allocates). */
  tracing = false;
  /** The task running the current step, or the last one that ran. */
  current: Task | null = null;
  /** Decisions made so far. */
  step = 0;
  /** Per decision: the id of the task chosen. */
  readonly choices: number[] = [];
  /** Per decision: the ready tasks, as a bit mask of ids (ids >= 31 are not recorded). */
  readonly readyMasks: number[] = [];
  /** Per decision: whether the task that ran before was still ready. */
  readonly currentReady: boolean[] = [];
  /** Decisions that preempted a task that could have gone on. */
  preemptions = 0;
  /** Set by explorers: lock waits learned in earlier executions of this schedule. */
  lockWaits: readonly LockWait[] = [];
  /** Called after every step (the task parked, slept or finished); a throw stops the run with that error. */
  onStep: ((task: Task) => void) | null = null;
  private aborted: unknown = undefined;
  /** True while run() runs. */
  running = false;
  private stuck: Task | null = null;

  /** The seed given to the constructor (NaN when a chooser was given). */
  readonly seed: number;

  /**
   * A seed (a uniformly random ready task at each decision, from a seeded PRNG: an integer from
   * 0 to 2^53-1, SEED_MAX; a RangeError otherwise) or a chooser.
   */
  constructor(seedOrChooser: number | Chooser) {
    this.seed = typeof seedOrChooser === 'number' ? seedOrChooser : NaN;
    this.chooser = typeof seedOrChooser === 'number' ? new SeededChooser(seedOrChooser) : seedOrChooser;
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
      task.label = 'done';
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

  /** Stop the run: run() rejects with `reason` once the running step ends. */
  abort(reason: unknown): void {
    if (this.aborted === undefined) this.aborted = reason;
  }

  /** Mutex.lockSync found `m` held by another task: learn the wait and abort the run. */
  learnLockWait(m: Mutex): never {
    const t = this.current!;
    const wait: LockWait = { task: t.id, segment: t.segments, mutex: this.mutexes.indexOf(m), fromStep: this.step - 1 };
    const e = new LockWaitLearned(wait, `${t.name} must wait for ${m.name}, held by ${m.owner?.name ?? '?'}`);
    this.abort(e);
    throw e;
  }

  /** A task whose next step waits for a lock (a learned lock wait whose mutex is held). */
  private gated(t: Task): boolean {
    for (const w of this.lockWaits) {
      if (w.task !== t.id || w.segment !== t.segments + 1 || this.step < w.fromStep) continue;
      const m = this.mutexes[w.mutex];
      if (m?.locked && m.owner !== t) return true;
    }
    return false;
  }

  private readyTasks(): Task[] {
    const ready: Task[] = [];
    const gate = this.lockWaits.length > 0;
    for (const t of this.tasks) if (t.state === 'ready' && !(gate && this.gated(t))) ready.push(t);
    return ready;
  }

  private deadlock(): DeadlockError {
    const waiting = this.tasks.filter((t) => t.state !== 'done');
    const desc: string[] = [];
    let lost: Task | null = null;
    for (const t of waiting) {
      const gateWait = t.state === 'ready' ? this.lockWaits.find((w) => w.task === t.id && w.segment === t.segments + 1) : undefined;
      const m = gateWait ? this.mutexes[gateWait.mutex] : t.waitingOn;
      if (m && typeof m === 'object') desc.push(`${t.name} waits for ${m.name} (held by ${m.owner?.name ?? 'nobody'})`);
      else {
        desc.push(`${t.name} asleep on ${String(m ?? t.label)}`);
        lost ??= t;
      }
    }
    if (lost) return new DeadlockError('lost-wakeup', `deadlock (lost wake-up): ${desc.join('; ')}, forever`, waiting.map((t) => t.name));
    return new DeadlockError('deadlock', `deadlock: ${desc.join('; ')}`, waiting.map((t) => t.name));
  }

  /** Run every task to completion. Rejects with the first task error, or on a deadlock. */
  async run(): Promise<void> {
    if (this.running) throw new Error('Scheduler.run is already running');
    this.running = true;
    // A run normally finishes within one microtask checkpoint (every wait is a promise some
    // task settles). A step still unfinished when a macrotask runs awaits something outside
    // the scheduler: report it rather than hang.
    let watchStep = -1;
    let watchdog: ReturnType<typeof setImmediate> | null = null;
    const watch = (): void => {
      watchdog = setImmediate(() => {
        if (this.parkedSignal && this.step === watchStep && this.current) {
          this.stuck = this.current;
          this.parked();
          return;
        }
        watchStep = this.step;
        watch();
      });
    };
    watch();
    try {
      for (;;) {
        if (this.aborted !== undefined) throw this.aborted;
        let ready = this.readyTasks();
        if (ready.length === 0) {
          if (this.tasks.every((t) => t.state === 'done')) break;
          // Wakes arrive as promise callbacks: let every pending one run, then look again.
          await new Promise<void>((r) => setImmediate(r));
          ready = this.readyTasks();
          if (ready.length === 0) throw this.deadlock();
        }
        const cur = this.current;
        const curReady = cur !== null && ready.includes(cur);
        const task = this.chooser.choose({ step: this.step, ready, current: cur, currentReady: curReady, tasks: this.tasks });
        if (!ready.includes(task)) throw new Error(`the chooser picked ${task?.name ?? String(task)}, which is not ready`);
        if (curReady && task !== cur) this.preemptions++;
        let mask = 0;
        for (const t of ready) if (t.id < 31) mask |= 1 << t.id;
        this.choices.push(task.id);
        this.readyMasks.push(mask);
        this.currentReady.push(curReady);
        this.step++;
        this.current = task;
        task.segments++;
        const stopped = new Promise<void>((r) => { this.parkedSignal = r; });
        watchStep = -1;
        task.resume();
        await stopped;
        if (this.stuck) {
          throw new UnscheduledAwaitError(`${this.stuck.name} awaited something the scheduler does not know about after ${this.stuck.label} (use task.yield, task.sleep or task.blocking)`);
        }
        if (this.aborted !== undefined) throw this.aborted;
        this.onStep?.(task);
      }
    } finally {
      if (watchdog) clearImmediate(watchdog);
      this.running = false;
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
