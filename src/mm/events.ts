// Tracepoint-like events. Emitters test `bus.on.<kind>` (a plain boolean) before building an
// event object, so an event nobody listens to costs one property read.

import type { MmuNotifierRange } from './notifier.js';

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

export class EventBus {
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
