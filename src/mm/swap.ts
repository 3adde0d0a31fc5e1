// The swap device: slots with a use count (swap_map) whose data lives in the page data pool.
// Swap-out moves a frame's data slot here without copying; swap-in moves it back for the
// last user of the slot, or copies it for the others.

import { fail } from './errno.js';
import type { PhysMem } from './physmem.js';

export class SwapDevice {
  private count = new Int32Array(1024);
  private data = new Int32Array(1024).fill(-1);
  private freeList: number[] = [];
  private top = 0;
  used = 0;

  constructor(private readonly phys: PhysMem, readonly maxSlots: number) {}

  /** get_swap_page: a slot holding `dataSlot` (-1: all zeros), used by `users` entries. */
  alloc(dataSlot: number, users: number): number {
    let slot: number;
    if (this.freeList.length > 0) slot = this.freeList.pop()!;
    else {
      if (this.top >= this.maxSlots) fail('ENOSPC', 'swap device full');
      slot = this.top++;
      if (slot >= this.count.length) {
        const c = new Int32Array(this.count.length * 2);
        c.set(this.count);
        this.count = c;
        const d = new Int32Array(this.data.length * 2).fill(-1);
        d.set(this.data);
        this.data = d;
      }
    }
    this.count[slot] = users;
    this.data[slot] = dataSlot;
    this.used++;
    return slot;
  }

  get full(): boolean {
    return this.freeList.length === 0 && this.top >= this.maxSlots;
  }

  /** swap_duplicate: one more entry refers to the slot (fork). */
  dup(slot: number): void {
    this.count[slot]!++;
  }

  users(slot: number): number {
    return this.count[slot]!;
  }

  /** The data slot a swap slot holds (-1: none, reads as zeros). */
  dataOf(slot: number): number {
    return this.data[slot]!;
  }

  /** swap_free: an entry referring to the slot went away. */
  free(slot: number): void {
    if (this.count[slot]! <= 0) throw new Error(`swap slot ${slot} freed twice`);
    if (--this.count[slot]! > 0) return;
    if (this.data[slot]! >= 0) this.phys.data.freeSlot(this.data[slot]!);
    this.data[slot] = -1;
    this.freeList.push(slot);
    this.used--;
  }

  /** Swap-in by one entry: the slot's data for a new frame (moved if this is the last user, else copied), and the entry's use dropped. */
  takeData(slot: number): number {
    const d = this.data[slot]!;
    if (d < 0) {
      this.free(slot);
      return -1;
    }
    if (this.count[slot] === 1) {
      this.data[slot] = -1;
      this.free(slot);
      return d;
    }
    const copy = this.phys.data.copySlot(d);
    this.free(slot);
    return copy;
  }
}
