// The recorder behind `--record`: it listens to a machine's events (docs/architecture.md decision 7) and
// to its devices' page-table changes, and writes the event log of docs/visualizer.md.
//
// Entry changes are not guessed from the events: after each event the recorder reads the page
// tables over the pages the event touched (a fault's page, an invalidation's range, a map's
// pages) and records what differs from its shadow copy (shadow.ts), as runs. An event's
// changes are read when the next event arrives (or at a mark, a snapshot, the end), when the
// operation that emitted it has finished. The columns themselves are log.ts's.

import { PAGE_SIZE } from '../../mm/constants.js';
import type { FaultEvent, FreeEvent, InvalidateEvent, MapEvent, MigrateEvent, UnmapEvent } from '../../mm/events.js';
import type { Machine } from '../../mm/machine.js';
import type { DevPagemap } from '../../mm/memremap.js';
import type { Mm } from '../../mm/mm.js';
import { isLeafEntry, LEVEL_PAGES, ptFlags, type PtNode, type PtSlot } from '../../mm/pagetable.js';
import { keyLevel, keyVpn } from '../../mm/rmap.js';
import { flagString } from '../../mm/vma.js';
import type { Clock } from '../../drivers/clock.js';
import { type Compress, type Encoding, encodeColumn } from './columns.js';
import {
  type EventCategory, FAULT_REMOTE, FAULT_WRITE, MAX_MEMORIES, type Mark, type MemoryInfo, NONE, RECORD_FORMAT,
  RECORD_VERSION, type RecordDoc, type Snapshot, type TableInfo, type VmaChange,
} from './format.js';
import { EventTypes, T_DEV_MAP, T_DEV_UNMAP, T_FAULT, T_FREE, T_INV_END, T_INV_START, T_MAP, T_MIGRATE, T_UNMAP } from './event_types.js';
import { RecordLog } from './log.js';
import { Shadows, type Table } from './shadow.js';

/** A device's page table, as the recorder sees it. */
export interface DeviceTableSource {
  readonly name: string;
  /** The address space the device mirrors. */
  readonly mm: Mm;
  /** The device's own memory, if it has any. */
  readonly memory?: DeviceMemorySource | null;
  /** The entry at vpn: -1 for none, else pfn * 2 + 1 if writable, pfn * 2 if read-only. */
  entry(vpn: number): number;
  /** Call fn for every vpn in [startVpn, endVpn) that has an entry, in any order. */
  forEachVpn(startVpn: number, endVpn: number, fn: (vpn: number) => void): void;
  /**
   * Call fn(vpn, n, why) after entries [vpn, vpn + n) may have changed (why, if given, names
   * the update: a leaf size, an unmap's reason); returns the unsubscribe.
   */
  watch(fn: (vpn: number, n: number, why?: string) => void): () => void;
}

export interface DeviceMemorySource {
  readonly name: string;
  /** Frames of memory. */
  readonly frames: number;
  /** The pagemap its frames belong to (to tell which memory a frame number is in). */
  readonly pgmap: DevPagemap | null;
  /** Frames in use now. */
  used(): number;
}

export interface RecorderOptions {
  /** Gzip for the columns (node:zlib's gzipSync); none: columns are stored raw. */
  compress?: Compress | null;
  /** Simulated time: each event carries clock.now() (ns). */
  clock?: Clock | null;
  /** Shown by the viewer. */
  title?: string;
  /** The command that recorded the run ("demo", "run", ...), and anything else worth keeping. */
  command?: string;
  meta?: Record<string, unknown>;
  /** Column encoding (columns.ts): 'fixed' (default, fastest to load) or 'varint' (smallest). */
  encoding?: Encoding;
  /** A snapshot is taken once this many entry changes (runs) have been recorded since the last (at least as many as the last had). */
  snapshotEvery?: number;
}


interface Memory {
  info: MemoryInfo;
  pgmap: DevPagemap | null;
  used: () => number;
  last: number;
}

export class Recorder {
  private machine: Machine | null = null;
  private readonly compress: Compress | null;
  private readonly clock: Clock | null;
  private readonly opts: RecorderOptions;
  private readonly types = new EventTypes();

