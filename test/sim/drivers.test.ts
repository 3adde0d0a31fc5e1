// hmmsim run --driver kfd | nouveau: the simulator drives each driver through the same run,
// and the record shows each one's pipeline.
import { describe, expect, it } from 'vitest';
import { RunError, runSimulation, setupRun } from '../../src/sim/simulate.js';

const SMALL = { hardware: { sms: 4, warpsPerSm: 8, utlbEntries: 64, l2TlbEntries: 512 } };

describe('runSimulation --driver kfd and nouveau', () => {
  it('kfd: pages move in 2 MiB windows, faults are serviced one at a time, CPU phases bring windows back', () => {
    const r = runSimulation({ driver: 'kfd', workload: 'pingpong', footprintMiB: 4, oversub: 1, iterations: 2, costs: SMALL }).record;
    expect(r.error).toBeNull();
    expect(r.config.driver).toBe('kfd');
    expect(r.config.evict).toBe('ttm');
    expect(r.gpu.avgBatchSize).toBe(1);
    expect(r.cpu.migrateToRam).toBeGreaterThan(0);
    expect(r.gpu.pagesMigratedToSystem % 512).toBe(0);
    expect(r.gpu.pagesMigratedToSystem).toBeGreaterThan(0);
  });

  it('kfd under oversubscription evicts whole BOs, in the order --evict names', () => {
    const ttm = runSimulation({ driver: 'kfd', workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: SMALL }).record;
    const lru = runSimulation({ driver: 'kfd', workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: SMALL, evict: 'lru' }).record;
    expect(ttm.gpu.pagesEvicted).toBeGreaterThan(0);
    expect(ttm.gpu.pagesEvicted % 512).toBe(0);
    expect(lru.config.evict).toBe('lru');
  });

  it('nouveau: nothing moves to VRAM on faults; every access is remote; batches are whole drains', () => {
    const r = runSimulation({ driver: 'nouveau', workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: SMALL }).record;
    expect(r.error).toBeNull();
    expect(r.gpu.pagesMigratedToDevice).toBe(0);
    expect(r.gpu.pagesEvicted).toBe(0);
    expect(r.gpu.remoteAccesses).toBe(r.gpu.accesses);
    expect(r.gpu.avgBatchSize).toBeGreaterThan(1);
  });

  it('kfd with XNACK off (--xnack off): the memory is registered first, no fault is raised, every access is remote', () => {
    const o = { driver: 'kfd', workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: SMALL } as const;
    const on = runSimulation(o).record;
    const off = runSimulation({ ...o, xnack: false }).record;
    expect(on.config.xnack).toBeNull();
    expect(on.gpu.faults).toBeGreaterThan(0);
    expect(on.gpu.pagesMigratedToDevice).toBeGreaterThan(0);
    expect(off.config.xnack).toBe(false);
    // unregistered memory would make the first fault fatal: the kernel would be killed
    expect(off.error).toBeNull();
    expect(off.gpu.faults).toBe(0);
    expect(off.gpu.pagesMigratedToDevice).toBe(0);
    expect(off.gpu.accesses).toBe(on.gpu.accesses);
    expect(off.gpu.remoteAccesses).toBe(off.gpu.accesses);
    // xnack: true is the driver's default, asked for explicitly
    const onExplicit = runSimulation({ ...o, xnack: true }).record;
    expect({ ...onExplicit, wallMs: 0, cpuMs: 0, config: null }).toEqual({ ...on, wallMs: 0, cpuMs: 0, config: null });
  });

  it('uvm --large-pages on: the same run with 2 MiB and 64 KiB leaves misses the TLBs less; off is the default', () => {
    const o = { driver: 'uvm', workload: 'stream', footprintMiB: 8, oversub: 1, iterations: 3, costs: SMALL } as const;
    const def = runSimulation(o).record;
    const on = runSimulation({ ...o, largePages: true }).record;
    expect([def.error, on.error]).toEqual([null, null]);
    expect([def.config.largePages, on.config.largePages]).toEqual([null, true]);
    expect(on.gpu.accesses).toBe(def.gpu.accesses);
    expect(on.gpu.tlbMisses).toBeLessThan(def.gpu.tlbMisses / 2);
    const off = runSimulation({ ...o, largePages: false }).record;
    expect({ ...off, wallMs: 0, cpuMs: 0, config: null }).toEqual({ ...def, wallMs: 0, cpuMs: 0, config: null });
    expect(() => setupRun({ driver: 'kfd', largePages: true })).toThrow(/--large-pages applies to the uvm driver only/);
  });

  it('--xnack is kfd\'s: refused for uvm and nouveau', () => {
    expect(() => setupRun({ driver: 'uvm', xnack: false })).toThrow(/--xnack applies to the kfd driver only/);
    expect(() => setupRun({ driver: 'nouveau', xnack: true })).toThrow(RunError);
  });

  it('refuses what a driver does not have: a prefetcher for kfd or nouveau, an eviction order for nouveau', () => {
    expect(() => setupRun({ driver: 'kfd', prefetch: 'tree' })).toThrow(RunError);
    expect(() => setupRun({ driver: 'nouveau', evict: 'lru' })).toThrow(RunError);
    expect(() => setupRun({ driver: 'kfd', evict: 'uvm' })).toThrow(/unknown kfd eviction order/);
  });
});
