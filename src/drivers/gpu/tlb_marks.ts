// Which TLBs may hold a translation of each page of one GPU address space: the MMU marks a
// leaf's pages when it fills a TLB with the leaf, and a TLB invalidation visits each TLB only
// over the pages marked for it (a TLB never marked for a page holds nothing overlapping it),
// clearing the marks. Marks are conservative (an entry the TLB replaced, or a larger leaf dropped
// by part of it, stays marked), so an invalidation drops exactly what a visit of every TLB
// would: it only skips TLBs with nothing to drop. Without it an eviction scanned the sets of
// all 29 TLBs of a 28-SM GPU for every page it unmapped.
//
// Bit 0 is the L2 TLB, bit 1 + (i mod 31) uTLB i (with more than 31 uTLBs a bit stands for
// several; all of them are visited). One Uint32Array per 2 MiB region touched: 512 page masks
// and, at index 512, the mask of 2 MiB leaves of the region.

const REGION_PAGES = 512;
const WHOLE = 512;

/** The mark bit of uTLB i. */
export function utlbMarkBit(i: number): number {
  return 1 << (1 + (i % 31));
}
export const L2_MARK_BIT = 1;

const CACHE = 256; // direct-mapped region cache in front of the map: a fill costs no hash lookup

export class TlbMarks {
  private readonly regions = new Map<number, Uint32Array>();
  private readonly cacheKey = new Float64Array(CACHE).fill(-1);
  private readonly cacheArr: (Uint32Array | null)[] = new Array<Uint32Array | null>(CACHE).fill(null);

  private region(key: number): Uint32Array {
    const c = key & (CACHE - 1);
    if (this.cacheKey[c] === key) return this.cacheArr[c]!;
    let r = this.regions.get(key);
    if (!r) {
      r = new Uint32Array(REGION_PAGES + 1);
      this.regions.set(key, r);
    }
    this.cacheKey[c] = key;
    this.cacheArr[c] = r;
    return r;
  }

  /** A TLB of mark `bits` now holds the leaf of `pages` pages (1, 16 or 512) starting at baseVpn. */
  mark(baseVpn: number, pages: number, bits: number): void {
    const key = Math.floor(baseVpn / REGION_PAGES);
    const r = this.region(key);
    if (pages === REGION_PAGES) {
      r[WHOLE]! |= bits;
      return;
    }
    const i = baseVpn - key * REGION_PAGES;
    for (let k = i; k < i + pages; k++) r[k]! |= bits;
  }

  /** Whether a TLB of mark `bit` may hold a translation of page vpn (false: it surely holds none). */
  may(vpn: number, bit: number): boolean {
    const key = Math.floor(vpn * (1 / REGION_PAGES));
    const c = key & (CACHE - 1);
    const r = this.cacheKey[c] === key ? this.cacheArr[c]! : this.regions.get(key);
    return r !== undefined && ((r[vpn - key * REGION_PAGES]! | r[WHOLE]!) & bit) !== 0;
  }

  /**
   * Clear the marks of pages [startVpn, endVpn) and hand them to `visit`: once per region with
   * its 2 MiB leaves' mask (bits, and the range's part of the region), then per run of pages
   * with the same nonzero mask. The caller invalidates each visited TLB over what it is given.
   */
  take(startVpn: number, endVpn: number, visit: (bits: number, startVpn: number, endVpn: number) => void): void {
    if (endVpn <= startVpn || this.regions.size === 0) return;
    const k0 = Math.floor(startVpn / REGION_PAGES);
    const k1 = Math.floor((endVpn - 1) / REGION_PAGES);
    if (k1 - k0 + 1 <= this.regions.size) {
      for (let key = k0; key <= k1; key++) {
        const r = this.cacheKey[key & (CACHE - 1)] === key ? this.cacheArr[key & (CACHE - 1)]! : this.regions.get(key);
        if (r) TlbMarks.takeRegion(r, key, startVpn, endVpn, visit);
      }
    } else {
      for (const [key, r] of this.regions) if (key >= k0 && key <= k1) TlbMarks.takeRegion(r, key, startVpn, endVpn, visit);
    }
  }

  private static takeRegion(r: Uint32Array, key: number, startVpn: number, endVpn: number, visit: (bits: number, startVpn: number, endVpn: number) => void): void {
    const base = key * REGION_PAGES;
    const a = Math.max(startVpn, base) - base;
    const b = Math.min(endVpn, base + REGION_PAGES) - base;
    // a 2 MiB leaf of the region overlaps any part of it
    const whole = r[WHOLE]!;
    if (whole !== 0) {
      r[WHOLE] = 0;
      visit(whole, base + a, base + b);
    }
    let k = a;
    while (k < b) {
      const m = r[k]!;
      if (m === 0) {
        k++;
        continue;
      }
      let j = k + 1;
      while (j < b && r[j] === m) j++;
      r.fill(0, k, j);
      visit(m, base + k, base + j);
      k = j;
    }
  }

  /** Forget every mark (every TLB was invalidated for the address space). */
  clear(): void {
    this.regions.clear();
    this.cacheKey.fill(-1);
    this.cacheArr.fill(null);
  }
}
