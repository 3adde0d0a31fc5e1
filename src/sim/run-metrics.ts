// What one simulation measured: counters, where the simulated time went, and time series —
// collected by listening to the GPU's events (src/drivers/gpu/events.ts) and the mm's
// (src/mm/events.ts), and from the phases the simulator runs. Nothing here changes the run.
//
// Where the time went: every instant of the run goes to the most important activity in
// progress at that instant, in this order — host-to-device copy, eviction copy, other
// device-to-host copy, fault service (a batch being serviced), stall (faults waiting for the
// driver, a replay taking effect), kernel launch, compute (warps or a CPU phase running). So
// the parts add up to the total, and a copy that overlaps other warps' compute counts as copy
// time (the time the copy engine is on the critical path of someone). Remote-access time is
// inside warps' compute: it is carved out of compute as remote accesses x remoteAccessNs /
// resident warp slots (an estimate of its share; the accesses overlap).

import type { EventBus } from '../mm/events.js';

/** The fields of the GPU's events this collector reads (structurally the GPU's own event types). */
export interface GpuFaultLike { timeNs: number; dropped: boolean }
export interface GpuBatchLike { fetched: number; coalesced: number; duplicates: number; throttled: number; startNs: number; endNs: number }
export interface GpuReplayLike { timeNs: number }
export interface GpuMigrateLike { npages: number; toDevice: boolean; cause: string; bytes: number; startNs: number; endNs: number }
export interface GpuEvictLike { pages: number; timeNs: number }
export interface GpuThrashingLike { kind: string; timeNs: number }

/** A GPU event bus, as far as this collector needs it. */
export interface GpuEventSource {
  subscribe(kind: 'fault', fn: (e: GpuFaultLike) => void): () => void;
  subscribe(kind: 'batch', fn: (e: GpuBatchLike) => void): () => void;
  subscribe(kind: 'replay', fn: (e: GpuReplayLike) => void): () => void;
  subscribe(kind: 'migrate', fn: (e: GpuMigrateLike) => void): () => void;
  subscribe(kind: 'evict', fn: (e: GpuEvictLike) => void): () => void;
  subscribe(kind: 'thrashing', fn: (e: GpuThrashingLike) => void): () => void;
  /** Faults' times and drop flags without event objects, where the bus offers it (GpuEventBus.tapFaults). */
  tapFaults?(fn: (timeNs: number, dropped: boolean) => void): () => void;
}

/** The GPU's own counters at the end of a run (the subset a report shows). */
export interface GpuCountersLike {
  accesses: number;
  remoteAccesses: number;
  utlbMisses: number;
  pageWalks: number;
  faultsDropped: number;
  replays: number;
  tlbInvalidates: number;
  htodBytes: number;
  dtohBytes: number;
}

export const BREAKDOWN_KEYS = ['compute', 'faultService', 'htod', 'dtoh', 'eviction', 'remote', 'stall', 'launch'] as const;
export type BreakdownKey = typeof BREAKDOWN_KEYS[number];
export type Breakdown = Record<BreakdownKey, number>;

// Interval categories, in priority order (lower wins).
const C_HTOD = 0;
const C_EVICT = 1;
const C_DTOH = 2;
const C_SERVICE = 3;
const C_STALL = 4;
const C_LAUNCH = 5;
const C_COMPUTE = 6;
const NCAT = 7;
const CAT_KEY: BreakdownKey[] = ['htod', 'eviction', 'dtoh', 'faultService', 'stall', 'launch', 'compute'];

