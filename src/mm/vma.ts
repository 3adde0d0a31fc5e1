// VMAs (vm_area_struct) and the ordered set of them in an mm (the maple tree's job), found by binary search.

import type { TmpFile } from './file.js';
import type { Mm } from './mm.js';
import { PAGE_SIZE } from './constants.js';

// vm_flags, with the kernel's bit values.
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_PFNMAP = 0x400;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
export const VM_HUGETLB = 0x400000;
export const VM_DONTDUMP = 0x4000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

let nextVmaId = 1;

export class Vma {
  readonly id = nextVmaId++;
  /** Set once an anonymous page has been mapped here (vma->anon_vma): fork then copies the page tables. */
  anonVma = false;
  /** For hugetlb VMAs, log2 of the huge page size (21 or 30). */
  hugeShift = 0;
  /** vm_ops of a device file's mapping (VM_MIXEDMAP / VM_PFNMAP, src/mm/special.ts); null for anonymous and tmpfs VMAs. */
  special: VmOperations | null = null;
  /** The owning mm (set when inserted). */
  mm: Mm | null = null;

  constructor(
    public start: number,
    public end: number,
    public flags: number,
    /** Page offset in the file; for anonymous VMAs, start >> PAGE_SHIFT at creation, as in the kernel. */
    public pgoff: number,
    public file: TmpFile | null,
  ) {}

  get pages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }
  isAnonymous(): boolean {
    return this.file === null && this.special === null;
  }
  /** is_cow_mapping(): private and may become writable. */
  isCow(): boolean {
    return (this.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  }
  isHugetlb(): boolean {
    return (this.flags & VM_HUGETLB) !== 0;
  }
  /** File page index of an address in this VMA. */
  pgoffOf(addr: number): number {
    return this.pgoff + (addr - this.start) / PAGE_SIZE;
  }
  contains(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }
  clone(): Vma {
    const v = new Vma(this.start, this.end, this.flags, this.pgoff, this.file);
    v.anonVma = this.anonVma;
    v.hugeShift = this.hugeShift;
    v.special = this.special;
    v.mm = this.mm;
    return v;
  }
  toString(): string {
    return `[0x${this.start.toString(16)}-0x${this.end.toString(16)} ${flagString(this.flags)}${this.file ? ' file' : ''}]`;
  }
}

/** vm_operations_struct of a device file's mapping (src/mm/special.ts). */
export interface VmOperations {
  /**
   * .fault: a CPU fault on an address of the VMA with no entry. The handler maps the page
   * with vmfInsertMixed / vmfInsertPfn and returns their answer (VM_FAULT_NOPAGE), or a
   * VM_FAULT_* error. Without it a missing entry is SIGBUS.
   */
  fault?(vmf: SpecialVmFault): number;
}

/** The struct vm_fault a device mapping's fault handler gets. */
export interface SpecialVmFault {
  readonly vma: Vma;
  /** Page-aligned faulting address. */
  readonly address: number;
  readonly flags: number;
}

export function flagString(flags: number): string {
  return (flags & VM_READ ? 'r' : '-') + (flags & VM_WRITE ? 'w' : '-') + (flags & VM_EXEC ? 'x' : '-') + (flags & VM_SHARED ? 's' : 'p');
}

/** VMAs a leaf of the VmaSet holds at most before it splits in two. */
const LEAF_MAX = 64;

/**
 * The VMAs of one mm, sorted by start and non-overlapping: the kernel's maple tree, as a
 * B-tree of two levels. Leaves are short sorted arrays, found by binary search over the
 * leaves' last VMAs, so lookup, insert, remove, prev and next cost O(log n + LEAF_MAX) and
 * tearing down n VMAs costs O(n log n) at worst. Nothing is cached from a VMA's bounds:
 * callers may move a VMA's end in place (split, merge, mremap growing it) as long as the
 * order stays.
 */
export class VmaSet {
  private leaves: Vma[][] = [];
  private count = 0;
  /** What lookupCached found last; dropped by every insert and removal. */
  private cached: Vma | undefined = undefined;

