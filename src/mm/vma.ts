// VMAs (vm_area_struct) and the ordered set of them in an mm, found by binary search.

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
  /** Driver-provided fault handler for VM_MIXEDMAP/PFNMAP mappings of a device file. */
  special: SpecialMapping | null = null;
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

/** A device file's mmap (the test driver's VM_MIXEDMAP mapping): it supplies the pages. */
export interface SpecialMapping {
  /** Return the pfn to insert at this address (vm_insert_page), with a reference the mapping keeps. */
  fault(vma: Vma, addr: number): number;
}

export function flagString(flags: number): string {
  return (flags & VM_READ ? 'r' : '-') + (flags & VM_WRITE ? 'w' : '-') + (flags & VM_EXEC ? 'x' : '-') + (flags & VM_SHARED ? 's' : 'p');
}

/** The VMAs of one mm, sorted by start and non-overlapping. */
export class VmaSet {
  private list: Vma[] = [];

  get all(): readonly Vma[] {
    return this.list;
  }
  get size(): number {
    return this.list.length;
  }

  /** Index of the first VMA with end > addr (the kernel's find_vma), or list length. */
  private firstEndAbove(addr: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.end > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** find_vma: the first VMA ending above addr (it may start above addr too). */
  findVma(addr: number): Vma | undefined {
    return this.list[this.firstEndAbove(addr)];
  }

  /** The VMA containing addr (vma_lookup). */
  lookup(addr: number): Vma | undefined {
    const v = this.findVma(addr);
    return v && v.start <= addr ? v : undefined;
  }

  /** VMAs intersecting [start, end), in order. */
  overlapping(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    for (let i = this.firstEndAbove(start); i < this.list.length; i++) {
      const v = this.list[i]!;
      if (v.start >= end) break;
      out.push(v);
    }
    return out;
  }

  insert(v: Vma): void {
    const i = this.firstEndAbove(v.start);
    const next = this.list[i];
    if (next && next.start < v.end) throw new Error(`VMA ${v} overlaps ${next}`);
    this.list.splice(i, 0, v);
  }

  remove(v: Vma): void {
    const i = this.list.indexOf(v);
    if (i < 0) throw new Error(`VMA ${v} not in set`);
    this.list.splice(i, 1);
  }

  prev(v: Vma): Vma | undefined {
    const i = this.list.indexOf(v);
    return i > 0 ? this.list[i - 1] : undefined;
  }
  next(v: Vma): Vma | undefined {
    const i = this.list.indexOf(v);
    return i >= 0 ? this.list[i + 1] : undefined;
  }

  /** Whether [start, end) is wholly free. */
  isFree(start: number, end: number): boolean {
    const v = this.findVma(start);
    return !v || v.start >= end;
  }

  /** Highest free gap of `len` bytes in [low, top), aligned to `align` (unmapped_area_topdown). */
  findGapTopDown(len: number, low: number, top: number, align: number): number {
    let ceiling = top;
    for (let i = this.list.length - 1; i >= 0; i--) {
      const v = this.list[i]!;
      if (v.start >= ceiling) continue;
      const cand = Math.floor((ceiling - len) / align) * align;
      if (cand >= Math.max(v.end, low)) return cand;
      ceiling = v.start;
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
