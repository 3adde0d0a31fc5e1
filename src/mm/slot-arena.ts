// Page data storage: fixed-size data slots carved from 8 MiB slabs, with a holder count per
// slot (a slot held by several frames or swap slots is a lazy copy) and a free list. PhysMem
// keeps two arenas: whole 4 KiB pages, and 64-byte heads for pages nothing has written past
// their first 64 bytes (the rest of such a page reads as zeros).
//
// Slabs given back by disposed machines are pooled for new machines (the model's analogue of
// the kernel's free page pool, so that a program that builds machine after machine does not
// make the host fault in fresh memory each time). A pooled slab keeps its old bytes: a slot
// taken from one is zeroed when it is allocated, as the kernel clears a page in the fault that
// takes it (clear_page in do_anonymous_page). The pool holds no machine state.

/** Bytes of one slab: large enough for the host to back it with huge pages. */
export const SLAB_BYTES = 8 << 20;
/** Slots of at most this many bytes (head slots) are copied word by word. */
const SMALL_COPY_BYTES = 256;
const EMPTY_SLAB = new Uint8Array(0);
const EMPTY_WORDS = new Int32Array(0);
/** The first slab's size while it is still growing. */
const FIRST_SLAB_BYTES = 16 << 10;

const slabPool: Uint8Array[] = [];
let slabPoolMax = 128; // 1 GiB

/** Set the slab pool's limit in bytes (0: no pool, every machine's data is fresh host memory); returns the old limit. */
export function setSlabPoolBytes(bytes: number): number {
  const old = slabPoolMax * SLAB_BYTES;
  slabPoolMax = Math.max(0, Math.floor(bytes / SLAB_BYTES));
  slabPool.length = Math.min(slabPool.length, slabPoolMax);
  return old;
}

export class SlotArena {
  readonly slabs: Uint8Array[] = [];
  /** Slots per full slab, and its log2 (slot number = slab << shift | index). */
  readonly perSlab: number;
  readonly shift: number;
  /** Slots the first slab holds now: it grows by doubling up to perSlab before a second slab is added. */
  private slab0Slots = 0;
  private freeSlots = new Int32Array(16);
  private nFree = 0;
  private fresh = 0; // never-used slots left in the newest slab
  /** The newest slab's never-used slots are zero (new host memory), not a pooled slab's old bytes. */
  private freshZero = true;
  inUse = 0;
  /** Holders of each slot (frames and swap slots); a slot with more than one is copied on write. */
  refs = new Int32Array(16);

  constructor(readonly slotBytes: number) {
    this.perSlab = SLAB_BYTES / slotBytes;
    this.shift = Math.log2(this.perSlab);
  }

  /** A slot with one holder; `zero` false when the caller overwrites all of it at once (a copy). */
  alloc(zero: boolean): number {
    this.inUse++;
    if (this.nFree > 0) {
      const slot = this.freeSlots[--this.nFree]!;
      if (zero) this.zero(slot);
      this.refs[slot] = 1;
      return slot;
    }
    if (this.fresh === 0) this.addSlab();
    const cap = this.slabs.length === 1 ? this.slab0Slots : this.perSlab;
    const slot = ((this.slabs.length - 1) << this.shift) + (cap - this.fresh--);
    if (zero && !this.freshZero) this.zero(slot);
    if (slot >= this.refs.length) {
      const g = new Int32Array(Math.max(this.refs.length * 2, (this.slabs.length - 1) * this.perSlab + cap));
      g.set(this.refs);
      this.refs = g;
    }
    this.refs[slot] = 1;
    return slot;
  }

