// The GPU page table of one GPU address space: a radix tree of 512-entry tables, 9 address
// bits a level as the CPU's (a GPU VA equals the CPU VA under HMM). Leaves are 4 KiB PTEs,
// 64 KiB "big page" PTEs, or 2 MiB leaves in the PDE level. Entries point at VRAM or, over the
// interconnect, at system memory (the aperture bit) and carry read (valid), write and atomic
// permission. Tables are typed arrays, never an object per entry.
//
// NVIDIA's MMU keeps 64 KiB PTEs in a second ("big") table beside the 4 KiB one under each
// PDE; here a 64 KiB leaf is its 16 aligned 4 KiB slots, each marked PTE_BIG and holding its
// own frame (leaf base + index). A walk then always ends in one slot, and splitting a big leaf
// (to unmap or remap part of it) is rewriting the marks. Mapping, unmapping or downgrading
// part of a larger leaf splits it first, as UVM does (block_gpu_split_2m, block_gpu_split_big):
// a 2 MiB leaf into 64 KiB leaves, the touched 64 KiB leaf into 4 KiB PTEs.

export const PTE_VALID = 1;
export const PTE_WRITE = 2;
export const PTE_ATOMIC = 4;
/** Aperture: the frame is system memory reached over the interconnect (else VRAM). */
export const PTE_SYSMEM = 8;
/** This 4 KiB slot is part of a 64 KiB leaf. */
export const PTE_BIG = 16;
/** An upper-level entry pointing at a table (child[idx]). */
export const PTE_TABLE = 32;
/** Permission bits, in increasing order of intrusiveness (UVM_PROT_READ_ONLY < READ_WRITE < READ_WRITE_ATOMIC). */
export const PROT_MASK = PTE_VALID | PTE_WRITE | PTE_ATOMIC;
export const PROT_NONE = 0;
export const PROT_READ = PTE_VALID;
export const PROT_READ_WRITE = PTE_VALID | PTE_WRITE;
export const PROT_READ_WRITE_ATOMIC = PTE_VALID | PTE_WRITE | PTE_ATOMIC;

/** Leaf size codes, and the 4 KiB pages each covers. */
export const SIZE_4K = 0;
export const SIZE_64K = 1;
export const SIZE_2M = 2;
export const SIZE_PAGES = [1, 16, 512] as const;
export type LeafSize = typeof SIZE_4K | typeof SIZE_64K | typeof SIZE_2M;

const LEVEL_PAGES = [1, 512, 262144, 134217728, 68719476736];
/** 1 / LEVEL_PAGES: exact (powers of two), and a multiplication is cheaper than a division on every walk. */
const LEVEL_INV = LEVEL_PAGES.map((n) => 1 / n);

export class GpuPtNode {
  readonly val = new Uint32Array(512);
  readonly flg = new Uint8Array(512);
  readonly child: (GpuPtNode | undefined)[] | null;
  used = 0;
  constructor(readonly level: number) {
    this.child = level > 0 ? new Array<GpuPtNode | undefined>(512) : null;
  }
}

/** Where a walk ended (filled in place, no allocation). */
export interface GpuPtLeaf {
  /** Entry flags (0: not mapped). */
  flags: number;
  /** The frame of the walked 4 KiB page. */
  pfn: number;
  size: LeafSize;
  /** First 4 KiB page (vpn) of the leaf. */
  baseVpn: number;
}

export function index(vpn: number, level: number): number {
  return level === 0 ? vpn & 511 : Math.floor(vpn * LEVEL_INV[level]!) & 511;
}

/** Entries of the walk cache: the PTE table of a 2 MiB region, direct-mapped by region number. */
const PWC = 1024;

export class GpuPageTable {
  readonly root: GpuPtNode;
  /** Tables allocated. */
  tables = 1;
  /** 4 KiB pages mapped (a 2 MiB leaf counts 512). */
  mappedPages = 0;
  // A page-walk cache (the simulator's, costing no simulated time): the PTE tables of recently
  // walked regions, so that a walk is one load, not four levels of pointers; a table is
  // forgotten when it leaves the tree (forgetTable).
  private readonly pwcKey = new Float64Array(PWC).fill(-1);
  private readonly pwcNode: (GpuPtNode | null)[] = new Array<GpuPtNode | null>(PWC).fill(null);

