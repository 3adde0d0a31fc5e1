// Page data: the bytes of frames. A frame that was never written has no data and reads as
// zeros; a frame written only in its first HEAD_BYTES keeps a head slot of that size, and the
// first write past it gives it a whole 4 KiB slot (docs/internals.md). Slots live in slabs
// (slot-arena.ts) and are shared by copies until one of the holders writes (copy-on-write of
// the bytes, which the kernel does not need: its copy_highpage copies at once).

import { PAGE_SIZE } from './constants.js';
import { PG_reserved, type Frames } from './page.js';
import { SlotArena } from './slot-arena.js';

/** Metadata per data slot beyond its bytes: the holder count (the free list is only for freed slots). */
export const BYTES_PER_DATA_SLOT = 4;
/** Bytes of a head slot: a page written only below this offset keeps only these bytes. */
export const HEAD_BYTES = 64;
/** Slot numbers with this bit are head slots (the rest are whole-page slots). */
const HEAD = 1 << 30;

/** The data of a machine's frames, indexed through `frames.dataSlot` (the table is replaced when device memory is added). */
export class PageData {
  private readonly pages = new SlotArena(PAGE_SIZE);
  private readonly heads = new SlotArena(HEAD_BYTES);

  constructor(private readonly phys: { readonly frames: Frames }) {}

  /**
   * A whole-page data slot; `zero` false when the caller overwrites all of it at once (a copy).
   * A recycled slot, or one of a pooled slab, is zeroed here, in the write fault that needs it,
   * as the kernel clears a page in the fault path (clear_page in do_anonymous_page); only new
   * host memory, zero already, is not.
   */
  private allocSlot(zero = true): number {
    return this.pages.alloc(zero);
  }

  private arenaOf(slot: number): SlotArena {
    return slot & HEAD ? this.heads : this.pages;
  }

  /** Give the data slabs back for reuse (Machine.dispose); the machine must not be used afterwards. */
  releaseSlabs(): void {
    this.pages.release();
    this.heads.release();
  }

  /** A holder of a data slot lets go of it; the last one returns it to the pool. */
  freeSlot(slot: number): void {
    if (slot & HEAD) this.heads.free(slot & ~HEAD);
    else this.pages.free(slot);
  }

  /** The frame lets go of its data slot (it reads as zeros). */
  releaseSlot(pfn: number): void {
    this.freeSlot(this.phys.frames.dataSlot[pfn]!);
    this.phys.frames.dataSlot[pfn] = -1;
  }

  /** Detach a frame's data slot (for swap-out: the slot moves to the swap device, no copy). */
  takeSlot(pfn: number): number {
    const s = this.phys.frames.dataSlot[pfn]!;
    this.phys.frames.dataSlot[pfn] = -1;
    return s;
  }
  /** Attach a data slot to a frame that has none. */
  giveSlot(pfn: number, slot: number): void {
    if (this.phys.frames.dataSlot[pfn]! >= 0) this.releaseSlot(pfn);
    this.phys.frames.dataSlot[pfn] = slot;
  }
  /** A copy of a slot's bytes for a new holder: the same slot, shared until one of them writes. */
  copySlot(slot: number): number {
    this.arenaOf(slot).refs[slot & ~HEAD]!++;
    return slot;
  }
  /** Holders of a data slot (0: free); for checkInvariants. */
  slotHolders(slot: number): number {
    return this.arenaOf(slot).refs[slot & ~HEAD] ?? 0;
  }
  /** Distinct data slots in use (a shared slot counts once), whole pages and heads. */
  get slotsInUse(): number {
    return this.pages.inUse + this.heads.inUse;
  }
  /** Bytes of page data held by slots in use (a shared slot counts once). */
  get bytesInUse(): number {
    return this.pages.inUse * PAGE_SIZE + this.heads.inUse * HEAD_BYTES;
  }
  /** Bytes of slabs the arenas hold, in use or free. */
  get poolBytes(): number {
    return this.pages.bytes + this.heads.bytes;
  }

  hasData(pfn: number): boolean {
    return this.phys.frames.dataSlot[pfn]! >= 0;
  }

