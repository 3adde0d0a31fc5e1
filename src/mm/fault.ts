// The CPU fault handler (handle_mm_fault and its helpers in mm/memory.c, mm/huge_memory.c,
// mm/hugetlb.c). Called for CPU accesses, get_user_pages and HMM's faults; returns a
// VM_FAULT_* code. Where the kernel would sleep (a migration entry, a locked page) it returns
// VM_FAULT_RETRY and says in the caller's FaultRetry which page it waits for.

import {
  badKind, E_DIRTY, E_SPECIAL, E_WRITE, E_YOUNG, entryKind, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON,
  K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE, PageTable, pteClearProtnone, pteMkaccessed, pteMkwriteDirty, pteMkyoung,
  ptePresent, pteProtnone, pteSpecial, pteWrite, ptFlags, ptKind, PtNode, ptVal, restoreExclusivePte, setPtFlags,
} from './pagetable.js';
import { addMapping, MM_SWAPENTS, removeMapping, splitHugePmd } from './memory.js';
import { PG_anon_exclusive, PG_dirty } from './page.js';
import { HPAGE_PMD_ORDER, PAGE_SHIFT, PAGE_SIZE, PMD_NR, PMD_SIZE, PUD_SHIFT } from './constants.js';
import { VM_HUGEPAGE, VM_NOHUGEPAGE, VM_SHARED, VM_WRITE, type Vma } from './vma.js';
import type { Mm } from './mm.js';
import type { FaultKind } from './events.js';
import { KernelError } from './errno.js';

export const FAULT_FLAG_WRITE = 0x1;
export const FAULT_FLAG_MKWRITE = 0x2;
export const FAULT_FLAG_ALLOW_RETRY = 0x4;
export const FAULT_FLAG_RETRY_NOWAIT = 0x8;
export const FAULT_FLAG_KILLABLE = 0x10;
export const FAULT_FLAG_TRIED = 0x20;
export const FAULT_FLAG_USER = 0x40;
export const FAULT_FLAG_REMOTE = 0x80;

export const VM_FAULT_OOM = 0x1;
export const VM_FAULT_SIGBUS = 0x2;
export const VM_FAULT_MAJOR = 0x4;
export const VM_FAULT_HWPOISON = 0x10;
export const VM_FAULT_SIGSEGV = 0x40;
export const VM_FAULT_NOPAGE = 0x100;
export const VM_FAULT_RETRY = 0x400;
export const VM_FAULT_FALLBACK = 0x800;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON | VM_FAULT_FALLBACK;

/** struct vm_fault, as handed to a device's migrate_to_ram. */
export interface VmFault {
  readonly mm: Mm;
  readonly vma: Vma;
  /** Page-aligned faulting address. */
  readonly address: number;
  readonly flags: number;
  /** The device page the entry referred to (its folio locked, with a reference held by the fault). */
  readonly page: number;
  /**
   * vmf->pte: true for a fault through a PTE; false for a device-private PMD
   * (do_huge_pmd_device_private), where `page` is the head of a PMD-size folio.
   */
  readonly pte: boolean;
}

function emit(mm: Mm, addr: number, flags: number, kind: FaultKind): void {
  mm.machine.events.tally.fault(kind, (flags & FAULT_FLAG_REMOTE) !== 0);
  if (mm.machine.events.on.fault) {
    mm.machine.events.emit({ type: 'fault', mmId: mm.id, addr, write: (flags & FAULT_FLAG_WRITE) !== 0, kind, remote: (flags & FAULT_FLAG_REMOTE) !== 0 });
  }
}

/**
 * What a fault that returned VM_FAULT_RETRY waits for: the page whose unlock ends the wait
 * (folio_wait_locked; migration_entry_wait waits for the page under migration), or -1 for
 * none. The caller owns it and may reuse it for every fault, as it does a PtSlot.
 */
export interface FaultRetry {
  pfn: number;
}

/** A FaultRetry that waits for nothing yet. */
export function newFaultRetry(): FaultRetry {
  return { pfn: -1 };
}

