// The rules a migration follows where HMM's migration APIs have differed: which holes are
// collected, whose device pages a pgmap_owner selects, what happens to a PTE-mapped piece of a
// large folio, whether a device-private page passes the reference check, and where a
// page-cache page may go. A caller picks one policy object per migration
// (migrateVmaSetup(args, policy)); it holds for that migration's setup, pages and finalize.
// mainlineMigratePolicy is today's mm/migrate_device.c; a layer that models another API
// supplies its own.

import type { MemoryType } from './memremap.js';
import type { Vma } from './vma.js';

export interface MigratePolicy {
  /** migrate_vma_collect_hole: whether the empty entries of `vma` are collected for migration. */
  collectsHoles(vma: Vma): boolean;
  /** Whether a device page whose pagemap has `pgmapOwner` is selected by a migration for `wanted`. */
  ownerMatches(pgmapOwner: unknown, wanted: unknown): boolean;
  /** A PTE-mapped page of a large folio: split the folio and collect its page (true), or leave the page where it is. */
  readonly splitsLargeFolios: boolean;
  /** migrate_vma_check_page: a device-private page passes without its references being counted. */
  readonly devicePrivateSkipsRefCheck: boolean;
  /** folio_migrate_mapping: whether a page-cache page may move into device memory of this type. */
  fileMayMoveTo(type: MemoryType): boolean;
}

/** Mainline: holes of anonymous VMAs only, owners must match, large folios are split, every page's references are counted, file pages stay in system memory. */
export const mainlineMigratePolicy: MigratePolicy = {
  collectsHoles: (vma) => vma.isAnonymous(),
  ownerMatches: (pgmapOwner, wanted) => pgmapOwner === wanted,
  splitsLargeFolios: true,
  devicePrivateSkipsRefCheck: false,
  fileMayMoveTo: () => false,
};
