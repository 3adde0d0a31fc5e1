// A device's page table, as `hmmsim check` sees it: the hardware walks it on every device
// access, the invariants compare it with the CPU's after every step. A driver can use
// DevicePageTable as its page table, or show its own through the DeviceMappings interface
// (the dmirror adapter shows dmirror's xarray).

import { PAGE_SIZE } from '../mm/constants.js';

/** One device page-table entry. */
export interface DeviceEntry {
  readonly pfn: number;
  /** The device may write the page. */
  readonly write: boolean;
}

/** What the harness reads of a device page table. */
export interface DeviceMappings {
  /** The entry for the page holding addr, or undefined. */
  lookup(addr: number): DeviceEntry | undefined;
  /** Every entry, by page address. */
  forEach(fn: (addr: number, pfn: number, write: boolean) => void): void;
  /** Entries in the table. */
  readonly size: number;
}

/** A sparse device page table: page -> (pfn, write). */
export class DevicePageTable implements DeviceMappings {
  // vpn -> pfn * 2 + write: one number per entry, no object.
  private readonly entries = new Map<number, number>();

  /** Point the device's entry for the page at addr at pfn (the driver's "program the device"). */
  map(addr: number, pfn: number, write: boolean): void {
    if (!Number.isSafeInteger(pfn) || pfn < 0) throw new RangeError(`DevicePageTable.map: bad pfn ${pfn}`);
    this.entries.set(Math.floor(addr / PAGE_SIZE), pfn * 2 + (write ? 1 : 0));
  }

  /** Drop the entries of [start, end) (and flush the device TLB: the device cannot use them after this returns). */
  unmap(start: number, end: number): void {
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE); // exclusive
    if (last - first <= this.entries.size) {
      for (let v = first; v < last; v++) this.entries.delete(v);
      return;
    }
    for (const v of [...this.entries.keys()]) if (v >= first && v < last) this.entries.delete(v);
  }

  /** Drop every entry. */
  clear(): void {
    this.entries.clear();
  }

  lookup(addr: number): DeviceEntry | undefined {
    const e = this.entries.get(Math.floor(addr / PAGE_SIZE));
    return e === undefined ? undefined : { pfn: Math.floor(e / 2), write: (e & 1) === 1 };
  }

  forEach(fn: (addr: number, pfn: number, write: boolean) => void): void {
    for (const [v, e] of this.entries) fn(v * PAGE_SIZE, Math.floor(e / 2), (e & 1) === 1);
  }

  get size(): number {
    return this.entries.size;
  }
}
