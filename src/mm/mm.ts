// The address space (mm_struct) and its VMA-level operations: mmap, munmap, mprotect, and
// exit. madvise, mremap and fork live in their own modules and operate on an Mm. Every
// operation validates all of its arguments before it changes anything, and brackets every
// change to existing entries with mmu notifier start/end.

import { fail } from './errno.js';
import {
  MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_HUGE_MASK, MAP_HUGE_SHIFT, MAP_HUGETLB, MAP_NORESERVE,
  MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, PAGE_SIZE, PMD_SHIFT, PMD_SIZE, PUD_SHIFT, PROT_EXEC, PROT_READ, PROT_WRITE,
  TASK_SIZE_4LEVEL, TASK_SIZE_5LEVEL, pageAligned, pageAlignUp,
} from './constants.js';
import type { Machine } from './machine.js';
import { MMU_NOTIFIER_RANGE_BLOCKABLE, MMU_RANGE_END_ALL, MmuNotifierSubscriptions, type MmuNotifierRange, type MmuNotifyEvent } from './notifier.js';
import {
  entryKind, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_MIGRATION, K_PRESENT, LEVEL_PAGES, PageTable, pteDevmap, pteMkwrite, pteNone,
  pteSpecial, pteWrprotect, ptFlags, ptVal, setPtFlags,
} from './pagetable.js';
import { PageGather, splitBoundary, totalMapcount, zapRange } from './memory.js';
import {
  canMerge, VM_ACCESS_FLAGS, VM_EXEC, VM_HUGETLB, VM_MAYEXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED,
  VM_WRITE, VM_LOCKED, VM_PFNMAP, VM_IO, Vma, VmaSet,
} from './vma.js';
import type { TmpFile } from './file.js';
import { PG_anon_exclusive } from './page.js';
import { populateRange } from './access.js';

const KNOWN_MAP_FLAGS = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE | MAP_HUGETLB |
  MAP_FIXED_NOREPLACE | (MAP_HUGE_MASK << MAP_HUGE_SHIFT);
const MMAP_MIN_ADDR = 65536;
/** x86-64 DEFAULT_MAP_WINDOW: mmap stays below 2^47 unless given a hint above it. */
const DEFAULT_MAP_WINDOW = TASK_SIZE_4LEVEL;
const VM_LOCKED_OR_SPECIAL = VM_LOCKED | VM_PFNMAP | VM_IO;

export function protToVmFlags(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);
}

export function checkProt(prot: number): void {
  if (!Number.isInteger(prot) || prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) fail('EINVAL', `unknown prot bits 0x${prot.toString(16)}`);
}

export class Mm {
  /** @internal The page table; read entries with pagemap(). */
  readonly pt: PageTable;
  readonly vmas = new VmaSet();
  /** @internal The mm's notifier subscriptions (struct mmu_notifier_subscriptions). */
  readonly notifiers: MmuNotifierSubscriptions;
  /** rss_stat: file, anon, swap entries, shmem (memory.ts MM_* indices). */
  readonly rss = new Float64Array(4);
  readonly taskSize: number;
  /** Top of the default mmap area: below the 47-bit DEFAULT_MAP_WINDOW even with 5-level paging. */
  readonly mmapBase: number;
  dead = false;
  /** @internal Reused by operations to drop page references after the invalidation ends (struct mmu_gather). */
  readonly gather = new PageGather();

  constructor(readonly machine: Machine, readonly id: number) {
    this.pt = new PageTable(machine.config.levels);
    this.taskSize = machine.config.levels === 5 ? TASK_SIZE_5LEVEL : TASK_SIZE_4LEVEL;
    this.mmapBase = DEFAULT_MAP_WINDOW - 2 ** 30;
    this.notifiers = new MmuNotifierSubscriptions(this, machine.events);
  }

  assertLive(): void {
    if (this.dead) fail('ESRCH', `mm ${this.id} has exited`);
  }

  /** Set when exit begins (mm_users dropped to 0): no operation can take the mm any more. */
  exiting = false;

  /**
   * The mmap lock, for an operation about to run on this mm (mmap, munmap, mprotect, mremap,
   * madvise, fork, exit, migrate_vma_*, gup, CPU accesses, hmm_range_fault). Operations are
   * atomic, so there is nothing to release; what remains is where the kernel would not get
   * the lock: ESRCH once the mm has exited or is exiting (mmget_not_zero fails), and EDEADLK
   * from inside one of this mm's notifier callbacks, whose caller holds the lock (or holds
   * locks the lock's holders wait behind), checked before anything changes.
   */
  mmapLock(op: string): void {
    if (this.dead || this.exiting) fail('ESRCH', `${op}: mm ${this.id} has exited`);
    this.mmapLockDeadlock(op);
  }

