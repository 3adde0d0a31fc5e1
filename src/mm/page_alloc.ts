// The page calls a device driver makes around a migration (mm/page_alloc.c, mm/mempolicy.c,
// include/linux/pagemap.h, include/linux/mm.h): allocate a system page or THP for a page
// coming back from device memory (alloc_page_vma, vma_alloc_folio), lock it (trylock_page,
// unlock_page), and take or drop references (get_page, put_page). Together with highmem.ts
// and zoneDevicePageInit they are everything a driver written against the public API needs
// to run migrate_vma's steps. Bad arguments are EINVAL and change nothing (the kernel would
// BUG or corrupt a count).

import { fail } from './errno.js';
import { HPAGE_PMD_ORDER } from './constants.js';
import type { Machine } from './machine.js';
import type { Vma } from './vma.js';

/** A frame holding a reference (allocated or taken into use), by its pfn or any page of its folio. */
function checkInUse(machine: Machine, pfn: number, what: string): number {
  const phys = machine.phys;
  const f = phys.frames;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= f.capacity) fail('EINVAL', `${what}: pfn ${pfn} does not exist`);
  if (pfn >= phys.ramFrames && !phys.pagemapOf(pfn)) fail('EINVAL', `${what}: pfn ${pfn} is not memory`);
  if (phys.isZeroPfn(pfn)) fail('EINVAL', `${what}: the zero page is not refcounted`);
  const head = f.compoundHead(pfn);
  if (f.refcount[head]! <= 0) fail('EINVAL', `${what}: page ${pfn} is free`);
  return head;
}

/**
 * alloc_page_vma(gfp, vma, addr) / vma_alloc_folio(gfp, order, vma, addr): a zeroed-on-read
 * system page (order 0) or a PMD-size folio (order HPAGE_PMD_ORDER) with one reference, not
 * locked; -1 when system memory has no free block of that size (the caller falls back or
 * fails with VM_FAULT_OOM). The VMA only places the page (NUMA policy, not modelled).
 */
export function allocPageVma(vma: Vma, addr: number, order = 0): number {
  const mm = vma.mm;
  if (!mm || mm.dead) fail('EINVAL', 'alloc_page_vma: the vma belongs to no live mm');
  if (!vma.contains(addr)) fail('EINVAL', `alloc_page_vma: 0x${addr.toString(16)} is outside ${vma}`);
  if (order !== 0 && order !== HPAGE_PMD_ORDER) fail('EINVAL', `vma_alloc_folio: order ${order} (0 or ${HPAGE_PMD_ORDER})`);
  return mm.machine.phys.tryAllocPages(order);
}

/** alloc_pages(gfp, order): like allocPageVma, for a page the driver keeps for itself (no VMA). */
export function allocPages(machine: Machine, order = 0): number {
  if (order !== 0 && order !== HPAGE_PMD_ORDER) fail('EINVAL', `alloc_pages: order ${order} (0 or ${HPAGE_PMD_ORDER})`);
  return machine.phys.tryAllocPages(order);
}

/** get_page: one more reference on the page's folio. */
export function getPage(machine: Machine, pfn: number): void {
  checkInUse(machine, pfn, 'get_page');
  machine.phys.getPage(pfn);
}

/** put_page: drop a reference; the last one frees the folio (a device page goes back to its driver's page_free). */
export function putPage(machine: Machine, pfn: number): void {
  checkInUse(machine, pfn, 'put_page');
  machine.phys.putPage(pfn);
}

/** trylock_page: lock the page's folio; false if it is already locked. */
export function trylockPage(machine: Machine, pfn: number): boolean {
  checkInUse(machine, pfn, 'trylock_page');
  return machine.phys.trylockPage(pfn);
}

/** unlock_page: EINVAL if the folio is not locked (the kernel BUGs). */
export function unlockPage(machine: Machine, pfn: number): void {
  checkInUse(machine, pfn, 'unlock_page');
  if (!machine.phys.isLocked(pfn)) fail('EINVAL', `unlock_page: page ${pfn} is not locked`);
  machine.phys.unlockPage(pfn);
}
