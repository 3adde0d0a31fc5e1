// The LRU lists of the one node (struct lruvec; the list handling of mm/swap.c and
// include/linux/mm_inline.h): every anonymous and page-cache folio in RAM is on one of four
// lists, inactive or active, anon (swap-backed: anonymous memory and tmpfs) or file. New
// folios enter an inactive list at its head; reclaim (vmscan.ts) takes from the tail. The
// links live in the frame arrays (page.ts: `head` as lru.next of a head or small frame, as
// compound_head shares its word with lru.next in struct page; `lruPrev`), so the lists cost
// no allocation. Device, reserved and hugetlb frames never join them.

import { ORDER_MASK, ORDER_SHIFT, PG_active, PG_anon, PG_device, PG_hugetlb, PG_lru, PG_referenced, PG_reserved, PG_swapbacked, PG_tail } from './page.js';
import type { PhysMem } from './physmem.js';

export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;
export const LRU_INACTIVE_FILE = 2;
export const LRU_ACTIVE_FILE = 3;
export const NR_LRU_LISTS = 4;

/** Reclaim counters, named after /proc/vmstat's. */
export interface VmStat {
  /** Direct reclaim passes (allocations that had to reclaim). */
  allocstall: number;
  /** Folios reclaim looked at on an inactive list, and pages it freed. */
  pgscan: number;
  pgsteal: number;
  /** Folios moved to an active list by reclaim, and back to an inactive one. */
  pgactivate: number;
  pgdeactivate: number;
  /** Anonymous and tmpfs pages written to swap, and clean tmpfs pages dropped. */
  pswpout: number;
  pgdrop: number;
}

/** The node's four LRU lists (struct lruvec) and reclaim's counters: `machine.phys.lru`. */
export class Lruvec {
  /**
   * Most recently added folio of each list, or -1; and oldest (reclaim's end). Entry
   * NR_LRU_LISTS of each is scratch: add and del store a list's end there when it does not
   * change, so that filling an empty list or emptying one runs the stores every other call
   * runs (a store the first calls of a process never made would deoptimize the code that
   * inlined them, release_pages or a mapping's folio_add_lru, when it first happens).
   */
  readonly first = new Int32Array(NR_LRU_LISTS + 1).fill(-1);
  readonly last = new Int32Array(NR_LRU_LISTS + 1).fill(-1);
  /** Pages on each list (a folio counts its pages). */
  readonly pages = new Float64Array(NR_LRU_LISTS);
  readonly stat: VmStat = { allocstall: 0, pgscan: 0, pgsteal: 0, pgactivate: 0, pgdeactivate: 0, pswpout: 0, pgdrop: 0 };
  /** Set while reclaim runs (PF_MEMALLOC): an allocation made meanwhile does not reclaim again. */
  reclaiming = false;

  constructor(private readonly phys: PhysMem) {}

  /** folio_lru_list: which list a folio belongs on, from its flags. */
  static listOf(flags: number): number {
    return (flags & PG_swapbacked ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE) + (flags & PG_active ? 1 : 0);
  }

  /** Whether a folio in use belongs on the LRU: RAM holding anonymous or page-cache memory. */
  evictable(head: number): boolean {
    const f = this.phys.frames;
    const flags = f.flags[head]!;
    if (flags & (PG_lru | PG_reserved | PG_hugetlb | PG_device | PG_tail) || head >= this.phys.ramFrames) return false;
    return (flags & PG_anon) !== 0 || f.mapping[head] !== 0;
  }

  /** folio_add_lru: at the head of the list its flags choose (inactive unless PG_active). */
  add(head: number): void {
    const f = this.phys.frames;
    const flags = f.flags[head]! | PG_lru;
    f.flags[head] = flags;
    const lru = Lruvec.listOf(flags);
    const old = this.first[lru]!;
    f.lruPrev[head] = -1;
    f.head[head] = old < 0 ? 0xffffffff : old;
    if (old >= 0) f.lruPrev[old] = head;
    this.last[old >= 0 ? NR_LRU_LISTS : lru] = head; // scratch unless the list was empty (see first)
    this.first[lru] = head;
    this.pages[lru]! += 1 << f.order(head);
  }

  /** At the old end of its inactive list, where reclaim takes next (the tails of a folio reclaim split). */
  addTail(pfn: number): void {
    const f = this.phys.frames;
    const flags = (f.flags[pfn]! & ~PG_active) | PG_lru;
    f.flags[pfn] = flags;
    const lru = Lruvec.listOf(flags);
    const old = this.last[lru]!;
    f.head[pfn] = 0xffffffff;
    f.lruPrev[pfn] = old;
    if (old >= 0) f.head[old] = pfn;
    else this.first[lru] = pfn;
    this.last[lru] = pfn;
    this.pages[lru]! += 1 << f.order(pfn);
  }