  private readonly tables: Table[] = [];
  private readonly cpuTables = new Map<number, Table>();
  /** CPU tables of address spaces fork is still filling (no process owns them yet). */
  private readonly forking: Table[] = [];
  private nextMmProbe = 1;
  private readonly memories: Memory[] = [];
  private readonly memByPgmap = new Map<DevPagemap, number>();

  private readonly log: RecordLog;
  private shadows: Shadows | null = null;

  private readonly vmaChanges: VmaChange[] = [];
  private readonly regionStarts: number[] = [];
  private readonly regionEnds: number[] = [];
  private readonly marks: Mark[] = [];
  private openMark: Mark | null = null;
  private readonly snapshots: Snapshot[] = [];
  private lastSnapshotRuns = 0;
  private readonly snapshotEvery: number;
  private readonly encoding: Encoding;

  // Pages whose entries the last event may have changed: [table, start, end) triples.
  private readonly dirtyTab: Table[] = [];
  private readonly dirtyS: number[] = [];
  private readonly dirtyE: number[] = [];
  // A device page-table update being gathered (consecutive changes of one table coalesce).
  private devOpTab: Table | null = null;
  private devOpS = 0;
  private devOpE = 0;
  private devOpWhy = '';

  private readonly off: Array<() => void> = [];
  private finished: RecordDoc | null = null;

  constructor(opts: RecorderOptions = {}) {
    this.opts = opts;
    this.compress = opts.compress ?? null;
    this.clock = opts.clock ?? null;
    this.snapshotEvery = opts.snapshotEvery ?? 16384;
    this.encoding = opts.encoding ?? 'fixed';
    const clock = this.clock;
    this.log = new RecordLog(clock ? () => clock.now() : null);
  }

  /** Events recorded so far: the position the machine's state is at now (pending changes are recorded first). */
  get position(): number {
    if (this.machine && !this.finished) this.flush();
    return this.log.events;
  }

  private get pos(): number {
    return this.log.events;
  }

  /** Start recording a machine: its processes' page tables as they are now, then every event. */
  attach(machine: Machine): this {
    if (this.machine) throw new Error('recorder already attached');
    this.machine = machine;
    this.shadows = new Shadows(machine.phys, (pfn) => this.memOf(pfn), this.log);
    this.memories.push({
      info: { id: 0, name: 'system RAM', kind: 'system', frames: machine.phys.ramFrames }, pgmap: null,
      used: () => machine.phys.usedRamFrames, last: -1,
    });
    const ev = machine.events;
    this.off.push(
      ev.subscribe('fault', this.onFault),
      ev.subscribe('map', this.onMap),
      ev.subscribe('unmap', this.onUnmap),
      ev.subscribe('invalidate', this.onInvalidate),
      ev.subscribe('free', this.onFree),
      ev.subscribe('migrate', this.onMigrate),
    );
    this.checkWorld();
    return this;
  }

  /** Record a device's page table beside the CPU's; returns its table id. */
  addDevice(src: DeviceTableSource): number {
    this.flush();
    let memory = -1;
    if (src.memory) memory = this.addMemory(src.memory.name, src.memory.frames, src.memory.pgmap, () => src.memory!.used());
    const tab = this.addTable('device', src.name, src.mm, memory, src);
    tab.unwatch = src.watch((vpn, n, why) => this.onDeviceChange(tab, vpn, n, why ?? ''));
    this.shadows!.diff(tab, 0, src.mm.taskSize / PAGE_SIZE);
    this.checkFrames();
    return tab.info.id;
  }

  /**
   * Record an event of a type the mm does not emit (a GPU fault, a fault batch, an eviction):
   * `category` picks its timeline row; `table`, `vpn`, `n` the pages it is about (a device
   * table id from addDevice, or cpuTableOf). The pages' entries are read after it, as for mm events.
   */
  recordEvent(name: string, category: EventCategory, sub: string, table: number, vpn = -1, n = 0, a = NONE, b = NONE): void {
    this.flush(false);
    const t = this.types.id(name, category);
    this.pushEvent(t, this.types.sub(t, sub), table, vpn, n, a, b);
    const tab = this.tables[table];
    if (tab && vpn >= 0 && n > 0) this.markDirty(tab, vpn, vpn + n);
  }

  /** The CPU table id of an mm (registering it if it is new). */
  cpuTableOf(mm: Mm): number {
    return this.cpuTable(mm.id).info.id;
  }

