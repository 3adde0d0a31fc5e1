// What the page shows, computed from a decoded record and its replay, without the DOM: which
// tables exist at a position, the VMAs, words for events and states, a page's history.

import {
  FAULT_KIND_MASK, FAULT_REMOTE, FAULT_WRITE, NONE, PMD_PAGES, ST_NONE, STATE_KINDS, type TableInfo, stateKind, stateMem,
} from '../sim/record/format.js';
import { type DecodedRecord, Replay, lowerBound } from '../sim/record/replay.js';

export interface VmaRow {
  start: number; // vpn
  pages: number;
  flags: string;
  label: string;
}

export class Model {
  readonly replay: Replay;
  readonly doc: DecodedRecord['doc'];
  /** Per table: its VMA changes (positions and lists), from the CPU table of its mm. */
  private readonly vmaAt: Array<{ at: number[]; lists: VmaRow[][] }>;
  /** Per table: a byte per page, 1 inside a VMA at the position the mask was built for. */
  private readonly masks: Uint8Array[];
  private readonly maskBlocks: Uint16Array[];
  private readonly maskList: Array<VmaRow[] | null>;
  /** Per event type: its category. */
  readonly categories: string[];

  constructor(readonly rec: DecodedRecord) {
    this.doc = rec.doc;
    this.replay = new Replay(rec);
    const nt = this.doc.tables.length;
    const cpuOfMm = new Map<number, number>();
    for (const t of this.doc.tables) if (t.kind === 'cpu' && !cpuOfMm.has(t.mm)) cpuOfMm.set(t.mm, t.id);
    const perCpu = new Map<number, { at: number[]; lists: VmaRow[][] }>();
    for (const c of this.doc.vmas) {
      let e = perCpu.get(c.table);
      if (!e) perCpu.set(c.table, (e = { at: [], lists: [] }));
      e.at.push(c.at);
      e.lists.push(c.vmas.map(([start, pages, flags, label]) => ({ start, pages, flags, label })));
    }
    this.vmaAt = this.doc.tables.map((t) => perCpu.get(t.kind === 'cpu' ? t.id : cpuOfMm.get(t.mm) ?? -1) ?? { at: [], lists: [] });
    const space = this.replay.space;
    this.masks = Array.from({ length: nt }, () => new Uint8Array(space.total));
    this.maskBlocks = Array.from({ length: nt }, () => new Uint16Array(space.blocks));
    this.maskList = Array.from({ length: nt }, () => null);
    this.categories = this.doc.eventTypes.map((t) => t.category);
  }

  get position(): number {
    return this.replay.position;
  }
  get count(): number {
    return this.replay.count;
  }

  seek(p: number): void {
    this.replay.seek(p);
  }

  /** Tables that exist at the current position (born, not yet gone). */
  liveTables(): TableInfo[] {
    const p = this.position;
    // A table that goes away with the run's last events (every process exits) stays on screen.
    return this.doc.tables.filter((t) => t.born <= p && (t.died === undefined || p < t.died || t.died >= this.count));
  }

  /** The VMA list of a table's address space at the current position. */
  vmas(table: number): VmaRow[] {
    const v = this.vmaAt[table]!;
    const i = upperBound(v.at, this.position) - 1;
    return i >= 0 ? v.lists[i]! : [];
  }

  /** Per page (and per block: a count) whether it is inside a VMA now. */
  vmaMask(table: number): { pages: Uint8Array; blocks: Uint16Array } {
    const list = this.vmas(table);
    if (this.maskList[table] !== list) {
      const m = this.masks[table]!;
      const b = this.maskBlocks[table]!;
      m.fill(0);
      b.fill(0);
      for (const v of list) {
        this.replay.space.forEachPart(v.start, v.pages, (idx, n) => {
          m.fill(1, idx, idx + n);
          for (let i = idx; i < idx + n; i++) b[Math.floor(i / PMD_PAGES)]!++;
        });
      }
      this.maskList[table] = list;
    }
    return { pages: this.masks[table]!, blocks: this.maskBlocks[table]! };
  }

  /** The mark (scenario step) containing position p - 1's event, or the one starting at p. */
  markAt(p: number): number {
    const marks = this.doc.marks;
    for (let i = marks.length - 1; i >= 0; i--) if (marks[i]!.start <= Math.max(0, p - 1) && (p - 1 < marks[i]!.end || i === marks.length - 1)) return i;
    return -1;
  }

