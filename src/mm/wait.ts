// Sleeping, as hmmsim models it. Kernel operations are atomic (docs/architecture.md decision 2): where
// the kernel would sleep (a page under migration, an invalidation in progress) a call throws
// WouldBlock with nothing changed, and its wait() resolves when it may try again.
//
// Code that must sleep and retry is written once, as steps: a generator that yields a label
// at every point where the kernel's code could be preempted, and the WouldBlock of any call
// that must sleep. runSteps runs steps straight through (the synchronous call: labels cost
// nothing, a sleep is thrown to the caller); runStepsAsync runs them as a task (a label lets
// the hooks preempt it, a sleep waits). blockingSteps is the one WouldBlock-retry loop;
// blocking() is its async form, used by Process.readAsync, a scheduler Task and the drivers.

import { WouldBlock } from './errno.js';

/** What steps yield: a preemption point's label, or the WouldBlock of a call that must sleep. */
export type Step = string | WouldBlock;

/** Code written as steps, returning T. */
export type Steps<T> = Generator<Step, T, void>;

/**
 * Where an async run may be preempted or put to sleep. A scheduler Task fits as it is; with
 * no hooks a preemption point costs nothing and a sleep awaits the wait.
 */
export interface SleepHooks {
  yield?(label: string): Promise<void>;
  sleep?(wait: Promise<void>, label: string): Promise<void>;
}

/** Call fn until it does not throw WouldBlock, yielding each WouldBlock to sleep on: the one retry loop. */
export function* blockingSteps<T>(fn: () => T): Steps<T> {
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof WouldBlock)) throw e;
      yield e;
    }
  }
}

/** Run steps straight through. A sleep ends the run: its WouldBlock is thrown (nothing is held). */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (typeof r.value !== 'string') {
      steps.return(undefined as T);
      throw r.value;
    }
  }
}

/** Run steps as a task: preemptible at every label, sleeping at every WouldBlock. */
export async function runStepsAsync<T>(steps: Steps<T>, hooks: SleepHooks = {}): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    const s = r.value;
    if (typeof s === 'string') {
      if (hooks.yield) await hooks.yield(s);
    } else {
      const w = s.wait();
      await (hooks.sleep ? hooks.sleep(w, s.message) : w);
    }
  }
}

/**
 * Retry `fn` after every WouldBlock until it completes: the sleeping form of a call.
 * `sleep` is how to wait: by default the wait is awaited; a scheduler task parks on it.
 */
export function blocking<T>(fn: () => T, sleep?: (wait: Promise<void>) => Promise<void>): Promise<T> {
  return runStepsAsync(blockingSteps(fn), sleep ? { sleep: (w) => sleep(w) } : {});
}
