// `hmmsim selftest` prints what a kselftest_harness.h binary prints, takes its options, and a
// TAP parser reads the output in strict mode.

import { describe, expect, it } from 'vitest';
import { Parser, type FinalResults } from 'tap-parser';
import { hmmsim } from './run-cli.js';

function parseTap(text: string): Promise<FinalResults> {
  return new Promise((resolve) => {
    const p = new Parser({ strict: true }, resolve);
    p.end(text);
  });
}

describe('hmmsim selftest', () => {
  it('prints TAP 13 (header, plan, RUN/OK lines, ok/SKIP results, Totals last) that tap-parser reads in strict mode with no failure', async () => {
    // anon_read and migrate_anon_huge_fault (device-private PMDs) pass in both variants, nothing skipped.
    const r = hmmsim('selftest', '-t', 'anon_read', '-t', 'migrate_anon_huge_fault');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 3)).toEqual(['TAP version 13', '1..4', '# Starting 4 tests from 2 test cases.']);
    expect(lines).toContain('#  RUN           hmm.hmm_device_private.anon_read ...');
    expect(lines).toContain('#            OK  hmm.hmm_device_private.anon_read');
    expect(lines).toContain('ok 1 hmm.hmm_device_private.anon_read');
    expect(lines).toContain('ok 2 hmm.hmm_device_private.migrate_anon_huge_fault');
    expect(lines.some((l) => / # SKIP /.test(l))).toBe(false);
    expect(lines).toContain('# PASSED: 4 / 4 tests passed.');
    const summary = lines.find((l) => / kernel HMM selftests pass /.test(l))!;
    expect(summary).toBe('# 4 of 4 kernel HMM selftests pass (0 skipped)');
    expect(lines.at(-1)).toMatch(/^# Totals: pass:\d+ fail:0 xfail:0 xpass:0 skip:\d+ error:0$/);
    // Every line is TAP: a version, a plan, a result or a comment.
    expect(lines.every((l) => /^(TAP version 13|1\.\.\d+|(not )?ok \d+ .*|#.*)$/.test(l))).toBe(true);

    const tap = await parseTap(r.stdout);
    expect(tap.ok).toBe(true);
    expect(tap.failures).toEqual([]);
    expect(tap.count).toBe(4);
    expect(tap.plan.end).toBe(4);
    // The N of M line and the Totals line agree with what the parser counted.
    const [, pass, skipped] = /^# (\d+) of 4 kernel HMM selftests pass \((\d+) skipped\)$/.exec(summary)!;
    expect(Number(skipped)).toBe(tap.skip);
    expect(Number(pass)).toBe(tap.pass - tap.skip);
    expect(lines.at(-1)).toBe(`# Totals: pass:${pass} fail:0 xfail:0 xpass:0 skip:${skipped} error:0`);
  });

  it('--filter matches the full printed name; -V excludes a variant; the first matching option decides', () => {
    const one = hmmsim('selftest', '--filter', 'hmm.hmm_device_private.anon_read');
    expect(one.status).toBe(0);
    // anon_read and anon_read_prot, etc.: every full name containing the text, nothing else.
    const run = one.stdout.split('\n').filter((l) => /^(not )?ok \d+ /.test(l)).map((l) => l.split(' ')[2]);
    expect(run.length).toBeGreaterThan(0);
    expect(run.every((n) => n!.startsWith('hmm.hmm_device_private.anon_read'))).toBe(true);
    expect(run).toContain('hmm.hmm_device_private.anon_read');

    const some = hmmsim('selftest', '-V', 'hmm_device_coherent', '-T', 'anon_read', '-t', 'anon_read', '-t', 'open_close');
    expect(some.status).toBe(0);
    const names = some.stdout.split('\n').filter((l) => /^ok \d+ /.test(l)).map((l) => l.split(' ')[2]);
    expect(names).toEqual(['hmm.hmm_device_private.open_close']);
  });

  it('a selection that matches nothing exits 2 with a message, not "0 of 0 pass"', () => {
    for (const args of [['--filter', 'no_such_test'], ['-t', 'no_such_test'], ['-r', 'hmm.anon_read']]) {
      const r = hmmsim('selftest', ...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('no test matches');
    }
  });

  it('-l lists fixtures, variants and tests as the harness does', () => {
    const r = hmmsim('selftest', '-l');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('# FIXTURE            VARIANT                   TEST');
    expect(lines).toContain('hmm                  hmm_device_private        open_close');
    expect(lines).toContain('                     hmm_device_coherent       anon_read');
    expect(lines).toContain('hmm2                 hmm2_device_private       migrate_mixed');
  });

  it('--seed refuses what is not a seed', () => {
    const r = hmmsim('selftest', '-t', 'open_close', '--seed', '-3');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('a seed is an integer from 0 to 2^53-1');
  });
});
