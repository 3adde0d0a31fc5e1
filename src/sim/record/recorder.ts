// The recorder behind `--record`: it listens to a machine's events (docs/architecture.md decision 7) and
// to its devices' page-table changes, and writes the event log of docs/visualizer.md.
//
// Entry changes are not guessed from the events: after each event the recorder reads the page
// tables over the pages the event touched (a fault's page, an invalidation's range, a map's
// pages) and records what differs from its shadow copy, as runs. An event's changes are read
// when the next event arrives (or at a mark, a snapshot, the end), when the operation that
// emitted it has finished. Reading is one table lookup per 512 pages; nothing is allocated
// per event.

import { PAGE_SIZE, PMD_NR } from '../../mm/constants.js';
import type { FaultEvent, FreeEvent, InvalidateEvent, MapEvent, MigrateEvent, UnmapEvent } from '../../mm/events.js';
import type { Machine } from '../../mm/machine.js';
import type { DevPagemap } from '../../mm/memremap.js';
import type { Mm } from '../../mm/mm.js';
import {
  K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE, LEVEL_PAGES, type PtSlot,
  entryKind, ptFlags, ptKind, ptVal, pteWrite,
} from '../../mm/pagetable.js';
import { keyLevel, keyVpn } from '../../mm/rmap.js';
import { flagString } from '../../mm/vma.js';
import type { Clock } from '../../drivers/clock.js';
import { type Compress, type Encoding, GrowColumn, encodeColumn, encodeGrow } from './columns.js';
import {
  type EventCategory, type EventTypeInfo, FAULT_REMOTE, FAULT_WRITE, MAX_MEMORIES, type Mark, type MemoryInfo, NONE, RECORD_FORMAT,
  RECORD_VERSION, type RecordDoc, ST_DEVICE_PRIVATE, ST_EXCLUSIVE, ST_MIGRATION, ST_NONE, ST_KIND_MASK, ST_OTHER, ST_READ, ST_SWAP, ST_WRITE, ST_ZERO,
  type Snapshot, type TableInfo, type VmaChange, stateOf,
} from './format.js';

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

const FAULT_KINDS = [
  'anon', 'zero', 'thp', 'huge-zero', 'hugetlb', 'cow', 'reuse', 'file', 'file-cow', 'swapin', 'migration-wait', 'device-private',
  'device-exclusive', 'numa', 'spurious',
];
const NOTIFY_EVENTS = ['UNMAP', 'CLEAR', 'PROTECTION_VMA', 'PROTECTION_PAGE', 'SOFT_DIRTY', 'RELEASE', 'MIGRATE', 'EXCLUSIVE'];

// The built-in event types, in this order (their ids).
const T_FAULT = 0;
const T_MAP = 1;
const T_UNMAP = 2;
const T_INV_START = 3;
const T_INV_END = 4;
const T_FREE = 5;
const T_MIGRATE = 6;
const T_DEV_MAP = 7;
const T_DEV_UNMAP = 8;
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

/** One 512-page chunk of a table's shadow: the state byte of each page, and how many are not none. */
class Chunk {
  readonly st = new Uint8Array(PMD_NR);
  used = 0;
}

interface Table {
  info: TableInfo;
  shadow: Map<number, Chunk>;
  mm: Mm;
  dev: DeviceTableSource | null;
  /** CPU tables: the VMA list last recorded, flattened (start, end, flags, ...). */
  vmaSig: number[];
  unwatch: (() => void) | null;
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
  private readonly types: EventTypeInfo[] = BUILTIN_TYPES.map((t) => ({ ...t, subs: [...t.subs] }));
  private readonly typeIds = new Map<string, number>(this.types.map((t, i) => [t.name, i]));
  private readonly subIds: Array<Map<string, number>> = this.types.map((t) => new Map(t.subs.map((s, i) => [s, i])));

  private readonly tables: Table[] = [];
  private readonly cpuTables = new Map<number, Table>();
  /** CPU tables of address spaces fork is still filling (no process owns them yet). */
  private readonly forking: Table[] = [];
  private nextMmProbe = 1;
  private readonly memories: Memory[] = [];
  private readonly memByPgmap = new Map<DevPagemap, number>();