  /** The EDEADLK half of mmapLock, for the steps of a migration already set up (they may outlive the mm). */
  mmapLockDeadlock(op: string): void {
    if (this.notifiers.inCallback > 0) fail('EDEADLK', `${op} from inside an mmu notifier callback of mm ${this.id} (the kernel would deadlock on its mmap lock)`);
  }

  // ---- notifier helpers ----

  /** Start an invalidation of [start, end); null when nobody could observe it. */
  invalidateStart(event: MmuNotifyEvent, start: number, end: number, owner: unknown = null): MmuNotifierRange | null {
    this.machine.events.tally.invalidate(event);
    if (!this.notifiers.hasSubscriptions && !this.machine.events.on.invalidate) return null;
    const range: MmuNotifierRange = { mm: this, start, end, event, flags: MMU_NOTIFIER_RANGE_BLOCKABLE, owner };
    this.notifiers.invalidateRangeStart(range);
    return range;
  }
  invalidateEnd(range: MmuNotifierRange | null): void {
    if (range) this.notifiers.invalidateRangeEnd(range);
  }

  // ---- VMA bookkeeping ----

  insertVma(v: Vma): void {
    v.mm = this;
    this.vmas.insert(v);
    v.file?.mappings.add(v);
  }

  removeVma(v: Vma): void {
    this.vmas.remove(v);
    this.unlinkFile(v);
  }

  /** A VMA that is gone no longer maps its file (the file may go with it). */
  private unlinkFile(v: Vma): void {
    if (v.file) {
      v.file.mappings.delete(v);
      v.file.maybeFree();
    }
  }

  /** split_vma: cut v at addr; returns the upper part (now a VMA of its own). */
  splitVma(v: Vma, addr: number): Vma {
    const hi = v.clone();
    hi.start = addr;
    hi.pgoff = v.pgoffOf(addr);
    v.end = addr;
    this.insertVma(hi);
    return hi;
  }

  /** Merge v with its neighbours where they are compatible (vma_merge). Returns the surviving VMA. */
  mergeVma(v: Vma): Vma {
    const prev = this.vmas.prev(v);
    if (prev && canMerge(prev, v)) {
      prev.end = v.end;
      prev.anonVma ||= v.anonVma;
      this.removeVma(v);
      v = prev;
    }
    const next = this.vmas.next(v);
    if (next && canMerge(v, next)) {
      v.end = next.end;
      v.anonVma ||= next.anonVma;
      this.removeVma(next);
    }
    return v;
  }

  /**
   * The VMAs covering [start, end), split so that they begin and end exactly at the bounds.
   * Call only after validation: it changes the VMA set.
   */
  isolateRange(start: number, end: number): Vma[] {
    const list = this.vmas.overlapping(start, end);
    if (list.length === 0) return list;
    const first = list[0]!;
    if (first.start < start) list[0] = this.splitVma(first, start);
    const last = list[list.length - 1]!;
    if (last.end > end) this.splitVma(last, end);
    return list;
  }

  /** Whether [start, end) is covered by VMAs with no hole. */
  fullyMapped(start: number, end: number): boolean {
    let at = start;
    for (const v of this.vmas.overlapping(start, end)) {
      if (v.start > at) return false;
      at = v.end;
    }
    return at >= end;
  }

  /** Hugetlb VMAs can be cut only at huge-page boundaries (hugetlb_split). */
  private checkHugetlbBounds(start: number, end: number): void {
    for (const v of this.vmas.overlapping(start, end)) {
      if (!v.isHugetlb()) continue;
      const size = 2 ** v.hugeShift;
      if ((start > v.start && start % size) || (end < v.end && end % size)) fail('EINVAL', `range is not aligned to the ${size >> 20} MiB huge pages of ${v}`);
    }
  }

  private checkUserRange(start: number, len: number, what: string): number {
    if (!Number.isSafeInteger(start) || start < 0 || !pageAligned(start)) fail('EINVAL', `${what}: address 0x${start.toString(16)} is not page aligned`);
    if (!Number.isSafeInteger(len) || len < 0) fail('EINVAL', `${what}: bad length ${len}`);
    const end = start + pageAlignUp(len);
    if (end > this.taskSize) fail('EINVAL', `${what}: range ends above the user address space`);
    return end;
  }

