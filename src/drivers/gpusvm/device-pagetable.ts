// A device page table on typed arrays (docs/architecture.md decision 3): virtual page -> (pfn, flags),
// sparse in 512-entry leaves (one per 2 MiB of device VA, as a GPU's last-level table), each
// a Uint32Array of pfns and a Uint8Array of flags. A directory maps leaf index -> leaf; the
// last leaf used is cached, so walking a range costs one directory lookup per 512 pages.
// Empty leaves go back to a small pool and are reused. gpusvm drivers program it from their
// bind / unbind ops; nothing here knows about ranges.

/** The entry maps a page. */
export const DPTE_VALID = 1;
/** The device may write it. */
export const DPTE_WRITE = 2;
/** The page is in device memory (informational: lets a driver count local and remote mappings). */
export const DPTE_DEVMEM = 4;

const LEAF_SHIFT = 9;
const LEAF_SIZE = 1 << LEAF_SHIFT;
const LEAF_MASK = LEAF_SIZE - 1;
const POOL_MAX = 64;

class Leaf {
  readonly pfn = new Uint32Array(LEAF_SIZE);
  readonly flags = new Uint8Array(LEAF_SIZE);
  count = 0;
}

/** See the header. Virtual page numbers are address / PAGE_SIZE. */
export class DevicePageTable {
  private readonly dir = new Map<number, Leaf>();
  private readonly pool: Leaf[] = [];
  private lastIdx = -1;
  private last: Leaf | null = null;
  /** Entries mapped. */
  size = 0;

  private leafOf(idx: number): Leaf | null {
    if (idx === this.lastIdx) return this.last;
    const l = this.dir.get(idx) ?? null;
    this.lastIdx = idx;
    this.last = l;
    return l;
  }

  private ensureLeaf(idx: number): Leaf {
    let l = this.leafOf(idx);
    if (!l) {
      l = this.pool.pop() ?? new Leaf();
      this.dir.set(idx, l);
      this.lastIdx = idx;
      this.last = l;
    }
    return l;
  }

  private dropLeaf(idx: number, l: Leaf): void {
    this.dir.delete(idx);
    if (this.lastIdx === idx) {
      this.lastIdx = -1;
      this.last = null;
    }
    if (this.pool.length < POOL_MAX) this.pool.push(l);
  }

  /** Map vpn to pfn with `flags` (DPTE_VALID is implied). */
  map(vpn: number, pfn: number, flags: number): void {
    const l = this.ensureLeaf(Math.floor(vpn / LEAF_SIZE));
    const i = vpn & LEAF_MASK;
    if (!(l.flags[i]! & DPTE_VALID)) {
      l.count++;
      this.size++;
    }
    l.pfn[i] = pfn;
    l.flags[i] = flags | DPTE_VALID;
  }

  /** The pfn vpn maps, or -1. */
  lookup(vpn: number): number {
    const l = this.leafOf(Math.floor(vpn / LEAF_SIZE));
    if (!l) return -1;
    const i = vpn & LEAF_MASK;
    return l.flags[i]! & DPTE_VALID ? l.pfn[i]! : -1;
  }

  /** The flags of vpn's entry (0 when unmapped). */
  flagsOf(vpn: number): number {
    const l = this.leafOf(Math.floor(vpn / LEAF_SIZE));
    return l ? l.flags[vpn & LEAF_MASK]! : 0;
  }

  /** Unmap [startVpn, endVpn); returns the entries removed. */
  unmapRange(startVpn: number, endVpn: number): number {
    if (endVpn <= startVpn || this.size === 0) return 0;
    const first = Math.floor(startVpn / LEAF_SIZE);
    const lastLeaf = Math.floor((endVpn - 1) / LEAF_SIZE);
    let removed = 0;
    if (lastLeaf - first + 1 > this.dir.size) {
      // A wide range over a sparse table: visit the leaves that exist.
      for (const idx of [...this.dir.keys()]) if (idx >= first && idx <= lastLeaf) removed += this.unmapInLeaf(idx, startVpn, endVpn);
    } else {
      for (let idx = first; idx <= lastLeaf; idx++) removed += this.unmapInLeaf(idx, startVpn, endVpn);
    }
    return removed;
  }

  private unmapInLeaf(idx: number, startVpn: number, endVpn: number): number {
    const l = this.leafOf(idx);
    if (!l) return 0;
    const base = idx * LEAF_SIZE;
    const s = Math.max(startVpn, base) - base;
    const e = Math.min(endVpn, base + LEAF_SIZE) - base;
    let removed = 0;
    if (s === 0 && e === LEAF_SIZE) {
      removed = l.count;
      l.flags.fill(0);
      l.count = 0;
    } else {
      const f = l.flags;
      for (let i = s; i < e; i++) {
        if (f[i]! & DPTE_VALID) {
          f[i] = 0;
          removed++;
        }
      }
      l.count -= removed;
    }
    this.size -= removed;
    if (l.count === 0) this.dropLeaf(idx, l);
    return removed;
  }

  /** Every mapped entry in vpn order. */
  forEach(fn: (vpn: number, pfn: number, flags: number) => void): void {
    const idxs = [...this.dir.keys()].sort((a, b) => a - b);
    for (const idx of idxs) {
      const l = this.dir.get(idx)!;
      const base = idx * LEAF_SIZE;
      for (let i = 0; i < LEAF_SIZE; i++) if (l.flags[i]! & DPTE_VALID) fn(base + i, l.pfn[i]!, l.flags[i]!);
    }
  }

  /**
   * Every leaf in use, in vpn order: its first vpn and its arrays (read them, do not write),
   * for walks a window at a time such as the mirror check.
   */
  forEachLeaf(fn: (firstVpn: number, pfn: Uint32Array, flags: Uint8Array) => void): void {
    const idxs = [...this.dir.keys()].sort((a, b) => a - b);
    for (const idx of idxs) {
      const l = this.dir.get(idx)!;
      fn(idx * LEAF_SIZE, l.pfn, l.flags);
    }
  }

  /** Entries per leaf (512: one leaf maps 2 MiB). */
  static readonly LEAF_SIZE = LEAF_SIZE;

  clear(): void {
    for (const [idx, l] of [...this.dir]) {
      l.flags.fill(0);
      l.count = 0;
      this.dropLeaf(idx, l);
    }
    this.size = 0;
  }
}
