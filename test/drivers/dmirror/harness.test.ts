// The kselftest harness of the port (src/drivers/dmirror/selftests/harness.ts): test_enabled's
// option rules, and the TAP it prints for passing, failing and skipped tests, read back by
// tap-parser in strict mode.

import { describe, expect, it } from 'vitest';
import { Parser, type FinalResults } from 'tap-parser';
import {
  ASSERT_EQ, formatKselftestTotals, runSelftestsKselftest, selftestCasesOf, selftestEnabled, TEST_F, type SelftestFilterOption,
} from '../../../src/drivers/dmirror/selftests/harness.js';

const c = (fixture: 'hmm' | 'hmm2', variant: string, name: string) => ({ fixture, variant, name });
const on = (opts: [SelftestFilterOption['opt'], string][], x = c('hmm', 'hmm_device_private', 'anon_read')): boolean =>
  selftestEnabled(x, opts.map(([opt, name]) => ({ opt, name })));

describe('kselftest harness: test_enabled', () => {
  it('no option runs everything; only exclusions run everything else', () => {
    expect(on([])).toBe(true);
    expect(on([['T', 'anon_write']])).toBe(true);
    expect(on([['T', 'anon_read']])).toBe(false);
    expect(on([['F', 'hmm2']])).toBe(true);
    expect(on([['V', 'hmm_device_private']])).toBe(false);
  });

  it('an inclusion anywhere makes unmatched cases off; the first option that matches decides', () => {
    expect(on([['t', 'anon_write']])).toBe(false);
    expect(on([['t', 'anon_read']])).toBe(true);
    expect(on([['T', 'anon_read'], ['v', 'hmm_device_private']])).toBe(false);
    expect(on([['v', 'hmm_device_private'], ['T', 'anon_read']])).toBe(true);
    expect(on([['f', 'hmm']])).toBe(true);
    expect(on([['f', 'hmm2']])).toBe(false);
  });

  it('-r takes the full name, exactly', () => {
    expect(on([['r', 'hmm.hmm_device_private.anon_read']])).toBe(true);
    expect(on([['r', 'hmm.hmm_device_private.anon_rea']])).toBe(false);
    expect(on([['r', 'anon_read']])).toBe(false);
  });
});

describe('kselftest harness: TAP output', () => {
  const defs = [
    TEST_F('hmm', 'passes', async () => {}),
    TEST_F('hmm', 'fails', async () => ASSERT_EQ(1, 2, 'one')),
    TEST_F('hmm', 'skips', async (t) => t.skip('not here')),
    TEST_F('hmm', 'logs', async (t) => t.log('a line\nand another')),
  ];
  const opts = { ramBytes: 64 << 20, chunkBytes: 4 << 20, filter: (x: { variant: string }) => x.variant === 'hmm_device_private' };

  it('prints the header, plan, RUN / OK / FAIL lines and results as the harness does; tap-parser (strict) counts one failure and one skip', async () => {
    const lines: string[] = [];
    const results = await runSelftestsKselftest(selftestCasesOf(defs, opts), opts, (l) => lines.push(l));
    lines.push(formatKselftestTotals(results));
    expect(lines).toEqual([
      'TAP version 13',
      '1..4',
      '# Starting 4 tests from 1 test cases.',
      '#  RUN           hmm.hmm_device_private.passes ...',
      '#            OK  hmm.hmm_device_private.passes',
      'ok 1 hmm.hmm_device_private.passes',
      '#  RUN           hmm.hmm_device_private.fails ...',
      '# hmm.hmm_device_private.fails: one: expected 2, got 1',
      '#          FAIL  hmm.hmm_device_private.fails',
      'not ok 2 hmm.hmm_device_private.fails',
      '#  RUN           hmm.hmm_device_private.skips ...',
      '#      SKIP      not here',
      '#            OK  hmm.hmm_device_private.skips',
      'ok 3 hmm.hmm_device_private.skips # SKIP not here',
      '#  RUN           hmm.hmm_device_private.logs ...',
      '# a line and another',
      '#            OK  hmm.hmm_device_private.logs',
      'ok 4 hmm.hmm_device_private.logs',
      '# FAILED: 3 / 4 tests passed.',
      '# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0',
    ]);
    const tap = await new Promise<FinalResults>((resolve) => new Parser({ strict: true }, resolve).end(lines.join('\n') + '\n'));
    expect(tap.ok).toBe(false);
    expect(tap.count).toBe(4);
    expect(tap.fail).toBe(1);
    expect(tap.skip).toBe(1);
    expect(tap.failures.map((f) => f.name)).toEqual(['hmm.hmm_device_private.fails']);
  });
});