  private addSlab(): void {
    if (this.slabs.length === 1 && this.slab0Slots < this.perSlab) {
      // Grow the first slab in place: slot numbers stay valid, its bytes are copied once.
      const slots = this.slab0Slots * 2;
      const grown = new Uint8Array(slots * this.slotBytes);
      grown.set(this.slabs[0]!);
      this.slabs[0] = grown;
      this.fresh = slots - this.slab0Slots;
      this.slab0Slots = slots;
      this.freshZero = true;
      return;
    }
    const pooled = slabPool.pop();
    const slots = this.slabs.length > 0 || pooled ? this.perSlab : Math.max(1, Math.min(this.perSlab, FIRST_SLAB_BYTES / this.slotBytes));
    this.slabs.push(pooled ?? new Uint8Array(slots * this.slotBytes));
    if (this.slabs.length === 1) this.slab0Slots = slots;
    this.fresh = slots;
    this.freshZero = pooled === undefined;
  }

  /** The slab holding `slot`, and the slot's offset in it. */
  slab(slot: number): Uint8Array {
    return this.slabs[slot >> this.shift]!;
  }
  /** The slab holding `slot` as 32-bit words (kept beside slabs, for small copies). */
  private words(slot: number): Int32Array {
    const k = slot >> this.shift;
    const slab = this.slabs[k]!;
    if (k >= this.slabWordsOf.length || this.slabWordsOf[k] !== slab) {
      while (this.slabWordsOf.length <= k) {
        this.slabWordsOf.push(EMPTY_SLAB);
        this.slabWords.push(EMPTY_WORDS);
      }
      this.slabWords[k] = new Int32Array(slab.buffer, slab.byteOffset, slab.length >> 2);
      this.slabWordsOf[k] = slab;
    }
    return this.slabWords[k]!;
  }
  private readonly slabWords: Int32Array[] = [];
  private readonly slabWordsOf: Uint8Array[] = [];
  offset(slot: number): number {
    return (slot & (this.perSlab - 1)) * this.slotBytes;
  }

  zero(slot: number): void {
    const off = this.offset(slot);
    this.slab(slot).fill(0, off, off + this.slotBytes);
  }

  /** Copy `from`'s bytes over `to`'s (both of this arena). */
  copy(to: number, from: number): void {
    const f = this.offset(from);
    const t = this.offset(to);
    if (this.slotBytes <= SMALL_COPY_BYTES) {
      // A head slot: a few words in a loop cost less than a call into copyWithin or set.
      const s32 = this.words(from);
      const d32 = this.words(to);
      for (let i = f >> 2, j = t >> 2, end = (f + this.slotBytes) >> 2; i < end; i++, j++) d32[j] = s32[i]!;
      return;
    }
    const src = this.slab(from);
    if (from >> this.shift === to >> this.shift) src.copyWithin(t, f, f + this.slotBytes);
    else this.slab(to).set(src.subarray(f, f + this.slotBytes), t);
  }

  /** A holder lets go of a slot; the last one returns it to the free list. */
  free(slot: number): void {
    const refs = this.refs[slot]!;
    if (refs <= 0) throw new Error(`data slot ${slot} freed twice`);
    this.refs[slot] = refs - 1;
    if (refs > 1) return;
    if (this.nFree === this.freeSlots.length) {
      const g = new Int32Array(this.freeSlots.length * 2);
      g.set(this.freeSlots);
      this.freeSlots = g;
    }
    this.freeSlots[this.nFree++] = slot;
    this.inUse--;
  }

  /** Bytes of slabs this arena holds. */
  get bytes(): number {
    let bytes = 0;
    for (const slab of this.slabs) bytes += slab.length;
    return bytes;
  }

  /** Give the slabs back to the pool, as they are (whoever takes a slot from them zeroes it). */
  release(): void {
    this.slabWords.length = 0;
    this.slabWordsOf.length = 0;
    for (const slab of this.slabs.splice(0)) {
      if (slabPool.length >= slabPoolMax) break;
      if (slab.length < SLAB_BYTES) continue; // a first slab that never grew to full size
      slabPool.push(slab);
    }
    this.slab0Slots = 0;
    this.nFree = 0;
    this.fresh = 0;
    this.inUse = 0;
    this.refs.fill(0);
  }
}
