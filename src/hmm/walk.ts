// The one page-table walk behind every HMM snapshot and fault (walk_page_range with HMM's
// callbacks), and the two per-API policies on top of it.
//
// PageWalker visits [start, end) in address order. It finds the lowest existing entry for an
// address, classifies it into a CpuEntry (none/hole, present with its write, zero-page,
// special, protnone and devmap bits, swap, migration, device-private with its owner,
// device-exclusive, hwpoison, bad) and hands it to the policy: one call per PTE (`pte`, with
// the end of its page-table chunk, as the kernel's pmd callback passes it) and one call per
// higher-level entry or hole (`span`: a huge PMD/PUD leaf, a hugetlb page, a non-present huge
// entry, a missing table). Across VMAs (mainline), gaps go to `noVma` and each VMA first to
// `testVma`. Nothing is allocated per page: one CpuEntry is reused, entries are read straight
// from the typed arrays of the page-table nodes.
//
// A policy returns 0 to go on, or a code that stops the walk: a negative errno (-EFAULT,
// -EPERM), RESTART (the kernel's "fault done, walk again from `last`": -EAGAIN in 4.17,
// -EBUSY in mainline) or SLEEP (the kernel would sleep here, on a page lock or a migration
// entry: the policy has stored what to wait for in `wait`, and `last` where to resume).
//
// PolicyMainline (walk-mainline.ts) is hmm_range_fault's walk (fixed HMM_PFN_* bits,
// dev_private_owner, per-VMA test, orders); the 4.17 layer brings its own (v417/walk.ts,
// hmm_vma_walk_pmd/hole/pte with need_fault in the driver's encoding). Their differences from
// the kernel are listed in docs/api.md.

import { ERRNO, type Errno } from '../mm/errno.js';
import { PAGE_SIZE, PUD_SHIFT } from '../mm/constants.js';
import type { Mm } from '../mm/mm.js';
import {
  badKind, entryKind, isTableEntry, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP,
  K_TABLE, LEVEL_PAGES, PageTable, type PtNode, pteDevmap, pteProtnone, pteSpecial, pteWrite, ptFlags, ptVal,
} from '../mm/pagetable.js';
import type { Vma } from '../mm/vma.js';

// ---- classification ----

export const CE_NONE = 0; // pte_none, pmd_none, a missing directory
export const CE_PRESENT = 1;
export const CE_SWAP = 2; // a regular swap entry
export const CE_MIGRATION = 3;
export const CE_DEVICE_PRIVATE = 4;
export const CE_DEVICE_EXCLUSIVE = 5;
export const CE_HWPOISON = 6; // hwpoison and other special swap entries
export const CE_BAD = 7; // pmd_bad

/** What the CPU page table holds for an address (reused for every entry of a walk). */
export class CpuEntry {
  kind = CE_NONE;
  /** Level of the entry: 0 PTE, 1 PMD, 2 PUD; for a hole, the level of the none entry. */
  level = 0;
  /**
   * For CE_NONE at the hugetlb level of a hugetlb VMA: false (an empty huge entry in an
   * existing table, the kernel's hugetlb_entry); true for every other hole (pte_hole).
   */
  hole = true;
  /** Frame at the first address of the visit (the entry's pfn plus the offset into a huge leaf). */
  pfn = 0;
  write = false;
  /** The shared zero page or the huge zero page. */
  zero = false;
  /** Present without a struct page (a pfnmap PTE) and not a zero page. */
  special = false;
  /** NUMA hinting: present but inaccessible. */
  protnone = false;
  /** Maps ZONE_DEVICE memory the CPU can address (device-coherent). */
  devmap = false;
  /** For CE_DEVICE_PRIVATE: the owner of the page's dev_pagemap. */
  owner: unknown = null;
}

/** Stop codes besides negative errnos. */
export const WALK_RESTART = 1;
export const WALK_SLEEP = 2;
/** testVma: skip this VMA (its entries were filled by the policy); distinct from the stop codes. */
export const WALK_SKIP = 3;

export const EFAULT = -ERRNO.EFAULT;

/** The errno name of a positive errno number (for turning a walk's -errno into a KernelError). */
export function errnoName(n: number): Errno {
  for (const k of Object.keys(ERRNO) as Errno[]) if (ERRNO[k] === n) return k;
  throw new Error(`unknown errno ${n}`);
}
export const EPERM = -ERRNO.EPERM;

export interface WalkOps {
  /** A VMA about to be walked over [start, end): 0 walk it, WALK_SKIP skip it, < 0 stop. */
  testVma(vma: Vma, start: number, end: number): number;
  /** [start, end) lies in no VMA. */
  noVma(start: number, end: number): number;
  /** One entry at level >= 1, or a hole, covering [start, end). */
  span(vma: Vma, start: number, end: number, e: CpuEntry): number;
  /** One PTE at addr; chunkEnd is the end of its PTE table or of the walk, whichever is first. */
  pte(vma: Vma, addr: number, chunkEnd: number, e: CpuEntry): number;
  /**
   * Optional: the PTEs of one table from entry idx (at addr) up to chunkEnd, in one loop over
   * the table's arrays (hmm_vma_walk_pmd's loop), for the entries whose outcome needs no
   * CpuEntry; returns the address of the first entry it left to `pte` (chunkEnd when none).
   */
  ptes?(node: PtNode, idx: number, addr: number, chunkEnd: number): number;
}

