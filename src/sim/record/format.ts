// The record format of `--record` (docs/visualizer.md): a JSON document whose bulk is typed
// columns, each little-endian bytes, optionally gzip-compressed, in base64. This file is the
// one copy of the format: the recorder (Node) writes it, the visualizer (browser) reads it,
// so it imports nothing from Node or the DOM; compression is the caller's (zlib / DecompressionStream).

export const RECORD_FORMAT = 'hmmsim-record';
export const RECORD_VERSION = 1;
export const CHECK_FORMAT = 'hmmsim-check-trace';

// ---- page-table entry states: one byte per page, kind in the low nibble, memory in the high ----

/** Entry kinds of a page in a CPU page table (the viewer's colours), and of a device page table (none / read / write). */
export const ST_NONE = 0;
export const ST_ZERO = 1; // present, mapping the shared zero page
export const ST_READ = 2; // present, read-only
export const ST_WRITE = 3; // present, writable
export const ST_SWAP = 4; // a swap entry
export const ST_MIGRATION = 5; // a migration entry (the page is being migrated)
export const ST_DEVICE_PRIVATE = 6; // a device-private entry: the data is in device memory
export const ST_EXCLUSIVE = 7; // a device-exclusive entry: a device holds the page, the CPU must fault
export const ST_OTHER = 8; // hwpoison and other special entries
export const STATE_KINDS = ['none', 'zero', 'read', 'write', 'swap', 'migration', 'device-private', 'exclusive', 'other'] as const;
export type StateKind = (typeof STATE_KINDS)[number];
export const ST_KIND_MASK = 0xf;
export const ST_MEM_SHIFT = 4;
/** Memory ids fit the high nibble: 0 is system RAM, devices' memories 1..15. */
export const MAX_MEMORIES = 16;
/** Pages in a 2 MiB block, the unit of the recorder's chunks and the viewer's aggregation. */
export const PMD_PAGES = 512;

export function stateOf(kind: number, mem: number): number {
  return (kind & ST_KIND_MASK) | ((mem & 0xf) << ST_MEM_SHIFT);
}
export function stateKind(st: number): number {
  return st & ST_KIND_MASK;
}
export function stateMem(st: number): number {
  return st >>> ST_MEM_SHIFT;
}

// ---- columns ----

export type ColumnType = 'u8' | 'u16' | 'u32' | 'i32' | 'f64';
export type NumArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

/**
 * One column: `length` values of `type`, stored as (optionally) deltas, as fixed-width
 * little-endian values or as varints, (optionally) gzip, base64.
 */
export interface Column {
  type: ColumnType;
  length: number;
  /** Values are differences from the previous value (the first from 0): decode is a prefix sum. */
  delta?: boolean;
  /** 'varint': each (delta) value is zigzag-mapped and written as LEB128 (7 bits a byte, low first). */
  enc?: 'varint';
  /** The bytes are gzip-compressed (RFC 1952). */
  gzip?: boolean;
  /** The bytes in base64. */
  data?: string;
  /**
   * Instead of data: where the bytes are, as "<path>#<offset>,<length>", a byte range of a
   * resource relative to the document (`hmmsim view` serves records so).
   */
  ref?: string;
}

const CTORS = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, i32: Int32Array, f64: Float64Array } as const;

export function newArray(type: ColumnType, n: number): NumArray {
  return new CTORS[type](n);
}

/** Column values to bytes (little-endian, as every platform hmmsim runs on); delta-encodes when asked. */
export function columnBytes(type: ColumnType, values: ArrayLike<number>, n: number, delta: boolean): Uint8Array {
  const out = newArray(type, n);
  if (delta) {
    let prev = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      out[i] = v - prev;
      prev = v;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = values[i]!;
  }
  return new Uint8Array(out.buffer, 0, out.byteLength);
}

/** Integer values (or their deltas) as zigzag LEB128 varints: small numbers take a byte. */
export function varintBytes(values: ArrayLike<number>, n: number, delta: boolean): Uint8Array {
  let out = new Uint8Array(Math.max(16, n * 2));
  let k = 0;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    const d = delta ? v - prev : v;
    prev = v;
    if (!Number.isSafeInteger(d)) throw new RangeError(`varint column value ${d} is not a safe integer`);
    let z = d >= 0 ? d * 2 : -d * 2 - 1;
    if (k + 8 > out.length) {
      const g = new Uint8Array(out.length * 2);
      g.set(out);
      out = g;
    }
    while (z >= 128) {
      out[k++] = (z % 128) | 128;
      z = Math.floor(z / 128);
    }
    out[k++] = z;
  }
  return out.subarray(0, k);
}

