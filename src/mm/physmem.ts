// Physical memory: system RAM handed out by a buddy allocator, device memory ranges
// (ZONE_DEVICE, managed by their drivers), and the page data pool. Page data is allocated on
// first write from 8 MiB slabs (src/mm/slot-arena.ts), so an untouched frame costs no data and
// reads as zeros; a page nothing has written past its first 64 bytes holds only those (a head
// slot), the rest reading as zeros. A page copy shares the source's data slot and the first
// write to a shared slot duplicates it, so a copy whose source is freed before either is
// written (every successful migration) moves no bytes at all.

import { fail } from './errno.js';
import type { EventBus } from './events.js';
import {
  Frames, ORDER_MASK, ORDER_SHIFT, PG_anon, PG_anon_exclusive, PG_buddy, PG_device, PG_dirty, PG_head,
  PG_hugetlb, PG_lazyfree, PG_locked, PG_lru, PG_active, PG_referenced, PG_reserved, PG_swapbacked, PG_tail,
} from './page.js';
import { HPAGE_PMD_ORDER, HPAGE_PUD_ORDER, PAGE_SIZE } from './constants.js';
import type { DevPagemap } from './memremap.js';
import { PageData } from './page_data.js';
import { Lruvec } from './lru.js';

export { setSlabPoolBytes } from './slot-arena.js';
export { BYTES_PER_DATA_SLOT, HEAD_BYTES } from './page_data.js';

export const MAX_ORDER = HPAGE_PUD_ORDER; // up to 1 GiB blocks, for gigantic hugetlb pages
/**
 * Frames the frame table can describe, RAM and device memory together (256 GiB; the table
 * costs BYTES_PER_FRAME each). A machine or a device range beyond it is ENOMEM, checked
 * before anything is allocated.
 */
export const MAX_FRAMES = 2 ** 26;
/** Orders above this do not reclaim when the free lists are short (PAGE_ALLOC_COSTLY_ORDER). */
export const PAGE_ALLOC_COSTLY_ORDER = 3;
/** Direct reclaim passes that free pages without the allocation succeeding before it gives up (MAX_RECLAIM_RETRIES). */
const MAX_RECLAIM_RETRIES = 16;
/** PAGES_PER_SUBSECTION: 2 MiB, the granularity at which memremap_pages hotplugs device memory. */
const PAGES_PER_SUBSECTION = 512;

/**
 * Frames a free block of each order, in circular doubly linked lists through these arrays
 * (indexed by pfn), each with a sentinel head past the frames (list_head, free_area[order]):
 * adding and removing have no end of the list to test, so the code stays the same whether
 * a list is empty or not (setup only splits; the frees of a timed run merge too).
 */
class FreeLists {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly counts = new Int32Array(MAX_ORDER + 1);
  /** The sentinel of order 0; order o's is base + o. */
  readonly base: number;
  constructor(n: number) {
    this.base = n;
    // Written through at once, as the links of every struct page are at boot (page.ts Frames).
    this.next = new Int32Array(n + MAX_ORDER + 1).fill(-1);
    this.prev = new Int32Array(n + MAX_ORDER + 1).fill(-1);
    for (let o = 0; o <= MAX_ORDER; o++) this.next[n + o] = this.prev[n + o] = n + o;
  }
  /** The most recently added block of an order, or -1. */
  first(order: number): number {
    const h = this.next[this.base + order]!;
    return h === this.base + order ? -1 : h;
  }
  push(order: number, pfn: number): void {
    const s = this.base + order;
    const h = this.next[s]!;
    this.next[pfn] = h;
    this.prev[pfn] = s;
    this.prev[h] = pfn;
    this.next[s] = pfn;
    this.counts[order]!++;
  }
  remove(order: number, pfn: number): void {
    const n = this.next[pfn]!;
    const p = this.prev[pfn]!;
    this.next[p] = n;
    this.prev[n] = p;
    this.counts[order]!--;
  }
}