  /** Start a labelled span of the run (a scenario step); it ends where the next starts, or at endMark / finish. */
  mark(label: string): void {
    this.flush();
    this.endMark();
    // A snapshot where each step starts: a viewer can show any step's start from it alone.
    if (this.snapshots[this.snapshots.length - 1]?.event !== this.pos) this.snapshot();
    this.openMark = { label, start: this.pos, end: this.pos };
  }

  endMark(): void {
    if (!this.openMark) return;
    this.flush();
    this.openMark.end = this.pos;
    this.marks.push(this.openMark);
    this.openMark = null;
  }

  /** Stop recording and return the document (idempotent). */
  finish(): RecordDoc {
    if (this.finished) return this.finished;
    this.flush();
    const marked = this.openMark !== null;
    this.endMark();
    if (this.snapshots.length === 0 || (marked && this.snapshots[this.snapshots.length - 1]!.event !== this.pos)) this.snapshot();
    for (const f of this.off.splice(0)) f();
    for (const t of this.tables) t.unwatch?.();
    const columns = this.log.encode(this.compress, this.encoding);
    this.finished = {
      format: RECORD_FORMAT,
      version: RECORD_VERSION,
      meta: {
        command: this.opts.command ?? 'record', title: this.opts.title ?? 'hmmsim run', pageSize: PAGE_SIZE, ...this.opts.meta,
      },
      tables: this.tables.map((t) => t.info),
      memories: this.memories.map((m) => m.info),
      eventTypes: this.types.list,
      regions: this.regions(),
      vmas: this.vmaChanges,
      marks: this.marks,
      ...columns,
      snapshots: this.snapshots,
    };
    return this.finished;
  }

  // ---- mm events ----

  private readonly onFault = (e: FaultEvent): void => {
    this.flush(false);
    const tab = this.cpuTable(e.mmId);
    const vpn = Math.floor(e.addr / PAGE_SIZE);
    const sub = this.types.sub(T_FAULT, e.kind) | (e.write ? FAULT_WRITE : 0) | (e.remote ? FAULT_REMOTE : 0);
    this.pushEvent(T_FAULT, sub, tab.info.id, vpn, 1, NONE, NONE);
    // A fault is emitted once its entry is installed: read it now, over the whole leaf that maps
    // the address (a THP fault, or the reuse of a huge PMD after fork, changes all its pages).
    const at = this.faultSlot;
    tab.mm.pt.lookup(vpn, at);
    const span = at.level > 0 && isLeafEntry(ptFlags(at.node, at.idx)) ? LEVEL_PAGES[at.level]! : 1;
    const base = Math.floor(vpn / span) * span;
    this.diffNow(tab, base, base + span);
  };
  private readonly faultSlot: PtSlot = { node: null as unknown as PtNode, idx: 0, level: 0 };

  private readonly onMap = (e: MapEvent): void => {
    this.flush(false);
    const tab = this.cpuTable(e.mmId);
    const vpn = Math.floor(e.addr / PAGE_SIZE);
    this.pushEvent(T_MAP, 0, tab.info.id, vpn, e.nr, e.pfn, NONE);
    this.markDirty(tab, vpn, vpn + e.nr);
  };

  private readonly onUnmap = (e: UnmapEvent): void => {
    this.flush(false);
    const tab = this.cpuTable(e.mmId);
    const s = Math.floor(e.start / PAGE_SIZE);
    const end = Math.ceil(Math.min(e.end, tab.mm.taskSize) / PAGE_SIZE);
    this.pushEvent(T_UNMAP, this.types.sub(T_UNMAP, e.reason), tab.info.id, s, end - s, NONE, NONE);
    this.diffNow(tab, s, end);
  };

  private readonly onInvalidate = (e: InvalidateEvent): void => {
    this.flush(false);
    const mm = e.range.mm;
    const tab = this.cpuTable(mm.id);
    const s = Math.floor(e.range.start / PAGE_SIZE);
    const end = Math.ceil(Math.min(e.range.end, mm.taskSize) / PAGE_SIZE);
    const start = e.phase === 'start';
    this.pushEvent(start ? T_INV_START : T_INV_END, this.types.sub(start ? T_INV_START : T_INV_END, e.range.event), tab.info.id, s, end - s, NONE, NONE);
    // The entries change between start and end: read them at the end.
    if (!start) this.diffNow(tab, s, end);
  };