  // ---- mmap ----

  /**
   * mmap(addr, length, prot, flags, file, offset). Anonymous private, anonymous shared
   * (an unlinked tmpfs file), file-backed private and shared, MAP_FIXED(_NOREPLACE),
   * MAP_POPULATE and MAP_HUGETLB (private). Returns the address.
   */
  mmap(addr: number, length: number, prot: number, flags: number, file: TmpFile | null = null, offset = 0): number {
    this.mmapLock('mmap');
    checkProt(prot);
    if (!Number.isInteger(flags)) fail('EINVAL', `bad mmap flags ${flags}`);
    // MAP_SHARED_VALIDATE (both type bits) is MAP_SHARED whose unknown flags are EOPNOTSUPP;
    // for the others an unknown flag is EINVAL here (the kernel ignores it: docs/api.md).
    if (flags & ~KNOWN_MAP_FLAGS) fail((flags & MAP_SHARED_VALIDATE) === MAP_SHARED_VALIDATE ? 'EOPNOTSUPP' : 'EINVAL', `unknown mmap flags 0x${(flags & ~KNOWN_MAP_FLAGS).toString(16)}`);
    const type = (flags & MAP_SHARED_VALIDATE) === MAP_SHARED_VALIDATE ? MAP_SHARED : flags & (MAP_SHARED | MAP_PRIVATE);
    if (type !== MAP_SHARED && type !== MAP_PRIVATE) fail('EINVAL', 'one of MAP_SHARED, MAP_SHARED_VALIDATE and MAP_PRIVATE is required');
    if (length === 0 || !Number.isSafeInteger(length)) fail('EINVAL', `bad length ${length}`);
    // A negative length is a huge size_t: larger than TASK_SIZE (get_unmapped_area: ENOMEM).
    if (length < 0) fail('ENOMEM', `bad length ${length}`);
    if (!Number.isSafeInteger(addr) || addr < 0) fail('EINVAL', `bad address ${addr}`);
    const anon = (flags & MAP_ANONYMOUS) !== 0;
    if (!anon && !file) fail('EBADF', 'a file mapping needs a file');
    if (!Number.isSafeInteger(offset) || offset < 0 || !pageAligned(offset)) fail('EINVAL', 'offset must be page aligned');
    let hugeShift = 0;
    let align = PAGE_SIZE;
    if (flags & MAP_HUGETLB) {
      if (!anon) fail('EINVAL', 'MAP_HUGETLB needs MAP_ANONYMOUS (hugetlbfs files are not modelled)');
      if (type === MAP_SHARED) fail('EOPNOTSUPP', 'shared hugetlb mappings are not modelled');
      hugeShift = (flags >>> MAP_HUGE_SHIFT) & MAP_HUGE_MASK || PMD_SHIFT;
      if (hugeShift !== PMD_SHIFT && hugeShift !== PUD_SHIFT) fail('EINVAL', `no ${2 ** hugeShift}-byte huge pages`);
      align = 2 ** hugeShift;
    } else if (flags & MAP_HUGE_MASK << MAP_HUGE_SHIFT) {
      fail('EINVAL', 'MAP_HUGE_* without MAP_HUGETLB');
    }
    const len = Math.ceil(length / align) * align;
    if (len > this.taskSize) fail('ENOMEM', 'length larger than the address space');
    if (!anon && offset / PAGE_SIZE + len / PAGE_SIZE > 2 ** 32) fail('EOVERFLOW', 'offset + length overflows the file');

    let start: number;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
      if (addr % align) fail('EINVAL', `MAP_FIXED address 0x${addr.toString(16)} is not aligned`);
      if (addr + len > this.taskSize) fail('ENOMEM', 'MAP_FIXED range ends above the user address space');
      if (addr < MMAP_MIN_ADDR) fail('EPERM', 'MAP_FIXED below mmap_min_addr');
      if (flags & MAP_FIXED_NOREPLACE && !this.vmas.isFree(addr, addr + len)) fail('EEXIST', 'MAP_FIXED_NOREPLACE range is in use');
      if (flags & MAP_FIXED) this.checkHugetlbBounds(addr, addr + len);
      start = addr;
    } else {
      // round_hint_to_min, then x86's arch_get_unmapped_area_topdown: the hint rounded down,
      // taken if free and below TASK_SIZE without crossing DEFAULT_MAP_WINDOW
      // (mmap_address_hint_valid); a hint above the window opens the 5-level space.
      const hint = Math.floor((addr && addr < MMAP_MIN_ADDR ? MMAP_MIN_ADDR : addr) / align) * align;
      const high = hint > DEFAULT_MAP_WINDOW;
      if (hint && hint + len <= this.taskSize && high === (hint + len > DEFAULT_MAP_WINDOW) && this.vmas.isFree(hint, hint + len)) start = hint;
      else {
        // __get_unmapped_area: a private anonymous mapping whose length is a multiple of 2 MiB,
        // asked for without a hint, is PMD aligned so that THPs can back it.
        const a = Math.max(align, anon && type === MAP_PRIVATE && addr === 0 && len % PMD_SIZE === 0 ? PMD_SIZE : PAGE_SIZE);
        const top = this.mmapBase + (high ? this.taskSize - DEFAULT_MAP_WINDOW : 0);
        start = this.vmas.findGapTopDown(len, MMAP_MIN_ADDR, top, a);
        if (start < 0) fail('ENOMEM', 'no free address range');
      }
    }

