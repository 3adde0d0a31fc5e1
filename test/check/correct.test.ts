// The correct drivers pass: minimal.ts, migrating.ts, gpusvm.ts (svmdev on gpusvm), and
// dmirror (every scenario but fork-mirror, where the kernel test driver's hole is:
// zoo.test.ts) under every strategy.
// CI runs 300 schedules per strategy and driver; HMMSIM_CHECK_SCHEDULES raises it (the
// 10,000-schedule soak is scripts/check-soak.ts, its result in docs/check.md).

import { describe, expect, it } from 'vitest';
import { checkDriver, loadDriver, SCENARIOS } from '../../src/check/index.js';

const PER_STRATEGY = Number(process.env.HMMSIM_CHECK_SCHEDULES ?? 300);

const CORRECT: Array<{ file: string; scenarios?: string[] }> = [
  { file: 'minimal.ts' },
  { file: 'migrating.ts' },
  { file: 'gpusvm.ts' },
  { file: 'dmirror.ts', scenarios: SCENARIOS.map((s) => s.name).filter((n) => n !== 'fork-mirror') },
];

describe('correct drivers pass', () => {
  for (const { file, scenarios } of CORRECT) {
    it(`${file}: ${PER_STRATEGY} schedules per strategy, no violation`, async () => {
      const driver = await loadDriver(`examples/drivers/${file}`);
      const r = await checkDriver(driver, { schedules: PER_STRATEGY, scenarios });
      expect(r.violation, r.violation ? `${r.violation.invariant}: ${r.violation.message} (${r.violation.token})` : '').toBeNull();
      expect(r.ok).toBe(true);
      expect(r.schedules).toBe(3 * PER_STRATEGY);
      expect(r.strategies.map((s) => s.strategy)).toEqual(['pct', 'bounded', 'random']);
      // Every scenario the driver can run was run by every strategy.
      for (const s of r.strategies) for (const sc of s.scenarios) expect(sc.coverage.schedules, `${s.strategy} ${sc.scenario}`).toBeGreaterThan(0);
      if (file === 'minimal.ts') expect(r.skipped).toEqual([{ scenario: 'fork-mirror', reason: 'the driver has no migrateToDevice' }]);
      else expect(r.skipped).toEqual([]);
    }, 300_000);
  }
});