  constructor(readonly levels: 4 | 5 = 4) {
    this.root = new GpuPtNode(levels - 1);
  }

  /** Walk to vpn; fills `out` (flags 0 when nothing is mapped). */
  walk(vpn: number, out: GpuPtLeaf): void {
    const key = Math.floor(vpn * (1 / 512));
    const c = key & (PWC - 1);
    const hit = this.pwcKey[c] === key;
    let node = hit ? this.pwcNode[c]! : this.root;
    for (;;) {
      const i = index(vpn, node.level);
      const f = node.flg[i]!;
      if (node.level === 0) {
        if (!hit) {
          this.pwcKey[c] = key;
          this.pwcNode[c] = node;
        }
        out.flags = f;
        out.pfn = node.val[i]!;
        if (f & PTE_BIG) {
          out.size = SIZE_64K;
          out.baseVpn = vpn - (vpn & 15);
        } else {
          out.size = SIZE_4K;
          out.baseVpn = vpn;
        }
        return;
      }
      if (f & PTE_TABLE) {
        node = node.child![i]!;
        continue;
      }
      if (node.level === 1 && f & PTE_VALID) {
        out.flags = f;
        out.pfn = node.val[i]! + (vpn & 511);
        out.size = SIZE_2M;
        out.baseVpn = vpn - (vpn & 511);
        return;
      }
      out.flags = 0;
      out.pfn = 0;
      out.size = SIZE_4K;
      out.baseVpn = vpn;
      return;
    }
  }

  /** The table at `level` (0 or 1) covering vpn, allocating tables above it; splits a 2 MiB leaf (into 64 KiB leaves) when level 0 is asked for. */
  private ensure(vpn: number, level: number): GpuPtNode {
    let node = this.root;
    while (node.level > level) {
      const i = index(vpn, node.level);
      const f = node.flg[i]!;
      if (f & PTE_TABLE) {
        node = node.child![i]!;
        continue;
      }
      const c = new GpuPtNode(node.level - 1);
      this.tables++;
      if (node.level === 1 && f & PTE_VALID) {
        // Split a 2 MiB leaf into 32 64 KiB leaves with its permissions (block_gpu_split_2m:
        // the big-page regions the caller does not touch stay big).
        const base = node.val[i]!;
        const keep = f | PTE_BIG;
        for (let k = 0; k < 512; k++) {
          c.flg[k] = keep;
          c.val[k] = base + k;
        }
        c.used = 512;
      } else {
        node.used++;
      }
      node.child![i] = c;
      node.flg[i] = PTE_TABLE;
      node.val[i] = 0;
      node = c;
    }
    return node;
  }

  /** Turn the 64 KiB leaf holding slot i of a PTE table into 16 plain 4 KiB PTEs. */
  private static splitBig(node: GpuPtNode, i: number): void {
    const first = i - (i & 15);
    for (let k = first; k < first + 16; k++) node.flg[k] = node.flg[k]! & ~PTE_BIG;
  }