  // events
  private readonly evType = new GrowColumn('u8');
  private readonly evSub = new GrowColumn('u8');
  private readonly evTable = new GrowColumn('u16');
  private readonly evVpn = new GrowColumn('f64');
  private readonly evN = new GrowColumn('u32');
  private readonly evA = new GrowColumn('f64');
  private readonly evB = new GrowColumn('f64');
  private readonly evTime = new GrowColumn('f64');
  // entry changes
  private readonly dEvent = new GrowColumn('i32');
  private readonly dTable = new GrowColumn('u16');
  private readonly dVpn = new GrowColumn('f64');
  private readonly dN = new GrowColumn('u32');
  private readonly dState = new GrowColumn('u8');
  // frames in use
  private readonly fEvent = new GrowColumn('i32', 64);
  private readonly fMem = new GrowColumn('u8', 64);
  private readonly fUsed = new GrowColumn('u32', 64);

  private readonly vmaChanges: VmaChange[] = [];
  private readonly regionStarts: number[] = [];
  private readonly regionEnds: number[] = [];
  private readonly marks: Mark[] = [];
  private openMark: Mark | null = null;
  private readonly snapshots: Snapshot[] = [];
  private lastSnapshotRuns = 0;
  private deltasAtSnapshot = 0;
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

  /**
   * Chunks holding migration entries, per table. A migration ends without an event for the
   * pages it gave up on (their entries are restored), so these chunks are read again before
   * each event until no migration entry is left in them.
   */
  private readonly migrating = new Map<Table, Set<number>>();
  private readonly scratch = new Uint8Array(PMD_NR);
  private readonly slot: PtSlot = { node: null!, idx: 0, level: 0 };
  private readonly off: Array<() => void> = [];
  private finished: RecordDoc | null = null;

  constructor(opts: RecorderOptions = {}) {
    this.opts = opts;
    this.compress = opts.compress ?? null;
    this.clock = opts.clock ?? null;
    this.snapshotEvery = opts.snapshotEvery ?? 16384;
    this.encoding = opts.encoding ?? 'fixed';
  }

  /** Events recorded so far: the position the machine's state is at now (pending changes are recorded first). */
  get position(): number {
    if (this.machine && !this.finished) this.flush();
    return this.evType.n;
  }

  private get pos(): number {
    return this.evType.n;
  }

  /** Start recording a machine: its processes' page tables as they are now, then every event. */
  attach(machine: Machine): this {
    if (this.machine) throw new Error('recorder already attached');
    this.machine = machine;
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
    this.diff(tab, 0, src.mm.taskSize / PAGE_SIZE);
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
    let t = this.typeIds.get(name);
    if (t === undefined) {
      t = this.types.length;
      this.types.push({ name, category, subs: [] });
      this.typeIds.set(name, t);
      this.subIds.push(new Map());
    }
    this.pushEvent(t, this.subId(t, sub), table, vpn, n, a, b);
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
    const gz = this.compress;
    const enc = this.encoding;
    const events: RecordDoc['events'] = {
      count: this.evType.n,
      type: encodeGrow(this.evType, false, gz, enc),
      sub: encodeGrow(this.evSub, false, gz, enc),
      table: encodeGrow(this.evTable, false, gz, enc),
      vpn: encodeGrow(this.evVpn, true, gz, enc),
      n: encodeGrow(this.evN, false, gz, enc),
      a: encodeGrow(this.evA, false, gz, enc),
      b: encodeGrow(this.evB, false, gz, enc),
    };
    if (this.clock) events.time = encodeGrow(this.evTime, true, gz, enc);
    this.finished = {
      format: RECORD_FORMAT,
      version: RECORD_VERSION,
      meta: {
        command: this.opts.command ?? 'record', title: this.opts.title ?? 'hmmsim run', pageSize: PAGE_SIZE, ...this.opts.meta,
      },
      tables: this.tables.map((t) => t.info),
      memories: this.memories.map((m) => m.info),
      eventTypes: this.types,
      regions: this.regions(),
      vmas: this.vmaChanges,
      marks: this.marks,
      events,
      deltas: {
        count: this.dEvent.n,
        event: encodeGrow(this.dEvent, true, gz, enc),
        table: encodeGrow(this.dTable, false, gz, enc),
        vpn: encodeGrow(this.dVpn, true, gz, enc),
        n: encodeGrow(this.dN, false, gz, enc),
        state: encodeGrow(this.dState, false, gz, enc),
      },
      frames: {
        count: this.fEvent.n,
        event: encodeGrow(this.fEvent, true, gz, enc),
        memory: encodeGrow(this.fMem, false, gz, enc),
        used: encodeGrow(this.fUsed, false, gz, enc),
      },
      snapshots: this.snapshots,
    };
    return this.finished;
  }

