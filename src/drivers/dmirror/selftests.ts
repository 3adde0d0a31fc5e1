// The kernel's HMM selftests (tools/testing/selftests/mm/hmm-tests.c) as hmmsim's conformance
// suite: every test under its kernel name, in its fixture (hmm, hmm2) and both variants
// (device-private and device-coherent memory), run against the dmirror driver. `hmmsim
// selftest` and the Vitest suite (test/drivers/dmirror) both run these same bodies through
// runSelftests / runSelftestCase, so "N of M kernel HMM selftests pass" is one number.

import {
  formatSelftestList, formatSelftestSummary, runSelftestCase, selftestCasesOf, type SelftestCase, type SelftestDef,
  type SelftestOptions, type SelftestResult,
} from './selftests/harness.js';
import { mirrorTests } from './selftests/cases-mirror.js';
import { migrateTests } from './selftests/cases-migrate.js';
import { snapshotTests } from './selftests/cases-snapshot.js';
import { hugeTests } from './selftests/cases-huge.js';
import { benchTests } from './selftests/cases-bench.js';

export {
  formatKselftestTotals, formatSelftestSummary, runSelftestCase, runSelftestsKselftest, selftestEnabled, selftestFullName,
  HMM_VARIANTS, HMM2_VARIANTS, SelftestFailure, SelftestSkip, type FixtureName, type HmmVariant, type Hmm2Variant,
  type SelftestCase, type SelftestDef, type SelftestFilterOption, type SelftestOptions, type SelftestResult,
} from './selftests/harness.js';

/** Every TEST_F of hmm-tests.c, in the file's order. */
export const HMM_SELFTESTS: readonly SelftestDef[] = [...mirrorTests, ...migrateTests, ...snapshotTests, ...hugeTests, ...benchTests];

/** The (fixture, variant, test) cases, in the order the kselftest harness runs them. */
export function selftestCases(opts: SelftestOptions = {}): SelftestCase[] {
  return selftestCasesOf(HMM_SELFTESTS, opts);
}

/** Run the selftests (each on a machine of its own) and return one result per case. */
export async function runSelftests(opts: SelftestOptions = {}): Promise<{ results: SelftestResult[] }> {
  const results: SelftestResult[] = [];
  for (const c of selftestCases(opts)) results.push(await runSelftestCase(c, opts));
  return { results };
}

/** runSelftests, then the summary line: `N of M kernel HMM selftests pass (K skipped)`. */
export async function runSelftestsSummary(opts: SelftestOptions = {}): Promise<{ results: SelftestResult[]; summary: string }> {
  const { results } = await runSelftests(opts);
  return { results, summary: formatSelftestSummary(results) };
}

/** What `hmm-tests -l` prints: the fixtures, their variants and their tests. */
export function formatHmmSelftestList(): string {
  return formatSelftestList(HMM_SELFTESTS);
}