  /** Every VMA in address order (a fresh array). */
  get all(): readonly Vma[] {
    return this.leaves.length === 1 ? this.leaves[0]!.slice() : ([] as Vma[]).concat(...this.leaves);
  }
  get size(): number {
    return this.count;
  }

  /** The first leaf whose last VMA ends above addr, or leaves.length. */
  private leafFor(addr: number): number {
    const leaves = this.leaves;
    let lo = 0;
    let hi = leaves.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const leaf = leaves[mid]!;
      if (leaf[leaf.length - 1]!.end > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Index in `leaf` of the first VMA with end > addr (the kernel's find_vma within a leaf). */
  private static firstEndAbove(leaf: Vma[], addr: number): number {
    let lo = 0;
    let hi = leaf.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (leaf[mid]!.end > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * Where v is: [leaf, index], or null if it is not in the set. Found by start, which no
   * caller changes in place: a merge grows the VMA before v over it before removing v.
   */
  private locate(v: Vma): [number, number] | null {
    const leaves = this.leaves;
    let lo = 0;
    let hi = leaves.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (leaves[mid]![0]!.start <= v.start) lo = mid;
      else hi = mid - 1;
    }
    const leaf = leaves[lo];
    if (leaf) {
      let a = 0;
      let b = leaf.length - 1;
      while (a < b) {
        const mid = (a + b + 1) >> 1;
        if (leaf[mid]!.start <= v.start) a = mid;
        else b = mid - 1;
      }
      if (leaf[a] === v) return [lo, a];
    }
    return null;
  }

  /** find_vma: the first VMA ending above addr (it may start above addr too). */
  findVma(addr: number): Vma | undefined {
    const leaf = this.leaves[this.leafFor(addr)];
    return leaf ? leaf[VmaSet.firstEndAbove(leaf, addr)] : undefined;
  }

  /** The VMA containing addr (vma_lookup). */
  lookup(addr: number): Vma | undefined {
    const v = this.findVma(addr);
    return v && v.start <= addr ? v : undefined;
  }

  /**
   * lookup for a caller walking the pages of a range (remove_migration_pte, which the
   * kernel's rmap walk hands its VMA): the VMA found last, while no VMA was inserted or
   * removed since and it still contains addr (its bounds are read live). Not for use between
   * moving a VMA's bounds and the insert or removal that completes the change.
   */
  lookupCached(addr: number): Vma | undefined {
    const v = this.cached;
    if (v !== undefined && v.start <= addr && addr < v.end) return v;
    return (this.cached = this.lookup(addr));
  }

  /** VMAs intersecting [start, end), in order. */
  overlapping(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    const leaves = this.leaves;
    let li = this.leafFor(start);
    if (li === leaves.length) return out;
    let i = VmaSet.firstEndAbove(leaves[li]!, start);
    for (; li < leaves.length; li++, i = 0) {
      const leaf = leaves[li]!;
      for (; i < leaf.length; i++) {
        const v = leaf[i]!;
        if (v.start >= end) return out;
        out.push(v);
      }
    }
    return out;
  }

  insert(v: Vma): void {
    const leaves = this.leaves;
    this.cached = undefined;
    this.count++;
    if (leaves.length === 0) {
      leaves.push([v]);
      return;
    }
    // The leaf holding the first VMA that ends above v.start, or the last leaf.
    const li = Math.min(this.leafFor(v.start), leaves.length - 1);
    const leaf = leaves[li]!;
    const i = VmaSet.firstEndAbove(leaf, v.start);
    const next = i < leaf.length ? leaf[i] : leaves[li + 1]?.[0];
    if (next && next.start < v.end) {
      this.count--;
      throw new Error(`VMA ${v} overlaps ${next}`);
    }
    leaf.splice(i, 0, v);
    if (leaf.length > LEAF_MAX) leaves.splice(li + 1, 0, leaf.splice(LEAF_MAX >> 1));
  }

  /**
   * Remove `run`, VMAs that follow each other in the set (what munmap unmaps), in
   * O(run.length + leaves): whole leaves go in one splice.
   */
  removeRun(run: readonly Vma[]): void {
    if (run.length === 0) return;
    this.cached = undefined;
    const at = this.locate(run[0]!);
    if (!at) throw new Error(`VMA ${run[0]} not in set`);
    const leaves = this.leaves;
    let [li, i] = at;
    let k = 0;
    let firstWhole = -1;
    let wholeCount = 0;
    while (k < run.length) {
      const leaf = leaves[li]!;
      if (!leaf) throw new Error(`VMA ${run[k]} not in set`);
      const n = Math.min(leaf.length - i, run.length - k);
      for (let j = 0; j < n; j++) if (leaf[i + j] !== run[k + j]) throw new Error(`VMA ${run[k + j]} does not follow ${run[k + j - 1]} in the set`);
      if (i === 0 && n === leaf.length) {
        if (firstWhole < 0) firstWhole = li;
        wholeCount++;
      } else {
        leaf.splice(i, n);
      }
      k += n;
      li++;
      i = 0;
    }
    if (wholeCount > 0) leaves.splice(firstWhole, wholeCount);
    this.count -= run.length;
  }

  /** Drop every VMA at once (exit). */
  clear(): void {
    this.cached = undefined;
    this.leaves = [];
    this.count = 0;
  }

  remove(v: Vma): void {
    const at = this.locate(v);
    if (!at) throw new Error(`VMA ${v} not in set`);
    const [li, i] = at;
    this.cached = undefined;
    const leaves = this.leaves;
    const leaf = leaves[li]!;
    leaf.splice(i, 1);
    this.count--;
    if (leaf.length === 0) {
      leaves.splice(li, 1);
      return;
    }
    // Keep leaves from thinning out: a small leaf joins its successor when both fit in one.
    const succ = leaves[li + 1];
    if (leaf.length < LEAF_MAX >> 2 && succ && leaf.length + succ.length <= LEAF_MAX >> 1) {
      leaf.push(...succ);
      leaves.splice(li + 1, 1);
    }
  }

  /** The VMA before v; undefined if none, or if v is no longer in the set (merged away). */
  prev(v: Vma): Vma | undefined {
    const at = this.locate(v);
    if (!at) return undefined;
    const [li, i] = at;
    if (i > 0) return this.leaves[li]![i - 1];
    const before = this.leaves[li - 1];
    return before ? before[before.length - 1] : undefined;
  }
  /** The VMA after v; undefined if none, or if v is no longer in the set. */
  next(v: Vma): Vma | undefined {
    const at = this.locate(v);
    if (!at) return undefined;
    const [li, i] = at;
    const leaf = this.leaves[li]!;
    return i + 1 < leaf.length ? leaf[i + 1] : this.leaves[li + 1]?.[0];
  }

  /** Whether [start, end) is wholly free. */
  isFree(start: number, end: number): boolean {
    const v = this.findVma(start);
    return !v || v.start >= end;
  }

  /**
   * Highest free gap of `len` bytes in [low, top), aligned to `align` (unmapped_area_topdown).
   * A walk down from the top: linear in the VMAs above the gap it finds (the maple tree
   * tracks gap sizes to skip them; hmmsim does not).
   */
  findGapTopDown(len: number, low: number, top: number, align: number): number {
    let ceiling = top;
    for (let li = this.leaves.length - 1; li >= 0; li--) {
      const leaf = this.leaves[li]!;
      for (let i = leaf.length - 1; i >= 0; i--) {
        const v = leaf[i]!;
        if (v.start >= ceiling) continue;
        const cand = Math.floor((ceiling - len) / align) * align;
        if (cand >= Math.max(v.end, low)) return cand;
        ceiling = v.start;
      }
    }
    const cand = Math.floor((ceiling - len) / align) * align;
    return cand >= low ? cand : -1;
  }
}

/** Can `a` (ending where `b` starts) be merged with `b` into one VMA (is_mergeable_vma)? */
export function canMerge(a: Vma, b: Vma): boolean {
  if (a.end !== b.start || a.flags !== b.flags || a.file !== b.file || a.special || b.special) return false;
  if (a.hugeShift !== b.hugeShift) return false;
  // pgoff must be contiguous, for file and anonymous VMAs alike.
  return a.pgoff + a.pages === b.pgoff;
}
