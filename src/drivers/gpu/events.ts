// The GPU's tracepoints, in the style of src/mm/events.ts: the hardware and its drivers emit
// typed events on a bus of the GPU's own (the mm never sees a GPU event). Emitters test
// `bus.on.<kind>` (a plain boolean) before building an event object, so an event nobody
// listens to costs one property read. Times are simulated nanoseconds.

import type { AccessType } from './access.js';

/** A warp's access missed a translation and the MMU wrote (or dropped) a fault buffer entry. */
export interface GpuFaultEvent {
  type: 'fault';
  gpu: number;
  asid: number;
  addr: number;
  access: AccessType;
  utlb: number;
  warp: number;
  timeNs: number;
  /** The fault buffer was full: the entry was dropped and the access will fault again on replay. */
  dropped: boolean;
}

/** The driver fetched and serviced one batch of faults. */
export interface GpuBatchEvent {
  type: 'batch';
  gpu: number;
  driver: string;
  batchId: number;
  /** Entries read from the fault buffer. */
  fetched: number;
  /** Entries left after coalescing duplicates (what was sorted and serviced). */
  coalesced: number;
  /** Instances that duplicated a fault already in the batch (num_duplicate_faults). */
  duplicates: number;
  /** Faults on pages being throttled by the thrashing detector. */
  throttled: number;
  /** Fatal faults (cancelled). */
  fatal: number;
  startNs: number;
  endNs: number;
}

export type GpuReplayKind = 'replay' | 'flush-cached' | 'flush-update';

/** A replay command: stalled warps retry their access `replayNs` later. */
export interface GpuReplayEvent { type: 'replay'; gpu: number; timeNs: number; kind: GpuReplayKind; stalledWarps: number }

/** A fatal fault: the GPU context of an address space is killed (GPU SIGSEGV). */
export interface GpuCancelEvent { type: 'cancel'; gpu: number; asid: number; addr: number; timeNs: number; warps: number }

export type GpuMigrateCause = 'fault' | 'prefetch' | 'eviction' | 'cpu-fault' | 'explicit' | 'access-counter' | 'teardown';

/** Pages moved between system memory and VRAM (one event per contiguous copy). */
export interface GpuMigrateEvent {
  type: 'migrate';
  gpu: number;
  asid: number;
  addr: number;
  npages: number;
  toDevice: boolean;
  cause: GpuMigrateCause;
  /** Bytes copied (0 for pages that were populated, not copied). */
  bytes: number;
  startNs: number;
  endNs: number;
}

/** A 2 MiB root chunk of VRAM was evicted (its pages moved to system memory). */
export interface GpuEvictEvent { type: 'evict'; gpu: number; chunk: number; pages: number; timeNs: number }

/** GPU page-table entries written: `npages` pages from `addr`, pointing at pfn... */
export interface GpuMapEvent {
  type: 'map';
  gpu: number;
  asid: number;
  addr: number;
  npages: number;
  pfn: number;
  /** Permission bits (gpu_page_table.ts PTE_WRITE, PTE_ATOMIC). */
  prot: number;
  /** The entries point at system memory over the interconnect. */
  remote: boolean;
}

/** GPU page-table entries cleared or downgraded. */
export interface GpuUnmapEvent { type: 'unmap'; gpu: number; asid: number; start: number; end: number; reason: string }

/** TLBs invalidated for [start, end) of an address space (after it completes no stale entry is used). */
export interface GpuTlbInvalidateEvent { type: 'tlbInvalidate'; gpu: number; asid: number; start: number; end: number; timeNs: number; entries: number }

/** The thrashing detector's verdict on a page: detected, throttled, pinned. */
export interface GpuThrashingEvent { type: 'thrashing'; gpu: number; addr: number; kind: 'detected' | 'throttle' | 'pin' | 'unpin'; timeNs: number }

/** An access-counter notification: a 2 MiB region crossed the remote-access threshold. */
export interface GpuAccessCounterEvent { type: 'accessCounter'; gpu: number; asid: number; addr: number; count: number; timeNs: number }

/** A kernel finished (or was killed). */
export interface GpuKernelEvent { type: 'kernel'; gpu: number; name: string; phase: 'launch' | 'end'; timeNs: number; error: string | null }

export interface GpuEventMap {
  fault: GpuFaultEvent;
  batch: GpuBatchEvent;
  replay: GpuReplayEvent;
  cancel: GpuCancelEvent;
  migrate: GpuMigrateEvent;
  evict: GpuEvictEvent;
  map: GpuMapEvent;
  unmap: GpuUnmapEvent;
  tlbInvalidate: GpuTlbInvalidateEvent;
  thrashing: GpuThrashingEvent;
  accessCounter: GpuAccessCounterEvent;
  kernel: GpuKernelEvent;
}
export type GpuEventKind = keyof GpuEventMap;

const KINDS: readonly GpuEventKind[] = [
  'fault', 'batch', 'replay', 'cancel', 'migrate', 'evict', 'map', 'unmap', 'tlbInvalidate', 'thrashing', 'accessCounter', 'kernel',
];

export class GpuEventBus {
  /** on.x is true while at least one listener of kind x is registered. */
  readonly on = Object.fromEntries(KINDS.map((k) => [k, false])) as Record<GpuEventKind, boolean>;
  private readonly listeners = Object.fromEntries(KINDS.map((k) => [k, []])) as unknown as {
    [K in GpuEventKind]: Array<(e: GpuEventMap[K]) => void>;
  };

  subscribe<K extends GpuEventKind>(kind: K, fn: (e: GpuEventMap[K]) => void): () => void {
    const list = this.listeners[kind] as Array<(e: GpuEventMap[K]) => void>;
    list.push(fn);
    this.on[kind] = true;
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
      this.on[kind] = list.length > 0;
    };
  }

  /** @internal Fault taps (tapFaults), called by the MMU's fault write before the fault event. */
  readonly faultTaps: Array<(timeNs: number, dropped: boolean) => void> = [];

  /**
   * Listen to faults' times and drop flags only, with no event object (a run's metrics: a fault
   * event per retried access was a fifth of a faulting run's allocation). Returns the unsubscribe.
   */
  tapFaults(fn: (timeNs: number, dropped: boolean) => void): () => void {
    this.faultTaps.push(fn);
    return () => {
      const i = this.faultTaps.indexOf(fn);
      if (i >= 0) this.faultTaps.splice(i, 1);
    };
  }

  emit<K extends GpuEventKind>(e: GpuEventMap[K] & { type: K }): void {
    for (const fn of this.listeners[e.type] as Array<(e: GpuEventMap[K]) => void>) fn(e);
  }
}
