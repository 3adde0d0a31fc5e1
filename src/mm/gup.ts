// get_user_pages / pin_user_pages (mm/gup.c): fault the pages of a range in (a write fault
// for FOLL_WRITE), as the CPU would, and take a reference (GUP) or a pin (FOLL_PIN) on each.
// Device-private pages come back to system memory on the way (the fault path calls
// migrate_to_ram); with FOLL_LONGTERM, device-coherent pages are migrated out first
// (check_and_migrate_movable_pages), so that device memory is never pinned for long.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import type { Mm } from './mm.js';
import { accessAllowed, faultInPage, followPage } from './access.js';
import { MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, migratePfn, migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma } from './migrate.js';

export interface GupFlags {
  /** FOLL_WRITE */
  write?: boolean;
  /** FOLL_LONGTERM */
  longterm?: boolean;
  /** FOLL_PIN (pin_user_pages) rather than FOLL_GET */
  pin?: boolean;
}

/** Returns the pfn of each page, referenced (or pinned); release with putUserPages / unpinUserPages. */
export function getUserPages(mm: Mm, addr: number, npages: number, flags: GupFlags = {}): number[] {
  mm.assertLive();
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE) fail('EINVAL', 'address must be page aligned');
  if (!Number.isSafeInteger(npages) || npages <= 0) fail('EINVAL', 'npages must be positive');
  const write = flags.write === true;
  for (let i = 0; i < npages; i++) {
    const vma = mm.vmas.lookup(addr + i * PAGE_SIZE);
    if (!vma || !accessAllowed(vma, write)) fail('EFAULT', `no ${write ? 'writable ' : ''}mapping at 0x${(addr + i * PAGE_SIZE).toString(16)}`);
  }
  const phys = mm.machine.phys;
  const out: number[] = [];
  for (let i = 0; i < npages; i++) {
    const a = addr + i * PAGE_SIZE;
    const vma = mm.vmas.lookup(a)!;
    let pfn = followPage(mm, a / PAGE_SIZE, write);
    if (pfn < 0) pfn = faultInPage(mm, vma, a, write, false);
    const pgmap = phys.pagemapOf(pfn);
    if (flags.longterm && pgmap?.type === 'coherent') {
      migrateCoherentOut(mm, a, pgmap.owner);
      pfn = followPage(mm, a / PAGE_SIZE, write);
      if (pfn < 0) pfn = faultInPage(mm, vma, a, write, false);
      if (phys.pagemapOf(pfn)) fail('ENOMEM', 'could not migrate a device-coherent page out for a long-term pin');
    }
    phys.getPage(pfn);
    if (flags.pin) {
      const head = phys.frames.compoundHead(pfn);
      phys.pincount.set(head, (phys.pincount.get(head) ?? 0) + 1);
    }
    out.push(pfn);
  }
  return out;
}

function migrateCoherentOut(mm: Mm, addr: number, owner: unknown): void {
  const args = newMigrateVma(mm.vmas.lookup(addr)!, addr, addr + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, owner);
  migrateVmaSetup(args);
  const phys = mm.machine.phys;
  if (migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)) {
    const page = phys.tryAllocPages(0);
    if (page >= 0) {
      phys.trylockPage(page);
      phys.copyPage(page, migratePfnToPage(args.src[0]!));
      args.dst[0] = migratePfn(page);
    }
  }
  migrateVmaPages(args);
  migrateVmaFinalize(args);
}

/** put_page for each page getUserPages returned. */
export function putUserPages(mm: Mm, pfns: readonly number[]): void {
  for (const pfn of pfns) mm.machine.phys.putPage(pfn);
}

/** unpin_user_pages */
export function unpinUserPages(mm: Mm, pfns: readonly number[]): void {
  const phys = mm.machine.phys;
  for (const pfn of pfns) {
    const head = phys.frames.compoundHead(pfn);
    const n = phys.pincount.get(head) ?? 0;
    if (n <= 0) fail('EINVAL', `frame ${pfn} is not pinned`);
    if (n === 1) phys.pincount.delete(head);
    else phys.pincount.set(head, n - 1);
    phys.putPage(pfn);
  }
}