export class PhysMem {
  /** @internal The struct-page fields of every frame, in typed arrays (replaced when device memory is added). */
  frames: Frames;
  readonly ramFrames: number;
  private readonly free: FreeLists;
  private freeFrames = 0;
  /** Device memory ranges, sorted by first pfn. */
  private readonly pagemaps: DevPagemap[] = [];
  private nextDevicePfn: number;

  /** @internal The frames' bytes: whole pages, and heads of pages written only near their start (page_data.ts). */
  readonly data: PageData = new PageData(this);

  // Sparse per-frame state that few frames have.
  readonly entireMapcount = new Map<number, number>(); // head pfn -> PMD/PUD mappings
  readonly pincount = new Map<number, number>(); // head pfn -> FOLL_PIN pins
  readonly gupcount = new Map<number, number>(); // head pfn -> FOLL_GET references get_user_pages handed out
  readonly zoneDeviceData = new Map<number, unknown>(); // device pfn -> driver data

  /** The shared zero page, and the huge zero page (allocated on first use). */
  readonly zeroPfn: number;
  private hugeZero = -1;

  /** `deviceFrames`: frames the table has room for above RAM from the start (MachineConfig.deviceBytes). */
  constructor(ramBytes: number, readonly events: EventBus, deviceFrames = 0) {
    if (!Number.isSafeInteger(ramBytes) || ramBytes < 16 * PAGE_SIZE || ramBytes % PAGE_SIZE !== 0) {
      fail('EINVAL', `RAM size must be a page-aligned number of bytes >= 64 KiB, got ${ramBytes}`);
    }
    if (ramBytes / PAGE_SIZE > MAX_FRAMES) fail('ENOMEM', `${ramBytes} bytes of RAM is more than the frame table can describe (${MAX_FRAMES} frames)`);
    this.ramFrames = ramBytes / PAGE_SIZE;
    // Device memory starts at the next 2 MiB subsection boundary above RAM: memremap_pages
    // hotplugs ZONE_DEVICE ranges at subsection granularity (PAGES_PER_SUBSECTION), so a small
    // machine's frame table does not grow to a 128 MiB section for a few device pages.
    this.nextDevicePfn = Math.ceil(this.ramFrames / PAGES_PER_SUBSECTION) * PAGES_PER_SUBSECTION;
    this.frames = new Frames(deviceFrames > 0 ? Math.min(MAX_FRAMES, this.nextDevicePfn + deviceFrames) : this.ramFrames);
    this.free = new FreeLists(this.ramFrames);
    // Carve RAM into the largest naturally aligned blocks.
    for (let pfn = 0; pfn < this.ramFrames; ) {
      let order = MAX_ORDER;
      while (order > 0 && (pfn % (1 << order) !== 0 || pfn + (1 << order) > this.ramFrames)) order--;
      this.addFree(pfn, order);
      pfn += 1 << order;
    }
    this.zeroPfn = this.allocPages(0);
    this.frames.flags[this.zeroPfn]! |= PG_reserved;
  }

  // ---- the buddy allocator ----

  private addFree(pfn: number, order: number): void {
    this.frames.flags[pfn] = PG_buddy | (order << ORDER_SHIFT);
    this.free.push(order, pfn);
    this.freeFrames += 1 << order;
  }

  /**
   * Allocate 2^order contiguous, naturally aligned RAM frames; -1 when none (the caller
   * decides on ENOMEM). When the free lists are short, an allocation of at most
   * PAGE_ALLOC_COSTLY_ORDER reclaims (__alloc_pages_slowpath's direct reclaim) and tries
   * again, up to MAX_RECLAIM_RETRIES times without progress; larger ones (THPs, hugetlb
   * pages) fail at once, as they would without compaction.
   */
  tryAllocPages(order: number): number {
    if (this.failTimes > 0) {
      if (this.failAfter === 0) {
        this.failTimes--;
        return -1;
      }
      this.failAfter--;
    }
    const pfn = this.takeFree(order);
    if (pfn >= 0 || !this.directReclaim || order > PAGE_ALLOC_COSTLY_ORDER || this.lru.reclaiming) return pfn;
    for (let tries = 0; tries < MAX_RECLAIM_RETRIES; tries++) {
      if (this.directReclaim(order) === 0) return this.takeFree(order);
      const again = this.takeFree(order);
      if (again >= 0) return again;
    }
    return -1;
  }

