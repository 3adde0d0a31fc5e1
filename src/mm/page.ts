// Page frames (struct page), stored as a structure of arrays indexed by pfn: no object per
// frame, so a machine with millions of frames costs a few typed arrays. Compound pages (THP,
// hugetlb, device folios) keep their refcount on the head frame, as folios do.

export const PG_locked = 1 << 0;
export const PG_dirty = 1 << 1;
export const PG_anon = 1 << 2; // PageAnon: anonymous memory (mapping is an anon_vma)
export const PG_head = 1 << 3;
export const PG_tail = 1 << 4;
export const PG_reserved = 1 << 5; // the zero pages: never freed, not refcounted by mappings
export const PG_swapbacked = 1 << 6;
export const PG_device = 1 << 7; // ZONE_DEVICE frame
export const PG_buddy = 1 << 8; // head of a free block in the buddy allocator
export const PG_hwpoison = 1 << 9;
export const PG_lazyfree = 1 << 10; // MADV_FREE: may be discarded instead of swapped while clean
export const PG_hugetlb = 1 << 11;
export const PG_anon_exclusive = 1 << 12;
export const PG_scratch = 1 << 13; // transient marker for a single operation's bookkeeping; never left set
export const ORDER_SHIFT = 24; // order of a compound head or a free block, bits 24..28
export const ORDER_MASK = 0x1f << ORDER_SHIFT;

/** Per-frame metadata. 52 bytes a frame, whether it is used or not. */
export class Frames {
  refcount: Int32Array;
  mapcount: Int32Array; // PTE-level mappings of this frame (present, device-private, device-exclusive)
  flags: Uint32Array;
  dataSlot: Int32Array; // index into the data pool, or -1: the frame reads as zeros
  mapping: Int32Array; // file id of a page-cache page, 0 otherwise
  index: Uint32Array; // page offset within the file
  head: Uint32Array; // head pfn of a tail frame
  rmapMm: Int32Array; // first reverse-map entry: mm id (0 = none) ...
  rmapKey: Float64Array; // ... and its key (rmap.ts)
  rmapMm2: Int32Array; // a second inline entry: a page shared by fork needs no map
  rmapKey2: Float64Array;

  constructor(readonly capacity: number) {
    this.refcount = new Int32Array(capacity);
    this.mapcount = new Int32Array(capacity);
    this.flags = new Uint32Array(capacity);
    this.dataSlot = new Int32Array(capacity).fill(-1);
    this.mapping = new Int32Array(capacity);
    this.index = new Uint32Array(capacity);
    this.head = new Uint32Array(capacity);
    this.rmapMm = new Int32Array(capacity);
    this.rmapKey = new Float64Array(capacity);
    this.rmapMm2 = new Int32Array(capacity);
    this.rmapKey2 = new Float64Array(capacity);
  }

  /** Grow to `capacity` frames (device memory being added), keeping every field. */
  grow(capacity: number): Frames {
    const g = new Frames(capacity);
    g.refcount.set(this.refcount);
    g.mapcount.set(this.mapcount);
    g.flags.set(this.flags);
    g.dataSlot.set(this.dataSlot);
    g.mapping.set(this.mapping);
    g.index.set(this.index);
    g.head.set(this.head);
    g.rmapMm.set(this.rmapMm);
    g.rmapKey.set(this.rmapKey);
    g.rmapMm2.set(this.rmapMm2);
    g.rmapKey2.set(this.rmapKey2);
    return g;
  }

  order(pfn: number): number {
    return (this.flags[pfn]! & ORDER_MASK) >>> ORDER_SHIFT;
  }

  /** compound_head(): the frame that holds the folio's refcount. */
  compoundHead(pfn: number): number {
    return this.flags[pfn]! & PG_tail ? this.head[pfn]! : pfn;
  }
}

export const BYTES_PER_FRAME = 4 * 9 + 8 * 2; // the arrays above
