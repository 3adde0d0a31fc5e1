// 4.17's single migration call, migrate_vma(ops, vma, start, end, src, dst, private) of
// mm/migrate.c with struct migrate_vma_ops, as a layer on mainline's migrate_vma_setup /
// _pages / _finalize: the same machinery under 4.17's rules (v417MigratePolicy), with 4.17's
// extra MIGRATE_PFN_* bits in src and dst.

import { fail } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Mm } from '../../mm/mm.js';
import type { Vma } from '../../mm/vma.js';
import {
  MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfnHas, migratePfnToPage,
  migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, type MigratePfnArray, type MigratePolicy, type MigrateVma,
} from '../../mm/migrate.js';
import { HmmDevmem } from './devmem.js';

// The 4.17 encoding's extra bits (include/linux/migrate.h of that era).
export const MIGRATE_PFN_LOCKED = 1 << 2;
export const MIGRATE_PFN_DEVICE = 1 << 4;
export const MIGRATE_PFN_ERROR = 1 << 5;
/** The pgmapOwner of a 4.17 migration: 4.17 had no owners, and its policy selects device pages of every owner. */
export const MIGRATE_ANY_OWNER: unique symbol = Symbol('any pgmap owner');

/**
 * 4.17's rules: device pages of any owner are collected; holes are collected in any VMA and
 * the insertion refuses non-anonymous ones (4.17 #42); a PTE-mapped piece of a THP is not
 * collected (the folio is not split); device-private pages always pass the reference check
 * (migrate_vma_check_page); file pages may move to coherent (4.17's "public") device memory
 * but not to private.
 */
export const v417MigratePolicy: MigratePolicy = {
  collectsHoles: () => true,
  ownerMatches: () => true,
  splitsLargeFolios: false,
  devicePrivateSkipsRefCheck: true,
  fileMayMoveTo: (type) => type === 'coherent',
};

/** The 4.17-only bits (LOCKED, DEVICE, ERROR) an entry carries. */
function v417Bits(v: number): number {
  return (migratePfnHas(v, MIGRATE_PFN_LOCKED) ? MIGRATE_PFN_LOCKED : 0) + (migratePfnHas(v, MIGRATE_PFN_DEVICE) ? MIGRATE_PFN_DEVICE : 0) +
    (migratePfnHas(v, MIGRATE_PFN_ERROR) ? MIGRATE_PFN_ERROR : 0);
}

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
 * The device page a 4.17 fault callback running in `mm` is for, or -1. Mainline's fault path
 * holds it locked and referenced around the callback (hmm_devmem's trampoline keeps it so), and
 * a migration started from the callback passes it to migrate_vma_setup as fault_page, as
 * mainline's migrate_to_ram does.
 */
function faultPageIn(mm: Mm): number {
  for (const pgmap of mm.machine.phys.pagemapList) {
    if (!(pgmap.owner instanceof HmmDevmem)) continue;
    const page = pgmap.owner.faultPageIn(mm);
    if (page >= 0) return page;
  }
  return -1;
}

/**
 * migrate_vma (4.17): start and end are page-masked; EINVAL for a missing vma, ops, src or dst,
 * a hugetlb or special vma, a range outside it, start >= end, or arrays not holding exactly
 * (end - start) / PAGE_SIZE entries. Otherwise it returns normally, even if nothing moved.
 *
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
    flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT,
    faultPage: vma?.mm ? faultPageIn(vma.mm) : -1,
  };
  migrateVmaSetup(args, v417MigratePolicy);
  try {
    if (args.cpages === 0) return;
    const phys = vma.mm!.machine.phys;
    const extra = new Float64Array(args.npages); // the 4.17 bits of each src entry
    for (let i = 0; i < args.npages; i++) {
      const pfn = migratePfnToPage(src[i]!);
      if (pfn < 0) continue;
      extra[i] = MIGRATE_PFN_LOCKED + (phys.isDevicePrivate(pfn) ? MIGRATE_PFN_DEVICE : 0);
      src[i] = src[i]! + extra[i]!;
    }
    ops.allocAndCopy(vma, src, dst, start, end, priv);
    // Mainline reads its own bits where 4.17 had LOCKED, DEVICE and ERROR (MIGRATE_PFN_COMPOUND
    // is 4.17's DEVICE): the core sees the entries without them, the driver with them.
    const dstExtra = new Float64Array(args.npages);
    for (let i = 0; i < args.npages; i++) {
      src[i] = src[i]! - extra[i]!;
      dstExtra[i] = v417Bits(dst[i]!);
      dst[i] = dst[i]! - dstExtra[i]!;
    }
    try {
      migrateVmaPages(args);
    } finally {
      for (let i = 0; i < args.npages; i++) {
        src[i] = src[i]! + extra[i]!;
        dst[i] = dst[i]! + dstExtra[i]!;
      }
    }
    ops.finalizeAndMap(vma, src, dst, start, end, priv);
  } finally {
    // A callback that throws still has its pages put back (nothing moves without
    // migrate_vma_pages) and its destinations released.
    migrateVmaFinalize(args);
  }
}
