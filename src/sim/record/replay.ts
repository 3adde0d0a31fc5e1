// Reading a record back: decode its columns, lay its pages out, and replay it to any position
// (the visualizer's model; tests use it to check the recorder against the machine). Pure
// TypeScript: the caller supplies gunzip (zlib in Node, DecompressionStream in a browser).

import {
  type Column, type NumArray, PMD_PAGES, type RecordDoc, ST_KIND_MASK, ST_MEM_SHIFT, ST_NONE, columnValues, fromBase64,
} from './format.js';

export type Inflate = (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;
/** Fetch the bytes of a column given by reference (Column.ref). */
export type FetchColumn = (ref: string) => Promise<Uint8Array>;

export async function decodeColumn(col: Column, inflate: Inflate, fetchRef?: FetchColumn): Promise<NumArray> {
  let bytes: Uint8Array;
  if (col.data !== undefined) bytes = fromBase64(col.data);
  else if (col.ref !== undefined && fetchRef) bytes = await fetchRef(col.ref);
  else throw new Error('column has neither data nor a reference that can be fetched');
  if (col.gzip) bytes = await inflate(bytes);
  return columnValues(col, bytes);
}

/** Every column of a record, in a fixed order (for serving them apart from the document). */
export function recordColumns(doc: RecordDoc): Column[] {
  const ev = doc.events;
  const out: Column[] = [ev.type, ev.sub, ev.table, ev.vpn, ev.n, ev.a, ev.b];
  if (ev.time) out.push(ev.time);
  const d = doc.deltas;
  out.push(d.event, d.table, d.vpn, d.n, d.state, doc.frames.event, doc.frames.memory, doc.frames.used);
  for (const s of doc.snapshots) for (const t of s.tables) out.push(t.vpn, t.n, t.state);
  return out;
}

export interface DecodedSnapshot {
  event: number;
  delta: number;
  frame: number;
  frames: number[];
  tables: Array<{ table: number; vpn: NumArray; n: NumArray; state: NumArray }>;
}

export interface DecodedRecord {
  doc: RecordDoc;
  events: {
    count: number; type: NumArray;
    /** The rest (empty until loadDetails() when decoded with deferDetails). */
    sub: NumArray; table: NumArray; vpn: NumArray; n: NumArray; a: NumArray; b: NumArray; time: NumArray | null;
  };
  /** Entry changes and frames records: counts are 0 until loaded. */
  deltas: { count: number; event: NumArray; table: NumArray; vpn: NumArray; n: NumArray; state: NumArray };
  frames: { count: number; event: NumArray; memory: NumArray; used: NumArray };
  snapshots: DecodedSnapshot[];
  /** Everything is decoded (the events' details, the entry changes, the frames records). */
  detailed: boolean;
  /** Decode what was deferred; resolves once detailed. */
  loadDetails(): Promise<void>;
}

/**
 * Decode a record. With deferDetails, only the event types (for a timeline) and the snapshots
 * are decoded first: enough to show the state at any snapshot (the recorder takes one where
 * each step starts). loadDetails() decodes the rest: the entry changes, the frames records and
 * the events' pages, tables and frame numbers — most of a large record's bytes.
 */
export async function decodeRecord(doc: RecordDoc, inflate: Inflate, opts: { deferDetails?: boolean; fetchRef?: FetchColumn } = {}): Promise<DecodedRecord> {
  const d = (c: Column) => decodeColumn(c, inflate, opts.fetchRef);
  const ev = doc.events;
  const dl = doc.deltas;
  const fr = doc.frames;
  const [type, snapshots] = await Promise.all([
    d(ev.type),
    Promise.all(doc.snapshots.map(async (s) => ({
      event: s.event, delta: s.delta, frame: s.frame, frames: s.frames,
      tables: await Promise.all(s.tables.map(async (t) => ({ table: t.table, vpn: await d(t.vpn), n: await d(t.n), state: await d(t.state) }))),
    }))),
  ]);
  const none = new Float64Array(0);
  let loading: Promise<void> | null = null;
  const rec: DecodedRecord = {
    doc,
    events: { count: ev.count, type, sub: none, table: none, vpn: none, n: none, a: none, b: none, time: null },
    deltas: { count: 0, event: none, table: none, vpn: none, n: none, state: none },
    frames: { count: 0, event: none, memory: none, used: none },
    snapshots,
    detailed: false,
    loadDetails() {
      loading ??= (async () => {
        const [sub, table, vpn, n, a, b, time, dEvent, dTable, dVpn, dN, dState, fEvent, fMem, fUsed] = await Promise.all([
          d(ev.sub), d(ev.table), d(ev.vpn), d(ev.n), d(ev.a), d(ev.b), ev.time ? d(ev.time) : Promise.resolve(null),
          d(dl.event), d(dl.table), d(dl.vpn), d(dl.n), d(dl.state), d(fr.event), d(fr.memory), d(fr.used),
        ]);
        Object.assign(rec.events, { sub, table, vpn, n, a, b, time });
        Object.assign(rec.deltas, { count: dl.count, event: dEvent, table: dTable, vpn: dVpn, n: dN, state: dState });
        Object.assign(rec.frames, { count: fr.count, event: fEvent, memory: fMem, used: fUsed });
        rec.detailed = true;
      })();
      return loading;
    },
  };
  if (!opts.deferDetails) await rec.loadDetails();
  return rec;
}

/**
 * The pages the viewer lays out: the record's regions in address order, concatenated. A region
 * of 8 MiB or more is widened to whole 2 MiB blocks, so that aggregated cells are the 2 MiB
 * blocks of the address space (and huge pages fill cells exactly); a smaller one is laid out as
 * it is. Page index i <-> a vpn; block b = pages [512b, 512b + 512) of the index space.
 */
export class PageSpace {
  readonly starts: Float64Array; // first vpn of each region
  readonly offsets: Float64Array; // first page index of each region
  readonly total: number;
  readonly blocks: number;

  constructor(regions: Array<[number, number]>) {
    const merged: Array<[number, number]> = [];
    for (const [s, n] of regions) {
      const align = n >= 4 * PMD_PAGES ? PMD_PAGES : 1;
      const a = s - (s % align);
      const e = Math.ceil((s + n) / align) * align;
      const last = merged[merged.length - 1];
      if (last && a <= last[1]) last[1] = Math.max(last[1], e);
      else merged.push([a, e]);
    }
    this.starts = new Float64Array(merged.length);
    this.offsets = new Float64Array(merged.length);
    let off = 0;
    merged.forEach(([s, e], i) => {
      this.starts[i] = s;
      this.offsets[i] = off;
      off += e - s;
    });
    this.total = off;
    this.blocks = Math.ceil(off / PMD_PAGES);
  }

  /** Region index holding vpn, or of the last region starting at or before it (-1 if none). */
  private regionOf(vpn: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let r = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= vpn) {
        r = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return r;
  }

  private regionEnd(r: number): number {
    return r + 1 < this.offsets.length ? this.offsets[r + 1]! : this.total;
  }

  /** Page index of vpn, or -1 if it is outside every region. */
  indexOf(vpn: number): number {
    const r = this.regionOf(vpn);
    if (r < 0) return -1;
    const i = this.offsets[r]! + (vpn - this.starts[r]!);
    return i < this.regionEnd(r) ? i : -1;
  }

  vpnOf(index: number): number {
    let lo = 0;
    let hi = this.offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.starts[lo]! + (index - this.offsets[lo]!);
  }

  /**
   * Call fn(firstIndex, count, firstVpn) for each part of [vpn, vpn + n) that lies in a region
   * (no allocation; ranges far larger than the regions cost one step per region).
   */
  forEachPart(vpn: number, n: number, fn: (index: number, count: number, vpn: number) => void): void {
    const end = vpn + n;
    let r = Math.max(0, this.regionOf(vpn));
    for (; r < this.starts.length; r++) {
      const rs = this.starts[r]!;
      if (rs >= end) break;
      const re = rs + (this.regionEnd(r) - this.offsets[r]!);
      const s = Math.max(vpn, rs);
      const e = Math.min(end, re);
      if (e > s) fn(this.offsets[r]! + (s - rs), e - s, s);
    }
  }
}

/** Seeking forward restores a snapshot past the position only if that skips this many changes. */
const RESTORE_GAIN = 50_000;

/** Counters kept per 2 MiB block and table: pages of each entry kind, and pages holding data in each memory. */
export const BLOCK_SLOTS = 32;

/** The state of every table at one position, moved forward by applying changes and back through snapshots. */
export class Replay {
  readonly space: PageSpace;
  /** Per table: one state byte per page of the space. */
  readonly states: Uint8Array[];
  /** Per table: per block, BLOCK_SLOTS counters (kind k at k, memory m at 16 + m). */
  readonly blockCounts: Uint32Array[];
  /** Frames in use per memory. */
  readonly frames: number[];
  /** Events applied: the state after events [0, position). */
  position = 0;
  private deltaPos = 0;
  private framePos = 0;

  constructor(readonly rec: DecodedRecord) {
    this.space = new PageSpace(rec.doc.regions);
    const nt = rec.doc.tables.length;
    this.states = Array.from({ length: nt }, () => new Uint8Array(this.space.total));
    this.blockCounts = Array.from({ length: nt }, () => new Uint32Array(this.space.blocks * BLOCK_SLOTS));
    this.frames = rec.doc.memories.map(() => 0);
    this.restore(0);
  }

  get count(): number {
    return this.rec.events.count;
  }

  /** Rebuild the current position's state (after the record's details were loaded). */
  refresh(): void {
    const p = this.position;
    this.restore(this.snapshotAtOrBefore(p));
    this.applyTo(p);
  }

  /** Move to position p (0..count): forward by applying changes, or from the nearest snapshot. */
  seek(p: number): void {
    p = Math.max(0, Math.min(this.count, Math.floor(p)));
    if (p === this.position) return;
    if (p > this.position) {
      // Forward: from here, unless a snapshot past here saves many changes.
      const s = this.snapshotAtOrBefore(p);
      if (this.rec.snapshots[s]!.delta > this.deltaPos + RESTORE_GAIN) this.restore(s);
    } else {
      this.restore(this.snapshotAtOrBefore(p));
    }
    this.applyTo(p);
  }

  private snapshotAtOrBefore(p: number): number {
    const snaps = this.rec.snapshots;
    let lo = 0;
    let hi = snaps.length - 1;
    let r = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (snaps[mid]!.event <= p) {
        r = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return r;
  }

  private restore(si: number): void {
    const s = this.rec.snapshots[si]!;
    for (let t = 0; t < this.states.length; t++) {
      this.states[t]!.fill(ST_NONE);
      const bc = this.blockCounts[t]!;
      bc.fill(0);
      for (let b = 0; b < this.space.blocks; b++) bc[b * BLOCK_SLOTS + ST_NONE] = Math.min(PMD_PAGES, this.space.total - b * PMD_PAGES);
    }
    for (const tab of s.tables) {
      for (let i = 0; i < tab.n.length; i++) this.setRange(tab.table, tab.vpn[i]!, tab.n[i]!, tab.state[i]!);
    }
    for (let m = 0; m < this.frames.length; m++) this.frames[m] = s.frames[m] ?? 0;
    this.position = s.event;
    this.deltaPos = s.delta;
    this.framePos = s.frame;
  }

  private applyTo(p: number): void {
    const d = this.rec.deltas;
    while (this.deltaPos < d.count && d.event[this.deltaPos]! < p) {
      const i = this.deltaPos++;
      this.setRange(d.table[i]!, d.vpn[i]!, d.n[i]!, d.state[i]!);
    }
    const f = this.rec.frames;
    while (this.framePos < f.count && f.event[this.framePos]! < p) {
      const i = this.framePos++;
      this.frames[f.memory[i]!] = f.used[i]!;
    }
    this.position = p;
  }

  /** Set pages [vpn, vpn + n) of a table to state. */
  setRange(table: number, vpn: number, n: number, state: number): void {
    const st = this.states[table];
    if (!st) return;
    const bc = this.blockCounts[table]!;
    this.space.forEachPart(vpn, n, (idx, count) => {
      for (let i = idx, e = idx + count; i < e; i++) {
        const old = st[i]!;
        if (old === state) continue;
        st[i] = state;
        const base = Math.floor(i / PMD_PAGES) * BLOCK_SLOTS;
        bc[base + (old & ST_KIND_MASK)]!--;
        if ((old & ST_KIND_MASK) !== ST_NONE) bc[base + 16 + (old >>> ST_MEM_SHIFT)]!--;
        bc[base + (state & ST_KIND_MASK)]!++;
        if ((state & ST_KIND_MASK) !== ST_NONE) bc[base + 16 + (state >>> ST_MEM_SHIFT)]!++;
      }
    });
  }

  /** State of the page at vpn in a table now (ST_NONE outside the space). */
  stateAt(table: number, vpn: number): number {
    const i = this.space.indexOf(vpn);
    return i < 0 ? ST_NONE : this.states[table]![i]!;
  }

  /** The index range of deltas belonging to event e (the changes it made). */
  deltasOf(e: number): [number, number] {
    const d = this.rec.deltas;
    return [lowerBound(d.event, d.count, e), lowerBound(d.event, d.count, e + 1)];
  }
}

/** First index i in [0, n) with arr[i] >= v (arr sorted ascending). */
export function lowerBound(arr: ArrayLike<number>, n: number, v: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