  private readonly onFree = (e: FreeEvent): void => {
    this.flush(false);
    this.pushEvent(T_FREE, e.device ? 1 : 0, this.memOf(e.pfn), -1, 1 << e.order, e.pfn, NONE);
  };

  private readonly onMigrate = (e: MigrateEvent): void => {
    this.flush(false);
    if (e.mmId < 0) {
      this.onMigrateByFrame(e);
      return;
    }
    const tab = this.cpuTable(e.mmId);
    const vpn = e.addr < 0 ? -1 : Math.floor(e.addr / PAGE_SIZE);
    this.pushEvent(T_MIGRATE, e.toDevice ? 1 : 0, tab.info.id, vpn, 1, e.from, e.to);
    if (vpn >= 0) this.markDirty(tab, vpn, vpn + 1);
  };

  /**
   * A migration by frame (migrate_device_pages, as a driver evicting its memory does) names no
   * address space: the entries it changed are those that map the new frame now (the rmap).
   */
  private onMigrateByFrame(e: MigrateEvent): void {
    const where = this.machine!.rmap.entries(e.to);
    let table = 0;
    let vpn = -1;
    for (let i = 0; i < where.length; i += 2) {
      const tab = this.cpuTable(where[i]!);
      const v = keyVpn(where[i + 1]!);
      const span = LEVEL_PAGES[keyLevel(where[i + 1]!)]!;
      if (i === 0) {
        table = tab.info.id;
        vpn = v;
      }
      this.markDirty(tab, v, v + span);
    }
    this.pushEvent(T_MIGRATE, e.toDevice ? 1 : 0, table, vpn, 1, e.from, e.to);
  }

  // ---- device page-table changes ----

  private onDeviceChange(tab: Table, vpn: number, n: number, why: string): void {
    if (this.dirtyTab.length) this.flushDirty();
    if (this.devOpTab === tab && why === this.devOpWhy && vpn <= this.devOpE && vpn + n >= this.devOpS) {
      if (vpn < this.devOpS) this.devOpS = vpn;
      if (vpn + n > this.devOpE) this.devOpE = vpn + n;
      return;
    }
    if (this.devOpTab) this.flushDevOp();
    this.devOpTab = tab;
    this.devOpS = vpn;
    this.devOpE = vpn + n;
    this.devOpWhy = why;
  }

  /** Record the gathered device update as one event (device-map if it mapped anything, else device-unmap) and its changes. */
  private flushDevOp(): void {
    const tab = this.devOpTab!;
    this.devOpTab = null;
    const id = this.pos;
    this.log.pushEvent(T_DEV_MAP, 0, tab.info.id, this.devOpS, this.devOpE - this.devOpS);
    const before = this.log.deltas;
    const mapped = this.shadows!.diff(tab, this.devOpS, this.devOpE);
    if (this.log.deltas === before) {
      this.log.popEvent(); // nothing changed: no event
      return;
    }
    if (!mapped) this.log.evType.arr[id] = T_DEV_UNMAP;
    if (this.devOpWhy) this.log.evSub.arr[id] = this.types.sub(mapped ? T_DEV_MAP : T_DEV_UNMAP, this.devOpWhy);
    this.afterChanges();
  }

  // ---- bookkeeping around every event ----

  /**
   * Read what the previous event changed, and take a snapshot if one is due; call before
   * recording an event. `recheck`: also reread the blocks holding migration entries now (when
   * no event follows: a position asked for, a mark, the end); else pushEvent does it after the
   * next event, so that what a migration's end changes is that event's (its migrate event's).
   */
  private flush(recheck = true): void {
    if (!this.machine) throw new Error('recorder is not attached');
    if (this.devOpTab) this.flushDevOp();
    this.checkWorld();
    if (this.dirtyTab.length) this.flushDirty();
    if (recheck && this.shadows!.migrating.size) this.shadows!.recheckMigrating();
    this.checkFrames();
    const runs = this.log.deltasSinceSnapshot;
    if (this.snapshots.length === 0 || runs >= Math.max(this.snapshotEvery, this.lastSnapshotRuns)) this.snapshot();
  }

