// A GPU TLB: set-associative, LRU within a set, entries of any leaf size (4 KiB, 64 KiB,
// 2 MiB) tagged with the address space. The GPU has one per group of SMs (the uTLBs that fault
// buffer entries name) and one shared L2 TLB behind them. Only valid translations are cached:
// a walk that finds no entry faults and leaves nothing behind. Typed arrays throughout; a
// lookup allocates nothing.

import { PTE_VALID, SIZE_PAGES, type LeafSize } from './page_table.js';

// Imported constants copied once: an import binding read in a hot loop costs a getter call under the test and bench loaders.
const L_PTE_VALID = PTE_VALID;
const L_SIZE_PAGES = SIZE_PAGES;

/**
 * x mod m for integers 0 <= x < 2^53 and m > 0, exactly as `x % m`. A vpn passes 2^31, where
 * V8's `%` becomes a call into C; a division and a floor stay inline.
 */
export function modPages(x: number, m: number): number {
  const r = x - Math.floor(x / m) * m;
  return r < 0 ? r + m : r >= m ? r - m : r;
}

/**
 * The set a leaf (number `leaf` = base vpn / leaf pages) of address space asid lives in, for a
 * TLB of 2^bits sets (`sets` of them, sets <= 2^bits < 2 * sets). The leaf number's bits are
 * xor-folded in `bits`-wide fields, so a regular stride does not alias: indexing by `leaf mod
 * sets` puts a grid-stride warp's pages (stride = warps x pages, 1792 warps = 7 x 256 sets) all
 * in one set, where nearly every access misses. Real GPU TLBs hash higher address bits into the
 * set index for this reason; UVMSmart, the validation reference, models a fully associative TLB
 * (docs/cost-model.md). Within an aligned run of 2^bits leaves the fold is a bijection, so
 * consecutive leaves still fill distinct sets.
 */
export function tlbSetIndex(leaf: number, asid: number, sets: number, bits: number): number {
  // the low and high 32 bits (ToUint32 is exact modulo 2^32 for integers below 2^53)
  let x = (leaf >>> 0) ^ ((leaf / 4294967296) >>> 0) ^ Math.imul(asid, 7919);
  const mask = (1 << bits) - 1;
  let r = 0;
  if (bits >= 8) {
    // at most four fields: unrolled (a shift past the last field leaves 0)
    r = x & mask;
    x >>>= bits;
    r ^= x & mask;
    x >>>= bits;
    r ^= x & mask;
    x >>>= bits;
    r ^= x & mask;
  } else if (bits > 0) {
    for (let b = 0; b < 32; b += bits) {
      r ^= x & mask;
      x >>>= bits;
    }
  }
  return r >= sets ? r - sets : r;
}

/** A slot's second meta word: asid << META_ASID_SHIFT | size << META_SIZE_SHIFT | PTE flags. */
export const META_ASID_SHIFT = 16;
export const META_SIZE_SHIFT = 8;
export const META_FLAGS_MASK = 0xff;
const ASID_SHIFT = META_ASID_SHIFT;
const SIZE_SHIFT = META_SIZE_SHIFT;
const FLAGS_MASK = META_FLAGS_MASK;
const STAMP_MAX = 0xffffffff;

export class Tlb {
  readonly sets: number;
  /** Width of the folded set index: 2^setBits >= sets. */
  readonly setBits: number;
  /** Tag of each slot: leaf base vpn * 4 + size code (unique per leaf); -1 when the slot is empty (and only then). */
  readonly key: Float64Array;
  /**
   * Two words per slot, so that a hit reads one cache line beside its tag: [2 * slot] the frame of
   * the leaf's first page, [2 * slot + 1] asid << 16 | size << 8 | PTE flags (PTE_VALID set while
   * the slot holds a translation). Read through pfnOf, asidOf, sizeOf, flagsOf.
   */
  readonly meta: Uint32Array;
  /** LRU order within a set: the clock when the slot was last used (32 bits: a set's stamps fit one cache line). */
  private readonly stamp: Uint32Array;
  /** @internal The last stamp handed out; renumber() starts it again before it passes 2^32 - 1. */
  clock = 0;
  /** Translations currently held, and per leaf size (an invalidation skips sizes it holds none of). */
  valid = 0;
  private readonly validBySize = new Int32Array(3);
  private readonly rankScratch: Uint32Array;

