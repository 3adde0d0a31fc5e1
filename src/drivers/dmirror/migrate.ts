// The driver's side of migration (lib/test_hmm.c): MIGRATE_TO_DEV and MIGRATE_TO_SYS over
// PMD-size windows of one VMA at a time, and migrate_to_ram, the CPU fault on one of the
// device's private pages. The migration core is src/mm/migrate.ts (migrate_vma_setup, _pages,
// _finalize); the driver allocates and fills the destination pages between setup and pages,
// and keeps its device page table in step.
//
// Huge pages move whole (MIGRATE_VMA_SELECT_COMPOUND): a THP collected as one
// MIGRATE_PFN_COMPOUND entry gets a 2 MiB device folio, and a device folio coming back a THP.
// When that allocation fails (HMM_DMIRROR_FLAG_FAIL_ALLOC fails the next one on purpose) the
// driver gives 512 small pages instead, and the core splits the folio.

import { fail, KernelError } from '../../mm/errno.js';
import { PAGE_SIZE, PMD_NR } from '../../mm/constants.js';
import type { VmFault } from '../../mm/fault.js';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS } from '../../mm/fault.js';
import {
  MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
  newMigrateVma, type MigrateVma,
} from '../../mm/migrate.js';
import type { Process } from '../../mm/process.js';
import { VM_READ } from '../../mm/vma.js';
import type { DmirrorDevice } from './device.js';
import { Dmirror, type DmirrorCtx } from './mirror.js';
import { HMM_DMIRROR_FLAG_FAIL_ALLOC, type HmmDmirrorCmd } from './uapi.js';

/** Pages per migrate_vma window (PTRS_PER_PTE: one PMD range, so a THP can move whole). */
export const DMIRROR_MIGRATE_WINDOW_PAGES = PMD_NR;

/** The VMA holding addr and the end of the migration window starting there; EINVAL without a readable VMA. */
function window(dmirror: Dmirror, addr: number, end: number): { vma: NonNullable<ReturnType<Dmirror['mm']['findVma']>>; next: number } {
  const vma = dmirror.mm.findVma(addr);
  if (!vma || !(vma.flags & VM_READ)) fail('EINVAL', `no readable mapping at 0x${addr.toString(16)}`);
  return { vma, next: Math.min(end, addr + DMIRROR_MIGRATE_WINDOW_PAGES * PAGE_SIZE, vma.end) };
}

/** HMM_DMIRROR_FLAG_FAIL_ALLOC: the next allocation fails, once. */
function failAllocOnce(dmirror: Dmirror): boolean {
  if (!(dmirror.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC)) return false;
  dmirror.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
  return true;
}

/**
 * dmirror_migrate_alloc_and_copy: a device page for every collected page, a 2 MiB device
 * folio for a compound entry, filled with its data (or zeroed for an empty one). A failed
 * folio allocation falls back to small pages, one per page of the entry.
 */
function allocAndCopy(args: MigrateVma, dmirror: Dmirror): void {
  const device = dmirror.device;
  const phys = dmirror.mm.machine.phys;
  const write = (s: number): number => (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
  for (let i = 0; i < args.npages; ) {
    const s = args.src[i]!;
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) {
      i++;
      continue;
    }
    const large = migratePfnHas(s, MIGRATE_PFN_COMPOUND);
    // spage is -1 for an unallocated (pte_none) or read-only zero page.
    const spage = migratePfnToPage(s);
    if (spage >= 0 && phys.pagemapOf(spage)) {
      i++; // already device memory: the kernel WARNs and skips it
      continue;
    }
    const dpage = failAllocOnce(dmirror) ? -1 : device.allocPage(large);
    if (dpage < 0) {
      if (!large) {
        i++;
        continue;
      }
      // Try with small pages: one per page of the (would-be) folio.
      for (let k = 0; k < PMD_NR && i < args.npages; k++, i++) {
        const d = device.allocPage(false);
        if (d < 0) continue;
        phys.zoneDeviceData.set(d, dmirror);
        args.dst[i] = migratePfn(d) + write(s);
        if (spage >= 0) phys.copyPage(d, spage + k);
        else phys.clearPage(d);
      }
      continue;
    }
    // The kernel keeps the owning mirror in the page's zone_device_data (through its backing page).
    phys.zoneDeviceData.set(dpage, dmirror);
    args.dst[i] = migratePfn(dpage) + write(s) + (large ? MIGRATE_PFN_COMPOUND : 0);
    const n = large ? PMD_NR : 1;
    for (let k = 0; k < n; k++) {
      if (spage >= 0) phys.copyPage(dpage + k, spage + k);
      else phys.clearPage(dpage + k);
    }
    i += n;
  }
}

