// struct drm_gpusvm_notifier: one mmu_interval_notifier of notifier_size bytes, aligned, over
// the mirrored mm, created when the device first faults inside it and removed with its last
// range (drm_gpusvm_range_find_or_insert, drm_gpusvm_range_remove). It keeps its ranges in
// address order. Its callback (drm_gpusvm_notifier_invalidate) refuses non-blockable ranges,
// takes the notifier lock for writing, sets the sequence and calls the driver's invalidate.
//
// The owner filter. A MIGRATE invalidation that this gpusvm instance started itself
// (drmGpusvmRangeMigrate, while gpusvm.ownMigration covers it) is not passed to the driver:
// the migration re-points the range at device memory itself, under the same lock (as
// lib/test_hmm.c's dmirror and nouveau skip the invalidation of their own migrations). The
// sequence is still set, so a get_pages that snapshotted before the migration retries. The
// filter looks at who started the migration, not only at the event's owner: every mirror of
// the same device shares that owner (the pgmap owner), and a migration started elsewhere (a
// CPU fault's migrate_to_ram, another process's mirror after fork, an eviction) must reach
// this driver, or it would keep mapping a page that is being freed (issue 10, item 10).
// drm_gpusvm itself has no filter (Xe handles its own migrations as any invalidation);
// without an own migration running, hmmsim's behaves exactly as drm_gpusvm's.

import { mmuIntervalSetSeq, mmuNotifierRangeBlockable, MmuIntervalNotifier, type MmuNotifierRange } from '../../mm/notifier.js';
import type { DrmGpusvm } from './gpusvm.js';
import type { DrmGpusvmRange } from './range.js';
import { firstEndingAbove, intervalsIn } from './interval-list.js';

/** struct drm_gpusvm_notifier */
export class DrmGpusvmNotifier {
  readonly notifier: MmuIntervalNotifier;
  /** Ranges in address order (the kernel's rb tree and range_list). */
  readonly ranges: DrmGpusvmRange[] = [];
  /** flags.removed: the mmu interval notifier was removed (drm_gpusvm_fini). */
  removed = false;

  constructor(
    readonly gpusvm: DrmGpusvm,
    /** drm_gpusvm_notifier_start */
    readonly start: number,
    /** drm_gpusvm_notifier_end (exclusive) */
    readonly end: number,
  ) {
    this.notifier = new MmuIntervalNotifier({ invalidate: (mni, range, seq) => drmGpusvmNotifierInvalidate(this, mni, range, seq) });
  }

  /** drm_gpusvm_notifier_size */
  get size(): number {
    return this.end - this.start;
  }
}

/** Whether this MIGRATE range is the instance's own migration (see the header). */
function isOwnMigration(gpusvm: DrmGpusvm, r: MmuNotifierRange): boolean {
  const own = gpusvm.ownMigration;
  return own !== null && r.event === 'MIGRATE' && r.owner === own.owner && r.start >= own.start && r.end <= own.end;
}

/** drm_gpusvm_notifier_invalidate: the mmu_interval_notifier callback of every notifier. */
function drmGpusvmNotifierInvalidate(notifier: DrmGpusvmNotifier, mni: MmuIntervalNotifier, mmuRange: MmuNotifierRange, curSeq: number): boolean {
  const gpusvm = notifier.gpusvm;
  if (!mmuNotifierRangeBlockable(mmuRange)) return false;
  gpusvm.notifierLockWrite();
  try {
    mmuIntervalSetSeq(mni, curSeq);
    if (isOwnMigration(gpusvm, mmuRange)) {
      gpusvm.stats.ownMigrationsSkipped++;
      return true;
    }
    gpusvm.stats.invalidations++;
    gpusvm.invalidatePoint('gpusvm: invalidate, sequence set');
    gpusvm.ops.invalidate(gpusvm, notifier, mmuRange);
    gpusvm.invalidatePoint('gpusvm: invalidate, driver done');
  } finally {
    gpusvm.notifierUnlockWrite();
  }
  return true;
}

/** drm_gpusvm_notifier_find: the first notifier overlapping [start, end), or null. */
export function drmGpusvmNotifierFind(gpusvm: DrmGpusvm, start: number, end: number): DrmGpusvmNotifier | null {
  const n = gpusvm.notifiers[firstEndingAbove(gpusvm.notifiers, start)];
  return n && n.start < end ? n : null;
}

/** The notifiers overlapping [start, end), in order (drm_gpusvm_for_each_notifier). */
export function drmGpusvmNotifiersIn(gpusvm: DrmGpusvm, start: number, end: number): DrmGpusvmNotifier[] {
  return intervalsIn(gpusvm.notifiers, start, end);
}

/** drm_gpusvm_notifier_alloc: the notifier_size-aligned window around addr (not inserted yet). */
export function drmGpusvmNotifierAlloc(gpusvm: DrmGpusvm, addr: number): DrmGpusvmNotifier {
  const size = gpusvm.notifierSize;
  const start = Math.floor(addr / size) * size;
  return new DrmGpusvmNotifier(gpusvm, start, start + size);
}

/** drm_gpusvm_notifier_insert: into gpusvm's ordered list (the interval notifier is already inserted). */
export function drmGpusvmNotifierInsert(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier): void {
  gpusvm.notifiers.splice(firstEndingAbove(gpusvm.notifiers, notifier.start), 0, notifier);
  gpusvm.stats.notifiersInserted++;
}

/** drm_gpusvm_notifier_remove: out of gpusvm's list. */
export function drmGpusvmNotifierRemove(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier): void {
  const i = gpusvm.notifiers.indexOf(notifier);
  if (i >= 0) {
    gpusvm.notifiers.splice(i, 1);
    gpusvm.stats.notifiersRemoved++;
  }
}