  /**
   * Fault injection (the kernel's fail_page_alloc): once `after` more allocations have
   * succeeded, the next `times` fail as if nothing could be reclaimed. For tests of the
   * failure paths; failPageAlloc(0, 0) turns it off.
   */
  failPageAlloc(after: number, times = 1): void {
    if (!Number.isSafeInteger(after) || after < 0 || !Number.isSafeInteger(times) || times < 0) fail('EINVAL', 'after and times must be non-negative integers');
    this.failAfter = after;
    this.failTimes = times;
  }
  private failAfter = 0;
  private failTimes = 0;

  /**
   * try_to_free_pages, installed by the machine (vmscan.ts): reclaims and returns the pages
   * it freed, 0 when nothing could be reclaimed.
   */
  directReclaim: ((order: number) => number) | null = null;

  /** The LRU lists of this node (lru.ts). */
  readonly lru = new Lruvec(this);

  /** The buddy allocator's fast path: a free block split down to the order, or -1. */
  private takeFree(order: number): number {
    let o = order;
    while (o <= MAX_ORDER && this.free.counts[o] === 0) o++;
    if (o > MAX_ORDER) return -1;
    const pfn = this.free.first(o);
    this.free.remove(o, pfn);
    this.freeFrames -= 1 << o;
    while (o > order) {
      o--;
      this.addFree(pfn + (1 << o), o);
    }
    const f = this.frames;
    f.flags[pfn] = order > 0 ? PG_head | (order << ORDER_SHIFT) : 0;
    f.refcount[pfn] = 1;
    if (order > 0) {
      for (let i = 1, n = 1 << order; i < n; i++) {
        f.flags[pfn + i] = PG_tail;
        f.head[pfn + i] = pfn;
      }
    }
    return pfn;
  }

  /** Like tryAllocPages, but out of memory is an ENOMEM error. */
  allocPages(order: number): number {
    const pfn = this.tryAllocPages(order);
    if (pfn < 0) fail('ENOMEM', `no free block of order ${order}`);
    return pfn;
  }

  private freeBlock(pfn: number, order: number): void {
    const f = this.frames;
    const n = 1 << order;
    for (let p = pfn; p < pfn + n; p++) if (f.dataSlot[p]! >= 0) this.data.releaseSlot(p);
    f.reset(pfn, n);
    f.refcount[pfn] = 0;
    this.mergeFree(pfn, order);
  }

  /**
   * A run of frames [s, e) whose last references went (data released, off the LRU), to the
   * buddy allocator as its naturally aligned blocks, largest first. The free lists end as
   * freeing the frames one by one in order leaves them: the frames of an aligned block are
   * freed one after another, so their merges stay inside it until the block is whole.
   */
  private freeRun(s: number, e: number): void {
    if (e === s) return;
    this.frames.reset(s, e - s);
    for (let p = s; p < e; ) {
      let order = 0;
      while (order < MAX_ORDER && (p & ((2 << order) - 1)) === 0 && p + (2 << order) <= e) order++;
      this.mergeFree(p, order);
      p += 1 << order;
    }
  }

  /** __free_one_page: a free block of frames already reset, merged with its free buddies. */
  private mergeFree(pfn: number, order: number): void {
    const f = this.frames;
    while (order < MAX_ORDER) {
      const buddy = pfn ^ (1 << order);
      if (buddy >= this.ramFrames || !(f.flags[buddy]! & PG_buddy) || f.order(buddy) !== order) break;
      this.free.remove(order, buddy);
      this.freeFrames -= 1 << order;
      f.flags[buddy] = 0;
      pfn = Math.min(pfn, buddy);
      order++;
    }
    this.addFree(pfn, order);
  }

