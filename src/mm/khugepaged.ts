// Collapse of 512 small anonymous pages into one THP (collapse_huge_page, as MADV_COLLAPSE
// runs it synchronously).

import { fail } from './errno.js';
import { HPAGE_PMD_ORDER, PAGE_SIZE, PMD_NR, PMD_SIZE } from './constants.js';
import type { Mm } from './mm.js';
import {
  E_DIRTY, E_WRITE, E_YOUNG, entryKind, K_NONE, K_PRESENT, K_TABLE, PageTable, pteNone, pteSpecial, ptFlags, ptKind, ptVal,
} from './pagetable.js';
import { addMapping, totalMapcount, zapEntry } from './memory.js';
import { PG_anon_exclusive } from './page.js';
import { VM_WRITE } from './vma.js';

/** Why the PMD range at `base` cannot be collapsed, or null. A range that is already one THP gives 'huge'. */
function collapseBlocker(mm: Mm, base: number): string | null {
  const vma = mm.vmas.lookup(base);
  if (!vma || base + PMD_SIZE > vma.end || !vma.isAnonymous() || vma.isHugetlb()) return 'not a whole anonymous PMD range';
  const vpn = base / PAGE_SIZE;
  const pmd = mm.pt.tableAt(vpn, 1);
  if (!pmd) return null;
  const pidx = PageTable.index(vpn, 1);
  const pkind = ptKind(pmd, pidx);
  if (pkind === K_NONE) return null;
  if (pkind !== K_TABLE) return pkind === K_PRESENT ? 'huge' : 'a non-present huge entry';
  const pte = pmd.child![pidx]!;
  const phys = mm.machine.phys;
  for (let i = 0; i < PMD_NR; i++) {
    const flg = ptFlags(pte, i);
    const kind = entryKind(flg);
    if (kind === K_NONE) continue;
    if (kind !== K_PRESENT) return 'a swap, migration or device entry';
    const pfn = ptVal(pte, i);
    if (pteSpecial(flg) || phys.isZeroPfn(pfn)) continue;
    if (!phys.isAnon(pfn) || phys.frames.order(phys.frames.compoundHead(pfn)) !== 0) return 'a page that is not a small anonymous page';
    if (phys.pagemapOf(pfn)) return 'a device page (ZONE_DEVICE memory is never collapsed)';
    if (totalMapcount(mm, pfn) !== 1 || phys.frames.refcount[pfn] !== 1 || phys.isLocked(pfn)) return 'a shared, pinned or locked page';
  }
  return null;
}

/** Collapse the 2 MiB range at `base` (PMD aligned) into a THP. EAGAIN if a page is in the way, ENOMEM if no THP is free. */
export function collapseHugePage(mm: Mm, base: number): void {
  const why = collapseBlocker(mm, base);
  if (why === 'huge') return;
  if (why) fail('EAGAIN', `cannot collapse 0x${base.toString(16)}: ${why}`);
  const phys = mm.machine.phys;
  const thp = phys.tryAllocPages(HPAGE_PMD_ORDER);
  if (thp < 0) fail('ENOMEM', 'no free THP');
  const vma = mm.vmas.lookup(base)!;
  const vpn = base / PAGE_SIZE;
  const pmd = mm.pt.ensureTable(vpn, 1)!;
  const pidx = PageTable.index(vpn, 1);
  phys.setAnon(thp);
  for (let i = 1; i < PMD_NR; i++) phys.frames.flags[thp + i]! |= PG_anon_exclusive;
  const range = mm.invalidateStart('CLEAR', base, base + PMD_SIZE);
  if (ptKind(pmd, pidx) === K_TABLE) {
    const pte = pmd.child![pidx]!;
    for (let i = 0; i < PMD_NR; i++) {
      if (pteNone(ptFlags(pte, i))) continue;
      const pfn = ptVal(pte, i);
      if (!phys.isZeroPfn(pfn)) phys.copyPage(thp + i, pfn);
      zapEntry(mm, pte, i, 0, vpn + i, mm.gather);
    }
    mm.pt.freeTable(pmd, pidx);
  }
  PageTable.set(pmd, pidx, K_PRESENT | E_YOUNG | E_DIRTY | (vma.flags & VM_WRITE ? E_WRITE : 0), thp);
  addMapping(mm, thp, vpn, 1);
  vma.anonVma = true;
  mm.invalidateEnd(range);
  mm.gather.flush(mm);
}