export class PageWalker {
  readonly e = new CpuEntry();
  constructor(readonly mm: Mm) {}

  private classify(flg: number, val: number, level: number, offset: number): void {
    const e = this.e;
    const phys = this.mm.machine.phys;
    e.level = level;
    e.hole = false;
    e.write = pteWrite(flg);
    e.protnone = pteProtnone(flg);
    e.devmap = pteDevmap(flg);
    e.zero = false;
    e.special = false;
    e.owner = null;
    e.pfn = val + offset;
    const kind = entryKind(flg);
    switch (kind) {
      case K_NONE:
        e.kind = CE_NONE;
        e.pfn = 0;
        break;
      case K_PRESENT:
        e.kind = CE_PRESENT;
        e.zero = phys.isZeroPfn(val);
        e.special = pteSpecial(flg) && !e.zero;
        break;
      case K_SWAP:
        e.kind = CE_SWAP;
        e.pfn = 0;
        break;
      case K_MIGRATION:
        e.kind = CE_MIGRATION;
        break;
      case K_DEVICE_PRIVATE:
        e.kind = CE_DEVICE_PRIVATE;
        e.owner = phys.pagemapOf(val)?.owner ?? null;
        break;
      case K_DEVICE_EXCLUSIVE:
        e.kind = CE_DEVICE_EXCLUSIVE;
        break;
      case K_HWPOISON:
        e.kind = CE_HWPOISON;
        break;
      case K_BAD:
      case K_TABLE: // never handed to classify
        e.kind = CE_BAD;
        break;
      default:
        badKind(kind);
    }
  }

  /** walk_page_range over [start, end) of one VMA (the range must lie inside it). */
  walkVma(vma: Vma, start: number, end: number, ops: WalkOps): number {
    const pt = this.mm.pt;
    const e = this.e;
    const hugeLevel = vma.isHugetlb() ? (vma.hugeShift === PUD_SHIFT ? 2 : 1) : 0;
    let addr = start;
    while (addr < end) {
      const vpn = addr / PAGE_SIZE;
      let node = pt.root;
      let idx = PageTable.index(vpn, node.level);
      while (node.level > 0 && isTableEntry(ptFlags(node, idx))) {
        node = node.child![idx]!;
        idx = PageTable.index(vpn, node.level);
      }
      if (node.level === 0) {
        const chunkEnd = Math.min(end, (vpn - idx + 512) * PAGE_SIZE);
        let i = idx;
        if (ops.ptes) {
          const to = ops.ptes(node, idx, addr, chunkEnd);
          i += (to - addr) / PAGE_SIZE;
          addr = to;
        }
        for (; addr < chunkEnd; addr += PAGE_SIZE, i++) {
          this.classify(ptFlags(node, i), ptVal(node, i), 0, 0);
          const r = ops.pte(vma, addr, chunkEnd, e);
          if (r !== 0) return r;
        }
        continue;
      }
      const level = node.level;
      const span = LEVEL_PAGES[level]!;
      const base = vpn - (vpn % span);
      const spanEnd = Math.min(end, (base + span) * PAGE_SIZE);
      this.classify(ptFlags(node, idx), ptVal(node, idx), level, vpn - base);
      if (e.kind === CE_NONE) e.hole = hugeLevel === 0 || level > hugeLevel;
      const r = ops.span(vma, addr, spanEnd, e);
      if (r !== 0) return r;
      addr = spanEnd;
    }
    return 0;
  }

  /** walk_page_range across VMAs, with test_walk per VMA and pte_hole for gaps. */
  walkRange(start: number, end: number, ops: WalkOps): number {
    const vmas = this.mm.vmas;
    let addr = start;
    while (addr < end) {
      const vma = vmas.findVma(addr);
      if (!vma || vma.start >= end) return ops.noVma(addr, end);
      if (vma.start > addr) {
        const r = ops.noVma(addr, vma.start);
        if (r !== 0) return r;
        addr = vma.start;
      }
      const vend = Math.min(end, vma.end);
      const t = ops.testVma(vma, addr, vend);
      if (t < 0) return t;
      if (t !== 0 && t !== WALK_SKIP) throw new Error(`testVma returned ${t}: 0, WALK_SKIP or a negative errno`);
      if (t === 0) {
        const r = this.walkVma(vma, addr, vend, ops);
        if (r !== 0) return r;
      }
      addr = vend;
    }
    return 0;
  }
}

/** Where a policy would sleep: a page lock (migration entry, locked page) to wait for. */
export function pageUnlockWait(mm: Mm, pfn: number): () => Promise<void> {
  const phys = mm.machine.phys;
  return () => phys.waitUnlocked(pfn);
}

/** need_fault results (HMM_NEED_FAULT, HMM_NEED_WRITE_FAULT). */
export const NEED_FAULT = 1;
export const NEED_WRITE_FAULT = 2;
export const NEED_ALL = NEED_FAULT | NEED_WRITE_FAULT;