/** The wait a VM_FAULT_RETRY asked for, as a function that resolves when the fault may be retried. */
export function faultRetryWait(mm: Mm, retry: FaultRetry): () => Promise<void> {
  const pfn = retry.pfn;
  const phys = mm.machine.phys;
  return pfn < 0 ? () => Promise.resolve() : () => phys.waitUnlocked(pfn);
}

function waitFor(retry: FaultRetry | null, pfn: number): number {
  if (retry) retry.pfn = pfn;
  return VM_FAULT_RETRY;
}

/** Whether a THP may back the PMD around addr (thp_vma_allowable_order for anonymous memory). */
export function thpEligible(mm: Mm, vma: Vma, addr: number): boolean {
  const mode = mm.machine.config.thp;
  if (mode === 'never' || !vma.isAnonymous() || vma.isHugetlb() || vma.flags & VM_NOHUGEPAGE) return false;
  if (mode === 'madvise' && !(vma.flags & VM_HUGEPAGE)) return false;
  const base = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
  return base >= vma.start && base + PMD_SIZE <= vma.end;
}

/**
 * handle_mm_fault. The caller has checked that the access is allowed by the VMA. On
 * VM_FAULT_RETRY, `retry` (if given) says what to wait for before trying again.
 */
export function handleMmFault(mm: Mm, vma: Vma, address: number, flags: number, retry: FaultRetry | null = null): number {
  const addr = address - (address % PAGE_SIZE);
  const vpn = addr / PAGE_SIZE;
  if (retry) retry.pfn = -1;
  if (vma.isHugetlb()) return hugetlbFault(mm, vma, addr, flags, retry);
  const pmd = mm.pt.ensureTable(vpn, 1);
  if (!pmd) return VM_FAULT_SIGBUS; // a PUD leaf outside hugetlb: not modelled
  const pidx = PageTable.index(vpn, 1);
  const pkind = ptKind(pmd, pidx);
  if (pkind === K_NONE && thpEligible(mm, vma, addr)) {
    const r = doHugePmdAnonymousPage(mm, vma, addr, flags, pmd, pidx);
    if (r !== VM_FAULT_FALLBACK) return r;
  } else if (pkind === K_PRESENT) {
    const r = hugePmdFault(mm, vma, addr, flags, pmd, pidx);
    if (r !== VM_FAULT_FALLBACK) return r;
  } else if (pkind === K_MIGRATION) {
    emit(mm, addr, flags, 'migration-wait');
    return waitFor(retry, ptVal(pmd, pidx));
  } else if (pkind === K_DEVICE_PRIVATE) {
    return deviceFault(mm, vma, addr, flags, ptVal(pmd, pidx), false, retry);
  } else if (pkind === K_HWPOISON) {
    return VM_FAULT_HWPOISON;
  }
  const pte = mm.pt.ensureTable(vpn, 0)!;
  return handlePteFault(mm, vma, addr, flags, pte, vpn & 511, retry);
}

function handlePteFault(mm: Mm, vma: Vma, addr: number, flags: number, pte: PtNode, idx: number, retry: FaultRetry | null): number {
  const flg = ptFlags(pte, idx);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  const kind = entryKind(flg);
  switch (kind) {
    case K_NONE:
      if (vma.special) return doSpecialFault(mm, vma, addr, flags, pte, idx);
      return vma.file ? doFileFault(mm, vma, addr, flags, pte, idx) : doAnonymousPage(mm, vma, addr, flags, pte, idx);
    case K_SWAP:
      return doSwapPage(mm, vma, addr, flags, pte, idx);
    case K_MIGRATION:
      emit(mm, addr, flags, 'migration-wait');
      return waitFor(retry, ptVal(pte, idx));
    case K_DEVICE_PRIVATE:
      return deviceFault(mm, vma, addr, flags, ptVal(pte, idx), true, retry);
    case K_DEVICE_EXCLUSIVE:
      return removeDeviceExclusiveEntry(mm, addr, flags, pte, idx, retry);
    case K_HWPOISON:
      return VM_FAULT_HWPOISON;
    case K_PRESENT:
      if (pteProtnone(flg)) {
        setPtFlags(pte, idx, pteClearProtnone(flg));
        emit(mm, addr, flags, 'numa');
        return 0;
      }
      if (write && !pteWrite(flg)) return doWpPage(mm, vma, addr, flags, pte, idx);
      setPtFlags(pte, idx, pteMkaccessed(flg, write));
      emit(mm, addr, flags, 'spurious');
      return 0;
    case K_BAD:
    case K_TABLE:
      return VM_FAULT_SIGBUS;
    default:
      return badKind(kind);
  }
}

