// GpuEventBus.tapFaults: a run's metrics take faults' times without event objects; the tap
// sees every fault (dropped ones included) as the fault events do, in the same order.

import { describe, expect, it } from 'vitest';
import { executeRun, setupRun } from '../../src/sim/simulate.js';

describe('fault taps', () => {
  it('see the fault events\' times and drop flags, one per fault, and the run counts them', () => {
    const s = setupRun({ workload: 'ra', footprintMiB: 8, oversub: 1, seed: 3 });
    const bus = s.system.gpu.events;
    const events: Array<[number, boolean]> = [];
    const taps: Array<[number, boolean]> = [];
    bus.subscribe('fault', (e) => events.push([e.timeNs, e.dropped]));
    const off = bus.tapFaults((t, dropped) => taps.push([t, dropped]));
    const r = executeRun(s).record;
    off();
    expect(events.length).toBeGreaterThan(1000);
    expect(taps).toEqual(events);
    expect(r.gpu.faults).toBe(events.length);
    expect(r.gpu.faultsDropped).toBe(events.filter((e) => e[1]).length);
    expect(bus.faultTaps.length).toBe(0); // the run's own tap went with it
  });
});
