// The recorder's copy of each recorded page table: one state byte per page (format.ts's
// ST_*), kept in 512-page chunks for the pages that hold something. Entry changes are not
// guessed from events: the recorder asks for a range to be compared with the real table, and
// every page whose state differs is written to the log as a change of the last event. Reading
// is one table lookup per 512 pages; nothing is allocated per page.

import { PMD_NR } from '../../mm/constants.js';
import type { Mm } from '../../mm/mm.js';
import {
  K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE, LEVEL_PAGES, type PtSlot,
  entryKind, ptFlags, ptKind, ptVal, pteWrite,
} from '../../mm/pagetable.js';
import type { PhysMem } from '../../mm/physmem.js';
import {
  ST_DEVICE_PRIVATE, ST_EXCLUSIVE, ST_KIND_MASK, ST_MIGRATION, ST_NONE, ST_OTHER, ST_READ, ST_SWAP, ST_WRITE, ST_ZERO, type TableInfo, stateOf,
} from './format.js';
import type { RecordLog } from './log.js';
import type { DeviceTableSource } from './recorder.js';

/** One 512-page chunk of a table's shadow: the state byte of each page, and how many are not none. */
class Chunk {
  readonly st = new Uint8Array(PMD_NR);
  used = 0;
}

/** A recorded page table: a process's (dev null) or a device's. */
export interface Table {
  info: TableInfo;
  shadow: Map<number, Chunk>;
  mm: Mm;
  dev: DeviceTableSource | null;
  /** CPU tables: the VMA list last recorded, flattened (start, end, flags, ...). */
  vmaSig: number[];
  unwatch: (() => void) | null;
}

export class Shadows {
  /**
   * Chunks holding migration entries, per table. A migration ends without an event for the
   * pages it gave up on (their entries are restored), so these chunks are read again before
   * each event until no migration entry is left in them.
   */
  readonly migrating = new Map<Table, Set<number>>();
  private readonly scratch = new Uint8Array(PMD_NR);
  private readonly slot: PtSlot = { node: null!, idx: 0, level: 0 };

  /** memOf(pfn): the id of the memory a frame is in (0 for system RAM). */
  constructor(private readonly phys: PhysMem, private readonly memOf: (pfn: number) => number, private readonly log: RecordLog) {}

  /** Compare [s, e) of a table with its shadow and log the differences; returns whether any page became mapped. */
  diff(tab: Table, s: number, e: number): boolean {
    if (e <= s) return false;
    const c0 = Math.floor(s / PMD_NR);
    const c1 = Math.floor((e - 1) / PMD_NR);
    let mapped = false;
    if (c1 - c0 < 256) {
      for (let c = c0; c <= c1; c++) mapped = this.diffChunk(tab, c, s, e) || mapped;
      return mapped;
    }
    // A large range (an exit, a munmap of everything): visit only chunks that hold something now or held something before.
    const set = new Set<number>();
    for (const c of tab.shadow.keys()) if (c >= c0 && c <= c1) set.add(c);
    this.sourceChunks(tab, s, e, (c) => void set.add(c));
    for (const c of [...set].sort((x, y) => x - y)) mapped = this.diffChunk(tab, c, s, e) || mapped;
    return mapped;
  }

  /** Read again every chunk holding migration entries (their changes are the last event's). */
  recheckMigrating(): void {
    for (const [tab, chunks] of this.migrating) {
      if (tab.mm.dead) chunks.clear();
      for (const c of chunks) if (!this.recheckChunk(tab, c)) chunks.delete(c);
      if (chunks.size === 0) this.migrating.delete(tab);
    }
  }

  /** A table's whole shadow as runs of pages with one state, in address order, appended to vpn/n/st. */
  runs(t: Table, vpn: number[], n: number[], st: number[]): void {
    for (const c of [...t.shadow.keys()].sort((x, y) => x - y)) {
      const ch = t.shadow.get(c)!.st;
      for (let i = 0; i < PMD_NR; i++) {
        const s = ch[i]!;
        if (s === ST_NONE) continue;
        const v = c * PMD_NR + i;
        const k = n.length - 1;
        if (k >= 0 && st[k] === s && vpn[k]! + n[k]! === v) n[k]!++;
        else {
          vpn.push(v);
          n.push(1);
          st.push(s);
        }
      }
    }
  }