function newAnonPage(mm: Mm): number {
  const phys = mm.machine.phys;
  const pfn = phys.tryAllocPages(0);
  if (pfn >= 0) phys.setAnon(pfn);
  return pfn;
}

/** do_anonymous_page: the zero page for a read, a new zeroed page for a write. */
function doAnonymousPage(mm: Mm, vma: Vma, addr: number, flags: number, pte: PtNode, idx: number): number {
  if (!(flags & FAULT_FLAG_WRITE)) {
    PageTable.set(pte, idx, K_PRESENT | E_SPECIAL | E_YOUNG, mm.machine.phys.zeroPfn);
    emit(mm, addr, flags, 'zero');
    return 0;
  }
  const pfn = newAnonPage(mm);
  if (pfn < 0) return VM_FAULT_OOM;
  PageTable.set(pte, idx, K_PRESENT | E_YOUNG | E_DIRTY | (vma.flags & VM_WRITE ? E_WRITE : 0), pfn);
  addMapping(mm, pfn, addr / PAGE_SIZE, 0);
  vma.anonVma = true;
  emit(mm, addr, flags, 'anon');
  return 0;
}

/** do_wp_page: a write to a present read-only entry. */
function doWpPage(mm: Mm, vma: Vma, addr: number, flags: number, pte: PtNode, idx: number): number {
  const phys = mm.machine.phys;
  const flg = ptFlags(pte, idx);
  const pfn = ptVal(pte, idx);
  if (!(vma.flags & VM_WRITE)) return VM_FAULT_SIGSEGV;
  const zero = phys.isZeroPfn(pfn);
  if (pteSpecial(flg) && !zero) return VM_FAULT_SIGBUS;
  if (vma.flags & VM_SHARED && !zero) {
    // wp_page_shared: the page-cache page itself becomes writable.
    setPtFlags(pte, idx, pteMkwriteDirty(flg));
    phys.setDirty(pfn);
    emit(mm, addr, flags, 'reuse');
    return 0;
  }
  if (!zero && phys.isAnon(pfn)) {
    const f = phys.frames;
    const head = f.compoundHead(pfn);
    // wp_can_reuse_anon_folio: an exclusive page, or a small page nobody else references.
    if (f.flags[pfn]! & PG_anon_exclusive || (head === pfn && f.order(pfn) === 0 && f.refcount[pfn] === 1 && !phys.isLocked(pfn))) {
      f.flags[pfn]! |= PG_anon_exclusive;
      setPtFlags(pte, idx, pteMkwriteDirty(flg));
      emit(mm, addr, flags, 'reuse');
      return 0;
    }
  }
  return wpPageCopy(mm, vma, addr, flags, pte, idx, zero ? -1 : pfn, 'cow');
}