  typeName(e: number): string {
    return this.doc.eventTypes[this.rec.events.type[e]!]!.name;
  }

  tableName(t: number): string {
    return this.doc.tables[t]?.name ?? `table ${t}`;
  }

  /** One line about event e. */
  describe(e: number): string {
    const ev = this.rec.events;
    const type = this.doc.eventTypes[ev.type[e]!]!;
    if (!this.rec.detailed) return `${type.name} …`;
    const sub = ev.sub[e]!;
    const vpn = ev.vpn[e]!;
    const n = ev.n[e]!;
    const a = ev.a[e]!;
    const b = ev.b[e]!;
    const where = vpn >= 0 ? ` at ${pageRange(vpn, n)}` : '';
    const tbl = this.tableName(ev.table[e]!);
    switch (type.name) {
      case 'fault': {
        const kind = type.subs[sub & FAULT_KIND_MASK] ?? '?';
        return `CPU ${sub & FAULT_WRITE ? 'write' : 'read'} fault (${kind})${sub & FAULT_REMOTE ? ', remote (get_user_pages / hmm_range_fault)' : ''} in ${tbl}${where}`;
      }
      case 'map':
        return `${tbl} maps frame ${a}${n > 1 ? ` (${n} pages)` : ''}${where}`;
      case 'unmap':
        return `${tbl}: ${type.subs[sub] ?? 'unmap'} removes the entries${where}`;
      case 'invalidate-start':
      case 'invalidate-end':
        return `MMU notifier invalidate_range_${type.name === 'invalidate-start' ? 'start' : 'end'} (${type.subs[sub]}) in ${tbl}${where}`;
      case 'free':
        return `${this.doc.memories[ev.table[e]!]?.name ?? 'memory'} frame ${a} freed${n > 1 ? ` (${n} frames)` : ''}`;
      case 'migrate':
        return `page migrated ${sub ? 'to device memory' : 'to system memory'}: frame ${a} -> ${b}${where}`;
      case 'device-map':
        return `${tbl} maps${type.subs[sub] ? ` (${type.subs[sub]})` : ''}${where}`;
      case 'device-unmap':
        return `${tbl} drops its entries${type.subs[sub] ? ` (${type.subs[sub]})` : ''}${where}`;
      // The GPU simulator's events (src/sim/record/gpu.ts).
      case 'gpu-fault':
        return `GPU ${type.subs[sub]} fault (warp ${a}, uTLB ${b}) in ${tbl}${where}`;
      case 'fault-batch':
        return `${type.subs[sub] ?? 'driver'} services a fault batch: ${a} fetched, ${b} after coalescing`;
      case 'replay':
        return `fault replay (${type.subs[sub]}): ${a} stalled warps retry`;
      case 'gpu-cancel':
        return `fatal GPU fault in ${tbl}${where}: the context is killed (${a} warps)`;
      case 'gpu-migrate':
        return `copy engine migrates (${type.subs[sub]}) ${n} page${n === 1 ? '' : 's'}, ${a} bytes${where}`;
      case 'evict':
        return `VRAM root chunk ${a} evicted: ${b} page${b === 1 ? '' : 's'} moved to system memory`;
      case 'tlb-invalidate':
        return `GPU TLB invalidate in ${tbl}${where}: ${a} entries dropped`;
      case 'thrashing':
        return `thrashing detector: ${type.subs[sub]}${where}`;
      case 'access-counter':
        return `access counter notification (${a} accesses)${where}`;
      default: {
        const extra = [a !== NONE ? `a=${a}` : '', b !== NONE ? `b=${b}` : ''].filter(Boolean).join(' ');
        return `${type.name}${type.subs[sub] ? ` (${type.subs[sub]})` : ''} ${tbl}${where}${extra ? ` ${extra}` : ''}`;
      }
    }
  }

  /** Simulated time of event e in ns, if the run had a clock. */
  timeOf(e: number): number | null {
    const t = this.rec.events.time;
    return t && t.length ? t[e]! : null;
  }

  /** The entry changes event e made: [table, vpn, pages, state]. */
  changesOf(e: number): Array<[number, number, number, number]> {
    const d = this.rec.deltas;
    const [s, t] = this.replay.deltasOf(e);
    const out: Array<[number, number, number, number]> = [];
    for (let i = s; i < t; i++) out.push([d.table[i]!, d.vpn[i]!, d.n[i]!, d.state[i]!]);
    return out;
  }

