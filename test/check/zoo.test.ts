// The zoo (examples/drivers/): every driver that is correct but for one classic mistake is
// caught by PCT (depth 3) within 1,000 schedules and by bounded search with at most 2
// preemptions; the reported schedule is minimised and replays to the same violation.

import { describe, expect, it } from 'vitest';
import { checkDriver, loadDriver, replayCheck, type Invariant } from '../../src/check/index.js';
import { ZOO } from './zoo.js';

describe('the zoo: each mistake is caught and replays', () => {
  for (const { file, mistake, invariant } of ZOO) {
    describe(`${file}: ${mistake}`, () => {
      for (const strategy of ['pct', 'bounded'] as const) {
        it(`${strategy}: found within the budget, minimised, and the token replays the same violation`, async () => {
          const driver = await loadDriver(`examples/drivers/${file}`);
          const r = await checkDriver(driver, { strategies: [strategy], schedules: 1000, depth: 3, preemptions: 2 });
          expect(r.ok).toBe(false);
          const v = r.violation!;
          expect(v.foundAt).toBeLessThanOrEqual(1000);
          expect(invariant).toContain(v.invariant as Invariant);
          // Minimised: no more preemptions than the bound, and no worse than as found.
          expect(v.preemptions).toBeLessThanOrEqual(2);
          expect(v.preemptions).toBeLessThanOrEqual(v.found.preemptions);
          if (v.preemptions === v.found.preemptions) expect(v.steps).toBeLessThanOrEqual(v.found.steps);
          expect(v.trace.length).toBe(v.steps);
          const again = await replayCheck(driver, v.token);
          expect(again.ok).toBe(false);
          expect(again.violation!.invariant).toBe(v.invariant);
          expect(again.violation!.message).toBe(v.message);
          expect(again.violation!.token).toBe(v.token);
          const found = await replayCheck(driver, v.found.token);
          expect(found.violation?.invariant).toBe(v.invariant);
        });
      }
    });
  }

  it('dmirror (the kernel test driver\'s port) has the fork hole: caught in fork-mirror', async () => {
    const driver = await loadDriver('examples/drivers/dmirror.ts');
    const r = await checkDriver(driver, { strategies: ['bounded'], schedules: 1000, scenarios: ['fork-mirror'] });
    expect(r.violation?.invariant).toBe('device-maps-freed-frame');
    expect(r.violation?.message).toMatch(/child mirror: the device maps p0 -> pfn \d+, which has been freed/);
    expect(r.violation?.preemptions).toBe(1);
  });
});
