// make_device_exclusive (mm/rmap.c, 6.15+ form): a device takes a page for atomic access.
// The page is faulted in writable (get_user_page_vma_remote with FOLL_WRITE | FOLL_SPLIT_PMD),
// the CPU entry is replaced by a device-exclusive entry under an EXCLUSIVE invalidation
// carrying the device's owner (so its own notifier can tell), and the next CPU access restores
// the entry (fault.ts, remove_device_exclusive_entry), sending an EXCLUSIVE invalidation with
// no owner; fork restores it first too (fork.ts). The page stays mapped and referenced by the
// entry (mapcount and reference unchanged).

import { fail, WouldBlock } from './errno.js';
import { PAGE_SIZE, PMD_NR } from './constants.js';
import type { Mm } from './mm.js';
import { faultInPage } from './access.js';
import { splitHugePmd } from './memory.js';
import { entryWithKind, K_DEVICE_EXCLUSIVE, pteDirty, ptePresent, pteWrite, ptFlags, type PtSlot, ptVal, setPtFlags } from './pagetable.js';
import { VM_IO, VM_PFNMAP, VM_WRITE } from './vma.js';

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

/**
 * Returns the pfn of the page now held exclusively for the device. The address is rounded
 * down to its page. EFAULT without a writable mapping (or for VM_IO / VM_PFNMAP), EOPNOTSUPP
 * for hugetlb or a page that is not anonymous (a shared file page), WouldBlock while the page
 * is locked (a migration), ENOMEM or a SignalError if the fault fails.
 *
 * The kernel returns the folio locked and referenced and the driver unlocks and puts it once
 * its page table maps it; hmmsim returns the pfn with neither held.
 */
export function makeDeviceExclusive(mm: Mm, addr: number, owner: unknown): number {
  mm.mmapLock('make_device_exclusive');
  if (!Number.isSafeInteger(addr) || addr < 0) fail('EINVAL', 'bad address');
  addr -= addr % PAGE_SIZE;
  const vma = mm.vmas.lookup(addr);
  if (!vma) fail('EFAULT', `no mapping at 0x${addr.toString(16)}`);
  if (!(vma.flags & VM_WRITE) || vma.flags & (VM_IO | VM_PFNMAP)) fail('EFAULT', `${vma} cannot be written through (FOLL_WRITE)`);
  // The kernel faults a hugetlb page in before it refuses it; hmmsim refuses first.
  if (vma.isHugetlb()) fail('EOPNOTSUPP', 'hugetlb pages cannot be made exclusive');
  const phys = mm.machine.phys;
  const vpn = addr / PAGE_SIZE;
  let pfn = faultInPage(mm, vma, addr, true, true);
  // FOLL_SPLIT_PMD: a THP is mapped by PTEs first (split_huge_pmd, the folio stays whole).
  mm.pt.lookup(vpn, slot);
  if (slot.level === 1) {
    const base = vpn - (vpn % PMD_NR);
    const r = mm.invalidateStart('CLEAR', base * PAGE_SIZE, (base + PMD_NR) * PAGE_SIZE);
    splitHugePmd(mm, slot.node, slot.idx, base);
    mm.invalidateEnd(r);
    pfn = faultInPage(mm, vma, addr, true, true);
  }
  if (!phys.isAnon(pfn) || phys.isHugetlb(pfn)) fail('EOPNOTSUPP', 'only anonymous pages can be made exclusive');
  if (phys.isLocked(pfn)) throw new WouldBlock(`page ${pfn} is locked`, () => phys.waitUnlocked(pfn));
  mm.pt.lookup(vpn, slot);
  const flg = ptFlags(slot.node, slot.idx);
  if (slot.level !== 0 || !ptePresent(flg) || ptVal(slot.node, slot.idx) !== pfn || !pteWrite(flg)) {
    fail('EBUSY', 'the page is not mapped writable by a PTE');
  }
  const range = mm.invalidateStart('EXCLUSIVE', addr, addr + PAGE_SIZE, owner);
  if (pteDirty(flg)) phys.setDirty(pfn);
  setPtFlags(slot.node, slot.idx, entryWithKind(flg, K_DEVICE_EXCLUSIVE));
  mm.invalidateEnd(range);
  return pfn;
}