  /** Read again the pages of a chunk whose shadow holds migration entries; returns whether any is left. */
  private recheckChunk(tab: Table, c: number): boolean {
    const chunk = tab.shadow.get(c);
    if (!chunk) return false;
    const base = c * PMD_NR;
    const pte = tab.dev ? null : tab.mm.pt.tableAt(base, 0);
    if (!pte) {
      // A huge entry or nothing covers the chunk now (or a device table): read it whole.
      this.diffChunk(tab, c, base, base + PMD_NR);
      const st = tab.shadow.get(c)?.st;
      for (let i = 0; st && i < PMD_NR; i++) if ((st[i]! & ST_KIND_MASK) === ST_MIGRATION) return true;
      return false;
    }
    const st = chunk.st;
    let left = false;
    for (let i = 0; i < PMD_NR; i++) {
      if ((st[i]! & ST_KIND_MASK) !== ST_MIGRATION) continue;
      const now = this.cpuState(ptFlags(pte, i), ptVal(pte, i));
      if ((now & ST_KIND_MASK) === ST_MIGRATION) left = true;
      if (now === st[i]) continue;
      st[i] = now;
      if (now === ST_NONE) chunk.used--;
      this.log.pushDelta(tab.info.id, base + i, now);
    }
    if (chunk.used === 0) tab.shadow.delete(c);
    return left;
  }

  /** The state byte of a CPU entry. */
  private cpuState(flg: number, val: number): number {
    switch (entryKind(flg)) {
      case K_NONE:
        return ST_NONE;
      case K_PRESENT:
        if (this.phys.isZeroPfn(val)) return stateOf(ST_ZERO, 0);
        return stateOf(pteWrite(flg) ? ST_WRITE : ST_READ, this.memOf(val));
      case K_SWAP:
        return ST_SWAP;
      case K_MIGRATION:
        return stateOf(ST_MIGRATION, this.memOf(val));
      case K_DEVICE_PRIVATE:
        return stateOf(ST_DEVICE_PRIVATE, this.memOf(val));
      case K_DEVICE_EXCLUSIVE:
        return stateOf(ST_EXCLUSIVE, this.memOf(val));
      default:
        return ST_OTHER;
    }
  }

  /** States of pages [chunk*512 + from, chunk*512 + to) of a table into out[from..to). */
  private read(tab: Table, chunk: number, from: number, to: number, out: Uint8Array): void {
    const base = chunk * PMD_NR;
    if (tab.dev) {
      for (let i = from; i < to; i++) {
        const ent = tab.dev.entry(base + i);
        out[i] = ent < 0 ? ST_NONE : stateOf(ent % 2 ? ST_WRITE : ST_READ, this.memOf(Math.floor(ent / 2)));
      }
      return;
    }
    const pt = tab.mm.pt;
    const pte = pt.tableAt(base, 0);
    if (pte) {
      for (let i = from; i < to; i++) out[i] = this.cpuState(ptFlags(pte, i), ptVal(pte, i));
      return;
    }
    // No PTE table: a huge leaf, a special entry or nothing covers the whole chunk.
    pt.lookup(base, this.slot);
    const st = this.cpuState(ptFlags(this.slot.node, this.slot.idx), ptVal(this.slot.node, this.slot.idx));
    out.fill(st, from, to);
  }

  /** The chunks of [s, e) that may hold entries now: those the source has, for large ranges. */
  private sourceChunks(tab: Table, s: number, e: number, add: (c: number) => void): void {
    if (tab.dev) {
      tab.dev.forEachVpn(s, e, (v) => add(Math.floor(v / PMD_NR)));
      return;
    }
    tab.mm.pt.forEachTable(s, e, (node, first, last, base) => {
      if (node.level === 0) {
        add(base / PMD_NR);
        return;
      }
      const span = LEVEL_PAGES[node.level]!;
      for (let i = first; i <= last; i++) {
        const k = ptKind(node, i);
        if (k === K_NONE || k === K_TABLE) continue;
        const v0 = Math.max(s, base + i * span);
        const v1 = Math.min(e, base + (i + 1) * span);
        for (let c = Math.floor(v0 / PMD_NR); c * PMD_NR < v1; c++) add(c);
      }
    });
  }

  private diffChunk(tab: Table, c: number, s: number, e: number): boolean {
    const base = c * PMD_NR;
    const from = Math.max(s, base) - base;
    const to = Math.min(e, base + PMD_NR) - base;
    const cur = this.scratch;
    this.read(tab, c, from, to, cur);
    let chunk = tab.shadow.get(c);
    let mapped = false;
    let migration = false;
    for (let i = from; i < to; i++) {
      const now = cur[i]!;
      const was = chunk ? chunk.st[i]! : ST_NONE;
      if (now === was) continue;
      if (!chunk) {
        chunk = new Chunk();
        tab.shadow.set(c, chunk);
      }
      chunk.st[i] = now;
      if (was === ST_NONE) chunk.used++;
      else if (now === ST_NONE) chunk.used--;
      if (now !== ST_NONE) mapped = true;
      if ((now & ST_KIND_MASK) === ST_MIGRATION) migration = true;
      this.log.pushDelta(tab.info.id, base + i, now);
    }
    if (migration) {
      let set = this.migrating.get(tab);
      if (!set) this.migrating.set(tab, (set = new Set()));
      set.add(c);
    }
    if (chunk && chunk.used === 0) tab.shadow.delete(c);
    return mapped;
  }
}