/** wp_page_copy (and do_cow_fault's copy): map a private copy of `src` (-1: a zeroed page) under a CLEAR invalidation. */
function wpPageCopy(mm: Mm, vma: Vma, addr: number, flags: number, pte: PtNode, idx: number, src: number, kind: FaultKind): number {
  const phys = mm.machine.phys;
  // The source is held (folio_get) while the copy is allocated: reclaim may run in the
  // allocation, and a page with a reference beyond its mappings is not taken.
  if (src >= 0) phys.getPage(src);
  const pfn = newAnonPage(mm);
  if (src >= 0) {
    if (pfn >= 0) phys.copyPage(pfn, src);
    phys.putPage(src);
  }
  if (pfn < 0) return VM_FAULT_OOM;
  const vpn = addr / PAGE_SIZE;
  const old = ptFlags(pte, idx);
  const present = entryKind(old) === K_PRESENT;
  const range = present ? mm.invalidateStart('CLEAR', addr, addr + PAGE_SIZE) : null;
  const oldPfn = ptVal(pte, idx);
  const hadPage = present && !pteSpecial(old) && !phys.isZeroPfn(oldPfn);
  if (hadPage) removeMapping(mm, oldPfn, vpn, 0);
  PageTable.set(pte, idx, K_PRESENT | E_WRITE | E_DIRTY | E_YOUNG, pfn);
  addMapping(mm, pfn, vpn, 0);
  vma.anonVma = true;
  mm.invalidateEnd(range);
  if (hadPage) phys.putPage(oldPfn);
  emit(mm, addr, flags, kind);
  return 0;
}

/** do_read_fault / do_cow_fault / do_shared_fault for a tmpfs-backed VMA. */
function doFileFault(mm: Mm, vma: Vma, addr: number, flags: number, pte: PtNode, idx: number): number {
  const file = vma.file!;
  const index = vma.pgoffOf(addr);
  if (index >= file.sizePages) return VM_FAULT_SIGBUS;
  const phys = mm.machine.phys;
  let pfn: number;
  try {
    pfn = file.getPage(index);
  } catch (e) {
    if (e instanceof KernelError && e.errno === 'ENOMEM') return VM_FAULT_OOM;
    throw e;
  }
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (write && !(vma.flags & VM_SHARED)) return wpPageCopy(mm, vma, addr, flags, pte, idx, pfn, 'file-cow');
  phys.getPage(pfn);
  const shared = (vma.flags & VM_SHARED) !== 0;
  const w = shared && vma.flags & VM_WRITE ? E_WRITE : 0;
  PageTable.set(pte, idx, K_PRESENT | E_YOUNG | w | (write ? E_DIRTY : 0), pfn);
  if (write) phys.setDirty(pfn);
  addMapping(mm, pfn, addr / PAGE_SIZE, 0);
  emit(mm, addr, flags, 'file');
  return 0;
}

/**
 * A device file's mapping (src/mm/special.ts): its vm_ops.fault maps the page (vmf_insert_mixed
 * / vmf_insert_pfn); without one a missing entry is SIGBUS. A write to the read-only entry of
 * a private mapping then COWs (do_wp_page).
 */
function doSpecialFault(mm: Mm, vma: Vma, addr: number, flags: number, pte: PtNode, idx: number): number {
  const ops = vma.special!;
  if (!ops.fault) return VM_FAULT_SIGBUS;
  const ret = ops.fault({ vma, address: addr, flags });
  if (ret & VM_FAULT_ERROR) return ret;
  const flg = ptFlags(pte, idx);
  if (!ptePresent(flg)) return VM_FAULT_SIGBUS; // the handler mapped nothing
  emit(mm, addr, flags, 'file');
  if (flags & FAULT_FLAG_WRITE && !pteWrite(flg)) return doWpPage(mm, vma, addr, flags, pte, idx);
  return 0;
}

/** do_swap_page for a swap entry. Every swap-in gets a page of its own (see docs/api.md). */
function doSwapPage(mm: Mm, vma: Vma, addr: number, flags: number, pte: PtNode, idx: number): number {
  const phys = mm.machine.phys;
  const pfn = newAnonPage(mm);
  if (pfn < 0) return VM_FAULT_OOM;
  const data = mm.machine.swap.takeData(ptVal(pte, idx));
  if (data >= 0) phys.data.giveSlot(pfn, data);
  phys.frames.flags[pfn]! |= PG_dirty;
  const write = (flags & FAULT_FLAG_WRITE) !== 0 && (vma.flags & VM_WRITE) !== 0;
  PageTable.set(pte, idx, K_PRESENT | E_YOUNG | (write ? E_WRITE | E_DIRTY : 0), pfn);
  mm.rss[MM_SWAPENTS]!--;
  addMapping(mm, pfn, addr / PAGE_SIZE, 0);
  emit(mm, addr, flags, 'swapin');
  return 0;
}