  // ---- mm events ----

  private readonly onFault = (e: FaultEvent): void => {
    this.flush(false);
    const tab = this.cpuTable(e.mmId);
    const vpn = Math.floor(e.addr / PAGE_SIZE);
    const sub = this.subId(T_FAULT, e.kind) | (e.write ? FAULT_WRITE : 0) | (e.remote ? FAULT_REMOTE : 0);
    this.pushEvent(T_FAULT, sub, tab.info.id, vpn, 1, NONE, NONE);
    // A fault is emitted once its entry is installed: read it now.
    if (e.kind === 'thp' || e.kind === 'huge-zero' || e.kind === 'hugetlb') {
      const v = tab.mm.vmas.lookup(e.addr);
      const span = v && v.hugeShift === 30 ? LEVEL_PAGES[2]! : PMD_NR;
      const base = vpn - (vpn % span);
      this.diffNow(tab, base, base + span);
    } else {
      this.diffNow(tab, vpn, vpn + 1);
    }
  };

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
    this.pushEvent(T_UNMAP, this.subId(T_UNMAP, e.reason), tab.info.id, s, end - s, NONE, NONE);
    this.diffNow(tab, s, end);
  };

  private readonly onInvalidate = (e: InvalidateEvent): void => {
    this.flush(false);
    const mm = e.range.mm;
    const tab = this.cpuTable(mm.id);
    const s = Math.floor(e.range.start / PAGE_SIZE);
    const end = Math.ceil(Math.min(e.range.end, mm.taskSize) / PAGE_SIZE);
    const start = e.phase === 'start';
    this.pushEvent(start ? T_INV_START : T_INV_END, this.subId(start ? T_INV_START : T_INV_END, e.range.event), tab.info.id, s, end - s, NONE, NONE);
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
    this.push(T_DEV_MAP, 0, tab.info.id, this.devOpS, this.devOpE - this.devOpS, NONE, NONE);
    const before = this.dEvent.n;
    const mapped = this.diff(tab, this.devOpS, this.devOpE);
    if (this.dEvent.n === before) {
      this.unpush(); // nothing changed: no event
      return;
    }
    if (!mapped) this.evType.arr[id] = T_DEV_UNMAP;
    if (this.devOpWhy) this.evSub.arr[id] = this.subId(mapped ? T_DEV_MAP : T_DEV_UNMAP, this.devOpWhy);
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
    if (recheck && this.migrating.size) this.recheckMigrating();
    this.checkFrames();
    const runs = this.dEvent.n - this.deltasAtSnapshot;
    if (this.snapshots.length === 0 || runs >= Math.max(this.snapshotEvery, this.lastSnapshotRuns)) this.snapshot();
  }

  private flushDirty(): void {
    for (let i = 0; i < this.dirtyTab.length; i++) this.diff(this.dirtyTab[i]!, this.dirtyS[i]!, this.dirtyE[i]!);
    this.dirtyTab.length = 0;
    this.dirtyS.length = 0;
    this.dirtyE.length = 0;
    this.afterChanges();
  }

  private recheckMigrating(): void {
    for (const [tab, chunks] of this.migrating) {
      if (tab.mm.dead) chunks.clear();
      for (const c of chunks) if (!this.recheckChunk(tab, c)) chunks.delete(c);
      if (chunks.size === 0) this.migrating.delete(tab);
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
      this.delta(tab.info.id, base + i, now);
    }
    if (chunk.used === 0) tab.shadow.delete(c);
    return left;
  }

  private afterChanges(): void {
    this.checkFrames();
  }

  /** Read pages an event changed before it was emitted, so the changes are recorded as its own. */
  private diffNow(tab: Table, s: number, e: number): void {
    this.diff(tab, s, e);
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

  private push(type: number, sub: number, table: number, vpn: number, n: number, a: number, b: number): void {
    this.evType.push(type);
    this.evSub.push(sub);
    this.evTable.push(table);
    this.evVpn.push(vpn);
    this.evN.push(Math.min(n, 0xffffffff));
    this.evA.push(a);
    this.evB.push(b);
    if (this.clock) this.evTime.push(this.clock.now());
  }

  /** Record an event, then reread the blocks holding migration entries (their changes are the event's). */
  private pushEvent(type: number, sub: number, table: number, vpn: number, n: number, a: number, b: number): void {
    this.push(type, sub, table, vpn, n, a, b);
    if (this.migrating.size) this.recheckMigrating();
  }

  private unpush(): void {
    this.evType.n--;
    this.evSub.n--;
    this.evTable.n--;
    this.evVpn.n--;
    this.evN.n--;
    this.evA.n--;
    this.evB.n--;
    if (this.clock) this.evTime.n--;
  }

  private subId(type: number, name: string): number {
    const m = this.subIds[type]!;
    let id = m.get(name);
    if (id === undefined) {
      id = this.types[type]!.subs.length;
      this.types[type]!.subs.push(name);
      m.set(name, id);
    }
    return id;
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
      this.fEvent.push(this.pos - 1);
      this.fMem.push(i);
      this.fUsed.push(used);
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
    this.diff(t, 0, mm.taskSize / PAGE_SIZE);
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

  // ---- reading page tables and recording what changed ----

  /** The state byte of a CPU entry. */
  private cpuState(flg: number, val: number): number {
    switch (entryKind(flg)) {
      case K_NONE:
        return ST_NONE;
      case K_PRESENT:
        if (this.machine!.phys.isZeroPfn(val)) return stateOf(ST_ZERO, 0);
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

  /** Compare [s, e) of a table with its shadow and record the differences; returns whether any page became mapped. */
  private diff(tab: Table, s: number, e: number): boolean {
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
      this.delta(tab.info.id, base + i, now);
    }
    if (migration) {
      let set = this.migrating.get(tab);
      if (!set) this.migrating.set(tab, (set = new Set()));
      set.add(c);
    }
    if (chunk && chunk.used === 0) tab.shadow.delete(c);
    return mapped;
  }

  /** Record that page vpn of table has state now, extending the last run when it continues it. */
  private delta(table: number, vpn: number, state: number): void {
    const ev = this.pos - 1;
    const n = this.dEvent.n;
    if (n > this.deltasAtSnapshot && this.dEvent.last === ev && this.dTable.last === table && this.dState.last === state
      && this.dVpn.last + this.dN.last === vpn && this.dN.last < 0xffffffff) {
      this.dN.last = this.dN.last + 1;
      return;
    }
    this.dEvent.push(ev);
    this.dTable.push(table);
    this.dVpn.push(vpn);
    this.dN.push(1);
    this.dState.push(state);
  }

  /** Full state now, as runs per table; positions after it need only the changes that follow. */
  private snapshot(): void {
    const tables: Snapshot['tables'] = [];
    let runs = 0;
    const vpn: number[] = [];
    const n: number[] = [];
    const st: number[] = [];
    for (const t of this.tables) {
      vpn.length = n.length = st.length = 0;
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
    this.snapshots.push({ event: this.pos, delta: this.dEvent.n, frame: this.fEvent.n, tables, frames: this.memories.map((m) => Math.max(0, m.last)) });
    this.lastSnapshotRuns = runs;
    this.deltasAtSnapshot = this.dEvent.n;
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