/** A growable array of numbers on a Float64Array. */
class Column {
  a = new Float64Array(1024);
  n = 0;
  push(x: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  view(): Float64Array {
    return this.a.subarray(0, this.n);
  }
}

export interface SeriesPoint { tUs: number }
export interface TimeSeries {
  /** Bucket width (µs) and each bucket's end time (µs). */
  intervalUs: number;
  tUs: number[];
  /** Pages resident in VRAM at the end of each bucket. */
  vramPages: number[];
  /** GPU faults raised per ms during each bucket. */
  faultsPerMs: number[];
  /** Copy bandwidth during each bucket, GB/s (10^9 bytes). */
  htodGBps: number[];
  dtohGBps: number[];
}

export interface RunMetricsSnapshot {
  simulatedTimeUs: number;
  breakdownUs: Breakdown;
  gpu: {
    faults: number;
    faultsDropped: number;
    /** Faults merged into another of their batch (duplicates). */
    coalesced: number;
    batches: number;
    avgBatchSize: number;
    avgBatchUs: number;
    pagesMigratedToDevice: number;
    pagesMigratedToSystem: number;
    pagesEvicted: number;
    pagesPrefetched: number;
    thrashingEvents: number;
    remoteAccesses: number;
    tlbMisses: number;
    accesses: number;
    replays: number;
    htodBytes: number;
    dtohBytes: number;
  };
  cpu: { faults: number; faultsByKind: Record<string, number>; migrateToRam: number };
  kernels: number;
  cpuPhases: number;
}

export interface RunMetricsOptions {
  replayNs: number;
  remoteAccessNs: number;
  /** Warp slots on the GPU (sms x warpsPerSm): the parallelism remote accesses overlap with. */
  warpSlots: number;
  /** Pages already resident in VRAM at the start. */
  initialVramPages?: number;
}

export class RunMetrics {
  // intervals per category
  private readonly iStart: Column[] = Array.from({ length: NCAT }, () => new Column());
  private readonly iEnd: Column[] = Array.from({ length: NCAT }, () => new Column());
  // raw series
  private readonly faultT = new Column();
  private readonly migT0 = new Column();
  private readonly migT1 = new Column();
  private readonly migBytes = new Column();
  private readonly migPages = new Column();
  private readonly migDir = new Column();
  /** batch sizes (coalesced faults serviced) and service times (ns) */
  /** @internal */
  readonly batchSizes = new Column();
  /** @internal */
  readonly batchNs = new Column();
  private pending: number[] = [];
  private pendingHead = 0;
  private faults = 0;
  private faultsDropped = 0;
  private duplicates = 0;
  private toDevice = 0;
  private toSystem = 0;
  private evicted = 0;
  private prefetched = 0;
  private thrashing = 0;
  private cpuFaults = new Map<string, number>();
  private cpuMigrateToRam = 0;
  private kernels = 0;
  private cpuPhases = 0;
  private readonly off: Array<() => void> = [];

  constructor(private readonly opts: RunMetricsOptions) {}

  /** Listen to a GPU's events. */
  attachGpu(bus: GpuEventSource): void {
    const onFault = (timeNs: number, dropped: boolean): void => {
      this.faults++;
      if (dropped) this.faultsDropped++;
      this.faultT.push(timeNs);
      this.pending.push(timeNs);
    };
    this.off.push(
      bus.tapFaults ? bus.tapFaults(onFault) : bus.subscribe('fault', (e) => onFault(e.timeNs, e.dropped)),
      bus.subscribe('batch', (e) => {
        this.batchSizes.push(e.coalesced);
        this.batchNs.push(e.endNs - e.startNs);
        this.duplicates += e.duplicates;
        this.interval(C_SERVICE, e.startNs, e.endNs);
        // faults raised up to the batch's start waited for it
        let first = -1;
        while (this.pendingHead < this.pending.length && this.pending[this.pendingHead]! <= e.startNs) {
          if (first < 0) first = this.pending[this.pendingHead]!;
          this.pendingHead++;
        }
        if (this.pendingHead > 4096 && this.pendingHead * 2 > this.pending.length) {
          this.pending = this.pending.slice(this.pendingHead);
          this.pendingHead = 0;
        }
        if (first >= 0 && first < e.startNs) this.interval(C_STALL, first, e.startNs);
      }),
      bus.subscribe('replay', (e) => this.interval(C_STALL, e.timeNs, e.timeNs + this.opts.replayNs)),
      bus.subscribe('migrate', (e) => {
        if (e.toDevice) this.toDevice += e.npages;
        else this.toSystem += e.npages;
        if (e.cause === 'prefetch') this.prefetched += e.npages;
        this.migT0.push(e.startNs);
        this.migT1.push(e.endNs);
        this.migBytes.push(e.bytes);
        this.migPages.push(e.npages);
        this.migDir.push(e.toDevice ? 1 : 0);
        if (e.bytes > 0 && e.endNs > e.startNs) {
          this.interval(e.toDevice ? C_HTOD : e.cause === 'eviction' ? C_EVICT : C_DTOH, e.startNs, e.endNs);
        }
      }),
      bus.subscribe('evict', (e) => void (this.evicted += e.pages)),
      bus.subscribe('thrashing', (e) => {
        if (e.kind !== 'unpin') this.thrashing++;
      }),
    );
  }

