// A small kselftest harness for the port of tools/testing/selftests/mm/hmm-tests.c: fixtures
// with variants, TEST_F registration, ASSERT/EXPECT, SKIP, and a runner that sets a fixture up
// on a fresh machine, runs one test body and tears it down. Both `hmmsim selftest` and the
// Vitest suite (test/drivers/dmirror) run the bodies through runSelftestCase, so they count the same.

import { Machine } from '../../../mm/machine.js';
import type { Process } from '../../../mm/process.js';
import type { TmpFile } from '../../../mm/file.js';
import { checkInvariants } from '../../../mm/check.js';
import { PAGE_SHIFT, PAGE_SIZE } from '../../../mm/constants.js';
import { dmirrorInit, dmirrorDriverOf } from '../device.js';
import { hmmDmirrorOpen, type DmirrorFile } from '../file.js';
import {
  HMM_COHERENCE_DEVICE_ONE, HMM_COHERENCE_DEVICE_TWO, HMM_PRIVATE_DEVICE_ONE, HMM_PRIVATE_DEVICE_TWO,
} from '../uapi.js';

export type FixtureName = 'hmm' | 'hmm2';

export interface HmmVariant {
  readonly name: string;
  readonly deviceNumber: number;
}
export interface Hmm2Variant {
  readonly name: string;
  readonly deviceNumber0: number;
  readonly deviceNumber1: number;
}

/** FIXTURE_VARIANT_ADD(hmm, ...) */
export const HMM_VARIANTS: readonly HmmVariant[] = [
  { name: 'hmm_device_private', deviceNumber: HMM_PRIVATE_DEVICE_ONE },
  { name: 'hmm_device_coherent', deviceNumber: HMM_COHERENCE_DEVICE_ONE },
];
/** FIXTURE_VARIANT_ADD(hmm2, ...) */
export const HMM2_VARIANTS: readonly Hmm2Variant[] = [
  { name: 'hmm2_device_private', deviceNumber0: HMM_PRIVATE_DEVICE_ONE, deviceNumber1: HMM_PRIVATE_DEVICE_TWO },
  { name: 'hmm2_device_coherent', deviceNumber0: HMM_COHERENCE_DEVICE_ONE, deviceNumber1: HMM_COHERENCE_DEVICE_TWO },
];

export function hmmIsCoherentType(devNum: number): boolean {
  return devNum >= HMM_COHERENCE_DEVICE_ONE;
}

export interface SelftestOptions {
  /** Run only the cases this accepts. */
  filter?: (c: { fixture: FixtureName; variant: string; name: string }) => boolean;
  /** benchmark_thp_migration with small sizes (1/4, 1/2 and 1 THP) instead of the kernel's 7 sizes up to 128 THPs. */
  quick?: boolean;
  /** Buffer sizes for benchmark_thp_migration, in bytes (overrides quick). */
  benchmarkSizes?: readonly number[];
  /** First scheduler seed of anon_teardown's races (iteration c uses seed + c). Default 1. */
  seed?: number;
  /** RAM of each test's machine (default 1 GiB). */
  ramBytes?: number;
  /** Device memory chunk size (default the driver's 256 MiB). */
  chunkBytes?: number;
  /** Where tests print (the benchmark's table). */
  log?: (line: string) => void;
  /** Called after each case. */
  onResult?: (r: SelftestResult) => void;
}

export interface SelftestResult {
  fixture: FixtureName;
  variant: string;
  name: string;
  status: 'pass' | 'fail' | 'skip';
  reason?: string;
  ms: number;
}

/** An ASSERT_* that failed. */
export class SelftestFailure extends Error {
  override readonly name = 'SelftestFailure';
}
/** SKIP(): the test does not apply. */
export class SelftestSkip extends Error {
  override readonly name = 'SelftestSkip';
}

/** What every test body gets (the kernel's `self`, `variant` and harness). */
export interface TestBase {
  readonly machine: Machine;
  /** The test's process (the forked child the harness runs each test in). */
  readonly proc: Process;
  readonly pageSize: number;
  readonly pageShift: number;
  readonly opts: SelftestOptions;
  log(line: string): void;
  skip(reason: string): never;
  /** EXPECT_* failures so far (the test goes on, and fails at the end). */
  readonly expectFailures: string[];
  /** Open a tmpfile (O_TMPFILE); closed when the test's process exits. */
  trackFile(f: TmpFile): TmpFile;
}
export interface HmmTest extends TestBase {
  readonly self: { fd: DmirrorFile };
  readonly variant: HmmVariant;
}
export interface Hmm2Test extends TestBase {
  readonly self: { fd0: DmirrorFile; fd1: DmirrorFile };
  readonly variant: Hmm2Variant;
}