    // Validation is complete: from here on the call succeeds.
    if (flags & MAP_FIXED) this.munmapValidated(start, start + len);
    let vmFlags = protToVmFlags(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
    if (type === MAP_SHARED) vmFlags |= VM_SHARED | VM_MAYSHARE;
    if (hugeShift) vmFlags |= VM_HUGETLB;
    let backing = anon ? null : file;
    if (anon && type === MAP_SHARED) {
      backing = this.machine.fs.tmpfile();
      backing.truncate(len);
      backing.opens--; // held only by its mapping from here on
    }
    const pgoff = backing ? offset / PAGE_SIZE : start / PAGE_SIZE;
    const v = new Vma(start, start + len, vmFlags, pgoff, backing);
    v.hugeShift = hugeShift;
    this.insertVma(v);
    this.mergeVma(v);
    if (flags & MAP_POPULATE) populateRange(this, start, start + len, (vmFlags & (VM_WRITE | VM_SHARED)) === VM_WRITE);
    return start;
  }

  // ---- munmap ----

  munmap(addr: number, length: number): void {
    this.mmapLock('munmap');
    if (!Number.isSafeInteger(length) || length <= 0) fail('EINVAL', `bad length ${length}`);
    const end = this.checkUserRange(addr, length, 'munmap');
    this.checkHugetlbBounds(addr, end);
    this.munmapValidated(addr, end);
  }

  /** do_vmi_munmap after validation: split, one UNMAP invalidation, zap, free tables, drop VMAs. */
  munmapValidated(start: number, end: number): void {
    const list = this.isolateRange(start, end);
    if (list.length === 0) return;
    const s = list[0]!.start;
    const e = list[list.length - 1]!.end;
    splitBoundary(this, list[0]!, s);
    splitBoundary(this, list[list.length - 1]!, e);
    const range = this.invalidateStart('UNMAP', s, e);
    zapRange(this, s, e, this.gather);
    this.vmas.removeRun(list);
    for (const v of list) this.unlinkFile(v);
    this.pt.freeEmpty(s / PAGE_SIZE, e / PAGE_SIZE);
    this.invalidateEnd(range);
    if (this.machine.events.on.unmap) this.machine.events.emit({ type: 'unmap', mmId: this.id, start: s, end: e, reason: 'munmap' });
    this.gather.flush(this);
  }

  // ---- mprotect ----

  mprotect(addr: number, length: number, prot: number): void {
    this.mmapLock('mprotect');
    // do_mprotect_pkey's order: alignment (EINVAL), len 0 succeeds, an end that wraps (a
    // negative length, ENOMEM), prot (EINVAL), then the VMAs (ENOMEM for a hole or past TASK_SIZE).
    if (!Number.isSafeInteger(addr) || addr < 0 || !pageAligned(addr)) fail('EINVAL', `mprotect: address 0x${addr.toString(16)} is not page aligned`);
    if (length === 0) return;
    if (!Number.isSafeInteger(length) || length < 0) fail('ENOMEM', `mprotect: bad length ${length}`);
    checkProt(prot);
    const end = addr + pageAlignUp(length);
    if (end > this.taskSize || !this.fullyMapped(addr, end)) fail('ENOMEM', 'range is not fully mapped');
    const newAccess = protToVmFlags(prot);
    for (const v of this.vmas.overlapping(addr, end)) {
      if (newAccess & VM_WRITE && !(v.flags & VM_MAYWRITE)) fail('EACCES', `${v} may not become writable`);
    }
    this.checkHugetlbBounds(addr, end);
    for (let v of this.isolateRange(addr, end)) {
      const old = v.flags;
      const flags = (old & ~VM_ACCESS_FLAGS) | newAccess;
      if (flags === old) {
        this.mergeVma(v);
        continue;
      }
      v.flags = flags;
      this.changeProtection(v, old);
      v = this.mergeVma(v);
    }
    this.mergeTail(end);
  }