  /**
   * Map `SIZE_PAGES[size]` pages from vpn (aligned to the leaf size) to frames from pfn
   * (aligned likewise), with `flags` (PROT bits, PTE_SYSMEM). Replaces whatever was there,
   * splitting larger leaves around it.
   */
  map(vpn: number, pfn: number, size: LeafSize, flags: number): void {
    const n = SIZE_PAGES[size];
    if (vpn % n || pfn % n) throw new RangeError(`GPU PTE: vpn 0x${vpn.toString(16)} / pfn ${pfn} not aligned to a ${n}-page leaf`);
    if (!(flags & PTE_VALID)) throw new RangeError('GPU PTE: a mapping needs PTE_VALID');
    const f = flags & (PROT_MASK | PTE_SYSMEM);
    if (size === SIZE_2M) {
      const pde = this.ensure(vpn, 1);
      const i = index(vpn, 1);
      const was = pde.flg[i]!;
      if (was & PTE_TABLE) {
        this.mappedPages -= this.countTable(pde.child![i]!);
        pde.child![i] = undefined;
        this.forgetTable(vpn);
        this.tables--;
      } else if (was & PTE_VALID) {
        this.mappedPages -= 512;
      } else {
        pde.used++;
      }
      pde.flg[i] = f;
      pde.val[i] = pfn;
      this.mappedPages += 512;
      return;
    }
    const pt = this.ensure(vpn, 0);
    const i = vpn & 511;
    if (size === SIZE_4K) {
      const was = pt.flg[i]!;
      if (was & PTE_BIG) GpuPageTable.splitBig(pt, i);
      if (!(was & PTE_VALID)) {
        pt.used++;
        this.mappedPages++;
      }
      pt.flg[i] = f;
      pt.val[i] = pfn;
      return;
    }
    for (let k = i; k < i + 16; k++) {
      if (!(pt.flg[k]! & PTE_VALID)) {
        pt.used++;
        this.mappedPages++;
      }
      pt.flg[k] = f | PTE_BIG;
      pt.val[k] = pfn + (k - i);
    }
  }

  /**
   * Whether the `SIZE_PAGES[size]` pages from vpn (aligned to that size) are all mapped with the
   * same flags to consecutive frames from one aligned to the size: one leaf of that size could
   * map them. Fills `out` (flags without PTE_BIG, the first frame, size, vpn) when they are.
   */
  uniform(vpn: number, size: LeafSize, out: GpuPtLeaf): boolean {
    const n = SIZE_PAGES[size];
    let node = this.root;
    while (node.level > 1) {
      const i = index(vpn, node.level);
      if (!(node.flg[i]! & PTE_TABLE)) return false;
      node = node.child![i]!;
    }
    const pi = index(vpn, 1);
    const pf = node.flg[pi]!;
    let flags: number;
    let pfn: number;
    if (!(pf & PTE_TABLE)) {
      if (!(pf & PTE_VALID)) return false;
      flags = pf;
      pfn = node.val[pi]! + (vpn & 511);
    } else {
      const pt = node.child![pi]!;
      const i = vpn & 511;
      flags = pt.flg[i]! & ~PTE_BIG;
      pfn = pt.val[i]!;
      if (!(flags & PTE_VALID) || pfn % n) return false;
      for (let k = 1; k < n; k++) if ((pt.flg[i + k]! & ~PTE_BIG) !== flags || pt.val[i + k] !== pfn + k) return false;
    }
    out.flags = flags;
    out.pfn = pfn;
    out.size = size;
    out.baseVpn = vpn;
    return true;
  }

  /** The PTE table of vpn's region left the tree: out of the walk cache. */
  private forgetTable(vpn: number): void {
    const key = Math.floor(vpn * (1 / 512));
    const c = key & (PWC - 1);
    if (this.pwcKey[c] === key) {
      this.pwcKey[c] = -1;
      this.pwcNode[c] = null;
    }
  }

  private countTable(pt: GpuPtNode): number {
    let n = 0;
    for (let k = 0; k < 512; k++) if (pt.flg[k]! & PTE_VALID) n++;
    return n;
  }