/** Bytes (already inflated) back to values. */
export function columnValues(col: Pick<Column, 'type' | 'length' | 'delta' | 'enc'>, bytes: Uint8Array): NumArray {
  if (col.enc === 'varint') return varintValues(col, bytes);
  const Ctor = CTORS[col.type];
  if (bytes.byteLength !== col.length * Ctor.BYTES_PER_ELEMENT) {
    throw new Error(`column of ${col.length} ${col.type} has ${bytes.byteLength} bytes`);
  }
  // A view of the bytes when they are aligned for the type (inflated bytes are), else a copy.
  let out: NumArray;
  if (bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0) out = new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, col.length);
  else {
    const aligned = new Uint8Array(bytes.byteLength);
    aligned.set(bytes);
    out = new Ctor(aligned.buffer);
  }
  if (col.delta) {
    // Integer types wrap as their type does, which is exactly how they were encoded.
    for (let i = 1; i < out.length; i++) out[i] = out[i]! + out[i - 1]!;
  }
  return out;
}

function varintValues(col: Pick<Column, 'type' | 'length' | 'delta'>, bytes: Uint8Array): NumArray {
  const out = newArray(col.type, col.length);
  const len = bytes.length;
  const delta = col.delta === true;
  const at = { k: 0 };
  let k = 0;
  let prev = 0;
  for (let i = 0; i < col.length; i++) {
    if (k + 4 >= len) {
      // Near the end: the careful reader, which checks every byte.
      at.k = k;
      const d = readVarintSlow(bytes, at);
      k = at.k;
      prev = delta ? prev + d : d;
      out[i] = prev;
      continue;
    }
    // Values of up to 28 bits (four bytes) in int32 arithmetic; longer ones on the slow path.
    let b = bytes[k++]!;
    let z = b;
    if (b >= 128) {
      b = bytes[k++]!;
      z = (z & 127) | ((b & 127) << 7);
      if (b >= 128) {
        b = bytes[k++]!;
        z |= (b & 127) << 14;
        if (b >= 128) {
          b = bytes[k++]!;
          z |= (b & 127) << 21;
          if (b >= 128) {
            at.k = k - 4;
            const d = readVarintSlow(bytes, at);
            k = at.k;
            prev = delta ? prev + d : d;
            out[i] = prev;
            continue;
          }
        }
      }
    }
    const d = (z >>> 1) ^ -(z & 1);
    prev = delta ? prev + d : d;
    out[i] = prev;
  }
  if (k !== len) throw new Error(`varint column of ${col.length} values has ${len - k} bytes left over`);
  return out;
}

/** One zigzag varint of any length (up to 2^53), advancing at.k. */
function readVarintSlow(bytes: Uint8Array, at: { k: number }): number {
  let z = 0;
  let mul = 1;
  for (;;) {
    if (at.k >= bytes.length) throw new Error('varint column ends inside a value');
    const b = bytes[at.k++]!;
    z += (b & 127) * mul;
    mul *= 128;
    if (b < 128) break;
  }
  return z % 2 ? -(z + 1) / 2 : z / 2;
}

// ---- base64, without Node's Buffer or the DOM's atob (both sides run this) ----

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INV = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_INV[B64.charCodeAt(i)] = i;

export function toBase64(bytes: Uint8Array): string {
  // The platform's encoder where there is one (Node's Buffer, newer browsers), else the loop.
  const nodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, o: number, n: number): { toString(enc: string): string } } }).Buffer;
  if (nodeBuffer) return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const parts: string[] = [];
  const CHUNK = 3 * 16384;
  for (let off = 0; off < bytes.length; off += CHUNK) {
    const end = Math.min(bytes.length, off + CHUNK);
    const codes = new Array<number>(Math.ceil((end - off) / 3) * 4);
    let k = 0;
    for (let i = off; i < end; i += 3) {
      const b0 = bytes[i]!;
      const b1 = i + 1 < end ? bytes[i + 1]! : 0;
      const b2 = i + 2 < end ? bytes[i + 2]! : 0;
      codes[k++] = B64.charCodeAt(b0 >> 2);
      codes[k++] = B64.charCodeAt(((b0 & 3) << 4) | (b1 >> 4));
      codes[k++] = i + 1 < end ? B64.charCodeAt(((b1 & 15) << 2) | (b2 >> 6)) : 61;
      codes[k++] = i + 2 < end ? B64.charCodeAt(b2 & 63) : 61;
    }
    parts.push(String.fromCharCode.apply(null, codes));
  }
  return parts.join('');
}

export function fromBase64(s: string): Uint8Array {
  // The platform's decoder where there is one (browsers since 2025), else the loop below.
  const native = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
  if (native) return native(s);
  const nodeBuffer = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } }).Buffer;
  if (nodeBuffer && /^[A-Za-z0-9+/]*={0,2}$/.test(s)) return new Uint8Array(nodeBuffer.from(s, 'base64'));
  let len = s.length;
  while (len > 0 && s.charCodeAt(len - 1) === 61) len--;
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let k = 0;
  for (let i = 0; i < len; i += 4) {
    const c0 = B64_INV[s.charCodeAt(i)]!;
    const c1 = B64_INV[s.charCodeAt(i + 1)]!;
    const c2 = i + 2 < len ? B64_INV[s.charCodeAt(i + 2)]! : 0;
    const c3 = i + 3 < len ? B64_INV[s.charCodeAt(i + 3)]! : 0;
    if (c0 < 0 || c1 < 0 || c2 < 0 || c3 < 0) throw new Error(`bad base64 at ${i}`);
    out[k++] = (c0 << 2) | (c1 >> 4);
    if (k < out.length) out[k++] = ((c1 & 15) << 4) | (c2 >> 2);
    if (k < out.length) out[k++] = ((c2 & 3) << 6) | c3;
  }
  return out;
}

