// make_device_exclusive (mm/rmap.c, 6.15+ form): a device takes a page for atomic access.
// The page is faulted in writable, the CPU entry is replaced by a device-exclusive entry
// under an EXCLUSIVE invalidation carrying the device's owner (so its own notifier can tell),
// and the next CPU access restores the entry (fault.ts, remove_device_exclusive_entry),
// sending an EXCLUSIVE invalidation with no owner. The page stays mapped and referenced.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import type { Mm } from './mm.js';
import { faultInPage } from './access.js';
import { splitBoundary } from './memory.js';
import { K_DEVICE_EXCLUSIVE, K_PRESENT, KIND_MASK, type PtSlot } from './pagetable.js';
import { VM_WRITE } from './vma.js';

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

/** Returns the pfn of the page now held exclusively for the device. */
export function makeDeviceExclusive(mm: Mm, addr: number, owner: unknown): number {
  mm.assertLive();
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE) fail('EINVAL', 'address must be page aligned');
  const vma = mm.vmas.lookup(addr);
  if (!vma) fail('EFAULT', `no mapping at 0x${addr.toString(16)}`);
  if (!(vma.flags & VM_WRITE)) fail('EFAULT', 'a device-exclusive page must be writable (FOLL_WRITE)');
  if (!vma.isAnonymous() || vma.isHugetlb()) fail('EOPNOTSUPP', 'only anonymous, non-hugetlb pages can be made exclusive');
  // FOLL_SPLIT_PMD: a THP is mapped by PTEs first, then the page is faulted in for write.
  splitBoundary(mm, vma, addr);
  splitBoundary(mm, vma, addr + PAGE_SIZE);
  const pfn = faultInPage(mm, vma, addr, true, true);
  mm.pt.lookup(addr / PAGE_SIZE, slot);
  if (slot.level !== 0 || (slot.node.flg[slot.idx]! & KIND_MASK) !== K_PRESENT) fail('EBUSY', 'the page is not mapped by a PTE');
  const range = mm.invalidateStart('EXCLUSIVE', addr, addr + PAGE_SIZE, owner);
  const flg = slot.node.flg[slot.idx]!;
  slot.node.flg[slot.idx] = K_DEVICE_EXCLUSIVE | (flg & ~KIND_MASK);
  mm.invalidateEnd(range);
  return pfn;
}
