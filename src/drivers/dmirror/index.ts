// The kernel's HMM test driver (lib/test_hmm.c, "dmirror") on hmmsim, and its selftests.

export * from './uapi.js';
export {
  DEVMEM_CHUNK_SIZE, DmirrorChunk, DmirrorDevice, DmirrorDriver, dmirrorDriverOf, dmirrorInit, dmirrorPageToDevice,
  type DmirrorOptions,
} from './device.js';
export {
  Dmirror, DmirrorBounce, dmirrorBlocking, DMIRROR_RANGE_FAULT_TRIES, DMIRROR_WINDOW_PAGES, type DmirrorCtx, type DmirrorPte,
} from './mirror.js';
export {
  DMIRROR_MIGRATE_WINDOW_PAGES, dmirrorDevmemFault, dmirrorMigrateToDevice, dmirrorMigrateToSystem,
} from './migrate.js';
export { DmirrorFile, hmmDmirrorOpen, type DmirrorIoctlOptions } from './file.js';
