// The interface a driver implements for `hmmsim check` (docs/check.md teaches it). A driver
// module's default export (or its export named `driver`) is a CheckDriver, or a function that
// probes a device (CheckDriver['probe']). For each schedule the harness builds a new machine,
// probes one device on it, and attaches the device to processes; then device threads make
// accesses through the mirror's page table (a miss calls `fault`), and adversarial CPU
// threads change the address space under them.
//
// The driver uses hmmsim's mainline API as a kernel driver would (mmuIntervalNotifierInsert,
// mmuIntervalReadBegin / ReadRetry / SetSeq, hmmRangeFault, migrateVma*), and marks where the
// real code can be preempted with the hooks of DriverCtx: `await ctx.yield(label)`; a sleeping
// kernel call goes through ctx.blocking (it sleeps on WouldBlock and retries); its lock is a
// Mutex from env.mutex(), taken with `await ctx.lock(m)` in driver code and with m.lockSync()
// in its invalidate callback (which runs inside an atomic mm operation and cannot await).

import type { Machine } from '../mm/machine.js';
import type { Process } from '../mm/process.js';
import type { Mutex } from '../sched/mutex.js';
import type { DeviceMappings } from './device-pt.js';

/** What a device gets when it is probed. */
export interface DriverEnv {
  /** The machine (fresh for each schedule). */
  readonly machine: Machine;
  /**
   * This device's identity: use it as hmm_range_fault's devPrivateOwner and as the owner of
   * your dev_pagemap and migrations, as a kernel driver uses its struct device or pagemap.
   */
  readonly owner: object;
  /** A driver lock the scheduler knows (it sleeps in tasks, is waited for in callbacks, and deadlocks are reported). */
  mutex(name: string): Mutex;
}

/** The running thread, as driver code sees it: where it may be preempted or sleep. */
export interface DriverCtx {
  /** The thread's name (device, cpu, ...). */
  readonly name: string;
  /** A preemption point: another thread may run before this one goes on. */
  yield(label: string): Promise<void>;
  /** Sleep until p settles. */
  sleep(p: Promise<unknown>, label?: string): Promise<void>;
  /** A kernel call that may sleep: on WouldBlock, sleep on its wait and call again. */
  blocking<R>(fn: () => R, label?: string): Promise<R>;
  /** mutex_lock: a preemption point, then sleep until the lock is free. */
  lock(m: Mutex): Promise<void>;
}

/** A device mirroring processes. */
export interface CheckDevice {
  /**
   * Mirror `proc` on the device (open the device file, bind the address space): register
   * the interval notifier(s) and return the mirror. Called before the threads start.
   */
  attach(proc: Process, ctx: DriverCtx): CheckMirror | Promise<CheckMirror>;
}

/** One process mirrored on the device. */
export interface CheckMirror {
  /** The device page table the hardware walks: a DevicePageTable (gpusvm's), or a view of your own. */
  readonly pt: DeviceMappings;
  /**
   * A device access to the page at addr missed in pt (or needs write and the entry is read
   * only): fault it in. Throw a KernelError when the CPU cannot give the page (EFAULT: no
   * mapping, or ENOENT: no VMA; EPERM: no write permission; ESRCH: the process exited); the access then fails,
   * as a GPU access that cannot be resolved does. Any other error is a violation.
   */
  fault(addr: number, write: boolean, ctx: DriverCtx): Promise<void>;
  /** Optional: migrate [addr, addr + npages pages) into the device's memory (scenarios that need it are skipped without). */
  migrateToDevice?(addr: number, npages: number, ctx: DriverCtx): Promise<void>;
  /** Optional: migrate the device's pages in [addr, addr + npages pages) back to system memory. */
  migrateToSystem?(addr: number, npages: number, ctx: DriverCtx): Promise<void>;
  /** Stop mirroring: when this returns the device maps nothing of the process and no callback of this mirror runs again. */
  detach(ctx: DriverCtx): Promise<void>;
}

/** What a driver module exports. */
export interface CheckDriver {
  /** A name for reports (default: the module's file name). */
  readonly name?: string;
  /** Bring up the device on a fresh machine: register its memory (memremapPages) if it migrates. */
  probe(env: DriverEnv): CheckDevice | Promise<CheckDevice>;
}

/** The error a driver's fault may throw for an access the CPU cannot allow: its errno. */
export const ACCESS_ERRNOS: ReadonlySet<string> = new Set(['EFAULT', 'ENOENT', 'EPERM', 'ESRCH', 'EBUSY', 'ENOMEM', 'EACCES']);
