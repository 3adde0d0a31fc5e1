// The event types of a record and their sub-kinds (a fault's kind, an invalidation's event):
// each has a small id written in the event columns, and the record lists their names. The
// mm's own types come first, with fixed ids; a driver adds its own (a GPU fault, a batch) by name.

import type { EventCategory, EventTypeInfo } from './format.js';

const FAULT_KINDS = [
  'anon', 'zero', 'thp', 'huge-zero', 'hugetlb', 'cow', 'reuse', 'file', 'file-cow', 'swapin', 'migration-wait', 'device-private',
  'device-exclusive', 'numa', 'spurious',
];
// enum mmu_notifier_event's names (include/linux/mmu_notifier.h).
const NOTIFY_EVENTS = ['UNMAP', 'CLEAR', 'PROTECTION_VMA', 'PROTECTION_PAGE', 'SOFT_DIRTY', 'RELEASE', 'MIGRATE', 'EXCLUSIVE'];

// The built-in event types, in this order (their ids).
export const T_FAULT = 0;
export const T_MAP = 1;
export const T_UNMAP = 2;
export const T_INV_START = 3;
export const T_INV_END = 4;
export const T_FREE = 5;
export const T_MIGRATE = 6;
export const T_DEV_MAP = 7;
export const T_DEV_UNMAP = 8;
const BUILTIN_TYPES: EventTypeInfo[] = [
  { name: 'fault', category: 'fault', subs: FAULT_KINDS },
  { name: 'map', category: 'map', subs: [''] },
  { name: 'unmap', category: 'unmap', subs: [] },
  { name: 'invalidate-start', category: 'invalidate', subs: NOTIFY_EVENTS },
  { name: 'invalidate-end', category: 'invalidate', subs: NOTIFY_EVENTS },
  { name: 'free', category: 'free', subs: ['system', 'device'] },
  { name: 'migrate', category: 'migrate', subs: ['to-system', 'to-device'] },
  { name: 'device-map', category: 'map', subs: [''] },
  { name: 'device-unmap', category: 'unmap', subs: [''] },
];

export class EventTypes {
  /** What the record lists, by id. */
  readonly list: EventTypeInfo[] = BUILTIN_TYPES.map((t) => ({ ...t, subs: [...t.subs] }));
  private readonly ids = new Map<string, number>(this.list.map((t, i) => [t.name, i]));
  private readonly subIds: Array<Map<string, number>> = this.list.map((t) => new Map(t.subs.map((s, i) => [s, i])));

  /** The id of a type named name, added in category if it is new. */
  id(name: string, category: EventCategory): number {
    let t = this.ids.get(name);
    if (t === undefined) {
      t = this.list.length;
      this.list.push({ name, category, subs: [] });
      this.ids.set(name, t);
      this.subIds.push(new Map());
    }
    return t;
  }

  /** The id of sub-kind name of type, added if it is new. */
  sub(type: number, name: string): number {
    const m = this.subIds[type]!;
    let id = m.get(name);
    if (id === undefined) {
      id = this.list[type]!.subs.length;
      this.list[type]!.subs.push(name);
      m.set(name, id);
    }
    return id;
  }
}