// ---- the document ----

/** A page table shown by the viewer: a process's (CPU) or a device's. */
export interface TableInfo {
  id: number;
  kind: 'cpu' | 'device';
  name: string;
  /** The mm it belongs to (a device table: the mm it mirrors). */
  mm: number;
  /** For a device table, the memory id of the device's own memory (-1 if none). */
  memory: number;
  /** Position (events recorded) when the table appeared and, if it did, went away. */
  born: number;
  died?: number;
}

export interface MemoryInfo {
  id: number;
  name: string;
  kind: 'system' | 'device';
  frames: number;
}

/** An event type: its name, the timeline row it belongs to, and the names of its sub codes. */
export interface EventTypeInfo {
  name: string;
  category: EventCategory;
  subs: string[];
}
export type EventCategory = 'fault' | 'device-fault' | 'batch' | 'migrate' | 'invalidate' | 'evict' | 'map' | 'unmap' | 'free' | 'other';

/** A VMA list of one table from position `at` on: [startVpn, pages, flags "rw-p", label]. */
export interface VmaChange {
  at: number;
  table: number;
  vmas: Array<[number, number, string, string]>;
}

/** A labelled span of positions (a scenario step): events [start, end). */
export interface Mark {
  label: string;
  start: number;
  end: number;
}

/**
 * Full state at position `event`: after deltas [0, delta) and frames records [0, frame). The
 * position's state is that plus the later deltas and frames records whose event is below it.
 * Per table, runs of equal non-none state; frames in use per memory.
 */
export interface Snapshot {
  event: number;
  delta: number;
  frame: number;
  tables: Array<{ table: number; vpn: Column; n: Column; state: Column }>;
  frames: number[];
}

export interface RecordDoc {
  format: typeof RECORD_FORMAT;
  version: number;
  meta: { command: string; title: string; pageSize: number; created?: string; [k: string]: unknown };
  tables: TableInfo[];
  memories: MemoryInfo[];
  eventTypes: EventTypeInfo[];
  /** Every page that was ever inside a VMA, as [startVpn, pages] runs in address order: the pages the viewer lays out. */
  regions: Array<[number, number]>;
  vmas: VmaChange[];
  marks: Mark[];
  /**
   * One row per event. type: index into eventTypes; sub: index into its subs (fault kinds
   * also carry write (32) and remote (64) bits); table: a table id (free: a memory id);
   * vpn, n: the pages it covers (vpn -1: none; n clipped to 2^32 - 1); a, b: frame numbers or
   * counts (-1: none);
   * time: simulated ns (only when the run had a clock).
   */
  events: { count: number; type: Column; sub: Column; table: Column; vpn: Column; n: Column; a: Column; b: Column; time?: Column };
  /** Entry changes: after event `event`, pages [vpn, vpn + n) of `table` have `state`. Sorted by event. */
  deltas: { count: number; event: Column; table: Column; vpn: Column; n: Column; state: Column };
  /** Frames in use: from position `event` + 1 on, memory `memory` has `used` frames. */
  frames: { count: number; event: Column; memory: Column; used: Column };
  snapshots: Snapshot[];
}

/** "No value" in the columns a and b. */
export const NONE = -1;

/** Fault sub codes carry these bits above the fault kind. */
export const FAULT_WRITE = 32;
export const FAULT_REMOTE = 64;
export const FAULT_KIND_MASK = 31;

// ---- a failing `hmmsim check` schedule, shown as swim lanes ----
// What the visualizer reads of `hmmsim check --record`; src/check/report.ts writes it
// (docs/check.md describes it).

export interface CheckStep {
  /** Index into threads. */
  thread: number;
  /** What the thread did in the step, readable ("cpu 1: madvise(DONTNEED) p0..p1"). */
  label: string;
  /** Everything that happened in the step (lines), shown on click. */
  detail?: string;
  /** The step preempted a thread that could have gone on. */
  preemption?: boolean;
  /** Where the thread stopped at the end of the step. */
  stoppedAt?: string;
}

export interface CheckTraceDoc {
  format: typeof CHECK_FORMAT;
  version: number;
  driver: string;
  /** The invariant that broke ('' when none did), and its message. */
  invariant: string;
  message: string;
  /** The replay token (`hmmsim check <driver> --replay <token>`). */
  token: string;
  scenario?: string;
  threads: string[];
  steps: CheckStep[];
  /** Index into steps of the step after which the violation was seen; -1: in setup, or none. */
  violation: number;
  /** Schedules run in all. */
  schedules?: number;
  /**
   * The schedule run once more, recorded (`hmmsim check --record`): mark 0 is the setup, mark
   * k step k. The page shows its page tables under the lanes; a step goes to its mark's end.
   */
  record?: RecordDoc;
}