  /**
   * isolateRange splits the VMA across `end` even where the operation then changes nothing;
   * when its lower part was merged into its predecessor, the upper part is left split off.
   * Merge it back, so that no two mergeable neighbours remain (vma_merge's invariant).
   */
  mergeTail(end: number): void {
    const tail = this.vmas.lookup(end - 1);
    if (tail) this.mergeVma(tail);
  }

  /**
   * change_protection: removing write downgrades every writable entry; adding write to a
   * private mapping upgrades exclusive anonymous pages at once (can_change_pte_writable).
   * The PROTECTION_VMA invalidations are change_pud_range's: per P4D entry, one from the
   * first PUD entry that is not none to the end of the range, whether or not any PTE below
   * it is present; a hugetlb VMA gets one for all of it (hugetlb_change_protection).
   */
  private changeProtection(v: Vma, oldFlags: number): void {
    const s = v.start / PAGE_SIZE;
    const e = v.end / PAGE_SIZE;
    splitBoundary(this, v, v.start);
    splitBoundary(this, v, v.end);
    if (v.isHugetlb()) {
      const range = this.invalidateStart('PROTECTION_VMA', v.start, v.end);
      this.changeProtectionRange(v, oldFlags, s, e);
      this.invalidateEnd(range);
      return;
    }
    const P4D_PAGES = LEVEL_PAGES[3]!;
    for (let cs = s; cs < e; ) {
      const ce = Math.min(e, (Math.floor(cs / P4D_PAGES) + 1) * P4D_PAGES);
      const from = this.firstPudEntry(cs, ce);
      if (from >= 0) {
        const range = this.invalidateStart('PROTECTION_VMA', from * PAGE_SIZE, ce * PAGE_SIZE);
        this.changeProtectionRange(v, oldFlags, from, ce);
        this.invalidateEnd(range);
      }
      cs = ce;
    }
  }

  /** change_pud_range's start: the first vpn of [s, e) (within one P4D entry) whose PUD entry is not none, or -1. */
  private firstPudEntry(s: number, e: number): number {
    const pud = this.pt.tableAt(s, 2);
    if (!pud) return -1;
    const span = LEVEL_PAGES[2]!;
    const first = PageTable.index(s, 2);
    const last = PageTable.index(e - 1, 2);
    for (let i = first; i <= last; i++) {
      if (!pteNone(ptFlags(pud, i))) return i === first ? s : (Math.floor(s / (span * 512)) * 512 + i) * span;
    }
    return -1;
  }

  private changeProtectionRange(v: Vma, oldFlags: number, s: number, e: number): void {
    const removeWrite = (oldFlags & VM_WRITE) !== 0 && (v.flags & VM_WRITE) === 0;
    const addWrite = (oldFlags & VM_WRITE) === 0 && (v.flags & VM_WRITE) !== 0;
    // A shared (tmpfs) mapping needs no write notification, so its vm_page_prot carries write
    // and pte_modify makes every present entry writable; a private one upgrades only exclusive
    // anonymous pages (can_change_pte_writable / can_change_pmd_writable; hugetlb never).
    const shared = (v.flags & VM_SHARED) !== 0;
    const phys = this.machine.phys;
    for (const { node, first, last } of this.pt.tables(s, e)) {
      const level = node.level;
      for (let idx = first; idx <= last; idx++) {
        const flg = ptFlags(node, idx);
        const kind = entryKind(flg);
        if (removeWrite) {
          if (kind === K_PRESENT || kind === K_DEVICE_PRIVATE || kind === K_MIGRATION || kind === K_DEVICE_EXCLUSIVE) setPtFlags(node, idx, pteWrprotect(flg));
        } else if (addWrite && kind === K_PRESENT && !pteDevmap(flg)) {
          const pfn = ptVal(node, idx);
          if (shared) {
            if (!pteSpecial(flg)) setPtFlags(node, idx, pteMkwrite(flg));
          } else if ((level === 0 || (level === 1 && !v.isHugetlb())) && !phys.isZeroPfn(pfn) && phys.isAnon(pfn) &&
            phys.frames.flags[pfn]! & PG_anon_exclusive && totalMapcount(this, pfn) === 1) {
            setPtFlags(node, idx, pteMkwrite(flg));
          }
        }
      }
    }
  }

