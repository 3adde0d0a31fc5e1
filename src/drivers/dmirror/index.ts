/**
 * The kernel's HMM test driver, dmirror (lib/test_hmm.c), ported to hmmsim, and the kernel's
 * HMM selftests (tools/testing/selftests/mm/hmm-tests.c) that drive it: `hmmsim selftest`
 * runs them and prints kselftest's TAP output.
 *
 * @packageDocumentation
 * @module hmmsim/dmirror
 */

export {
  type HmmDmirrorCmd, hmmDmirrorCmd, HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_FLAGS, HMM_DMIRROR_COMMAND_NAMES, HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MEMORY_DEVICE_COHERENT,
  HMM_PRIVATE_DEVICE_ONE, HMM_PRIVATE_DEVICE_TWO, HMM_COHERENCE_DEVICE_ONE, HMM_COHERENCE_DEVICE_TWO, DMIRROR_NDEVICES,
} from './uapi.js';
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
export {
  HMM_SELFTESTS, selftestCases, runSelftests, runSelftestsSummary, runSelftestCase, runSelftestsKselftest, formatHmmSelftestList,
  formatSelftestSummary, formatKselftestTotals, selftestEnabled, selftestFullName, HMM_VARIANTS, HMM2_VARIANTS,
  type FixtureName, type HmmVariant, type Hmm2Variant, type SelftestCase, type SelftestDef,
  type SelftestFilterOption, type SelftestOptions, type SelftestResult,
} from './selftests.js';
export { type TestBase, type HmmTest, type Hmm2Test } from './selftests/harness.js';