  /**
   * Apply `fn` to every mapped 4 KiB slot of [startVpn, endVpn): it returns the slot's new
   * flags (0 clears it). Leaves that straddle the bounds are split first. Returns the pages changed.
   */
  private update(startVpn: number, endVpn: number, newFlags: (flags: number) => number): number {
    let changed = 0;
    let vpn = startVpn;
    while (vpn < endVpn) {
      // Find the PDE of vpn without allocating.
      let node: GpuPtNode | undefined = this.root;
      let missing = 0;
      while (node.level > 1) {
        const i = index(vpn, node.level);
        if (!(node.flg[i]! & PTE_TABLE)) {
          missing = node.level;
          break;
        }
        node = node.child![i]!;
      }
      if (missing) {
        // Nothing mapped under this upper-level entry: skip its span.
        const span = LEVEL_PAGES[missing]!;
        vpn = Math.min(endVpn, vpn - (vpn % span) + span);
        continue;
      }
      const blockEnd = vpn - (vpn % 512) + 512;
      const pi = index(vpn, 1);
      const pf = node.flg[pi]!;
      const segEnd = Math.min(endVpn, blockEnd);
      if (!(pf & PTE_TABLE)) {
        if (!(pf & PTE_VALID)) {
          vpn = segEnd;
          continue;
        }
        const whole = vpn % 512 === 0 && segEnd === blockEnd;
        if (whole) {
          const nf = newFlags(pf);
          if (nf !== pf) {
            changed += 512;
            if (!(nf & PTE_VALID)) {
              node.flg[pi] = 0;
              node.val[pi] = 0;
              node.used--;
              this.mappedPages -= 512;
            } else node.flg[pi] = nf;
          }
          vpn = segEnd;
          continue;
        }
        this.ensure(vpn, 0); // split the 2 MiB leaf
      }
      const pt = node.child![pi]!;
      for (let i = vpn & 511, e = i + (segEnd - vpn); i < e; i++) {
        const f = pt.flg[i]!;
        if (!(f & PTE_VALID)) continue;
        const nf = newFlags(f);
        if (nf === f) continue;
        if (f & PTE_BIG) {
          const first = i - (i & 15);
          // Only part of the big leaf is changed: split it.
          if (first < (vpn & 511) || first + 16 > e) GpuPageTable.splitBig(pt, i);
        }
        changed++;
        if (!(nf & PTE_VALID)) {
          pt.flg[i] = 0;
          pt.val[i] = 0;
          pt.used--;
          this.mappedPages--;
        } else pt.flg[i] = (nf & ~PTE_BIG) | (pt.flg[i]! & PTE_BIG); // a slot of a big leaf split above is no longer big
      }
      if (pt.used === 0) {
        node.child![pi] = undefined;
        this.forgetTable(vpn);
        node.flg[pi] = 0;
        node.used--;
        this.tables--;
      }
      vpn = segEnd;
    }
    return changed;
  }

  /** Clear every entry in [startVpn, endVpn); returns the pages unmapped. */
  unmap(startVpn: number, endVpn: number): number {
    return this.update(startVpn, endVpn, () => 0);
  }

  /** Reduce permissions in [startVpn, endVpn) to at most `prot` (PROT_NONE unmaps); returns the pages changed. */
  protect(startVpn: number, endVpn: number, prot: number): number {
    if (!(prot & PTE_VALID)) return this.unmap(startVpn, endVpn);
    const keep = prot | PTE_SYSMEM | PTE_BIG;
    return this.update(startVpn, endVpn, (f) => f & keep);
  }

  /**
   * Visit every mapped leaf in [startVpn, endVpn) in address order:
   * fn(vpn of the leaf's first page in range, pages in range, pfn of that page, flags, size).
   */
  forEach(startVpn: number, endVpn: number, fn: (vpn: number, npages: number, pfn: number, flags: number, size: LeafSize) => void): void {
    this.forEachIn(this.root, startVpn, endVpn, 0, fn);
  }

  private forEachIn(node: GpuPtNode, s: number, e: number, base: number, fn: (vpn: number, npages: number, pfn: number, flags: number, size: LeafSize) => void): void {
    const span = LEVEL_PAGES[node.level]!;
    const first = Math.max(0, Math.floor((s - base) / span));
    const last = Math.min(511, Math.floor((e - 1 - base) / span));
    for (let i = first; i <= last; i++) {
      const f = node.flg[i]!;
      const at = base + i * span;
      if (f & PTE_TABLE) this.forEachIn(node.child![i]!, s, e, at, fn);
      else if (f & PTE_VALID) {
        if (node.level === 0) fn(at, 1, node.val[i]!, f & ~PTE_BIG, f & PTE_BIG ? SIZE_64K : SIZE_4K);
        else {
          const from = Math.max(at, s);
          fn(from, Math.min(at + 512, e) - from, node.val[i]! + (from - at), f, SIZE_2M);
        }
      }
    }
  }
}