  /** lru_add after a given folio (a split folio's tails follow their head). */
  addAfter(prev: number, pfn: number): void {
    const f = this.phys.frames;
    const flags = f.flags[prev]!;
    const lru = Lruvec.listOf(flags);
    const next = this.nextOf(prev);
    f.flags[pfn] = (f.flags[pfn]! & ~(PG_active | PG_referenced)) | PG_lru | (flags & (PG_active | PG_referenced));
    f.lruPrev[pfn] = prev;
    f.head[pfn] = next < 0 ? 0xffffffff : next;
    f.head[prev] = pfn;
    if (next >= 0) f.lruPrev[next] = pfn;
    else this.last[lru] = pfn;
    this.pages[lru]! += 1 << f.order(pfn);
  }

  /** lruvec_del_folio: off its list (PG_lru cleared: isolated, or about to be freed). */
  del(head: number): void {
    // No call inside: release_pages runs this once a freed page, in a fresh process's first
    // pass as baseline code.
    const f = this.phys.frames;
    const flags = f.flags[head]!;
    const lru = (flags & PG_swapbacked ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE) + (flags & PG_active ? 1 : 0); // listOf
    const prev = f.lruPrev[head]!;
    const link = f.head[head]!;
    const next = link === 0xffffffff ? -1 : link; // nextOf
    // A list's end goes to scratch unless this folio was at that end (see first).
    if (prev >= 0) f.head[prev] = link;
    this.first[prev >= 0 ? NR_LRU_LISTS : lru] = next;
    if (next >= 0) f.lruPrev[next] = prev;
    this.last[next >= 0 ? NR_LRU_LISTS : lru] = prev;
    f.lruPrev[head] = -1;
    f.head[head] = 0;
    f.flags[head] = flags & ~PG_lru;
    this.pages[lru]! -= 1 << ((flags & ORDER_MASK) >>> ORDER_SHIFT);
  }

  /** The folio after this one on its list (towards the tail), or -1. */
  nextOf(head: number): number {
    const n = this.phys.frames.head[head]!;
    return n === 0xffffffff ? -1 : n;
  }

  /** A folio on a list grew smaller in place (split_folio: its head keeps its place, as one page). */
  shrunk(head: number, oldPages: number): void {
    const f = this.phys.frames;
    this.pages[Lruvec.listOf(f.flags[head]!)]! -= oldPages - (1 << f.order(head));
  }

  /** folio_activate (or the deactivation shrink_active_list does): to the head of the other list. */
  move(head: number, active: boolean): void {
    const f = this.phys.frames;
    this.del(head);
    f.flags[head] = active ? f.flags[head]! | PG_active : f.flags[head]! & ~PG_active;
    this.add(head);
  }

  /**
   * folio_mark_accessed, for an access that no page table records (read and write system
   * calls): the first one marks the folio referenced, the second activates it.
   */
  markAccessed(head: number): void {
    const f = this.phys.frames;
    const flags = f.flags[head]!;
    if (flags & PG_referenced && !(flags & PG_active) && flags & PG_lru) {
      f.flags[head] = flags & ~PG_referenced;
      this.move(head, true);
    } else if (!(flags & PG_referenced)) {
      f.flags[head] = flags | PG_referenced;
    }
  }

  get inactiveAnon(): number {
    return this.pages[LRU_INACTIVE_ANON]!;
  }
  get activeAnon(): number {
    return this.pages[LRU_ACTIVE_ANON]!;
  }

  /** For checkInvariants: every list walked both ways, its folios' flags and the page counts. */
  check(errors: string[]): Set<number> {
    const f = this.phys.frames;
    const seen = new Set<number>();
    for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
      let pages = 0;
      let prev = -1;
      for (let p = this.first[lru]!; p >= 0; p = this.nextOf(p)) {
        if (seen.has(p)) {
          errors.push(`lru ${lru}: frame ${p} is linked twice (a cycle or two lists)`);
          break;
        }
        seen.add(p);
        if (f.lruPrev[p] !== prev) errors.push(`lru ${lru}: frame ${p} links back to ${f.lruPrev[p]}, not ${prev}`);
        const flags = f.flags[p]!;
        if (!(flags & PG_lru) || Lruvec.listOf(flags) !== lru) errors.push(`lru ${lru}: frame ${p} has flags 0x${flags.toString(16)}`);
        if (f.refcount[p] === 0 || flags & PG_tail) errors.push(`lru ${lru}: frame ${p} is free or a tail`);
        pages += 1 << f.order(p);
        prev = p;
      }
      if (this.last[lru] !== prev) errors.push(`lru ${lru}: last is ${this.last[lru]}, the walk ended at ${prev}`);
      if (this.pages[lru] !== pages) errors.push(`lru ${lru}: ${this.pages[lru]} pages counted, ${pages} on the list`);
    }
    return seen;
  }
}
