// get_user_pages / pin_user_pages (mm/gup.c): fault the pages of a range in (a write fault
// for FOLL_WRITE), as the CPU would, and take a reference (FOLL_GET) or a pin (FOLL_PIN) on
// each. Device-private pages come back to system memory on the way (the fault path calls
// migrate_to_ram: device-private memory can never be pinned); with FOLL_LONGTERM,
// device-coherent pages are migrated out first (check_and_migrate_movable_pages), so that
// device memory is never pinned for long.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import type { Mm } from './mm.js';
import { accessAllowed, faultInPage, followPage } from './access.js';
import { migrateDeviceCoherentFolio } from './migrate_device.js';
import { pteSpecial, ptFlags, type PtSlot, ptVal } from './pagetable.js';
import { VM_IO, VM_PFNMAP } from './vma.js';

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

/** vm_normal_page is NULL for a special PTE (a remapped pfn or an I/O pfn of a mixed map): nothing to reference. */
function specialAt(mm: Mm, addr: number): boolean {
  mm.pt.lookup(addr / PAGE_SIZE, slot);
  return pteSpecial(ptFlags(slot.node, slot.idx)) && !mm.machine.phys.isZeroPfn(ptVal(slot.node, slot.idx));
}

export interface GupFlags {
  /** FOLL_WRITE */
  write?: boolean;
  /** FOLL_LONGTERM */
  longterm?: boolean;
  /** FOLL_PIN (pin_user_pages) rather than FOLL_GET */
  pin?: boolean;
}

/**
 * Returns the pfn of each page, referenced (or pinned: counted in phys.pincount, and holding
 * a reference); release with putUserPages / unpinUserPages. EINVAL for a bad address or
 * count, EFAULT for an address without a VMA allowing the access, EBUSY when a long-term pin
 * cannot move a device-coherent page out, ENOMEM, or WouldBlock (a page under migration):
 * on any error no page is left referenced (the kernel returns the pages it got so far).
 */
export function getUserPages(mm: Mm, addr: number, npages: number, flags: GupFlags = {}): number[] {
  mm.mmapLock('get_user_pages');
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE) fail('EINVAL', 'address must be page aligned');
  if (!Number.isSafeInteger(npages) || npages <= 0) fail('EINVAL', 'npages must be positive');
  const write = flags.write === true;
  for (let i = 0; i < npages; i++) {
    const vma = mm.vmas.lookup(addr + i * PAGE_SIZE);
    if (!vma || !accessAllowed(vma, write)) fail('EFAULT', `no ${write ? 'writable ' : ''}mapping at 0x${(addr + i * PAGE_SIZE).toString(16)}`);
    if (vma.flags & (VM_IO | VM_PFNMAP)) fail('EFAULT', `${vma} is VM_IO / VM_PFNMAP (check_vma_flags)`);
  }
  const machine = mm.machine;
  const phys = machine.phys;
  const out: number[] = [];
  try {
    for (let i = 0; i < npages; i++) {
      const a = addr + i * PAGE_SIZE;
      const vma = mm.vmas.lookup(a)!;
      let pfn = followPage(mm, a / PAGE_SIZE, write);
      if (pfn < 0) pfn = faultInPage(mm, vma, a, write, false);
      if (specialAt(mm, a)) fail('EFAULT', `0x${a.toString(16)} maps a pfn without a struct page`);
      if (flags.longterm && phys.pagemapOf(pfn)?.type === 'coherent') {
        if (!migrateDeviceCoherentFolio(machine, pfn)) fail('EBUSY', `device-coherent page ${pfn} could not be migrated out for a long-term pin`);
        pfn = followPage(mm, a / PAGE_SIZE, write);
        if (pfn < 0) pfn = faultInPage(mm, vma, a, write, false);
      }
      phys.getPage(pfn);
      const held = flags.pin ? phys.pincount : phys.gupcount;
      const head = phys.frames.compoundHead(pfn);
      held.set(head, (held.get(head) ?? 0) + 1);
      out.push(pfn);
    }
  } catch (e) {
    if (flags.pin) unpinUserPages(mm, out);
    else putUserPages(mm, out);
    throw e;
  }
  return out;
}

/** put_page for each page getUserPages returned: EINVAL (before anything is released) if a page was not got that often. */
export function putUserPages(mm: Mm, pfns: readonly number[]): void {
  release(mm, pfns, mm.machine.phys.gupcount, 'got (FOLL_GET)');
}

/** unpin_user_pages: EINVAL (before anything is released) if a page is not pinned that often. */
export function unpinUserPages(mm: Mm, pfns: readonly number[]): void {
  release(mm, pfns, mm.machine.phys.pincount, 'pinned');
}

/**
 * Drop references get_user_pages handed out, counted per folio in `held`. A page that was
 * never got, or is put once too often, would free a frame something still maps (the kernel
 * WARNs on the refcount underflow, or frees it under the mapping): refused as a whole.
 */
function release(mm: Mm, pfns: readonly number[], held: Map<number, number>, what: string): void {
  const phys = mm.machine.phys;
  const f = phys.frames;
  if (!Array.isArray(pfns)) fail('EINVAL', 'pfns must be an array of page frame numbers');
  const want = new Map<number, number>();
  for (const pfn of pfns) {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= f.capacity) fail('EINVAL', `no frame ${pfn}`);
    const head = f.compoundHead(pfn);
    want.set(head, (want.get(head) ?? 0) + 1);
  }
  for (const [head, n] of want) if ((held.get(head) ?? 0) < n) fail('EINVAL', `frame ${head} is not ${what} ${n} time(s)`);
  for (const pfn of pfns) {
    const head = f.compoundHead(pfn);
    const n = held.get(head)!;
    if (n === 1) held.delete(head);
    else held.set(head, n - 1);
    phys.putPage(pfn);
  }
}