/**
 * do_swap_page for a device-private entry, do_huge_pmd_device_private for a device-private
 * PMD: the owner's migrate_to_ram brings the page (or the folio) back, with its folio locked
 * and referenced; if migrate_to_ram splits the folio, the lock and the reference are the
 * fault page's piece's afterwards.
 */
function deviceFault(mm: Mm, vma: Vma, addr: number, flags: number, pfn: number, pte: boolean, retry: FaultRetry | null): number {
  const phys = mm.machine.phys;
  const pgmap = phys.pagemapOf(pfn);
  const migrateToRam = pgmap?.type === 'private' ? pgmap.ops.migrateToRam : undefined;
  if (!pgmap || !migrateToRam) return VM_FAULT_SIGBUS;
  if (!phys.trylockPage(pfn)) return waitFor(retry, pfn);
  phys.getPage(pfn);
  emit(mm, addr, flags, 'device-private');
  let ret: number;
  try {
    ret = migrateToRam.call(pgmap.ops, { mm, vma, address: addr, flags, page: pfn, pte });
  } finally {
    phys.unlockPage(pfn);
    phys.putPage(pfn);
  }
  return ret;
}

/** remove_device_exclusive_entry: an EXCLUSIVE invalidation (owner null), then the original PTE comes back. */
function removeDeviceExclusiveEntry(mm: Mm, addr: number, flags: number, pte: PtNode, idx: number, retry: FaultRetry | null): number {
  const phys = mm.machine.phys;
  const pfn = ptVal(pte, idx);
  if (phys.isLocked(pfn)) return waitFor(retry, pfn);
  const range = mm.invalidateStart('EXCLUSIVE', addr, addr + PAGE_SIZE, null);
  setPtFlags(pte, idx, restoreExclusivePte(ptFlags(pte, idx)));
  mm.invalidateEnd(range);
  emit(mm, addr, flags, 'device-exclusive');
  return 0;
}

/** do_huge_pmd_anonymous_page: the huge zero page for a read, a new THP for a write. */
function doHugePmdAnonymousPage(mm: Mm, vma: Vma, addr: number, flags: number, pmd: PtNode, pidx: number): number {
  const phys = mm.machine.phys;
  const base = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
  if (!(flags & FAULT_FLAG_WRITE)) {
    const zero = phys.hugeZeroPfn();
    if (zero < 0) return VM_FAULT_FALLBACK;
    PageTable.set(pmd, pidx, K_PRESENT | E_SPECIAL | E_YOUNG, zero);
    emit(mm, addr, flags, 'huge-zero');
    return 0;
  }
  const pfn = phys.tryAllocPages(HPAGE_PMD_ORDER);
  if (pfn < 0) return VM_FAULT_FALLBACK;
  phys.setAnon(pfn);
  for (let i = 1; i < PMD_NR; i++) phys.frames.flags[pfn + i]! |= PG_anon_exclusive;
  PageTable.set(pmd, pidx, K_PRESENT | E_WRITE | E_DIRTY | E_YOUNG, pfn);
  addMapping(mm, pfn, base / PAGE_SIZE, 1);
  vma.anonVma = true;
  emit(mm, addr, flags, 'thp');
  return 0;
}