  constructor(readonly entries: number, readonly ways: number) {
    if (!Number.isInteger(entries) || !Number.isInteger(ways) || entries <= 0 || ways <= 0 || entries % ways) {
      throw new RangeError(`TLB of ${entries} entries cannot have ${ways} ways`);
    }
    this.sets = entries / ways;
    let bits = 0;
    while (2 ** bits < this.sets) bits++;
    this.setBits = bits;
    this.key = new Float64Array(entries).fill(-1);
    this.meta = new Uint32Array(2 * entries);
    this.stamp = new Uint32Array(entries);
    this.rankScratch = new Uint32Array(ways);
    // One hit through lookup before any real one, then the TLB as new: a run's first kernel only
    // misses (a faulting translation is not cached), so without this the first hit of the second
    // kernel meets code with no type feedback and throws away the SMs' compiled loop mid-run.
    this.drop(this.lookup(0, this.baseVpn(this.fill(0, 0, 0, 0, 0))));
    // Likewise the replacement of a full set's least recently used way, not its first
    // (fillAbsent, the MMU's fill after a miss), met mid-run once the sets fill up: leaves
    // 2^40 + i * (2^setBits + 1) fold to one set (tags past 2^31, as real ones), and a hit on
    // the first makes way 1 the oldest.
    const oneSet = 2 ** bits + 1;
    for (let i = 0; i < ways; i++) this.fillAbsent(0, 2 ** 40 + i * oneSet, 0, 0, 0);
    this.lookup(0, 2 ** 40);
    this.fillAbsent(0, 2 ** 40 + ways * oneSet, 0, 0, 0);
    this.invalidateAll();
    this.stamp.fill(0);
    this.clock = 0;
  }

  /** Frame of the first page of the leaf a slot holds. */
  pfnOf(slot: number): number {
    return this.meta[2 * slot]!;
  }
  /** PTE flags of a slot (0 when empty). */
  flagsOf(slot: number): number {
    return this.meta[2 * slot + 1]! & FLAGS_MASK;
  }
  asidOf(slot: number): number {
    return this.meta[2 * slot + 1]! >>> ASID_SHIFT;
  }
  sizeOf(slot: number): LeafSize {
    return ((this.meta[2 * slot + 1]! >>> SIZE_SHIFT) & 3) as LeafSize;
  }

  private setOf(base: number, size: number, asid: number): number {
    return tlbSetIndex(base / L_SIZE_PAGES[size as LeafSize]!, asid, this.sets, this.setBits) * this.ways;
  }

  /** The slot translating vpn in address space asid, or -1. A hit refreshes the slot's LRU position. */
  lookup(asid: number, vpn: number): number {
    // one probe per leaf size the TLB holds, smallest first (a leaf's tag is its base vpn * 4 + size)
    const vb = this.validBySize;
    let w = -1;
    if (vb[0] !== 0) w = this.probe(vpn, vpn * 4, asid);
    if (w < 0 && vb[1] !== 0) {
      const q = Math.floor(vpn * 0.0625);
      w = this.probe(q, q * 64 + 1, asid);
    }
    if (w < 0 && vb[2] !== 0) {
      const q = Math.floor(vpn * 0.001953125);
      w = this.probe(q, q * 2048 + 2, asid);
    }
    if (w >= 0) this.stamp[w] = this.tick();
    return w;
  }

  /** The slot of leaf number `leaf`'s set holding tag `key` for asid, or -1. */
  private probe(leaf: number, key: number, asid: number): number {
    // both arrays loaded up front: a load met first on a hit has no type feedback after a run of misses, and deoptimizes
    const keys = this.key;
    const meta = this.meta;
    const first = tlbSetIndex(leaf, asid, this.sets, this.setBits) * this.ways;
    for (let w = first, e = first + this.ways; w < e; w++) {
      if (keys[w] === key && meta[2 * w + 1]! >>> ASID_SHIFT === asid) return w;
    }
    return -1;
  }

  /** Refresh a slot's LRU position (a hit through a warp's cached slot). */
  touch(slot: number): void {
    this.stamp[slot] = this.tick();
  }

  private tick(): number {
    if (this.clock >= STAMP_MAX) this.renumber();
    return ++this.clock;
  }

  /**
   * Before the clock passes 32 bits: number each set's slots 1..n in their LRU order (only the
   * order within a set is ever compared), and start the clock again above them.
   */
  private renumber(): void {
    const stamp = this.stamp;
    const ways = this.ways;
    for (let first = 0; first < this.entries; first += ways) {
      // rank = how many ways of the set were used earlier (stamps are distinct)
      for (let w = first; w < first + ways; w++) {
        let rank = 1;
        for (let v = first; v < first + ways; v++) if (stamp[v]! < stamp[w]!) rank++;
        this.rankScratch[w - first] = rank;
      }
      for (let w = first; w < first + ways; w++) stamp[w] = this.rankScratch[w - first]!;
    }
    this.clock = ways;
  }

  /** Insert a translation (the leaf starting at baseVpn); returns its slot. Replaces the set's LRU slot. */
  fill(asid: number, baseVpn: number, size: LeafSize, pfn: number, flags: number): number {
    const first = this.setOf(baseVpn, size, asid);
    const key = baseVpn * 4 + size;
    const keys = this.key;
    const meta = this.meta;
    for (let w = first, end = first + this.ways; w < end; w++) {
      if (keys[w] === key && meta[2 * w + 1]! >>> ASID_SHIFT === asid) return this.place(w, asid, key, size, pfn, flags);
    }
    return this.place(this.victim(first), asid, key, size, pfn, flags);
  }