  /** Listen to the mm's events (CPU faults, and CPU faults that bring a device page back). */
  attachMm(bus: EventBus): void {
    this.off.push(bus.subscribe('fault', (e) => {
      this.cpuFaults.set(e.kind, (this.cpuFaults.get(e.kind) ?? 0) + 1);
      if (e.kind === 'device-private') this.cpuMigrateToRam++;
    }));
  }

  detach(): void {
    for (const f of this.off.splice(0)) f();
  }

  /** The simulator's own phases. */
  kernelLaunch(startNs: number, runNs: number): void {
    this.kernels++;
    this.interval(C_LAUNCH, startNs, runNs);
  }
  kernelRun(startNs: number, endNs: number): void {
    this.interval(C_COMPUTE, startNs, endNs);
  }
  cpuPhase(startNs: number, endNs: number): void {
    this.cpuPhases++;
    this.interval(C_COMPUTE, startNs, endNs);
  }

  private interval(cat: number, s: number, e: number): void {
    if (!(e > s)) return;
    this.iStart[cat]!.push(s);
    this.iEnd[cat]!.push(e);
  }

  /** Where the time in [0, totalNs) went, in ns; the parts add up to totalNs. */
  breakdownNs(totalNs: number, remoteAccesses: number): Breakdown {
    const n = this.iStart.reduce((s, c) => s + c.n, 0);
    const t = new Float64Array(2 * n);
    const d = new Int32Array(2 * n); // +cat+1 for a start, -(cat+1) for an end
    let k = 0;
    for (let c = 0; c < NCAT; c++) {
      const s = this.iStart[c]!.view();
      const e = this.iEnd[c]!.view();
      for (let i = 0; i < s.length; i++) {
        t[k] = s[i]!; d[k++] = c + 1;
        t[k] = e[i]!; d[k++] = -(c + 1);
      }
    }
    const order = new Uint32Array(2 * n);
    for (let i = 0; i < order.length; i++) order[i] = i;
    order.sort((a, b) => t[a]! - t[b]! || d[a]! - d[b]!);
    const active = new Int32Array(NCAT);
    const acc = new Float64Array(NCAT + 1); // last slot: nothing in progress
    let prev = 0;
    for (let j = 0; j < order.length; j++) {
      const i = order[j]!;
      const time = Math.min(Math.max(t[i]!, 0), totalNs);
      if (time > prev) {
        let cat = NCAT;
        for (let c = 0; c < NCAT; c++) if (active[c]! > 0) { cat = c; break; }
        acc[cat] += time - prev;
        prev = time;
      }
      const dd = d[i]!;
      if (dd > 0) active[dd - 1]++;
      else active[-dd - 1]--;
    }
    if (totalNs > prev) acc[NCAT] += totalNs - prev;
    const out = Object.fromEntries(BREAKDOWN_KEYS.map((key) => [key, 0])) as Breakdown;
    for (let c = 0; c < NCAT; c++) out[CAT_KEY[c]!] += acc[c]!;
    // time in which nothing was in progress: the simulator waiting on the driver (stall)
    out.stall += acc[NCAT]!;
    const remote = Math.min(out.compute, (remoteAccesses * this.opts.remoteAccessNs) / Math.max(1, this.opts.warpSlots));
    out.remote = remote;
    out.compute -= remote;
    return out;
  }

