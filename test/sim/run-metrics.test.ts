import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BREAKDOWN_KEYS, RunMetrics, type GpuEventSource } from '../../src/sim/run-metrics.js';

/** A stand-in for the GPU's event bus: the test emits by hand what the hardware and driver would. */
class FakeBus {
  private readonly l = new Map<string, Array<(e: unknown) => void>>();
  subscribe(kind: string, fn: (e: unknown) => void): () => void {
    const list = this.l.get(kind) ?? [];
    list.push(fn);
    this.l.set(kind, list);
    return () => list.splice(list.indexOf(fn), 1);
  }
  emit(kind: string, e: unknown): void {
    for (const f of this.l.get(kind) ?? []) f(e);
  }
}

const counters = { accesses: 0, remoteAccesses: 0, utlbMisses: 0, pageWalks: 0, faultsDropped: 0, replays: 0, tlbInvalidates: 0, htodBytes: 0, dtohBytes: 0 };

function setup(opts = {}) {
  const m = new RunMetrics({ replayNs: 100, remoteAccessNs: 1000, warpSlots: 10, ...opts });
  const bus = new FakeBus();
  m.attachGpu(bus as unknown as GpuEventSource);
  return { m, bus };
}

describe('run metrics: where the time went', () => {
  it('a copy beats compute, a batch beats a stall; faults waiting for a batch are stall; the parts add up', () => {
    const { m, bus } = setup();
    m.kernelLaunch(0, 1000);
    m.kernelRun(1000, 11_000);
    bus.emit('fault', { timeNs: 2000, dropped: false });
    bus.emit('fault', { timeNs: 2500, dropped: false });
    bus.emit('batch', { fetched: 2, coalesced: 2, duplicates: 0, throttled: 0, startNs: 3000, endNs: 6000 });
    bus.emit('migrate', { npages: 16, toDevice: true, cause: 'fault', bytes: 65536, startNs: 4000, endNs: 5000 });
    bus.emit('replay', { timeNs: 6000 });
    const b = m.breakdownNs(12_000, 0);
    expect(b.launch).toBe(1000);
    expect(b.stall).toBe(1000 + 100 + 1000); // 2000..3000 waiting, the replay's 100 ns, 11000..12000 nothing running
    expect(b.faultService).toBe(2000); // 3000..6000 less the copy
    expect(b.htod).toBe(1000);
    expect(b.compute).toBe(12_000 - 1000 - 2100 - 2000 - 1000);
    const sum = BREAKDOWN_KEYS.reduce((s, k) => s + b[k], 0);
    expect(sum).toBeCloseTo(12_000, 6);
  });

  it('eviction copies are told from other device-to-host copies; remote time is carved out of compute', () => {
    const { m, bus } = setup();
    m.kernelRun(0, 10_000);
    bus.emit('migrate', { npages: 512, toDevice: false, cause: 'eviction', bytes: 2 << 20, startNs: 1000, endNs: 3000 });
    bus.emit('migrate', { npages: 1, toDevice: false, cause: 'cpu-fault', bytes: 4096, startNs: 5000, endNs: 5500 });
    bus.emit('migrate', { npages: 512, toDevice: true, cause: 'fault', bytes: 0, startNs: 6000, endNs: 6000 }); // populate: no copy
    const b = m.breakdownNs(10_000, 20); // 20 remote accesses x 1000 ns / 10 slots
    expect(b.eviction).toBe(2000);
    expect(b.dtoh).toBe(500);
    expect(b.remote).toBe(2000);
    expect(b.compute).toBe(10_000 - 2500 - 2000);
  });

  it('the parts always add up to the total, whatever the intervals', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.nat(10_000), fc.nat(5000)), { maxLength: 60 }),
      fc.integer({ min: 1, max: 20_000 }),
      (ivs, total) => {
        const { m, bus } = setup();
        for (const [c, s, len] of ivs) {
          if (c === 0) m.kernelRun(s, s + len);
          else if (c === 1) m.cpuPhase(s, s + len);
          else if (c === 2) m.kernelLaunch(s, s + len);
          else if (c === 3) bus.emit('batch', { fetched: 1, coalesced: 1, duplicates: 0, throttled: 0, startNs: s, endNs: s + len });
          else bus.emit('migrate', { npages: 1, toDevice: c === 4, cause: c === 5 ? 'eviction' : 'fault', bytes: 4096, startNs: s, endNs: s + len });
        }
        const b = m.breakdownNs(total, 3);
        const sum = BREAKDOWN_KEYS.reduce((s, k) => s + b[k], 0);
        expect(sum).toBeCloseTo(total, 3);
        for (const k of BREAKDOWN_KEYS) expect(b[k]).toBeGreaterThanOrEqual(0);
      },
    ), { numRuns: 200 });
  });
});