  /** Copy len bytes at offset `off` of frame `pfn` into out[outOff..]. */
  readPage(pfn: number, off: number, out: Uint8Array, outOff: number, len: number): void {
    const slot = this.phys.frames.dataSlot[pfn]!;
    if (slot < 0) {
      out.fill(0, outOff, outOff + len);
      return;
    }
    let n = len;
    if (slot & HEAD) {
      // Beyond the head the page reads as zeros.
      n = Math.max(0, Math.min(len, HEAD_BYTES - off));
      if (n < len) out.fill(0, outOff + n, outOff + len);
    }
    const arena = this.arenaOf(slot);
    const base = arena.offset(slot & ~HEAD) + off;
    const slab = arena.slab(slot & ~HEAD);
    // Small accesses copy by hand: a subarray view costs more than a few byte moves.
    if (n <= 64) for (let i = 0; i < n; i++) out[outOff + i] = slab[base + i]!;
    else out.set(slab.subarray(base, base + n), outOff);
  }

  /** Copy len bytes of src[srcOff..] into frame `pfn` at offset `off`, allocating its data on first write. */
  writePage(pfn: number, off: number, src: Uint8Array, srcOff: number, len: number): void {
    let slot = this.phys.frames.dataSlot[pfn]!;
    if (slot < 0) {
      if (this.phys.frames.flags[pfn]! & PG_reserved) throw new Error('write to a zero page');
      slot = this.phys.frames.dataSlot[pfn] = off + len <= HEAD_BYTES ? this.heads.alloc(true) | HEAD : this.allocSlot();
    } else if (slot & HEAD && off + len > HEAD_BYTES) slot = this.growHead(pfn, slot);
    else if (this.arenaOf(slot).refs[slot & ~HEAD]! > 1) slot = this.unshareSlot(pfn, slot);
    const arena = this.arenaOf(slot);
    const base = arena.offset(slot & ~HEAD) + off;
    const slab = arena.slab(slot & ~HEAD);
    if (len <= 64) for (let i = 0; i < len; i++) slab[base + i] = src[srcOff + i]!;
    else slab.set(src.subarray(srcOff, srcOff + len), base);
  }

  /** A write past a head: the frame gets a whole page holding the head's bytes, zero beyond. */
  private growHead(pfn: number, h: number): number {
    const slot = this.allocSlot();
    const head = h & ~HEAD;
    const from = this.heads.offset(head);
    this.pages.slab(slot).set(this.heads.slab(head).subarray(from, from + HEAD_BYTES), this.pages.offset(slot));
    this.heads.free(head);
    this.phys.frames.dataSlot[pfn] = slot;
    return slot;
  }

  /**
   * Copy a whole frame's data (copy_highpage). The copy is lazy: dst shares src's slot and the
   * first write to either gets its own (writePage); a frame without data stays without.
   */
  copyPage(dst: number, src: number): void {
    const s = this.phys.frames.dataSlot[src]!;
    const d = this.phys.frames.dataSlot[dst]!;
    if (s === d) return;
    if (d >= 0) this.releaseSlot(dst);
    if (s < 0) return;
    this.copySlot(s);
    this.phys.frames.dataSlot[dst] = s;
  }

  /**
   * copy_highpage done at once, as a copy engine moves bytes between two memories: dst gets a
   * slot of its own holding src's bytes (a src without data leaves dst reading zeros).
   */
  copyHighpage(dst: number, src: number): void {
    const s = this.phys.frames.dataSlot[src]!;
    if (this.phys.frames.dataSlot[dst]! >= 0) this.releaseSlot(dst);
    if (s < 0) return;
    const arena = this.arenaOf(s);
    const d = arena.alloc(false);
    arena.copy(d, s & ~HEAD);
    this.phys.frames.dataSlot[dst] = d | (s & HEAD);
  }

  /** A write to a frame whose slot others hold too: the frame gets a private copy first. */
  private unshareSlot(pfn: number, s: number): number {
    const arena = this.arenaOf(s);
    const slot = arena.alloc(false);
    arena.refs[s & ~HEAD]!--;
    arena.copy(slot, s & ~HEAD);
    return (this.phys.frames.dataSlot[pfn] = slot | (s & HEAD));
  }

  /** Drop a frame's data so it reads as zeros (clear_highpage). */
  clearPage(pfn: number): void {
    if (this.phys.frames.dataSlot[pfn]! >= 0) this.releaseSlot(pfn);
  }
}