  get freeRamFrames(): number {
    return this.freeFrames;
  }
  /** RAM frames in use, the reserved zero pages excluded. */
  get usedRamFrames(): number {
    return this.ramFrames - this.freeFrames - 1 - (this.hugeZero >= 0 ? 512 : 0);
  }

  // ---- references (get_page / put_page) ----

  getPage(pfn: number): void {
    this.frames.refcount[this.frames.compoundHead(pfn)]!++;
  }

  /** put_page: drop a reference; the last one frees the folio (device pages go back to their driver). */
  putPage(pfn: number): void {
    const f = this.frames;
    const head = f.compoundHead(pfn);
    const ref = --f.refcount[head]!;
    if (ref > 0) return;
    if (ref < 0) throw new Error(`put_page on free frame ${head} (double free)`);
    const flags = f.flags[head]!;
    if (flags & PG_reserved) throw new Error(`reserved frame ${head} lost its last reference`);
    const order = f.order(head);
    if (order > 0) this.entireMapcount.delete(head); // only a folio of PMD size or more has huge mappings
    if (flags & PG_device) {
      this.freeDevicePage(head, order);
      return;
    }
    if (flags & PG_lru) this.lru.del(head);
    this.events.tally.freedSystem += 1 << order;
    if (this.events.on.free) this.events.emit({ type: 'free', pfn: head, order, device: false });
    this.freeBlock(head, order);
  }

  /**
   * release_pages (free_pages_and_swap_cache, as tlb_finish_mmu frees a gather): put_page on
   * pfns[0..n). A small RAM page whose last reference goes leaves its LRU list and its data at
   * once, and joins a run of consecutive freed frames that goes to the buddy allocator whole
   * (freeRun); folios, device pages and a listened-to `free` event take put_page's path.
   */
  releasePages(pfns: Int32Array, n: number): void {
    const f = this.frames;
    const refcount = f.refcount;
    const flags = f.flags;
    const dataSlot = f.dataSlot;
    const slow = this.events.on.free ? -1 : PG_head | PG_tail | PG_device | PG_reserved;
    let runStart = 0;
    let runEnd = 0; // [runStart, runEnd): freed frames not yet given to the buddy allocator
    let freed = 0; // by this loop (putPage counts its own)
    for (let i = 0; i < n; i++) {
      const pfn = pfns[i]!;
      const fl = flags[pfn]!;
      if (fl & slow || refcount[pfn]! <= 0) {
        if (runEnd > runStart) this.freeRun(runStart, runEnd);
        runStart = runEnd = 0;
        this.putPage(pfn);
        continue;
      }
      if (--refcount[pfn]! > 0) continue;
      freed++;
      if (fl & PG_lru) this.lru.del(pfn);
      const slot = dataSlot[pfn]!;
      if (slot >= 0) {
        this.data.freeSlot(slot);
        dataSlot[pfn] = -1;
      }
      if (pfn !== runEnd) {
        // The run so far goes (none at the first page: freeRun of nothing is nothing), a call
        // made on every call of this, so that optimized code has seen it before a run breaks.
        this.freeRun(runStart, runEnd);
        runStart = pfn;
      }
      runEnd = pfn + 1;
    }
    if (runEnd > runStart) this.freeRun(runStart, runEnd);
    this.events.tally.freedSystem += freed;
  }