/** A fault on a present huge PMD: write-protected THP (reuse, or split and COW at 4 KiB), huge zero page (split). */
function hugePmdFault(mm: Mm, vma: Vma, addr: number, flags: number, pmd: PtNode, pidx: number): number {
  const phys = mm.machine.phys;
  const flg = ptFlags(pmd, pidx);
  const pfn = ptVal(pmd, pidx);
  const base = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
  if (pteProtnone(flg)) {
    setPtFlags(pmd, pidx, pteClearProtnone(flg));
    emit(mm, addr, flags, 'numa');
    return 0;
  }
  if (!(flags & FAULT_FLAG_WRITE) || pteWrite(flg)) {
    setPtFlags(pmd, pidx, pteMkaccessed(flg, (flags & FAULT_FLAG_WRITE) !== 0));
    emit(mm, addr, flags, 'spurious');
    return 0;
  }
  if (!(vma.flags & VM_WRITE)) return VM_FAULT_SIGSEGV;
  // do_huge_pmd_wp_page
  if (!phys.isZeroPfn(pfn) && phys.isAnon(pfn)) {
    const f = phys.frames;
    if (f.flags[pfn]! & PG_anon_exclusive || f.refcount[pfn] === 1) {
      for (let i = 0; i < PMD_NR; i++) f.flags[pfn + i]! |= PG_anon_exclusive;
      setPtFlags(pmd, pidx, pteMkwriteDirty(flg));
      emit(mm, addr, flags, 'reuse');
      return 0;
    }
  }
  const range = mm.invalidateStart('CLEAR', base, base + PMD_SIZE);
  splitHugePmd(mm, pmd, pidx, base / PAGE_SIZE);
  mm.invalidateEnd(range);
  return VM_FAULT_FALLBACK;
}

/** hugetlb_fault: a huge page from the pool (the buddy allocator here) on first touch; COW after fork. */
function hugetlbFault(mm: Mm, vma: Vma, addr: number, flags: number, retry: FaultRetry | null): number {
  const phys = mm.machine.phys;
  const level = vma.hugeShift === PUD_SHIFT ? 2 : 1;
  const size = 2 ** vma.hugeShift;
  const base = Math.floor(addr / size) * size;
  const vpn = base / PAGE_SIZE;
  const node = mm.pt.ensureTable(vpn, level)!;
  const idx = PageTable.index(vpn, level);
  const flg = ptFlags(node, idx);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  const order = vma.hugeShift - PAGE_SHIFT;
  switch (entryKind(flg)) {
    case K_NONE: {
      const pfn = phys.tryAllocPages(order);
      if (pfn < 0) return VM_FAULT_SIGBUS; // no huge page in the pool
      phys.markHugetlb(pfn);
      phys.setAnon(pfn);
      PageTable.set(node, idx, K_PRESENT | E_YOUNG | (write ? E_WRITE | E_DIRTY : 0), pfn);
      addMapping(mm, pfn, vpn, level);
      vma.anonVma = true;
      emit(mm, addr, flags, 'hugetlb');
      return 0;
    }
    case K_MIGRATION:
      return waitFor(retry, ptVal(node, idx));
    case K_PRESENT: {
      if (!write || pteWrite(flg)) {
        setPtFlags(node, idx, pteMkyoung(flg));
        return 0;
      }
      const pfn = ptVal(node, idx);
      const f = phys.frames;
      if (f.flags[pfn]! & PG_anon_exclusive || f.refcount[pfn] === 1) {
        f.flags[pfn]! |= PG_anon_exclusive;
        setPtFlags(node, idx, pteMkwriteDirty(flg));
        emit(mm, addr, flags, 'reuse');
        return 0;
      }
      // hugetlb_wp: copy the whole huge page.
      const copy = phys.tryAllocPages(order);
      if (copy < 0) return VM_FAULT_SIGBUS;
      phys.markHugetlb(copy);
      phys.setAnon(copy);
      for (let i = 0; i < 1 << order; i++) if (phys.data.hasData(pfn + i)) phys.copyPage(copy + i, pfn + i);
      const range = mm.invalidateStart('CLEAR', base, base + size);
      removeMapping(mm, pfn, vpn, level);
      PageTable.set(node, idx, K_PRESENT | E_YOUNG | E_WRITE | E_DIRTY, copy);
      addMapping(mm, copy, vpn, level);
      mm.invalidateEnd(range);
      phys.putPage(pfn);
      emit(mm, addr, flags, 'cow');
      return 0;
    }
    default:
      return VM_FAULT_SIGBUS;
  }
}
