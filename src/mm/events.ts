// Tracepoint-like events. Emitters test `bus.on.<kind>` (a plain boolean) before building an
// event object, so an event nobody listens to costs one property read.

import type { MmuNotifierRange, MmuNotifyEvent } from './notifier.js';

export type FaultKind =
  | 'anon' // do_anonymous_page: new zeroed page
  | 'zero' // do_anonymous_page: zero page mapped for a read
  | 'thp' // do_huge_pmd_anonymous_page
  | 'huge-zero'
  | 'hugetlb'
  | 'cow' // wp_page_copy
  | 'reuse' // wp_page_reuse: write to an exclusive page made writable
  | 'file' // do_read_fault / do_shared_fault
  | 'file-cow' // do_cow_fault
  | 'swapin'
  | 'migration-wait'
  | 'device-private' // migrate_to_ram
  | 'device-exclusive' // restore of a device-exclusive entry
  | 'numa'
  | 'spurious';

export interface FaultEvent { type: 'fault'; mmId: number; addr: number; write: boolean; kind: FaultKind; remote: boolean }
export interface MapEvent { type: 'map'; mmId: number; addr: number; pfn: number; nr: number }
export interface UnmapEvent { type: 'unmap'; mmId: number; start: number; end: number; reason: string }
export interface InvalidateEvent { type: 'invalidate'; range: MmuNotifierRange; phase: 'start' | 'end' }
export interface FreeEvent { type: 'free'; pfn: number; order: number; device: boolean }
export interface MigrateEvent { type: 'migrate'; mmId: number; addr: number; from: number; to: number; toDevice: boolean }

export interface EventMap {
  fault: FaultEvent;
  map: MapEvent;
  unmap: UnmapEvent;
  invalidate: InvalidateEvent;
  free: FreeEvent;
  migrate: MigrateEvent;
}
export type EventKind = keyof EventMap;

/** Every FaultKind, in a fixed order: the index of a kind in EventTally.faults. */
export const FAULT_KINDS: readonly FaultKind[] = [
  'anon', 'zero', 'thp', 'huge-zero', 'hugetlb', 'cow', 'reuse', 'file', 'file-cow', 'swapin', 'migration-wait', 'device-private',
  'device-exclusive', 'numa', 'spurious',
];
const FAULT_INDEX = Object.fromEntries(FAULT_KINDS.map((k, i) => [k, i])) as Record<FaultKind, number>;
/** Every MmuNotifyEvent, in a fixed order: the index of an event in EventTally.invalidations. */
export const INVALIDATE_EVENTS: readonly MmuNotifyEvent[] = ['UNMAP', 'CLEAR', 'PROTECTION_VMA', 'PROTECTION_PAGE', 'SOFT_DIRTY', 'RELEASE', 'MIGRATE', 'EXCLUSIVE'];
const INVALIDATE_INDEX = Object.fromEntries(INVALIDATE_EVENTS.map((k, i) => [k, i])) as Record<MmuNotifyEvent, number>;

/**
 * Counts of faults, invalidations started and frames freed, kept whether or not anyone
 * listens: a reader of totals (sim/metrics.ts) takes them from here, with no event object
 * per fault or free and no listener that would turn release_pages' batch off. They count
 * exactly what the `fault`, `invalidate` (start) and `free` events report to a listener.
 */
export class EventTally {
  /** Faults by FAULT_KINDS index: [2 * i] taken by a CPU access, [2 * i + 1] remote (FAULT_FLAG_REMOTE). */
  readonly faults = new Float64Array(2 * FAULT_KINDS.length);
  /** Invalidations started, by INVALIDATE_EVENTS index (with or without a subscriber to see them). */
  readonly invalidations = new Float64Array(INVALIDATE_EVENTS.length);
  /** Frames freed: system memory, device memory (back to its driver). */
  freedSystem = 0;
  freedDevice = 0;

  fault(kind: FaultKind, remote: boolean): void {
    this.faults[2 * FAULT_INDEX[kind] + (remote ? 1 : 0)]!++;
  }
  invalidate(event: MmuNotifyEvent): void {
    this.invalidations[INVALIDATE_INDEX[event]]!++;
  }
}

export class EventBus {
  /** The counts kept with no listener (EventTally). */
  readonly tally = new EventTally();
  /** on.x is true while at least one listener of kind x is registered. */
  readonly on: Record<EventKind, boolean> = { fault: false, map: false, unmap: false, invalidate: false, free: false, migrate: false };
  private readonly listeners: { [K in EventKind]: Array<(e: EventMap[K]) => void> } = {
    fault: [], map: [], unmap: [], invalidate: [], free: [], migrate: [],
  };

  subscribe<K extends EventKind>(kind: K, fn: (e: EventMap[K]) => void): () => void {
    const list = this.listeners[kind] as Array<(e: EventMap[K]) => void>;
    list.push(fn);
    this.on[kind] = true;
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
      this.on[kind] = list.length > 0;
    };
  }

  emit<K extends EventKind>(e: EventMap[K] & { type: K }): void {
    for (const fn of this.listeners[e.type] as Array<(e: EventMap[K]) => void>) fn(e);
  }
}
