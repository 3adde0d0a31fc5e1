// Migration between system and device memory: the public face of migrate_pfn.ts (the
// MIGRATE_PFN_* encoding, struct migrate_vma), migrate_device.ts (mainline's
// migrate_vma_setup / _pages / _finalize and the by-pfn migrate_device_* calls) and
// migrate_entries.ts (split_folio), and 4.17's single call,
// migrate_vma(ops, vma, start, end, src, dst, private), which lived in mm/migrate.c and is
// built here on the same machinery.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import type { Vma } from './vma.js';
import {
  MIGRATE_ANY_OWNER, MIGRATE_PFN_DEVICE, MIGRATE_PFN_LOCKED, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM, migratePfnToPage, type MigratePfnArray, type MigrateVma,
} from './migrate_pfn.js';
import { migrateVmaFinalize, migrateVmaPages, migrateVmaSetup417 } from './migrate_device.js';

export {
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_PFN_VALID,
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_SHIFT, MIGRATE_PFN_LOCKED, MIGRATE_PFN_DEVICE, MIGRATE_PFN_ERROR,
  MIGRATE_ANY_OWNER, type MigratePfnArray, type MigrateVma, migratePfn, migratePfnToPage, migratePfnHas, newMigrateVma,
} from './migrate_pfn.js';
export {
  migrateVmaSetup, migrateVmaPages, migrateVmaFinalize, migrateDeviceRange, migrateDevicePfns, migrateDevicePages,
  migrateDeviceFinalize, migrateDeviceCoherentFolio,
} from './migrate_device.js';
export { splitFolio } from './migrate_entries.js';

/** struct migrate_vma_ops (4.14-4.19) */
export interface MigrateVmaOps417 {
  /**
   * For each src entry with MIGRATE: allocate a destination page, lock it, copy (or zero for
   * an empty), and set dst = migratePfn(pfn) | MIGRATE_PFN_LOCKED; leave 0 to skip, or set
   * MIGRATE_PFN_ERROR for a device page that cannot come back. Must not modify src.
   */
  allocAndCopy(vma: Vma, src: MigratePfnArray, dst: MigratePfnArray, start: number, end: number, priv: unknown): void;
  /** Entries still MIGRATE moved; update the device page table. Must not modify src or dst. */
  finalizeAndMap(vma: Vma, src: MigratePfnArray, dst: MigratePfnArray, start: number, end: number, priv: unknown): void;
}

/**
 * migrate_vma (4.17): start and end are page-masked; EINVAL for a missing vma, ops, src or dst,
 * a hugetlb or special vma, a range outside it, start >= end, or arrays not holding exactly
 * (end - start) / PAGE_SIZE entries. Otherwise it returns normally, even if nothing moved.
 *
 * 4.17 rules on the mainline machinery: device pages of any owner are collected (4.17 had no
 * owners); holes are collected in any VMA and the insertion refuses non-anonymous ones
 * (4.17 #42); a PTE-mapped piece of a THP is not collected; device-private pages always pass
 * the pin check; file pages may move to coherent (4.17's public) memory but not to private.
 * Collected pages get MIGRATE_PFN_LOCKED in src, device-private ones MIGRATE_PFN_DEVICE. With
 * nothing to migrate the callbacks are not called (4.17 #39). MIGRATE_PFN_ERROR in dst means
 * "no destination" to the core, nothing more (4.17 #44).
 */
export function migrateVma417(ops: MigrateVmaOps417, vma: Vma, start: number, end: number, src: MigratePfnArray, dst: MigratePfnArray, priv: unknown): void {
  if (!ops || typeof ops.allocAndCopy !== 'function' || typeof ops.finalizeAndMap !== 'function') fail('EINVAL', 'ops with allocAndCopy and finalizeAndMap are required');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) fail('EINVAL', 'start and end must be integers');
  start -= start % PAGE_SIZE;
  end -= end % PAGE_SIZE;
  const args: MigrateVma = {
    vma, start, end, src, dst, npages: 0, cpages: 0, pgmapOwner: MIGRATE_ANY_OWNER,
    flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT, faultPage: -1,
  };
  migrateVmaSetup417(args);
  try {
    if (args.cpages === 0) return;
    const phys = vma.mm!.machine.phys;
    for (let i = 0; i < args.npages; i++) {
      const pfn = migratePfnToPage(src[i]!);
      if (pfn < 0) continue;
      src[i] = src[i]! + MIGRATE_PFN_LOCKED + (phys.isDevicePrivate(pfn) ? MIGRATE_PFN_DEVICE : 0);
    }
    ops.allocAndCopy(vma, src, dst, start, end, priv);
    migrateVmaPages(args);
    ops.finalizeAndMap(vma, src, dst, start, end, priv);
  } finally {
    // A callback that throws still has its pages put back (nothing moves without
    // migrate_vma_pages) and its destinations released.
    migrateVmaFinalize(args);
  }
}