describe('run metrics: counters and series', () => {
  it('counts faults, batches, pages each way, evictions, prefetches, thrashing; averages batches', () => {
    const { m, bus } = setup();
    for (let i = 0; i < 5; i++) bus.emit('fault', { timeNs: i, dropped: i === 4 });
    bus.emit('batch', { fetched: 5, coalesced: 3, duplicates: 2, throttled: 0, startNs: 10, endNs: 2010 });
    bus.emit('batch', { fetched: 1, coalesced: 1, duplicates: 0, throttled: 0, startNs: 3000, endNs: 4000 });
    bus.emit('migrate', { npages: 16, toDevice: true, cause: 'fault', bytes: 65536, startNs: 100, endNs: 200 });
    bus.emit('migrate', { npages: 48, toDevice: true, cause: 'prefetch', bytes: 3 * 65536, startNs: 200, endNs: 400 });
    bus.emit('migrate', { npages: 8, toDevice: false, cause: 'eviction', bytes: 32768, startNs: 500, endNs: 600 });
    bus.emit('evict', { pages: 8, timeNs: 600 });
    bus.emit('thrashing', { kind: 'detected', timeNs: 1 });
    bus.emit('thrashing', { kind: 'unpin', timeNs: 2 });
    const s = m.snapshot(5000, { ...counters, remoteAccesses: 7, utlbMisses: 9 });
    expect(s.gpu).toMatchObject({
      faults: 5, faultsDropped: 1, coalesced: 2, batches: 2, avgBatchSize: 2, avgBatchUs: 1.5, pagesMigratedToDevice: 64,
      pagesMigratedToSystem: 8, pagesEvicted: 8, pagesPrefetched: 48, thrashingEvents: 1, remoteAccesses: 7, tlbMisses: 9,
    });
    expect(s.simulatedTimeUs).toBe(5);
  });

  it('residency follows migrations; bandwidth spreads a copy\'s bytes over the buckets it spans; fault rate per ms', () => {
    const { m, bus } = setup({ initialVramPages: 10 });
    bus.emit('migrate', { npages: 100, toDevice: true, cause: 'fault', bytes: 100 * 4096, startNs: 0, endNs: 20_000 });
    bus.emit('migrate', { npages: 30, toDevice: false, cause: 'eviction', bytes: 30 * 4096, startNs: 60_000, endNs: 70_000 });
    for (let i = 0; i < 50; i++) bus.emit('fault', { timeNs: 1000 + i, dropped: false });
    const s = m.series(100_000, 10);
    expect(s.tUs).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(s.vramPages[0]).toBe(10);
    expect(s.vramPages[1]).toBe(10); // the copy ends at 20 us, in the third bucket
    expect(s.vramPages[2]).toBe(110);
    expect(s.vramPages[9]).toBe(80);
    expect(s.htodGBps[0]).toBeCloseTo((50 * 4096) / 10_000, 6);
    expect(s.htodGBps[1]).toBeCloseTo((50 * 4096) / 10_000, 6);
    expect(s.dtohGBps[6]).toBeCloseTo((30 * 4096) / 10_000, 6);
    expect(s.faultsPerMs[0]).toBe(50 * 100); // 50 faults in 10 us
  });
});