export type SelftestDef =
  | { readonly fixture: 'hmm'; readonly name: string; readonly body: (t: HmmTest) => Promise<void> }
  | { readonly fixture: 'hmm2'; readonly name: string; readonly body: (t: Hmm2Test) => Promise<void> };

/** TEST_F(fixture, name) */
export function TEST_F(fixture: 'hmm', name: string, body: (t: HmmTest) => Promise<void>): SelftestDef;
export function TEST_F(fixture: 'hmm2', name: string, body: (t: Hmm2Test) => Promise<void>): SelftestDef;
export function TEST_F(fixture: FixtureName, name: string, body: ((t: HmmTest) => Promise<void>) | ((t: Hmm2Test) => Promise<void>)): SelftestDef {
  return { fixture, name, body } as SelftestDef;
}

// ---- assertions ----

function show(v: unknown): string {
  return typeof v === 'number' && Number.isInteger(v) && Math.abs(v) > 255 ? `${v} (0x${v.toString(16)})` : String(v);
}

export function ASSERT_EQ(actual: unknown, expected: unknown, what = ''): void {
  if (actual !== expected) throw new SelftestFailure(`${what ? what + ': ' : ''}expected ${show(expected)}, got ${show(actual)}`);
}
export function ASSERT_NE(actual: unknown, notExpected: unknown, what = ''): void {
  if (actual === notExpected) throw new SelftestFailure(`${what ? what + ': ' : ''}expected anything but ${show(notExpected)}`);
}
export function ASSERT_GE(actual: number, bound: number, what = ''): void {
  if (!(actual >= bound)) throw new SelftestFailure(`${what ? what + ': ' : ''}expected >= ${show(bound)}, got ${show(actual)}`);
}
export function ASSERT_TRUE(v: boolean, what = ''): void {
  if (!v) throw new SelftestFailure(`${what ? what + ': ' : ''}expected true`);
}
export function ASSERT_FALSE(v: boolean, what = ''): void {
  if (v) throw new SelftestFailure(`${what ? what + ': ' : ''}expected false`);
}
/** EXPECT_EQ: record the failure and go on. */
export function EXPECT_EQ(t: TestBase, actual: unknown, expected: unknown, what = ''): void {
  if (actual !== expected) t.expectFailures.push(`${what ? what + ': ' : ''}expected ${show(expected)}, got ${show(actual)}`);
}
export function EXPECT_NE(t: TestBase, actual: unknown, notExpected: unknown, what = ''): void {
  if (actual === notExpected) t.expectFailures.push(`${what ? what + ': ' : ''}expected anything but ${show(notExpected)}`);
}

// ---- running ----

export interface SelftestCase {
  readonly fixture: FixtureName;
  readonly variant: string;
  readonly name: string;
  readonly def: SelftestDef;
}

/** The (fixture, variant, test) cases in the order the kselftest harness runs them. */
export function selftestCasesOf(defs: readonly SelftestDef[], opts: SelftestOptions = {}): SelftestCase[] {
  const out: SelftestCase[] = [];
  const add = (fixture: FixtureName, variant: string): void => {
    for (const def of defs) {
      if (def.fixture !== fixture) continue;
      const c = { fixture, variant, name: def.name, def };
      if (!opts.filter || opts.filter(c)) out.push(c);
    }
  };
  for (const v of HMM_VARIANTS) add('hmm', v.name);
  for (const v of HMM2_VARIANTS) add('hmm2', v.name);
  return out;
}

function message(e: unknown): string {
  return e instanceof Error ? `${e.name === 'SelftestFailure' ? '' : e.name + ': '}${e.message}` : String(e);
}