  /** Time series in `buckets` equal intervals of [0, totalNs). */
  series(totalNs: number, buckets = 100): TimeSeries {
    const nb = Math.max(1, Math.min(buckets, Math.ceil(totalNs / 1000)));
    const w = Math.max(1, totalNs) / nb;
    const faults = new Float64Array(nb);
    const htod = new Float64Array(nb);
    const dtoh = new Float64Array(nb);
    const vramDelta = new Float64Array(nb);
    const bucketOf = (x: number) => Math.min(nb - 1, Math.max(0, Math.floor(x / w)));
    // an index loop: a for-of over a typed array makes an iterator result per fault until the loop is optimized
    const ft = this.faultT.view();
    for (let i = 0; i < ft.length; i++) faults[bucketOf(ft[i]!)]++;
    const t0 = this.migT0.view();
    const t1 = this.migT1.view();
    const bytes = this.migBytes.view();
    const pages = this.migPages.view();
    const dir = this.migDir.view();
    for (let i = 0; i < t0.length; i++) {
      vramDelta[bucketOf(t1[i]!)] += dir[i] ? pages[i]! : -pages[i]!;
      const arr = dir[i] ? htod : dtoh;
      const s = t0[i]!;
      const e = Math.max(t1[i]!, s + 1e-9);
      // spread the bytes over the buckets the copy spans
      for (let b = bucketOf(s); b <= bucketOf(e); b++) {
        const lo = Math.max(s, b * w);
        const hi = Math.min(e, (b + 1) * w);
        if (hi > lo) arr[b] += (bytes[i]! * (hi - lo)) / (e - s);
        else if (e - s <= 1e-9) arr[b] += bytes[i]!;
      }
    }
    let resident = this.opts.initialVramPages ?? 0;
    const out: TimeSeries = { intervalUs: w / 1000, tUs: [], vramPages: [], faultsPerMs: [], htodGBps: [], dtohGBps: [] };
    for (let b = 0; b < nb; b++) {
      resident += vramDelta[b]!;
      out.tUs.push(((b + 1) * w) / 1000);
      out.vramPages.push(resident);
      out.faultsPerMs.push((faults[b]! * 1e6) / w);
      out.htodGBps.push(htod[b]! / w);
      out.dtohGBps.push(dtoh[b]! / w);
    }
    return out;
  }

  snapshot(totalNs: number, c: GpuCountersLike): RunMetricsSnapshot {
    const bs = this.batchSizes.view();
    const bn = this.batchNs.view();
    let sizeSum = 0;
    let nsSum = 0;
    for (let i = 0; i < bs.length; i++) { sizeSum += bs[i]!; nsSum += bn[i]!; }
    const br = this.breakdownNs(totalNs, c.remoteAccesses);
    const us = Object.fromEntries(BREAKDOWN_KEYS.map((k) => [k, br[k] / 1000])) as Breakdown;
    let cpuFaults = 0;
    for (const v of this.cpuFaults.values()) cpuFaults += v;
    return {
      simulatedTimeUs: totalNs / 1000,
      breakdownUs: us,
      gpu: {
        faults: this.faults,
        faultsDropped: this.faultsDropped,
        coalesced: this.duplicates,
        batches: bs.length,
        avgBatchSize: bs.length ? sizeSum / bs.length : 0,
        avgBatchUs: bs.length ? nsSum / bs.length / 1000 : 0,
        pagesMigratedToDevice: this.toDevice,
        pagesMigratedToSystem: this.toSystem,
        pagesEvicted: this.evicted,
        pagesPrefetched: this.prefetched,
        thrashingEvents: this.thrashing,
        remoteAccesses: c.remoteAccesses,
        tlbMisses: c.utlbMisses,
        accesses: c.accesses,
        replays: c.replays,
        htodBytes: c.htodBytes,
        dtohBytes: c.dtohBytes,
      },
      cpu: {
        faults: cpuFaults,
        faultsByKind: Object.fromEntries([...this.cpuFaults].sort()),
        migrateToRam: this.cpuMigrateToRam,
      },
      kernels: this.kernels,
      cpuPhases: this.cpuPhases,
    };
  }

  /** Batch sizes and service times (µs), for the report's histograms. */
  batches(): { sizes: Float64Array; us: Float64Array } {
    return { sizes: this.batchSizes.view().slice(), us: this.batchNs.view().map((x) => x / 1000) };
  }
}
