// A driver's kernel thread on simulated time (a workqueue item, a bottom half). Its body is a
// generator: it runs synchronously, as kernel code runs under its locks, and `yield ns` is
// where the thread sleeps or waits for the hardware while other events (warps, CPU threads,
// invalidations) run. A generator, not an async function: the event engine runs callbacks in
// a synchronous loop, so promise continuations would not run between events.

import type { EventQueue } from '../clock.js';

/** The body of a kernel thread: each yielded number is a sleep in nanoseconds. */
export type KThreadBody = Generator<number, void, void>;

export class KThread {
  private body: KThreadBody | null = null;
  /** Bodies run to completion. */
  runs = 0;

  constructor(private readonly queue: EventQueue, readonly name: string) {}

  get running(): boolean {
    return this.body !== null;
  }

  /** Start a body now; it runs until its first yield before start returns. Refused while one runs. */
  start(body: KThreadBody, onExit: (() => void) | null = null): void {
    if (this.body) throw new Error(`kthread ${this.name} is already running`);
    this.body = body;
    const step = (): void => {
      const r = body.next();
      if (r.done) {
        this.body = null;
        this.runs++;
        onExit?.();
        return;
      }
      this.queue.after(Math.max(0, r.value), step);
    };
    step();
  }
}