  /** unmap_mapping_range for one file VMA: zap its pages at file index >= fromIndex (truncate). */
  unmapMappingRange(v: Vma, fromIndex: number): void {
    const startIdx = Math.max(fromIndex, v.pgoff);
    const end = v.end;
    const start = v.start + (startIdx - v.pgoff) * PAGE_SIZE;
    if (start >= end) return;
    splitBoundary(this, v, start);
    const range = this.invalidateStart('CLEAR', start, end);
    zapRange(this, start, end, this.gather);
    this.invalidateEnd(range);
    this.gather.flush(this);
  }

  // ---- exit ----

  /**
   * exit_mmap: mmu_notifier_release first (interval subscriptions get one RELEASE
   * invalidation of everything, then whole-mm subscribers their release callback, and only
   * then are they dropped), then every VMA is unmapped under one UNMAP invalidation, page
   * tables freed.
   */
  exit(): void {
    this.mmapLock('exit');
    this.exiting = true;
    // The mm goes whatever its subscribers do: a callback that throws (a driver bug) has its
    // error rethrown once the teardown is complete.
    let error: unknown = null;
    const keep = (e: unknown): void => void (error ??= e);
    try {
      this.notifiers.release();
    } catch (e) {
      keep(e);
    }
    const all = [...this.vmas.all];
    if (all.length > 0) {
      let range: MmuNotifierRange | null = null;
      try {
        range = this.invalidateStart('UNMAP', 0, MMU_RANGE_END_ALL);
      } catch (e) {
        keep(e);
      }
      zapRange(this, 0, this.taskSize, this.gather);
      this.vmas.clear();
      for (const v of all) this.unlinkFile(v);
      this.pt.freeEmpty(0, this.taskSize / PAGE_SIZE);
      try {
        this.invalidateEnd(range);
      } catch (e) {
        keep(e);
      }
      if (this.machine.events.on.unmap) this.machine.events.emit({ type: 'unmap', mmId: this.id, start: 0, end: this.taskSize, reason: 'exit' });
      this.gather.flush(this);
    }
    this.dead = true;
    this.machine.forgetMm(this);
    if (error !== null) throw error;
  }

  /**
   * __oom_reap_task_mm: tear down the private memory of a dying mm without sleeping. Each
   * anonymous or private VMA is zapped under a NON-blockable UNMAP invalidation; a subscriber
   * that cannot act without sleeping refuses it, that VMA is skipped, and the call ends with
   * EAGAIN (the reaper tries again later) after reaping the others, as the kernel's does.
   */
  oomReap(): void {
    this.assertLive();
    let refused = 0;
    for (const v of [...this.vmas.all]) {
      if (v.flags & VM_SHARED && !v.isAnonymous()) continue;
      if (v.flags & VM_LOCKED_OR_SPECIAL || v.isHugetlb()) continue; // __oom_reap_task_mm skips VM_HUGETLB|VM_PFNMAP
      let range: MmuNotifierRange | null = null;
      this.machine.events.tally.invalidate('UNMAP');
      if (this.notifiers.hasSubscriptions || this.machine.events.on.invalidate) {
        range = { mm: this, start: v.start, end: v.end, event: 'UNMAP', flags: 0, owner: null };
        if (!this.notifiers.invalidateRangeStart(range)) {
          refused++;
          continue;
        }
      }
      splitBoundary(this, v, v.start);
      splitBoundary(this, v, v.end);
      zapRange(this, v.start, v.end, this.gather);
      this.invalidateEnd(range);
      if (this.machine.events.on.unmap) this.machine.events.emit({ type: 'unmap', mmId: this.id, start: v.start, end: v.end, reason: 'oom-reap' });
      this.gather.flush(this);
    }
    if (refused) fail('EAGAIN', `${refused} VMA(s) could not be reaped without sleeping`);
  }

  /** The VMA containing addr, or undefined. */
  findVma(addr: number): Vma | undefined {
    return this.vmas.lookup(addr);
  }
}

