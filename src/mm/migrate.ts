// Migration between system and device memory: the public face of migrate_pfn.ts (the
// MIGRATE_PFN_* encoding, struct migrate_vma), migrate_device.ts (migrate_vma_setup / _pages /
// _finalize and the by-pfn migrate_device_* calls), migrate_policy.ts (the rules a migration
// follows) and migrate_entries.ts (split_folio).

export {
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_PFN_VALID, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_PFN_SHIFT, type MigratePfnArray, type MigrateVma, migratePfn, migratePfnToPage,
  migratePfnHas, newMigrateVma,
} from './migrate_pfn.js';
export {
  migrateVmaSetup, migrateVmaPages, migrateVmaFinalize, migrateDeviceRange, migrateDevicePfns, migrateDevicePages,
  migrateDeviceFinalize, migrateDeviceCoherentFolio,
} from './migrate_device.js';
export { mainlineMigratePolicy, type MigratePolicy } from './migrate_policy.js';
export { splitFolio } from './migrate_entries.js';
