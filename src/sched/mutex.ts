// A sleeping lock for driver code under the scheduler (the kernel's struct mutex, as a driver's
// "driver->update" lock of Documentation/mm/hmm.rst). Tasks take it with `await lock(task)`,
// a preemption point that sleeps while another task holds it. Code that cannot await, an
// invalidate callback called from inside an atomic mm operation, takes it with lockSync():
// if another task holds it, the kernel's CPU thread would sleep in the callback until it is
// released; hmmsim learns that wait (Scheduler.learnLockWait) and runs the schedule again
// with the CPU thread's step held back until the lock is free (explore.ts). Taking a lock the
// caller already holds is a deadlock, as in the kernel.

import { DeadlockError, type Scheduler, type Task } from './scheduler.js';

export class Mutex {
  /** The task holding the lock (null when free, or when taken outside any task: during setup). */
  owner: Task | null = null;
  private held = false;
  private waiters: Array<() => void> = [];

  constructor(readonly sched: Scheduler, readonly name: string) {
    sched.mutexes.push(this);
  }

  /** mutex_lock from a task: a preemption point, then sleep until the lock is free. */
  async lock(task: Task): Promise<void> {
    await task.yield(`mutex_lock(${this.name})`);
    while (this.held) {
      if (this.owner === task) throw new DeadlockError('deadlock', `deadlock: ${task.name} takes ${this.name}, which it holds`, [task.name]);
      await task.sleep(new Promise<void>((r) => this.waiters.push(r)), `mutex_lock(${this.name})`, this);
    }
    this.owner = task;
    this.held = true;
  }

  /**
   * mutex_lock where the caller cannot be preempted (an invalidate callback). Takes the lock
   * for the running task; if another task holds it, the run is stopped and executed again
   * with this task waiting for the lock before the step that got here (see the header).
   */
  lockSync(): void {
    const cur = this.sched.running ? this.sched.current : null;
    if (!this.held) {
      this.owner = cur;
      this.held = true;
      return;
    }
    if (this.owner === cur) {
      throw new DeadlockError('deadlock', `deadlock: ${cur?.name ?? 'the caller'} takes ${this.name}, which it holds (an mm operation under the driver lock whose invalidate callback takes it again)`, [cur?.name ?? '']);
    }
    this.sched.learnLockWait(this);
  }

  /** mutex_trylock: take the lock if it is free (a non-blockable invalidation's form). */
  trylock(): boolean {
    if (this.held) return false;
    this.owner = this.sched.running ? this.sched.current : null;
    this.held = true;
    return true;
  }

  /** mutex_unlock: release the lock and wake one waiter. */
  unlock(): void {
    if (!this.held) throw new Error(`${this.name}: unlock of a mutex nobody holds`);
    this.owner = null;
    this.held = false;
    this.waiters.shift()?.();
  }

  get locked(): boolean {
    return this.held;
  }
}
