// Protocols written once, run two ways. The read_begin / hmm_range_fault / lock / read_retry
// loop and the fault handler built on it are generator functions that yield at every point
// where the kernel's code can be preempted (a label) and wherever it must sleep (the
// WouldBlock of the call that would sleep). runSteps runs one straight through, as the
// synchronous kernel call: labels cost nothing and a sleep is thrown to the caller as that
// WouldBlock. runStepsAsync runs the same steps as a task: at a label it lets the hooks
// preempt it (a scheduler Task's yield), at a sleep it sleeps until the wait resolves.

import { WouldBlock } from '../../mm/errno.js';

/** What a protocol yields: a preemption point's label, or the WouldBlock of a call that must sleep. */
export type Step = string | WouldBlock;

/** A protocol written as steps. */
export type Steps<T> = Generator<Step, T, void>;

/**
 * Where an async caller may be preempted or put to sleep. A scheduler Task (src/sched) fits
 * as it is; with no hooks a preemption point costs nothing and a sleep awaits the wait.
 */
export interface GpusvmHooks {
  yield?(label: string): Promise<void>;
  sleep?(p: Promise<void>, label: string): Promise<void>;
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
export async function runStepsAsync<T>(steps: Steps<T>, hooks: GpusvmHooks = {}): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    const s = r.value;
    if (typeof s === 'string') {
      if (hooks.yield) await hooks.yield(s);
    } else {
      const p = s.wait();
      await (hooks.sleep ? hooks.sleep(p, s.message) : p);
    }
  }
}