  /**
   * fill, for a caller that knows the TLB holds nothing of the leaf (its lookup of a page of it
   * just missed): the set is not searched for the leaf's own slot first.
   */
  fillAbsent(asid: number, baseVpn: number, size: LeafSize, pfn: number, flags: number): number {
    return this.place(this.victim(this.setOf(baseVpn, size, asid)), asid, baseVpn * 4 + size, size, pfn, flags);
  }

  /** The slot a new leaf takes in the set starting at `first`: its first empty way, else its least recently used. */
  private victim(first: number): number {
    const keys = this.key;
    const stamp = this.stamp;
    const end = first + this.ways;
    for (let w = first; w < end; w++) if (keys[w] === -1) return w;
    // every way valid: the least recently used (stamps are distinct); Math.min keeps the scan
    // free of data-dependent branches
    let m = stamp[first]!;
    for (let w = first + 1; w < end; w++) m = Math.min(m, stamp[w]!);
    let v = first;
    while (stamp[v] !== m) v++;
    return v;
  }

  /** Write a leaf's translation into slot `victim`, replacing what it held. */
  private place(victim: number, asid: number, key: number, size: LeafSize, pfn: number, flags: number): number {
    const keys = this.key;
    const meta = this.meta;
    const was = keys[victim]!;
    if (was === -1) this.valid++;
    else this.validBySize[was - Math.floor(was * 0.25) * 4]!--;
    this.validBySize[size]!++;
    keys[victim] = key;
    meta[2 * victim] = pfn;
    meta[2 * victim + 1] = (asid << ASID_SHIFT) | (size << SIZE_SHIFT) | flags | L_PTE_VALID;
    this.stamp[victim] = this.tick();
    return victim;
  }

  /** Drop one slot. */
  drop(slot: number): void {
    const k = this.key[slot]!;
    if (k === -1) return;
    this.key[slot] = -1;
    this.meta[2 * slot + 1] = 0;
    this.valid--;
    this.validBySize[k - Math.floor(k * 0.25) * 4]!--;
  }

  /**
   * Drop every translation of asid overlapping pages [startVpn, endVpn); returns how many.
   * A leaf lives only in the set its base selects, so a range of a few leaves per size visits
   * those sets alone (a driver unmaps a page at a time); a wide range scans every slot.
   */
  invalidate(asid: number, startVpn: number, endVpn: number): number {
    if (this.valid === 0 || endVpn <= startVpn) return 0;
    let n = 0;
    for (let s = 0; s < 3; s++) {
      if (this.validBySize[s] === 0) continue;
      const pages = L_SIZE_PAGES[s as LeafSize]!;
      const first = startVpn - modPages(startVpn, pages);
      if ((endVpn - first) / pages > this.sets) return n + this.invalidateScan(asid, startVpn, endVpn, s);
      for (let base = first; base < endVpn; base += pages) {
        const key = base * 4 + s;
        const set = this.setOf(base, s, asid);
        for (let w = set, e = set + this.ways; w < e; w++) {
          if (this.key[w] === key && this.asidOf(w) === asid) {
            this.drop(w);
            n++;
          }
        }
      }
    }
    return n;
  }

  /**
   * invalidate over every slot, for leaf sizes fromSize and up. A tag is base * 4 + size, so a
   * leaf that can overlap the range has a tag in [lo, hi): one compare rejects the rest (empty
   * slots, -1, included once startVpn passes the largest leaf).
   */
  private invalidateScan(asid: number, startVpn: number, endVpn: number, fromSize: number): number {
    const keys = this.key;
    const meta = this.meta;
    const lo = (startVpn - L_SIZE_PAGES[2] + 1) * 4;
    const hi = endVpn * 4;
    let n = 0;
    for (let w = 0; w < this.entries; w++) {
      const k = keys[w]!;
      if (k < lo || k >= hi || k === -1 || meta[2 * w + 1]! >>> ASID_SHIFT !== asid) continue;
      const base = Math.floor(k * 0.25);
      const size = k - base * 4;
      if (size >= fromSize && base + L_SIZE_PAGES[size as LeafSize]! > startVpn) {
        this.drop(w);
        n++;
      }
    }
    return n;
  }

  /** Drop every translation (of one address space, or of all with asid -1). */
  invalidateAll(asid = -1): number {
    let n = 0;
    for (let w = 0; w < this.entries; w++) {
      if (this.key[w] !== -1 && (asid < 0 || this.asidOf(w) === asid)) {
        this.drop(w);
        n++;
      }
    }
    return n;
  }

  /** The leaf base vpn held by a slot. */
  baseVpn(slot: number): number {
    return Math.floor(this.key[slot]! * 0.25);
  }
}