  private flushDirty(): void {
    for (let i = 0; i < this.dirtyTab.length; i++) this.shadows!.diff(this.dirtyTab[i]!, this.dirtyS[i]!, this.dirtyE[i]!);
    this.dirtyTab.length = 0;
    this.dirtyS.length = 0;
    this.dirtyE.length = 0;
    this.afterChanges();
  }

  private afterChanges(): void {
    this.checkFrames();
  }

  /** Read pages an event changed before it was emitted, so the changes are recorded as its own. */
  private diffNow(tab: Table, s: number, e: number): void {
    this.shadows!.diff(tab, s, e);
    this.checkFrames();
  }

  private markDirty(tab: Table, s: number, e: number): void {
    const n = this.dirtyTab.length;
    if (n && this.dirtyTab[n - 1] === tab && s <= this.dirtyE[n - 1]! && e >= this.dirtyS[n - 1]!) {
      this.dirtyS[n - 1] = Math.min(s, this.dirtyS[n - 1]!);
      this.dirtyE[n - 1] = Math.max(e, this.dirtyE[n - 1]!);
      return;
    }
    this.dirtyTab.push(tab);
    this.dirtyS.push(s);
    this.dirtyE.push(e);
  }

  /** Record an event, then reread the blocks holding migration entries (their changes are the event's). */
  private pushEvent(type: number, sub: number, table: number, vpn: number, n: number, a: number, b: number): void {
    this.log.pushEvent(type, sub, table, vpn, n, a, b);
    if (this.shadows!.migrating.size) this.shadows!.recheckMigrating();
  }

  /** New processes, exited ones, VMA lists that changed, frames in use. */
  private checkWorld(): void {
    const machine = this.machine!;
    for (let mm = machine.mmById(this.nextMmProbe); mm; mm = machine.mmById(this.nextMmProbe)) this.cpuTable(mm.id);
    if (this.forking.length) this.checkForks();
    for (let i = 0; i < this.tables.length; i++) {
      const t = this.tables[i]!;
      if (t.info.died !== undefined) continue;
      if (t.mm.dead) {
        // A device's table outlives the address space: a driver that missed the exit may
        // still map (or map again) its pages, and that should be seen.
        if (!t.dev) t.info.died = this.pos;
        continue;
      }
      if (!t.dev) this.checkVmas(t);
    }
  }

  /**
   * fork copies entries into the child before the child has a process, with an event for some
   * of them only (none for swap entries or the zero page): once the process exists, read the
   * whole child table.
   */
  private checkForks(): void {
    const procs = this.machine!.processes;
    for (let i = this.forking.length - 1; i >= 0; i--) {
      const t = this.forking[i]!;
      if (!t.mm.dead && !procs.some((p) => p.mm === t.mm)) continue;
      this.forking.splice(i, 1);
      this.markDirty(t, 0, t.mm.taskSize / PAGE_SIZE);
    }
  }

  private checkVmas(t: Table): void {
    const list = t.mm.vmas.all;
    const sig = t.vmaSig;
    let same = sig.length === list.length * 3;
    for (let i = 0; same && i < list.length; i++) {
      const v = list[i]!;
      same = sig[3 * i] === v.start && sig[3 * i + 1] === v.end && sig[3 * i + 2] === v.flags;
    }
    if (same) return;
    sig.length = 0;
    const vmas: VmaChange['vmas'] = [];
    for (const v of list) {
      sig.push(v.start, v.end, v.flags);
      const s = v.start / PAGE_SIZE;
      const e = v.end / PAGE_SIZE;
      vmas.push([s, e - s, flagString(v.flags), v.special ? 'device' : v.file ? `file ${v.file.name ?? v.file.id}` : v.isHugetlb() ? 'hugetlb' : 'anon']);
      this.regionStarts.push(s);
      this.regionEnds.push(e);
    }
    const last = this.vmaChanges.length ? this.vmaChanges[this.vmaChanges.length - 1]! : null;
    if (last && last.table === t.info.id && last.at === this.pos) last.vmas = vmas;
    else this.vmaChanges.push({ at: this.pos, table: t.info.id, vmas });
  }

  private checkFrames(): void {
    for (let i = 0; i < this.memories.length; i++) {
      const m = this.memories[i]!;
      const used = m.used();
      if (used === m.last || !(used >= 0)) continue;
      m.last = used;
      this.log.pushFrames(i, used);
    }
  }