  stateWords(st: number, table: number): string {
    const k = stateKind(st);
    if (k === ST_NONE) return 'none';
    const info = this.doc.tables[table];
    const mem = stateMem(st);
    const memName = this.doc.memories[mem]?.name ?? `memory ${mem}`;
    const kind = STATE_KINDS[k]!;
    if (info?.kind === 'device') return `${kind} -> ${memName}${mem === info.memory ? ' (local)' : mem === 0 ? ' (remote-mapped)' : ''}`;
    if (kind === 'swap' || kind === 'zero') return kind;
    return `${kind} (${memName})`;
  }

  /**
   * Every event that touched page vpn of the tables of mm (its CPU table and the device tables
   * mirroring it), with the state each change gave the page. At most `limit` rows (the latest).
   */
  history(mm: number, vpn: number, limit = 2000): { rows: HistoryRow[]; total: number } {
    const related = new Uint8Array(this.doc.tables.length);
    for (const t of this.doc.tables) if (t.mm === mm) related[t.id] = 1;
    const ev = this.rec.events;
    const rows: HistoryRow[] = [];
    const byEvent = new Map<number, HistoryRow>();
    const hit = (e: number): HistoryRow => {
      let r = byEvent.get(e);
      if (!r) {
        r = { event: e, changes: [] };
        byEvent.set(e, r);
        rows.push(r);
      }
      return r;
    };
    const { table, vpn: evVpn, n } = ev;
    for (let e = 0; e < ev.count; e++) {
      const v = evVpn[e]!;
      if (v <= vpn && vpn < v + n[e]! && related[table[e]!] && this.categories[ev.type[e]!] !== 'free') hit(e);
    }
    const d = this.rec.deltas;
    for (let i = 0; i < d.count; i++) {
      const v = d.vpn[i]!;
      if (v <= vpn && vpn < v + d.n[i]! && related[d.table[i]!]) hit(Math.max(0, d.event[i]!)).changes.push([d.table[i]!, d.state[i]!]);
    }
    rows.sort((x, y) => x.event - y.event);
    return { rows: rows.length > limit ? rows.slice(rows.length - limit) : rows, total: rows.length };
  }

  /**
   * The pages whose entries changed between positions a and b (a <= b), in page-index ranges
   * per table; null when there are too many to be worth listing (draw everything instead).
   */
  changedBetween(a: number, b: number, limit = 4096): Array<{ table: number; index: number; count: number }> | null {
    const d = this.rec.deltas;
    const i0 = lowerBound(d.event, d.count, a);
    const i1 = lowerBound(d.event, d.count, b);
    if (i1 - i0 > limit) return null;
    const out: Array<{ table: number; index: number; count: number }> = [];
    const space = this.replay.space;
    for (let i = i0; i < i1; i++) {
      const table = d.table[i]!;
      space.forEachPart(d.vpn[i]!, d.n[i]!, (index, count) => void out.push({ table, index, count }));
    }
    return out;
  }

  /** Positions where a mark starts, for jumping between steps. */
  markStarts(): number[] {
    return this.doc.marks.map((m) => m.start);
  }

  /** Index of the first event at or after position p whose changes are not empty (for "next change"). */
  nextChange(p: number): number {
    const d = this.rec.deltas;
    const i = lowerBound(d.event, d.count, p);
    return i < d.count ? d.event[i]! : this.count - 1;
  }
}

export interface HistoryRow {
  event: number;
  changes: Array<[number, number]>; // [table, state]
}

export function upperBound(arr: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function hexAddr(vpn: number): string {
  return '0x' + (vpn * 4096).toString(16);
}

export function pageRange(vpn: number, n: number): string {
  return n <= 1 ? `page ${hexAddr(vpn)}` : `${hexAddr(vpn)}-${hexAddr(vpn + n)} (${sizeWords(n)})`;
}

export function sizeWords(pages: number): string {
  const bytes = pages * 4096;
  if (bytes >= 2 ** 40) return `${+(bytes / 2 ** 40).toFixed(1)} TiB`;
  if (bytes >= 2 ** 30) return `${+(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${+(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${bytes / 1024} KiB`;
}
