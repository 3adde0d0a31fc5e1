// The kernel's HMM selftests (hmm-tests.c), one Vitest test per (fixture, variant, test), run
// through the same runner as `hmmsim selftest` (src/drivers/dmirror/selftests.ts), so the two
// report the same "N of M kernel HMM selftests pass". benchmark_thp_migration runs with small
// sizes here (quick) and asserts only that every migration succeeds.

import { afterAll, describe, expect, it } from 'vitest';
import {
  formatSelftestSummary, runSelftestCase, selftestCases, type SelftestOptions, type SelftestResult,
} from '../../../src/drivers/dmirror/selftests.js';

const opts: SelftestOptions = { quick: true };
const cases = selftestCases(opts);
const results: SelftestResult[] = [];

describe('kernel HMM selftests (tools/testing/selftests/mm/hmm-tests.c)', () => {
  it('has every test of hmm-tests.c in both variants of its fixture (38 tests, 76 cases)', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(38);
    expect(cases.length).toBe(76);
  });

  for (const variant of [...new Set(cases.map((c) => `${c.fixture}.${c.variant}`))]) {
    describe(variant, () => {
      for (const c of cases.filter((x) => `${x.fixture}.${x.variant}` === variant)) {
        it(c.name, async (ctx) => {
          const r = await runSelftestCase(c, opts);
          results.push(r);
          if (r.status === 'skip') ctx.skip(r.reason);
          if (r.status === 'fail') expect.fail(r.reason);
        });
      }
    });
  }

  afterAll(() => {
    if (results.length === cases.length) console.log(formatSelftestSummary(results));
  });
});
