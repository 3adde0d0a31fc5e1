// A gpusvm instance migrating one of its ranges into device memory (Xe's xe_svm_alloc_vram,
// which calls drm_pagemap_populate_mm). The migration's MIGRATE invalidation is this
// instance's own: while it runs, gpusvm.ownMigration names it and the notifier does not pass
// it to the driver (the owner filter, notifier.ts). Instead, between migrate_vma_pages and
// migrate_vma_finalize, the range's pages are re-pointed at the device pages and rebound
// (ops.bind) under the notifier lock, as lib/test_hmm.c's dmirror_migrate_finalize_and_map
// maps what moved. If the range's pages were not valid (nothing on the device yet), or if not
// every page moved, the range is left unmapped and the next get_pages finds the pages anew.

import { KernelError } from '../../mm/errno.js';
import { MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, migratePfnHas, migratePfnToPage, type MigratePfnArray } from '../../mm/migrate.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE } from '../../hmm/range.js';
import type { DrmGpusvm, DrmGpusvmCtx } from './gpusvm.js';
import { drmPagemapPopulateMm, type DrmPagemap } from './pagemap.js';
import { drmGpusvmPagesValid, drmGpusvmUnmapPagesLocked } from './pages.js';
import type { DrmGpusvmRange } from './range.js';

/** Re-point range at the device pages a migration of [start, start + npages) just moved (notifier lock taken here). */
function ownMigrationMoved(gpusvm: DrmGpusvm, range: DrmGpusvmRange, dpagemap: DrmPagemap, start: number, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  gpusvm.notifierLock();
  try {
    const pages = range.pages;
    if (!drmGpusvmPagesValid(gpusvm, pages) || pages.flags.unmapped) return;
    let all = start === range.start && npages === range.npages;
    for (let i = 0; all && i < npages; i++) if (!migratePfnHas(src[i]!, MIGRATE_PFN_MIGRATE) || migratePfnToPage(dst[i]!) < 0) all = false;
    if (!all) {
      gpusvm.ops.unbind?.(gpusvm, range);
      drmGpusvmUnmapPagesLocked(gpusvm, pages);
      return;
    }
    const pfns = pages.pfns!;
    const flags = pages.hmmFlags!;
    let writable = true;
    for (let i = 0; i < npages; i++) {
      const d = dst[i]!;
      const w = migratePfnHas(d, MIGRATE_PFN_WRITE);
      pfns[i] = migratePfnToPage(d);
      flags[i] = HMM_PFN_VALID | (w ? HMM_PFN_WRITE : 0);
      if (!w) writable = false;
    }
    pages.flags.hasDevmemPages = true;
    pages.flags.writable = writable;
    pages.dpagemap = dpagemap;
    gpusvm.ops.bind?.(gpusvm, range);
  } finally {
    gpusvm.notifierUnlock();
  }
}

/**
 * Migrate `range` into dpagemap's memory on behalf of this instance (drm_pagemap_populate_mm
 * with the owner filter on). Best effort, as in the kernel: returns false if it did not
 * migrate (no room, pages that could not be collected, ...), true if it did. Throws only for
 * what is not a KernelError.
 */
export function gpusvmRangeMigrateToDevmem(gpusvm: DrmGpusvm, range: DrmGpusvmRange, dpagemap: DrmPagemap, ctx: DrmGpusvmCtx = {}): boolean {
  if (range.flags.unmapped || !range.flags.migrateDevmem) return false;
  gpusvm.ownMigration = { start: range.start, end: range.end, owner: dpagemap.owner };
  dpagemap.onMigrated = (start, src, dst, npages) => ownMigrationMoved(gpusvm, range, dpagemap, start, src, dst, npages);
  try {
    drmPagemapPopulateMm(dpagemap, range.start, range.end, gpusvm.mm, ctx.timesliceMs ?? 0);
    return true;
  } catch (e) {
    if (e instanceof KernelError) return false;
    throw e;
  } finally {
    gpusvm.ownMigration = null;
    dpagemap.onMigrated = null;
  }
}