/** Set up the fixture on a fresh machine, run one test, tear down. Never throws. */
export async function runSelftestCase(c: SelftestCase, opts: SelftestOptions = {}): Promise<SelftestResult> {
  const t0 = performance.now();
  const result = (status: SelftestResult['status'], reason?: string): SelftestResult => {
    const r: SelftestResult = { fixture: c.fixture, variant: c.variant, name: c.name, status, ms: performance.now() - t0 };
    if (reason !== undefined) r.reason = reason;
    opts.onResult?.(r);
    return r;
  };
  let machine: Machine | null = null;
  try {
    machine = new Machine({ ramBytes: opts.ramBytes ?? 2 ** 30 });
    dmirrorInit(machine, opts.chunkBytes !== undefined ? { chunkBytes: opts.chunkBytes } : {});
    const proc = machine.spawn();
    const files: TmpFile[] = [];
    const base: TestBase = {
      machine, proc, pageSize: PAGE_SIZE, pageShift: PAGE_SHIFT, opts, expectFailures: [],
      log: (line) => opts.log?.(line),
      skip: (reason) => {
        throw new SelftestSkip(reason);
      },
      trackFile: (f) => (files.push(f), f),
    };
    // FIXTURE_SETUP
    let fds: DmirrorFile[];
    let outcome: { status: SelftestResult['status']; reason?: string };
    if (c.def.fixture === 'hmm') {
      const variant = HMM_VARIANTS.find((v) => v.name === c.variant)!;
      const fd = hmmDmirrorOpen(proc, variant.deviceNumber);
      fds = [fd];
      outcome = await runBody(() => (c.def as Extract<SelftestDef, { fixture: 'hmm' }>).body({ ...base, self: { fd }, variant }), base);
    } else {
      const variant = HMM2_VARIANTS.find((v) => v.name === c.variant)!;
      const fd0 = hmmDmirrorOpen(proc, variant.deviceNumber0);
      const fd1 = hmmDmirrorOpen(proc, variant.deviceNumber1);
      fds = [fd0, fd1];
      outcome = await runBody(() => (c.def as Extract<SelftestDef, { fixture: 'hmm2' }>).body({ ...base, self: { fd0, fd1 }, variant }), base);
    }
    // FIXTURE_TEARDOWN: close the device files, then the test's process exits.
    for (const fd of fds) await fd.close();
    for (const p of machine.processes) if (p.alive) p.exit();
    for (const f of files) while (f.opens > 0) f.close();
    if (outcome.status !== 'fail') {
      const leak = teardownCheck(machine);
      if (leak) outcome = { status: 'fail', reason: `teardown: ${leak}` };
    }
    return result(outcome.status, outcome.reason);
  } catch (e) {
    return result('fail', `harness: ${message(e)}`);
  } finally {
    machine?.dispose();
  }
}

async function runBody(body: () => Promise<void>, base: TestBase): Promise<{ status: SelftestResult['status']; reason?: string }> {
  try {
    await body();
  } catch (e) {
    if (e instanceof SelftestSkip) return { status: 'skip', reason: e.message };
    return { status: 'fail', reason: message(e) };
  }
  if (base.expectFailures.length > 0) return { status: 'fail', reason: base.expectFailures.join('; ') };
  return { status: 'pass' };
}

/**
 * After every process exited and every file was closed, the machine must be consistent
 * (src/mm/check.ts) and nothing may stay allocated: no RAM frame, no device page.
 */
function teardownCheck(machine: Machine): string | null {
  const errors = checkInvariants(machine);
  if (errors.length > 0) return `${errors.length} invariant violation(s): ${errors.slice(0, 3).join('; ')}`;
  if (machine.phys.usedRamFrames !== 0) return `${machine.phys.usedRamFrames} RAM frame(s) still in use after exit`;
  for (const d of dmirrorDriverOf(machine)?.devices ?? []) {
    if (d.usedPages !== 0) return `${d.name}: ${d.usedPages} device page(s) still in use after exit`;
  }
  return null;
}

/** The summary line both the CLI and the Vitest suite print. */
export function formatSelftestSummary(results: readonly SelftestResult[]): string {
  const pass = results.filter((r) => r.status === 'pass').length;
  const skip = results.filter((r) => r.status === 'skip').length;
  return `${pass} of ${results.length} kernel HMM selftests pass (${skip} skipped)`;
}

// ---- what kselftest_harness.h prints (TAP 13), and its options ----

/** The name the harness prints for a case: `fixture.variant.test` (test_name in __run_test). */
export function selftestFullName(c: { readonly fixture: FixtureName; readonly variant: string; readonly name: string }): string {
  return `${c.fixture}.${c.variant}.${c.name}`;
}

/**
 * One of the harness's filter options, in the order given: -t/-T include/exclude a test, -f/-F a
 * fixture, -v/-V a variant (by name), -r runs one test by its full name.
 */
