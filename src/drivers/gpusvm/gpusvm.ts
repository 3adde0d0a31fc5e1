// struct drm_gpusvm (include/drm/drm_gpusvm.h, drivers/gpu/drm/drm_gpusvm.c): the GPU shared
// virtual memory state of one device mirroring one address space. It holds
//   - notifiers of a fixed size (notifier_size) over the mm, created on demand where the
//     device faults, each an mmu_interval_notifier with the GPU-SVM ranges inside it;
//   - the chunk sizes ranges are cut in (largest first; the last must be one page);
//   - the notifier lock, the driver lock of Documentation/mm/hmm.rst ("driver->update"): the
//     invalidate callback takes it for writing, get_pages takes it for reading to commit;
//   - the driver's ops (gpusvm-ops.ts).
// The other files of this folder hold one concept each: notifier.ts, range.ts, pages.ts (the
// retry protocol), invalidate.ts, garbage.ts, pagemap.ts (drm_pagemap: device memory and
// migration), vram.ts (a device-memory allocator), device-pagetable.ts, fault.ts (the GPU
// fault handler), check.ts, timeout.ts, interval-list.ts. Protocols that may sleep are written
// as steps (src/mm/wait.ts) and run synchronously or as tasks.
//
// Locks are flags, as in the rest of hmmsim: operations are atomic (docs/architecture.md decision 2), so
// a lock found taken means the kernel would deadlock (an mm operation called with the lock
// held, which then invalidates): that throws.

import { fail } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Mm } from '../../mm/mm.js';
import type { HmmRange } from '../../hmm/range.js';
import type { Clock } from '../clock.js';
import type { DrmGpusvmOps } from './gpusvm-ops.js';
import type { DrmGpusvmNotifier } from './notifier.js';
import type { DrmGpusvmRange } from './range.js';
import { HmmRangeTimeout } from './timeout.js';

export const SZ_4K = 4096;
export const SZ_64K = 64 * 1024;
export const SZ_2M = 2 * 1024 * 1024;
export const SZ_512M = 512 * 1024 * 1024;

/** The chunk sizes Xe cuts ranges in (xe_svm.c fault_chunk_sizes): 2 MiB, 64 KiB, 4 KiB. */
export const DRM_GPUSVM_DEFAULT_CHUNK_SIZES: readonly number[] = [SZ_2M, SZ_64K, SZ_4K];
/** The notifier size Xe uses (drm_gpusvm_init(..., SZ_512M, ...) in xe_svm_init). */
export const DRM_GPUSVM_DEFAULT_NOTIFIER_SIZE = SZ_512M;

/**
 * struct drm_gpusvm_ctx: the arguments of one operation. Fields left out are 0 / false.
 * `readOnly` is also how a driver asks get_pages for a read fault: hmmsim then leaves
 * HMM_PFN_REQ_WRITE out (Xe asks for write on every writable VMA; a read-faulting device
 * such as nouveau does not; docs/gpusvm.md).
 */
export interface DrmGpusvmCtx {
  /** dev_private_owner for hmm_range_fault: this device's private pages are reported, not faulted back. */
  devicePrivatePageOwner?: unknown;
  /** Ranges of at most this many bytes are created only where the CPU has faulted pages in. */
  checkPagesThreshold?: number;
  /** Minimum time migrated pages stay in device memory (drm_pagemap timeslice; not modelled, see docs). */
  timesliceMs?: number;
  /** Called from the invalidate callback: the notifier lock is held for writing already. */
  inNotifier?: boolean;
  /** Operating on read-only memory, or a read fault: no write request. */
  readOnly?: boolean;
  /** The range may be migrated to device memory (sets the range's migrateDevmem flag). */
  devmemPossible?: boolean;
  /** Only device memory will do: a system page makes get_pages fail with EFAULT. */
  devmemOnly?: boolean;
  /** System pages and one pagemap's pages may mix in a range. */
  allowMixed?: boolean;
}

/** Counters, for reports and tests. */
export interface DrmGpusvmStats {
  /** get_pages calls, and those that found the pages still valid. */
  getPages: number;
  getPagesValid: number;
  /** hmm_range_fault calls made by get_pages, evict and check_pages. */
  hmmRangeFaults: number;
  /** Passes that started over: EBUSY from hmm_range_fault, or read_retry after an invalidation. */
  retries: number;
  rangesInserted: number;
  rangesRemoved: number;
  notifiersInserted: number;
  notifiersRemoved: number;
  /** Invalidate callbacks run, and MIGRATE events skipped as this instance's own migrations. */
  invalidations: number;
  ownMigrationsSkipped: number;
}

export function newDrmGpusvmStats(): DrmGpusvmStats {
  return {
    getPages: 0, getPagesValid: 0, hmmRangeFaults: 0, retries: 0, rangesInserted: 0, rangesRemoved: 0, notifiersInserted: 0,
    notifiersRemoved: 0, invalidations: 0, ownMigrationsSkipped: 0,
  };
}

/** The migration an instance is running itself (drmGpusvmRangeMigrate): the owner filter's scope. */
export interface GpusvmOwnMigration {
  start: number;
  end: number;
  owner: unknown;
}

export interface DrmGpusvmOptions {
  /** Simulated time for HMM_RANGE_DEFAULT_TIMEOUT; without one, passes are counted (timeout.ts). */
  clock?: Clock | null;
}