  private freeDevicePage(head: number, order: number): void {
    const f = this.frames;
    const pgmap = this.pagemapOf(head)!;
    for (let i = 0, n = 1 << order; i < n; i++) {
      const p = head + i;
      // The host memory holding the page's bytes goes back to the pool, as a RAM page's does:
      // the driver writes a device page (copy or clear) before it hands it out again.
      if (f.dataSlot[p]! >= 0) this.data.releaseSlot(p);
      f.mapping[p] = 0;
      f.mapcount[p] = 0;
      f.flags[p] = PG_device | (i === 0 ? f.flags[p]! & (PG_head | ORDER_MASK) : f.flags[p]! & PG_tail);
    }
    this.events.tally.freedDevice += 1 << order;
    if (this.events.on.free) this.events.emit({ type: 'free', pfn: head, order, device: true });
    pgmap.freed++;
    pgmap.ops.pageFree(head);
  }

  /**
   * split_folio for an anonymous THP mapped only by PTEs: every frame becomes a small page
   * whose refcount is its own mappings, plus, for the head, the `extra` references the caller
   * holds on the folio (they stay with the page the caller has); frames nobody maps are freed.
   * Returns false (and changes nothing) if the folio cannot be split now: a huge mapping, a
   * pin, or any reference besides the mappings and the caller's (can_split_folio).
   */
  splitFolio(head: number, extra = 0): boolean {
    const flags = this.frames.flags[head]!;
    if (flags & PG_locked || !this.canSplitFolio(head, extra)) return false;
    this.splitFolioFrames(head, 0, head, extra, false);
    return true;
  }

  /**
   * can_split_folio for an anonymous folio (a THP or a device-private folio) mapped only by
   * PTEs: no huge mapping, no pin, and no reference besides its mappings and the caller's `extra`.
   */
  canSplitFolio(head: number, extra: number): boolean {
    const f = this.frames;
    const flags = f.flags[head]!;
    if (!(flags & PG_head) || flags & (PG_hugetlb | PG_reserved) || !(flags & PG_anon)) return false;
    if ((this.entireMapcount.get(head) ?? 0) !== 0 || this.pinned(head) > 0) return false;
    let mapped = 0;
    for (let i = 0, n = 1 << f.order(head); i < n; i++) mapped += f.mapcount[head + i]!;
    return f.refcount[head] === mapped + extra;
  }

  /**
   * __split_folio_to_order(folio, 0): every frame of the folio at `head` becomes a small page
   * with a refcount of its own mappings plus `each`, and `extra` more on page `at` (the
   * references the caller holds move with the page it holds). The lock: with `lockAll` every
   * piece keeps the folio's lock (folio_split_unmapped: the migration unlocks each); otherwise
   * only the piece holding `at` keeps it. Pieces nobody references are freed, a device page
   * back to its driver; a device driver's pagemap may copy its per-page data (folio_split).
   */
  splitFolioFrames(head: number, each: number, at: number, extra: number, lockAll: boolean): void {
    const f = this.frames;
    const flags = f.flags[head]!;
    const n = 1 << f.order(head);
    const device = (flags & PG_device) !== 0;
    const keep = flags & (PG_anon | PG_swapbacked | PG_dirty | PG_lazyfree | PG_device);
    const locked = flags & PG_locked;
    const lruFlags = flags & (PG_lru | PG_active | PG_referenced);
    const pgmap = device ? this.pagemapOf(head) : undefined;
    for (let i = 0; i < n; i++) {
      const p = head + i;
      const lock = lockAll || p === at ? locked : 0;
      f.flags[p] = keep | lock | (f.flags[p]! & PG_anon_exclusive) | (i === 0 ? lruFlags : 0);
      f.refcount[p] = f.mapcount[p]! + each + (p === at ? extra : 0);
      if (i > 0) pgmap?.ops.folioSplit?.(head, p);
    }
    if (locked && !(f.flags[head]! & PG_locked)) this.wakeLockWaiters(head);
    if (lruFlags & PG_lru) {
      // lru_add_split_folio: the head keeps its place as one page, the pieces still in use follow it.
      this.lru.shrunk(head, n);
      for (let i = 1, prev = head; i < n; i++) {
        if (f.refcount[head + i] === 0) continue;
        this.lru.addAfter(prev, head + i);
        prev = head + i;
      }
      if (f.refcount[head] === 0) this.lru.del(head);
    }
    for (let i = 0; i < n; i++) {
      const p = head + i;
      if (f.refcount[p] !== 0) continue;
      if (device) this.freeDevicePage(p, 0);
      else this.freeBlock(p, 0);
    }
  }