export interface SelftestFilterOption {
  readonly opt: 't' | 'T' | 'f' | 'F' | 'v' | 'V' | 'r';
  readonly name: string;
}

/**
 * test_enabled(): the first option that matches decides (lower case includes, upper case
 * excludes); if none matches, a case runs unless some option was an inclusion.
 */
export function selftestEnabled(c: { readonly fixture: FixtureName; readonly variant: string; readonly name: string }, options: readonly SelftestFilterOption[]): boolean {
  let hasPositive = false;
  for (const { opt, name } of options) {
    const include = opt === opt.toLowerCase();
    hasPositive ||= include;
    switch (opt) {
      case 't': case 'T':
        if (c.name === name) return include;
        break;
      case 'f': case 'F':
        if (c.fixture === name) return include;
        break;
      case 'v': case 'V':
        if (c.variant === name) return include;
        break;
      case 'r':
        if (selftestFullName(c) === name) return true;
        break;
    }
  }
  return !hasPositive;
}

/**
 * test_harness_list_tests() (-l): per fixture, its variants and its tests side by side, the
 * global fixture (which hmm-tests.c leaves empty) first.
 */
export function formatSelftestList(defs: readonly SelftestDef[]): string {
  const row = (f: string, v: string, t: string): string => `${f.padEnd(20)} ${v.padEnd(25)} ${t}`.trimEnd();
  const lines = [row('# FIXTURE', 'VARIANT', 'TEST'), row('global', '', '')];
  const fixtures: [FixtureName, readonly { name: string }[]][] = [['hmm', HMM_VARIANTS], ['hmm2', HMM2_VARIANTS]];
  for (const [fixture, variants] of fixtures) {
    const tests = defs.filter((d) => d.fixture === fixture);
    lines.push('-'.repeat(80));
    for (let i = 0; i < Math.max(1, variants.length, tests.length); i++) {
      lines.push(row(i === 0 ? fixture : '', variants[i]?.name ?? '', tests[i]?.name ?? ''));
    }
  }
  return lines.join('\n');
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ');

/**
 * Run the cases and print, one line at a time as it happens, what test_harness_run() prints:
 * the TAP header and plan, `#  RUN` and `#  OK` / `#  FAIL` around each test, `ok N name`,
 * `ok N name # SKIP reason` or `not ok N name`, then `# PASSED: n / m tests passed.` (skips
 * count as passed there, as in the harness). A failure's reason, a skip's reason and whatever a
 * test logs are printed as `#` comments. Ends before the `# Totals:` line (formatKselftestTotals),
 * so that the caller can add its own comments first.
 */
export async function runSelftestsKselftest(cases: readonly SelftestCase[], opts: SelftestOptions, print: (line: string) => void): Promise<SelftestResult[]> {
  const testCases = new Set(cases.map((c) => `${c.fixture}.${c.variant}`)).size;
  print('TAP version 13');
  print(`1..${cases.length}`);
  print(`# Starting ${cases.length} tests from ${testCases} test cases.`);
  const results: SelftestResult[] = [];
  for (const c of cases) {
    const name = selftestFullName(c);
    print(`#  RUN           ${name} ...`);
    const r = await runSelftestCase(c, { ...opts, log: (line) => print(`# ${oneLine(line)}`) });
    results.push(r);
    const reason = oneLine(r.reason ?? '');
    if (r.status === 'skip') print(`#      SKIP      ${reason}`);
    if (r.status === 'fail') print(`# ${name}: ${reason || 'failed'}`);
    print(`#          ${r.status === 'fail' ? 'FAIL' : '  OK'}  ${name}`);
    const n = results.length;
    if (r.status === 'pass') print(`ok ${n} ${name}`);
    else if (r.status === 'skip') print(`ok ${n} ${name} # SKIP ${reason || 'unknown'}`);
    else print(`not ok ${n} ${name}`);
  }
  const passed = results.filter((r) => r.status !== 'fail').length;
  print(`# ${passed === results.length ? 'PASSED' : 'FAILED'}: ${passed} / ${results.length} tests passed.`);
  return results;
}

/** ksft_print_cnts(): the `# Totals:` line that ends the output. */
export function formatKselftestTotals(results: readonly SelftestResult[]): string {
  const count = (s: SelftestResult['status']): number => results.filter((r) => r.status === s).length;
  return `# Totals: pass:${count('pass')} fail:${count('fail')} xfail:0 xpass:0 skip:${count('skip')} error:0`;
}
