// The qualitative shape of UVMSmart's published results (docs/validation.md), not its numbers:
// tree prefetch beats on-demand paging on streaming workloads; a single streaming pass barely
// slows down under oversubscription while random access falls off a cliff; and the ranking
// between them holds. Small footprints, so it runs in CI.

import { describe, expect, it } from 'vitest';
import { runSimulation, type RunOptions } from '../../src/sim/simulate.js';

// a small GPU (64 warp slots): the shape does not depend on the preset's scale, and CI stays quick
const SMALL = { hardware: { sms: 8, warpsPerSm: 8, utlbEntries: 64, l2TlbEntries: 512 } };
const t = (o: Partial<RunOptions>) => runSimulation({ preset: 'gtx1080ti-pcie3', driver: 'uvm', seed: 1, footprintMiB: 4, costs: SMALL, ...o }).record.simulatedTimeUs;

describe('validation shape (UVMSmart, spec section 2c)', () => {
  it('tree prefetch beats on-demand paging on a streaming workload (UVMSmart: on-demand 3.35x slower for backprop)', () => {
    const tree = t({ workload: 'backprop', oversub: 1, prefetch: 'tree' });
    const none = t({ workload: 'backprop', oversub: 1, prefetch: 'none' });
    expect(none / tree).toBeGreaterThan(1.3);
  });

  it('under 150% oversubscription one streaming pass stays nearly flat; random access falls off a cliff; the ranking holds', () => {
    // the preset's own GPU (1,792 warps) and backprop's compute near its calibrated value (docs/validation.md)
    const full = (o: Partial<RunOptions>) => runSimulation({ preset: 'gtx1080ti-pcie3', driver: 'uvm', seed: 1, footprintMiB: 8, ...o }).record.simulatedTimeUs;
    const bp1 = full({ workload: 'backprop', oversub: 1, computeNs: 200_000 });
    const bp15 = full({ workload: 'backprop', oversub: 1.5, computeNs: 200_000 });
    const ra1 = full({ workload: 'ra', oversub: 1, iterations: 4 });
    const ra15 = full({ workload: 'ra', oversub: 1.5, iterations: 4 });
    const regular = bp15 / bp1;
    const irregular = ra15 / ra1;
    expect(regular).toBeLessThan(1.5);
    expect(irregular).toBeGreaterThan(2);
    expect(irregular).toBeGreaterThan(regular * 1.5);
  });
});
