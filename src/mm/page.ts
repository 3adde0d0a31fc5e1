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
export const PG_lru = 1 << 14; // on one of the LRU lists (lru.ts); cleared while reclaim has it isolated
export const PG_active = 1 << 15; // on (or bound for) an active list
export const PG_referenced = 1 << 16; // seen referenced once: the next reference activates it (folio_check_references)
export const ORDER_SHIFT = 24; // order of a compound head or a free block, bits 24..28
export const ORDER_MASK = 0x1f << ORDER_SHIFT;

type FieldArray = Int32ArrayConstructor | Uint32ArrayConstructor | Float64ArrayConstructor;

/** One per-frame field: its array type, the value of a new frame, and whether freeing a frame resets it to that value. */
interface FrameField {
  readonly type: FieldArray;
  readonly initial: number;
  readonly resetOnFree: boolean;
}

function field(type: FieldArray, initial: number, resetOnFree: boolean): FrameField {
  return { type, initial, resetOnFree };
}

/**
 * The fields of a frame, one line each: the constructor, growth, the reset of a freed frame
 * and BYTES_PER_FRAME all follow from this list. A field not reset on free is rewritten by
 * whoever next uses the frame (the allocator sets refcount and head, the page cache mapping's
 * index, the data pool the data slot).
 */
export const FRAME_FIELDS = {
  refcount: field(Int32Array, 0, false),
  /** PTE-level mappings of this frame (present, device-private, device-exclusive). */
  mapcount: field(Int32Array, 0, true),
  flags: field(Uint32Array, 0, true),
  /** Index into the data pool, or -1: the frame reads as zeros. */
  dataSlot: field(Int32Array, -1, false),
  /** File id of a page-cache page, 0 otherwise. */
  mapping: field(Int32Array, 0, true),
  /** Page offset within the file. */
  index: field(Uint32Array, 0, false),
  /**
   * Head pfn of a tail frame. A head or small frame on an LRU list keeps its next link here
   * instead (lru.ts), as struct page's lru.next shares its word with compound_head.
   */
  head: field(Uint32Array, 0, false),
  /** The previous link of a frame on an LRU list (lru.prev). */
  lruPrev: field(Int32Array, -1, true),
  /** First reverse-map entry: mm id (0 = none) ... */
  rmapMm: field(Int32Array, 0, true),
  /** ... and its key (rmap.ts). */
  rmapKey: field(Float64Array, 0, false),
  /** A second inline entry: a page shared by fork needs no map. */
  rmapMm2: field(Int32Array, 0, true),
  rmapKey2: field(Float64Array, 0, false),
} as const;

type FieldName = keyof typeof FRAME_FIELDS;
type FrameArrays = { [K in FieldName]: InstanceType<(typeof FRAME_FIELDS)[K]['type']> };

const FIELD_NAMES = Object.keys(FRAME_FIELDS) as FieldName[];
const RESET_ON_FREE = FIELD_NAMES.filter((k) => FRAME_FIELDS[k].resetOnFree);

/** Per-frame metadata, in bytes: every field's element size. A frame costs this whether it is used or not. */
export const BYTES_PER_FRAME = FIELD_NAMES.reduce((n, k) => n + FRAME_FIELDS[k].type.BYTES_PER_ELEMENT, 0);

/** The arrays of FRAME_FIELDS as properties, created in list order (one hidden class for every Frames). */
const FrameArraysBase = class {
  constructor(capacity: number) {
    const self = this as unknown as Record<FieldName, FrameArrays[FieldName]>;
    for (const k of FIELD_NAMES) {
      const { type, initial } = FRAME_FIELDS[k];
      // Every frame's fields are written now, zeros included, as memmap_init initialises
      // every struct page at boot: a fresh array is untouched host memory, and the first
      // operation to write a field (a free resetting `mapping`, fork's second reverse-map
      // slot) would otherwise pay the host's page faults inside its own time.
      const a = new type(capacity).fill(initial);
      self[k] = a;
    }
  }
} as new (capacity: number) => FrameArrays;

/** Per-frame metadata (BYTES_PER_FRAME a frame). */
export class Frames extends FrameArraysBase {
  /**
   * The arrays reset when a frame is freed, and their values: reset() loops over these, with no
   * lookup by name; one list per array type, so that each loop's stores see one kind of array.
   */
  private readonly freeI32: Int32Array[];
  private readonly freeI32Values: number[];
  private readonly freeOther: (Uint32Array | Float64Array)[];
  private readonly freeOtherValues: number[];

  constructor(readonly capacity: number) {
    super(capacity);
    const i32 = RESET_ON_FREE.filter((k) => FRAME_FIELDS[k].type === Int32Array);
    const other = RESET_ON_FREE.filter((k) => FRAME_FIELDS[k].type !== Int32Array);
    this.freeI32 = i32.map((k) => this[k] as Int32Array);
    this.freeI32Values = i32.map((k) => FRAME_FIELDS[k].initial);
    this.freeOther = other.map((k) => this[k] as Uint32Array | Float64Array);
    this.freeOtherValues = other.map((k) => FRAME_FIELDS[k].initial);
  }

  /** Grow to `capacity` frames (device memory being added), keeping every field. */
  grow(capacity: number): Frames {
    const g = new Frames(capacity);
    for (const k of FIELD_NAMES) (g[k] as Int32Array).set(this[k] as Int32Array);
    return g;
  }

  /**
   * Every field of the frames [pfn, pfn + n) written with its initial value, as
   * memmap_init_zone_device writes each struct page of device memory being added: the host
   * backs the arrays' pages now, not in the first operation that touches the frames.
   */
  init(pfn: number, n: number): void {
    const self = this as unknown as Record<FieldName, FrameArrays[FieldName]>;
    for (const k of FIELD_NAMES) self[k].fill(FRAME_FIELDS[k].initial, pfn, pfn + n);
  }

  /** The frames [pfn, pfn + n) are free again: every field that says so goes back to its initial value. */
  reset(pfn: number, n: number): void {
    const i32 = this.freeI32;
    const i32Values = this.freeI32Values;
    const other = this.freeOther;
    const otherValues = this.freeOtherValues;
    if (n === 1) {
      for (let j = 0; j < i32.length; j++) i32[j]![pfn] = i32Values[j]!;
      for (let j = 0; j < other.length; j++) other[j]![pfn] = otherValues[j]!;
      return;
    }
    for (let j = 0; j < i32.length; j++) i32[j]!.fill(i32Values[j]!, pfn, pfn + n);
    for (let j = 0; j < other.length; j++) other[j]!.fill(otherValues[j]!, pfn, pfn + n);
  }

  order(pfn: number): number {
    return (this.flags[pfn]! & ORDER_MASK) >>> ORDER_SHIFT;
  }

  /** compound_head(): the frame that holds the folio's refcount. */
  compoundHead(pfn: number): number {
    return this.flags[pfn]! & PG_tail ? this.head[pfn]! : pfn;
  }
}
