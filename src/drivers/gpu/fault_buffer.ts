// The replayable fault buffer: a ring of fixed 32-byte entries (NVC369_BUF_SIZE) in memory the
// GPU writes and the driver reads, with a PUT pointer the GPU advances and a GET pointer the
// driver writes back. Each entry carries the fault address, the access type, the uTLB it came
// from, a timestamp and the instance pointer (which GPU address space), and a valid bit the
// driver clears as it consumes the entry.
//
// Full buffer (uvm_hal_turing_fault_buffer_write_get): when PUT == GET - 1 and a fault
// arrives, the hardware drops it and sets OVERFLOW; it delivers nothing more until the driver
// writes GET (which clears OVERFLOW). The dropped access stays stalled and faults again when
// the driver replays. Stored as parallel typed arrays: writing an entry allocates nothing.

import type { AccessType } from './access.js';

/** Bytes per entry (NVC369_BUF_SIZE). */
export const FAULT_BUFFER_ENTRY_SIZE = 32;

/** Why the MMU faulted (a subset of the hardware's fault types). */
export const FAULT_TYPE_INVALID_PDE = 0;
export const FAULT_TYPE_INVALID_PTE = 1;
/** A write or atomic to a translation without that permission. */
export const FAULT_TYPE_PROTECTION = 2;

export class FaultBuffer {
  /** Entries in the ring (max_faults = buffer size / entry size). */
  readonly maxFaults: number;
  readonly addr: Float64Array;
  readonly access: Uint8Array;
  readonly faultType: Uint8Array;
  readonly utlb: Uint16Array;
  /** Instance pointer: the GPU address space (asid) of the faulting context. */
  readonly asid: Uint16Array;
  /** The warp that faulted (the hardware's client/GPC id, for attribution and cancel). */
  readonly warp: Int32Array;
  readonly timestamp: Float64Array;
  readonly valid: Uint8Array;
  private put = 0;
  private get = 0;
  /** OVERFLOW: a fault was dropped since the driver last wrote GET. */
  overflow = false;
  /** Faults written, and faults dropped because the buffer was full. */
  written = 0;
  dropped = 0;

  constructor(entries: number) {
    if (!Number.isInteger(entries) || entries < 2) throw new RangeError(`a fault buffer needs at least 2 entries, got ${entries}`);
    this.maxFaults = entries;
    this.addr = new Float64Array(entries);
    this.access = new Uint8Array(entries);
    this.faultType = new Uint8Array(entries);
    this.utlb = new Uint16Array(entries);
    this.asid = new Uint16Array(entries);
    this.warp = new Int32Array(entries);
    this.timestamp = new Float64Array(entries);
    this.valid = new Uint8Array(entries);
  }

  /** Bytes of buffer memory. */
  get bytes(): number {
    return this.maxFaults * FAULT_BUFFER_ENTRY_SIZE;
  }

  /** The hardware side: write an entry at PUT. Returns false (and sets OVERFLOW) when it is dropped. */
  write(addr: number, access: AccessType, faultType: number, utlb: number, asid: number, warp: number, timeNs: number): boolean {
    const next = this.put + 1 === this.maxFaults ? 0 : this.put + 1;
    if (this.overflow || next === this.get) {
      this.overflow = true;
      this.dropped++;
      return false;
    }
    const i = this.put;
    this.addr[i] = addr;
    this.access[i] = access;
    this.faultType[i] = faultType;
    this.utlb[i] = utlb;
    this.asid[i] = asid;
    this.warp[i] = warp;
    this.timestamp[i] = timeNs;
    this.valid[i] = 1;
    this.put = next;
    this.written++;
    return true;
  }

  // ---- the driver side (fault_buffer_hal) ----

  /** read_put */
  readPut(): number {
    return this.put;
  }
  /** read_get */
  readGet(): number {
    return this.get;
  }
  /** entry_is_valid */
  entryIsValid(i: number): boolean {
    return this.valid[i] === 1;
  }
  /** entry_clear_valid */
  entryClearValid(i: number): void {
    this.valid[i] = 0;
  }
  /** write_get: hand entries before `get` back to the hardware; clears OVERFLOW. */
  writeGet(get: number): void {
    if (!Number.isInteger(get) || get < 0 || get >= this.maxFaults) throw new RangeError(`GET ${get} out of range`);
    this.get = get;
    this.overflow = false;
  }

  /** Entries between GET and PUT. */
  get pending(): number {
    const d = this.put - this.get;
    return d >= 0 ? d : d + this.maxFaults;
  }
}
