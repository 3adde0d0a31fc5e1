// A per-page view of an address space, modelled on /proc/pid/pagemap (fs/proc/task_mmu.c:
// pagemap_pte_to_pme, pagemap_pmd_range): whether a page is present or swapped, which frame
// it maps, and the page-table bits a test or an example wants to show (write, dirty, the
// order of a huge leaf). Read-only: it changes nothing, not even the young bit.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import type { Mm } from './mm.js';
import {
  badKind, entryKind, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE,
  LEVEL_ORDER, LEVEL_PAGES, pteDirty, pteSpecial, pteWrite, ptFlags, type PtSlot, ptVal,
} from './pagetable.js';
import { totalMapcount } from './memory.js';

/** What the entry for a page holds. */
export type PagemapKind =
  | 'none' // no entry: the next access faults
  | 'anon' // an anonymous page
  | 'file' // a page-cache page (tmpfs, shared anonymous memory) or a driver's page
  | 'zero' // the shared zero page or the huge zero page
  | 'special' // a pfn mapping without a struct page
  | 'swap'
  | 'migration'
  | 'device-private'
  | 'device-exclusive'
  | 'hwpoison';

export interface PagemapEntry {
  /** PM_PRESENT: the CPU can access the page without a fault (a write may still fault). */
  present: boolean;
  /** PM_SWAP: a non-present entry that is not none (swap, migration, device-private, device-exclusive, hwpoison). */
  swapped: boolean;
  /** The frame the entry maps or names (for a huge leaf, the frame of this page within it); -1 for none and swap. */
  pfn: number;
  /** The swap slot of a swap entry, else -1. */
  swapSlot: number;
  /** The entry allows writes without a fault. */
  write: boolean;
  /** The entry's dirty bit. */
  dirty: boolean;
  kind: PagemapKind;
  /** PM_FILE: a page-cache (or driver) page rather than anonymous memory. */
  file: boolean;
  /** PM_MMAP_EXCLUSIVE: present and mapped exactly once. */
  exclusive: boolean;
  /** 0 for a PTE, 9 for a PMD leaf, 18 for a PUD leaf. */
  order: number;
}

/** The pagemap entry of the page containing addr. */
export function pagemap(mm: Mm, addr: number): PagemapEntry {
  mm.assertLive();
  if (!Number.isSafeInteger(addr) || addr < 0) fail('EINVAL', `bad address ${addr}`);
  const out: PagemapEntry = { present: false, swapped: false, pfn: -1, swapSlot: -1, write: false, dirty: false, kind: 'none', file: false, exclusive: false, order: 0 };
  if (addr >= mm.taskSize) return out;
  const vpn = Math.floor(addr / PAGE_SIZE);
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  mm.pt.lookup(vpn, s);
  const flg = ptFlags(s.node, s.idx);
  const val = ptVal(s.node, s.idx);
  const kind = entryKind(flg);
  if (kind === K_NONE) return out;
  out.order = LEVEL_ORDER[s.level]!;
  out.write = pteWrite(flg);
  out.dirty = pteDirty(flg);
  const pfn = s.level === 0 ? val : val + (vpn % LEVEL_PAGES[s.level]!);
  const phys = mm.machine.phys;
  switch (kind) {
    case K_PRESENT:
      out.present = true;
      out.pfn = pfn;
      if (phys.isZeroPfn(val)) out.kind = 'zero';
      else if (pteSpecial(flg)) out.kind = 'special';
      else {
        out.kind = phys.isAnon(val) ? 'anon' : 'file';
        out.file = out.kind === 'file';
        out.exclusive = totalMapcount(mm, pfn) === 1;
      }
      return out;
    case K_SWAP:
      out.swapped = true;
      out.swapSlot = val;
      out.kind = 'swap';
      return out;
    case K_MIGRATION:
    case K_DEVICE_PRIVATE:
    case K_DEVICE_EXCLUSIVE:
    case K_HWPOISON:
      out.swapped = true;
      out.pfn = pfn;
      out.kind = kind === K_MIGRATION ? 'migration' : kind === K_DEVICE_PRIVATE ? 'device-private' : kind === K_DEVICE_EXCLUSIVE ? 'device-exclusive' : 'hwpoison';
      return out;
    case K_BAD: // a corrupt entry (pmd_bad) reads as none
    case K_TABLE:
      return { ...out, write: false, dirty: false, order: 0 };
    default:
      return badKind(kind);
  }
}

/** Entries one pagemapRange call returns at most (4 GiB of address space); read larger ranges in pieces. */
export const PAGEMAP_RANGE_MAX = 2 ** 20;

/** The pagemap entries of every page of [start, start + npages * PAGE_SIZE). ENOMEM beyond PAGEMAP_RANGE_MAX entries. */
export function pagemapRange(mm: Mm, start: number, npages: number): PagemapEntry[] {
  if (!Number.isSafeInteger(npages) || npages < 0) fail('EINVAL', `bad page count ${npages}`);
  if (!Number.isSafeInteger(start) || start < 0) fail('EINVAL', `bad address ${start}`);
  if (npages > PAGEMAP_RANGE_MAX) fail('ENOMEM', `${npages} entries is more than one call returns (${PAGEMAP_RANGE_MAX})`);
  const out: PagemapEntry[] = [];
  for (let i = 0; i < npages; i++) out.push(pagemap(mm, start + i * PAGE_SIZE));
  return out;
}