/** dmirror_migrate_finalize_and_map: map the pages that moved in the device page table, each page of a folio. */
function finalizeAndMap(args: MigrateVma, dmirror: Dmirror): void {
  dmirror.lock();
  try {
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      const d = args.dst[i]!;
      const dpage = migratePfnToPage(d);
      if (dpage < 0) continue;
      const n = migratePfnHas(d, MIGRATE_PFN_COMPOUND) ? PMD_NR : 1;
      const write = migratePfnHas(d, MIGRATE_PFN_WRITE);
      for (let k = 0; k < n; k++) dmirror.store(args.start + (i + k) * PAGE_SIZE, { pfn: dpage + k, write, atomic: false });
    }
  } finally {
    dmirror.unlock();
  }
}

/**
 * HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device): migrate system pages (and empty
 * addresses of anonymous VMAs), THPs whole, into device memory, then read the whole range
 * back through the device page table: any page that did not end up there makes the command
 * fail with ENOENT.
 */
export async function dmirrorMigrateToDevice(dmirror: Dmirror, cmd: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
  if (dmirror.mm.dead) fail('EINVAL', 'the mirrored process has exited');
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  for (let addr = cmd.addr; addr < end; ) {
    const { vma, next } = window(dmirror, addr, end);
    const args = newMigrateVma(vma, addr, next, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND, dmirror.device);
    migrateVmaSetup(args);
    allocAndCopy(args, dmirror);
    migrateVmaPages(args);
    finalizeAndMap(args, dmirror);
    migrateVmaFinalize(args);
    addr = next;
    await ctx.yield?.('dmirror: migrate window');
  }
  await dmirror.readBack(cmd, current, ctx);
}

/**
 * dmirror_devmem_fault_alloc_and_copy: a system page for every collected device page, a THP
 * for a device folio (small pages if that allocation fails), filled from it; the device's
 * entries for the addresses go (the pages are leaving device memory). Returns false if
 * system memory ran out (the kernel's VM_FAULT_OOM; the pages not given one stay).
 */
function allocAndCopyToSystem(args: MigrateVma, dmirror: Dmirror | undefined): boolean {
  const phys = args.vma.mm!.machine.phys;
  for (let i = 0; i < args.npages; ) {
    const s = args.src[i]!;
    const spage = migratePfnToPage(s);
    if (spage < 0 || !migratePfnHas(s, MIGRATE_PFN_MIGRATE) || !phys.pagemapOf(spage)) {
      i++; // nothing to move (not device memory: the kernel WARNs and skips it)
      continue;
    }
    const order = phys.frames.order(spage);
    const write = migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0;
    const failed = dmirror !== undefined && failAllocOnce(dmirror);
    const dpage = failed ? -1 : phys.tryAllocPages(order);
    if (dpage < 0 && order === 0) return false;
    if (dpage >= 0) {
      phys.trylockPage(dpage);
      args.dst[i] = migratePfn(dpage) + write + (order > 0 ? MIGRATE_PFN_COMPOUND : 0);
    }
    for (let k = 0; k < 1 << order; k++) {
      let dst: number;
      if (dpage < 0) {
        // Try with smaller pages if the large allocation failed.
        dst = phys.tryAllocPages(0);
        if (dst < 0) {
          for (let j = 0; j < k; j++) {
            const fpage = migratePfnToPage(args.dst[i + j]!);
            phys.unlockPage(fpage);
            phys.putPage(fpage);
          }
          for (let j = 0; j < 1 << order; j++) args.dst[i + j] = 0;
          return false;
        }
        phys.trylockPage(dst);
        args.dst[i + k] = migratePfn(dst) + write;
      } else {
        dst = dpage + k;
      }
      dmirror?.erase(args.start + (i + k) * PAGE_SIZE);
      phys.copyPage(dst, spage + k);
    }
    i += 1 << order;
  }
  return true;
}

