// Reverse map: frame -> every page-table entry that references it (present mappings,
// device-private, device-exclusive and migration entries), so a frame can be unmapped or
// migrated everywhere (try_to_unmap, try_to_migrate, remove_migration_ptes). The kernel finds
// these through anon_vma and i_mmap trees; we record them directly. Two entries per frame
// are stored inline in the frame arrays (a page and its fork child need nothing more);
// frames mapped more often spill into a map. Slots fill in order: the second is used only
// while the first is, the map only while both are.

import type { PhysMem } from './physmem.js';

/** An rmap key: the virtual page number and the table level of the entry (0 PTE, 1 PMD, 2 PUD). */
export function rmapKey(vpn: number, level: number): number {
  return vpn * 4 + level;
}
export function keyVpn(key: number): number {
  return Math.floor(key / 4);
}
export function keyLevel(key: number): number {
  // Not `%`: a key is past the small-integer range, where `%` is a slow floating-point
  // remainder. `| 0` makes the level a small integer, as callers' optimized code expects.
  return (key - Math.floor(key / 4) * 4) | 0;
}

export class Rmap {
  private readonly more = new Map<number, number[]>(); // pfn -> [mmId, key, mmId, key, ...]

  constructor(private readonly phys: PhysMem) {}

  // add and remove are small, so that V8 inlines them into the per-page loops (a key is past
  // the small-integer range: a call that is not inlined boxes it); the rare cases are apart.
  add(pfn: number, mmId: number, key: number): void {
    const f = this.phys.frames;
    if (f.rmapMm[pfn] === 0) {
      f.rmapMm[pfn] = mmId;
      f.rmapKey[pfn] = key;
    } else this.addMore(pfn, mmId, key);
  }

  private addMore(pfn: number, mmId: number, key: number): void {
    const f = this.phys.frames;
    if (f.rmapMm2[pfn] === 0) {
      f.rmapMm2[pfn] = mmId;
      f.rmapKey2[pfn] = key;
    } else {
      const list = this.more.get(pfn);
      if (list) list.push(mmId, key);
      else this.more.set(pfn, [mmId, key]);
    }
  }

  /** Take the last entry out (to fill a hole), as [mmId, key] written into out. */
  private popLast(pfn: number, out: number[]): void {
    const f = this.phys.frames;
    const list = this.more.get(pfn);
    if (list) {
      out[1] = list.pop()!;
      out[0] = list.pop()!;
      if (list.length === 0) this.more.delete(pfn);
      return;
    }
    out[0] = f.rmapMm2[pfn]!;
    out[1] = f.rmapKey2[pfn]!;
    f.rmapMm2[pfn] = 0;
  }

  private readonly last = [0, 0];

  remove(pfn: number, mmId: number, key: number): void {
    const f = this.phys.frames;
    if (f.rmapMm2[pfn] === 0 && f.rmapMm[pfn] === mmId && f.rmapKey[pfn] === key) f.rmapMm[pfn] = 0; // the only entry
    else this.removeMore(pfn, mmId, key);
  }

  private removeMore(pfn: number, mmId: number, key: number): void {
    const f = this.phys.frames;
    if (f.rmapMm[pfn] === mmId && f.rmapKey[pfn] === key) {
      if (f.rmapMm2[pfn] === 0) {
        f.rmapMm[pfn] = 0;
        return;
      }
      this.popLast(pfn, this.last);
      f.rmapMm[pfn] = this.last[0]!;
      f.rmapKey[pfn] = this.last[1]!;
      return;
    }
    if (f.rmapMm2[pfn] === mmId && f.rmapKey2[pfn] === key) {
      f.rmapMm2[pfn] = 0;
      if (this.more.has(pfn)) {
        this.popLast(pfn, this.last);
        f.rmapMm2[pfn] = this.last[0]!;
        f.rmapKey2[pfn] = this.last[1]!;
      }
      return;
    }
    const list = this.more.get(pfn);
    if (list) {
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] === mmId && list[i + 1] === key) {
          list[i] = list[list.length - 2]!;
          list[i + 1] = list[list.length - 1]!;
          list.length -= 2;
          if (list.length === 0) this.more.delete(pfn);
          return;
        }
      }
    }
    throw new Error(`rmap: frame ${pfn} has no entry for mm ${mmId} key ${key}`);
  }

  /** Re-point an entry after its page-table entry moved (mremap, migration remap). */
  move(pfn: number, mmId: number, oldKey: number, newKey: number): void {
    const f = this.phys.frames;
    if (f.rmapMm[pfn] === mmId && f.rmapKey[pfn] === oldKey) {
      f.rmapKey[pfn] = newKey;
      return;
    }
    if (f.rmapMm2[pfn] === mmId && f.rmapKey2[pfn] === oldKey) {
      f.rmapKey2[pfn] = newKey;
      return;
    }
    const list = this.more.get(pfn);
    if (list) {
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] === mmId && list[i + 1] === oldKey) {
          list[i + 1] = newKey;
          return;
        }
      }
    }
    throw new Error(`rmap: frame ${pfn} has no entry for mm ${mmId} key ${oldKey}`);
  }

  count(pfn: number): number {
    const f = this.phys.frames;
    if (f.rmapMm[pfn] === 0) return 0;
    if (f.rmapMm2[pfn] === 0) return 1;
    return 2 + (this.more.get(pfn)?.length ?? 0) / 2;
  }

  /**
   * The entries of a frame as [mmId, key] pairs written into `out` from index 0 (grown if
   * short; the caller keeps it for the next call), and their number: a snapshot with no
   * allocation per frame, for reclaim's loops.
   */
  entriesInto(pfn: number, out: { buf: Float64Array }): number {
    const n = this.count(pfn);
    if (out.buf.length < 2 * n) out.buf = new Float64Array(Math.max(4 * n, 16));
    const f = this.phys.frames;
    const buf = out.buf;
    if (n > 0) {
      buf[0] = f.rmapMm[pfn]!;
      buf[1] = f.rmapKey[pfn]!;
    }
    if (n > 1) {
      buf[2] = f.rmapMm2[pfn]!;
      buf[3] = f.rmapKey2[pfn]!;
    }
    if (n > 2) buf.set(this.more.get(pfn)!, 4);
    return n;
  }

  /** A snapshot of the entries of a frame as [mmId, key] pairs (safe to modify the rmap while iterating it). */
  entries(pfn: number): number[] {
    const f = this.phys.frames;
    if (f.rmapMm[pfn] === 0) return [];
    const out = [f.rmapMm[pfn]!, f.rmapKey[pfn]!];
    if (f.rmapMm2[pfn] === 0) return out;
    out.push(f.rmapMm2[pfn]!, f.rmapKey2[pfn]!);
    const list = this.more.get(pfn);
    if (list) out.push(...list);
    return out;
  }
}