  private cpuTable(mmId: number): Table {
    let t = this.cpuTables.get(mmId);
    if (t) return t;
    const mm = this.machine!.mmById(mmId);
    if (!mm) throw new Error(`event for unknown mm ${mmId}`);
    if (mmId >= this.nextMmProbe) this.nextMmProbe = mmId + 1;
    t = this.addTable('cpu', `process mm ${mmId}`, mm, -1, null);
    this.cpuTables.set(mmId, t);
    this.checkVmas(t);
    // A new address space starts with the entries it was given (fork's child may still be getting them).
    this.shadows!.diff(t, 0, mm.taskSize / PAGE_SIZE);
    if (!this.machine!.processes.some((p) => p.mm === mm)) this.forking.push(t);
    return t;
  }

  private addTable(kind: 'cpu' | 'device', name: string, mm: Mm, memory: number, dev: DeviceTableSource | null): Table {
    const info: TableInfo = { id: this.tables.length, kind, name, mm: mm.id, memory, born: this.pos };
    if (this.tables.length >= 0xffff) throw new Error('too many page tables to record');
    const t: Table = { info, shadow: new Map(), mm, dev, vmaSig: [], unwatch: null };
    this.tables.push(t);
    return t;
  }

  private addMemory(name: string, frames: number, pgmap: DevPagemap | null, used: () => number): number {
    if (pgmap && this.memByPgmap.has(pgmap)) return this.memByPgmap.get(pgmap)!;
    const id = this.memories.length;
    if (id >= MAX_MEMORIES) return MAX_MEMORIES - 1;
    this.memories.push({ info: { id, name, kind: 'device', frames }, pgmap, used, last: -1 });
    if (pgmap) this.memByPgmap.set(pgmap, id);
    return id;
  }

  /** Which memory a frame is in: 0 for system RAM, a device memory's id, or a new id for a pagemap no device declared. */
  private memOf(pfn: number): number {
    const phys = this.machine!.phys;
    if (pfn < phys.ramFrames) return 0;
    const pgmap = phys.pagemapOf(pfn);
    if (!pgmap) return 0;
    const id = this.memByPgmap.get(pgmap);
    if (id !== undefined) return id;
    // Memory of a driver that gave the recorder no source (dmirror's, say): named, frames not counted.
    return this.addMemory(`device memory ${this.memories.length} (${pgmap.type})`, pgmap.nframes, pgmap, () => NaN);
  }

  // ---- snapshots ----

  /** Full state now, as runs per table; positions after it need only the changes that follow. */
  private snapshot(): void {
    const tables: Snapshot['tables'] = [];
    let runs = 0;
    const vpn: number[] = [];
    const n: number[] = [];
    const st: number[] = [];
    for (const t of this.tables) {
      vpn.length = n.length = st.length = 0;
      this.shadows!.runs(t, vpn, n, st);
      if (n.length === 0) continue;
      runs += n.length;
      const gz = this.compress;
      tables.push({
        table: t.info.id,
        vpn: encodeColumn('f64', vpn, vpn.length, true, gz, this.encoding),
        n: encodeColumn('u32', n, n.length, false, gz, this.encoding),
        state: encodeColumn('u8', st, st.length, false, gz, this.encoding),
      });
    }
    this.snapshots.push({ event: this.pos, delta: this.log.deltas, frame: this.log.frames, tables, frames: this.memories.map((m) => Math.max(0, m.last)) });
    this.lastSnapshotRuns = runs;
    this.log.snapshotTaken();
  }

  /** Every page ever inside a VMA, merged into [startVpn, pages] runs. */
  private regions(): Array<[number, number]> {
    const idx = this.regionStarts.map((_, i) => i).sort((a, b) => this.regionStarts[a]! - this.regionStarts[b]!);
    const out: Array<[number, number]> = [];
    let cs = -1;
    let ce = -1;
    for (const i of idx) {
      const s = this.regionStarts[i]!;
      const e = this.regionEnds[i]!;
      if (s <= ce) ce = Math.max(ce, e);
      else {
        if (ce > cs) out.push([cs, ce - cs]);
        cs = s;
        ce = e;
      }
    }
    if (ce > cs) out.push([cs, ce - cs]);
    return out;
  }
}