/** dmirror_successful_migrated_pages */
function migratedPages(args: MigrateVma): number {
  let n = 0;
  for (let i = 0; i < args.npages; i++) {
    const s = args.src[i]!;
    if (migratePfnHas(s, MIGRATE_PFN_VALID) && migratePfnHas(s, MIGRATE_PFN_MIGRATE)) n++;
  }
  return n;
}

/**
 * HMM_DMIRROR_MIGRATE_TO_SYS (dmirror_migrate_to_system): migrate this device's pages in the
 * range back to system memory, folios whole; cpages counts the entries that moved (a folio
 * moved whole is one). ENOMEM if system memory runs out.
 */
export async function dmirrorMigrateToSystem(dmirror: Dmirror, cmd: HmmDmirrorCmd, ctx: DmirrorCtx): Promise<void> {
  if (dmirror.mm.dead) fail('EINVAL', 'the mirrored process has exited');
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  const device = dmirror.device;
  for (let addr = cmd.addr; addr < end; ) {
    const { vma, next } = window(dmirror, addr, end);
    const args = newMigrateVma(vma, addr, next, device.selectFlags | MIGRATE_VMA_SELECT_COMPOUND, device);
    migrateVmaSetup(args);
    if (!allocAndCopyToSystem(args, dmirror)) {
      migrateVmaFinalize(args);
      fail('ENOMEM', 'out of system memory migrating device pages back');
    }
    migrateVmaPages(args);
    cmd.cpages += migratedPages(args);
    migrateVmaFinalize(args);
    addr = next;
    await ctx.yield?.('dmirror: migrate window');
  }
}

/**
 * dev_pagemap_ops.migrate_to_ram (dmirror_devmem_fault): a CPU access hit one of this
 * device's private pages; migrate it back, with the faulting page already locked
 * (fault_page), on behalf of the mirror that put it there. A fault on a device-private PMD
 * (vmf.pte false) moves the whole 2 MiB folio; a fault through a PTE only its page.
 */
export function dmirrorDevmemFault(device: DmirrorDevice, vmf: VmFault): number {
  const phys = device.machine.phys;
  const owner = phys.zoneDeviceData.get(phys.frames.compoundHead(vmf.page));
  const dmirror = owner instanceof Dmirror ? owner : undefined;
  // When the folio is only partly mapped (a PTE fault), the folio's order says nothing.
  const order = vmf.pte ? 0 : phys.frames.order(phys.frames.compoundHead(vmf.page));
  const size = PAGE_SIZE << order;
  const start = vmf.address - (vmf.address % size);
  const flags = device.selectFlags | (order > 0 ? MIGRATE_VMA_SELECT_COMPOUND : 0);
  const args = newMigrateVma(vmf.vma, start, start + size, flags, device, vmf.page);
  try {
    migrateVmaSetup(args);
  } catch (e) {
    if (e instanceof KernelError) return VM_FAULT_SIGBUS;
    throw e;
  }
  if (!allocAndCopyToSystem(args, dmirror)) {
    migrateVmaFinalize(args);
    return VM_FAULT_OOM;
  }
  migrateVmaPages(args);
  // No device finalize step: allocAndCopyToSystem already dropped the device's entries.
  migrateVmaFinalize(args);
  return 0;
}