  // ---- page flags ----

  isZeroPfn(pfn: number): boolean {
    return pfn === this.zeroPfn || (this.hugeZero >= 0 && pfn >= this.hugeZero && pfn < this.hugeZero + 512);
  }
  isAnon(pfn: number): boolean {
    return (this.frames.flags[this.frames.compoundHead(pfn)]! & PG_anon) !== 0;
  }
  isLocked(pfn: number): boolean {
    return (this.frames.flags[this.frames.compoundHead(pfn)]! & PG_locked) !== 0;
  }
  /** trylock_page on the folio. */
  trylockPage(pfn: number): boolean {
    const h = this.frames.compoundHead(pfn);
    if (this.frames.flags[h]! & PG_locked) return false;
    this.frames.flags[h]! |= PG_locked;
    return true;
  }
  private readonly lockWaiters = new Map<number, Array<() => void>>();
  unlockPage(pfn: number): void {
    const h = this.frames.compoundHead(pfn);
    this.frames.flags[h]! &= ~PG_locked;
    this.wakeLockWaiters(h);
  }
  private wakeLockWaiters(h: number): void {
    if (this.lockWaiters.size === 0) return; // no map lookup per unlock when nobody waits
    const w = this.lockWaiters.get(h);
    if (w) {
      this.lockWaiters.delete(h);
      for (const wake of w) wake();
    }
  }
  /** A promise that resolves when the folio is next unlocked (folio_wait_locked). */
  waitUnlocked(pfn: number): Promise<void> {
    const h = this.frames.compoundHead(pfn);
    if (!(this.frames.flags[h]! & PG_locked)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.lockWaiters.get(h);
      if (list) list.push(resolve);
      else this.lockWaiters.set(h, [resolve]);
    });
  }

  /** Prepare a freshly allocated frame (or folio) as anonymous memory. */
  setAnon(pfn: number): void {
    this.frames.flags[pfn]! |= PG_anon | PG_swapbacked | PG_anon_exclusive;
  }
  setDirty(pfn: number): void {
    const h = this.frames.compoundHead(pfn);
    this.frames.flags[h] = (this.frames.flags[h]! | PG_dirty) & ~PG_lazyfree;
  }
  markHugetlb(head: number): void {
    this.frames.flags[head]! |= PG_hugetlb;
  }

  /** The huge zero page (a reserved 2 MiB folio), allocated on first use; -1 if RAM is short. */
  hugeZeroPfn(): number {
    if (this.hugeZero < 0) {
      const pfn = this.tryAllocPages(HPAGE_PMD_ORDER);
      if (pfn < 0) return -1;
      this.frames.flags[pfn]! |= PG_reserved;
      this.hugeZero = pfn;
    }
    return this.hugeZero;
  }

  // ---- pins (FOLL_PIN) ----

  pinned(pfn: number): number {
    if (this.pincount.size === 0) return 0; // no map lookup per page while nothing is pinned
    return this.pincount.get(this.frames.compoundHead(pfn)) ?? 0;
  }

  // ---- device memory ----

  /** Add a device memory range (memremap_pages); its frames are the driver's to hand out. */
  addPagemap(pgmap: DevPagemap, nframes: number): number {
    const first = this.nextDevicePfn;
    const end = first + nframes;
    if (end > 2 ** 32) fail('ERANGE', 'no free physical window for device memory');
    if (end > MAX_FRAMES) fail('ENOMEM', `${nframes} device frames do not fit in the frame table (${MAX_FRAMES} frames)`);
    this.nextDevicePfn = Math.ceil(end / PAGES_PER_SUBSECTION) * PAGES_PER_SUBSECTION;
    if (end > this.frames.capacity) this.frames = this.frames.grow(Math.min(MAX_FRAMES, Math.max(end, this.frames.capacity * 2)));
    this.frames.init(first, nframes);
    for (let p = first; p < end; p++) this.frames.flags[p] = PG_device;
    pgmap.firstPfn = first;
    pgmap.nframes = nframes;
    this.pagemaps.push(pgmap);
    return first;
  }

  removePagemap(pgmap: DevPagemap): void {
    const i = this.pagemaps.indexOf(pgmap);
    if (i < 0) fail('EINVAL', 'pagemap not registered');
    const f = this.frames;
    for (let p = pgmap.firstPfn; p < pgmap.firstPfn + pgmap.nframes; p++) {
      if (f.refcount[p]! > 0) fail('EBUSY', `device page ${p} still in use`);
    }
    for (let p = pgmap.firstPfn; p < pgmap.firstPfn + pgmap.nframes; p++) {
      if (f.dataSlot[p]! >= 0) this.data.releaseSlot(p);
      f.flags[p] = 0;
    }
    this.pagemaps.splice(i, 1);
  }

  /** The dev_pagemap a frame belongs to, or undefined for system RAM. */
  pagemapOf(pfn: number): DevPagemap | undefined {
    if (pfn < this.ramFrames) return undefined;
    const maps = this.pagemaps;
    let lo = 0;
    let hi = maps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = maps[mid]!;
      if (pfn < m.firstPfn) hi = mid - 1;
      else if (pfn >= m.firstPfn + m.nframes) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  isDevicePrivate(pfn: number): boolean {
    if (pfn < this.ramFrames) return false;
    const pgmap = this.pagemapOf(pfn);
    return pgmap !== undefined && pgmap.type === 'private';
  }

  /** A device driver takes an idle device frame (or folio) into use: refcount 1, as zone_device_page_init. */
  deviceFrameInit(pfn: number, order = 0): void {
    const f = this.frames;
    if (f.refcount[pfn] !== 0) throw new Error(`device page ${pfn} already in use`);
    f.refcount[pfn] = 1;
    f.flags[pfn] = PG_device | (order > 0 ? PG_head | (order << ORDER_SHIFT) : 0);
    for (let i = 1; i < 1 << order; i++) {
      f.flags[pfn + i] = PG_device | PG_tail;
      f.head[pfn + i] = pfn;
    }
  }

  get pagemapList(): readonly DevPagemap[] {
    return this.pagemaps;
  }

  // ---- page data (page_data.ts): the calls the mm and drivers make on a frame's bytes ----

  /** Copy len bytes at offset `off` of frame `pfn` into out[outOff..]. */
  readPage(pfn: number, off: number, out: Uint8Array, outOff: number, len: number): void {
    this.data.readPage(pfn, off, out, outOff, len);
  }
  /** Copy len bytes of src[srcOff..] into frame `pfn` at offset `off`, allocating its data on first write. */
  writePage(pfn: number, off: number, src: Uint8Array, srcOff: number, len: number): void {
    this.data.writePage(pfn, off, src, srcOff, len);
  }
  /** copy_highpage, lazily: dst shares src's bytes until either is written. */
  copyPage(dst: number, src: number): void {
    this.data.copyPage(dst, src);
  }
  /** copy_highpage done at once, as a copy engine moves bytes between two memories. */
  copyHighpage(dst: number, src: number): void {
    this.data.copyHighpage(dst, src);
  }
  /** Drop a frame's data so it reads as zeros (clear_highpage). */
  clearPage(pfn: number): void {
    this.data.clearPage(pfn);
  }

  isHugetlb(pfn: number): boolean {
    return (this.frames.flags[this.frames.compoundHead(pfn)]! & PG_hugetlb) !== 0;
  }
  isDirty(pfn: number): boolean {
    return (this.frames.flags[this.frames.compoundHead(pfn)]! & PG_dirty) !== 0;
  }
}
