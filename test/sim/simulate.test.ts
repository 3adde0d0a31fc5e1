import { describe, expect, it } from 'vitest';
import { RunError, runSimulation, setupRun, type RunRecord } from '../../src/sim/simulate.js';
import { BREAKDOWN_KEYS } from '../../src/sim/run-metrics.js';

const MiB = 2 ** 20;
/** A small GPU (32 warp slots, small TLBs): the tests check mechanics, not the preset's scale. */
const SMALL = { hardware: { sms: 4, warpsPerSm: 8, utlbEntries: 64, l2TlbEntries: 512 } };
const strip = (r: RunRecord) => ({ ...r, wallMs: 0, cpuMs: 0 });

describe('runSimulation', () => {
  const r = runSimulation({ workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: SMALL }).record;

  it('records what issue 15 asks --json to print, with a breakdown that adds up to the simulated time', () => {
    expect(Object.keys(r)).toEqual(expect.arrayContaining(['config', 'simulatedTimeUs', 'breakdownUs', 'gpu', 'wallMs']));
    for (const k of ['compute', 'faultService', 'htod', 'dtoh', 'eviction', 'remote', 'stall']) expect(r.breakdownUs).toHaveProperty(k);
    for (const k of ['faults', 'batches', 'avgBatchSize', 'avgBatchUs', 'pagesMigratedToDevice', 'pagesMigratedToSystem', 'pagesEvicted',
      'pagesPrefetched', 'thrashingEvents', 'remoteAccesses', 'htodBytes', 'dtohBytes']) expect(typeof (r.gpu as unknown as Record<string, number>)[k]).toBe('number');
    const sum = BREAKDOWN_KEYS.reduce((s, k) => s + r.breakdownUs[k], 0);
    expect(sum).toBeCloseTo(r.simulatedTimeUs, 3);
    expect(r.config).toMatchObject({ workload: 'stream', driver: 'uvm', preset: 'gtx1080ti-pcie3', oversub: 1.25, vramMiB: 2 });
    expect(r.error).toBeNull();
  });

  it('moves the footprint to VRAM, pays for it in copies, and at 125% evicts', () => {
    expect(r.gpu.faults).toBeGreaterThan(0);
    expect(r.gpu.htodBytes).toBeGreaterThanOrEqual(2 * MiB);
    expect(r.gpu.pagesEvicted).toBeGreaterThan(0);
    expect(r.breakdownUs.htod).toBeGreaterThan(0);
    expect(r.kernels).toBe(2);
  });

  it('is deterministic for a seed', () => {
    const again = runSimulation({ workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: SMALL }).record;
    expect(strip(again)).toEqual(strip(r));
  });

  it('without oversubscription nothing is evicted, and the run is faster', () => {
    const fit = runSimulation({ workload: 'stream', footprintMiB: 4, oversub: 1, iterations: 2, costs: SMALL }).record;
    expect(fit.gpu.pagesEvicted).toBe(0);
    expect(fit.simulatedTimeUs).toBeLessThan(r.simulatedTimeUs);
  });

  it('a cost override changes the time it should: a 10x far-fault latency makes the run slower', () => {
    const slow = runSimulation({ workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: { ...SMALL, gpu: { batchOverheadNs: 450_000 } } }).record;
    expect(slow.simulatedTimeUs).toBeGreaterThan(r.simulatedTimeUs + (r.gpu.batches - 1) * 400);
  });

  it('CPU phases fault device pages back (migrate_to_ram) in pingpong', () => {
    const p = runSimulation({ workload: 'pingpong', footprintMiB: 2, oversub: 1, iterations: 2, costs: SMALL }).record;
    expect(p.cpuPhases).toBe(2);
    expect(p.cpu.migrateToRam).toBeGreaterThan(0);
    expect(p.gpu.pagesMigratedToSystem).toBeGreaterThan(0);
  });

  it('replays a trace file', () => {
    const t = runSimulation({ trace: 'examples/traces/vecadd.trace', oversub: 1, costs: SMALL }).record;
    expect(t.config.workload).toBe('trace:vecadd.trace');
    expect(t.kernels).toBe(1);
    expect(t.cpuPhases).toBe(2);
    expect(t.gpu.accesses).toBeGreaterThanOrEqual(48);
  });

  it('refuses, before building anything, a run that cannot fit in host memory, and bad options', () => {
    expect(() => setupRun({ footprintMiB: 10 * 1024 }, 256 * MiB)).toThrow(/needs about .* GiB of host memory/);
    expect(() => setupRun({ oversub: 0 })).toThrow(RunError);
    expect(() => setupRun({ preset: 'nope' })).toThrow(/unknown preset/);
    expect(() => setupRun({ workload: 'nope' })).toThrow(/unknown workload/);
    expect(() => setupRun({ driver: 'nope' })).toThrow(RunError);
  });
});