/** struct drm_gpusvm */
export class DrmGpusvm {
  /** Notifiers in address order (the kernel's rb tree and notifier_list). */
  readonly notifiers: DrmGpusvmNotifier[] = [];
  /** Ranges the CPU unmapped, for the driver's garbage collector (garbage.ts). */
  readonly garbage: DrmGpusvmRange[] = [];
  readonly stats: DrmGpusvmStats = newDrmGpusvmStats();
  /** Set while this instance runs a migration of its own (the owner filter, notifier.ts). */
  ownMigration: GpusvmOwnMigration | null = null;
  /**
   * Synchronous preemption points inside the invalidate callback, for a race explorer: the
   * callback is part of an atomic mm operation and cannot await, but it can let other
   * synchronous work (a device access) run at these labels. Null: no points.
   */
  onInvalidatePoint: ((label: string) => void) | null = null;
  /** Set by drmGpusvmFini. */
  dead = false;
  /** hmm_range_fault arrays reused by synchronous get_pages (pages.ts); null while lent out. */
  scratch: HmmRange | null = null;
  private readers = 0;
  private writer = false;

  constructor(
    readonly name: string,
    readonly mm: Mm,
    readonly mmStart: number,
    readonly mmRange: number,
    readonly notifierSize: number,
    readonly ops: DrmGpusvmOps,
    readonly chunkSizes: readonly number[],
    readonly clock: Clock | null,
  ) {}

  /** A fresh HMM_RANGE_DEFAULT_TIMEOUT deadline. */
  timeout(): HmmRangeTimeout {
    return new HmmRangeTimeout(this.clock);
  }

  // ---- notifier_lock (an rw semaphore) ----

  /** drm_gpusvm_notifier_lock: down_read. */
  notifierLock(): void {
    if (this.writer) throw new Error(`${this.name}: notifier lock taken for reading inside the invalidate callback (a deadlock in the kernel)`);
    this.readers++;
  }
  /** drm_gpusvm_notifier_unlock: up_read. */
  notifierUnlock(): void {
    if (this.readers === 0) throw new Error(`${this.name}: notifier lock released but not held`);
    this.readers--;
  }
  /** down_write, as the invalidate callback takes it. */
  notifierLockWrite(): void {
    if (this.writer || this.readers > 0) throw new Error(`${this.name}: invalidation while the notifier lock is held (a deadlock in the kernel)`);
    this.writer = true;
  }
  notifierUnlockWrite(): void {
    this.writer = false;
  }
  /** lockdep_assert_held: the lock is held (for reading or writing). */
  get notifierLocked(): boolean {
    return this.writer || this.readers > 0;
  }
  /** lockdep_assert_held_write */
  get notifierLockedWrite(): boolean {
    return this.writer;
  }

  /** A preemption point inside the invalidate callback (see onInvalidatePoint). */
  invalidatePoint(label: string): void {
    this.onInvalidatePoint?.(label);
  }
}

function isPow2Pages(n: number): boolean {
  return Number.isSafeInteger(n) && n >= PAGE_SIZE && n % PAGE_SIZE === 0 && (n / PAGE_SIZE & (n / PAGE_SIZE - 1)) === 0;
}

/**
 * drm_gpusvm_init: a GPU SVM over [mmStart, mmStart + mmRange) of mm. EINVAL without an
 * invalidate op, for chunk sizes that are not page-size powers of two in descending order
 * ending with one page, for a notifier size that is not a power of two at least the largest
 * chunk, or for an unaligned window; ESRCH if the mm has exited. (The kernel also allows a
 * "pages only" mode without an mm; hmmsim always mirrors an mm.)
 */
export function drmGpusvmInit(
  name: string,
  mm: Mm,
  mmStart: number,
  mmRange: number,
  notifierSize: number,
  ops: DrmGpusvmOps,
  chunkSizes: readonly number[] = DRM_GPUSVM_DEFAULT_CHUNK_SIZES,
  options: DrmGpusvmOptions = {},
): DrmGpusvm {
  if (!ops || typeof ops.invalidate !== 'function') fail('EINVAL', 'drm_gpusvm_init: ops.invalidate is required');
  if (!Array.isArray(chunkSizes) || chunkSizes.length === 0) fail('EINVAL', 'drm_gpusvm_init: at least one chunk size is required');
  for (let i = 0; i < chunkSizes.length; i++) {
    const c = chunkSizes[i]!;
    if (!isPow2Pages(c)) fail('EINVAL', `drm_gpusvm_init: chunk size ${c} is not a power of two of pages`);
    if (i > 0 && c >= chunkSizes[i - 1]!) fail('EINVAL', 'drm_gpusvm_init: chunk sizes must be in descending order');
  }
  if (chunkSizes[chunkSizes.length - 1] !== PAGE_SIZE) fail('EINVAL', 'drm_gpusvm_init: the last chunk size must be one page (SZ_4K)');
  if (!isPow2Pages(notifierSize) || notifierSize < chunkSizes[0]!) fail('EINVAL', `drm_gpusvm_init: notifier size ${notifierSize} must be a power of two >= the largest chunk`);
  if (!Number.isSafeInteger(mmStart) || !Number.isSafeInteger(mmRange) || mmStart < 0 || mmRange <= 0 || mmStart % PAGE_SIZE || mmRange % PAGE_SIZE) {
    fail('EINVAL', 'drm_gpusvm_init: mmStart and mmRange must be page-aligned, mmRange > 0');
  }
  mm.assertLive();
  return new DrmGpusvm(name, mm, mmStart, mmRange, notifierSize, ops, [...chunkSizes], options.clock ?? null);
}
