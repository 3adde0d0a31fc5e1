// The driver's side of migration (lib/test_hmm.c): MIGRATE_TO_DEV and MIGRATE_TO_SYS over
// 64-page windows of one VMA at a time, and migrate_to_ram, the CPU fault on one of the
// device's private pages. The migration core is src/mm/migrate.ts (migrate_vma_setup, _pages,
// _finalize); the driver allocates and fills the destination pages between setup and pages,
// and keeps its device page table in step.
//
// Huge pages: hmmsim's migration core moves a THP as 512 small pages (docs/api.md, deviation
// 28; no MIGRATE_PFN_COMPOUND), so the driver never allocates a 2 MiB device folio and
// HMM_DMIRROR_FLAG_FAIL_ALLOC, which fails the next such allocation, has none to fail.

import { fail, KernelError } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { VmFault } from '../../mm/fault.js';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS } from '../../mm/fault.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas,
  migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, type MigrateVma,
} from '../../mm/migrate.js';
import type { Process } from '../../mm/process.js';
import { VM_READ, VM_WRITE } from '../../mm/vma.js';
import type { DmirrorDevice } from './device.js';
import { Dmirror, DMIRROR_WINDOW_PAGES, type DmirrorCtx } from './mirror.js';
import type { HmmDmirrorCmd } from './uapi.js';

/** Whether the driver migrates 2 MiB device folios (it cannot: the migration core has no MIGRATE_PFN_COMPOUND). */
export const DMIRROR_DEVICE_THP = false;

/** The VMA holding addr and the end of the migration window starting there; EINVAL without a readable VMA. */
function window(dmirror: Dmirror, addr: number, end: number): { vma: NonNullable<ReturnType<Dmirror['mm']['findVma']>>; next: number } {
  const vma = dmirror.mm.findVma(addr);
  if (!vma || !(vma.flags & VM_READ)) fail('EINVAL', `no readable mapping at 0x${addr.toString(16)}`);
  return { vma, next: Math.min(end, addr + DMIRROR_WINDOW_PAGES * PAGE_SIZE, vma.end) };
}

/** dmirror_migrate_alloc_and_copy: a device page for every collected page, filled with its data (or zeroed). */
function allocAndCopy(args: MigrateVma, dmirror: Dmirror): void {
  const device = dmirror.device;
  const phys = dmirror.mm.machine.phys;
  for (let i = 0; i < args.npages; i++) {
    const s = args.src[i]!;
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
    // spage is -1 for an empty (pte_none or zero-page) address.
    const spage = migratePfnToPage(s);
    if (spage >= 0 && phys.pagemapOf(spage)) continue; // already device memory: the kernel WARNs and skips it
    const dpage = device.allocPage();
    if (dpage < 0) continue;
    if (spage >= 0) phys.copyPage(dpage, spage);
    else phys.clearPage(dpage);
    // The kernel keeps the owning mirror in the page's zone_device_data (through its backing page).
    phys.zoneDeviceData.set(dpage, dmirror);
    const write = migratePfnHas(s, MIGRATE_PFN_WRITE) || (spage < 0 && (args.vma.flags & VM_WRITE) !== 0);
    args.dst[i] = migratePfn(dpage) + (write ? MIGRATE_PFN_WRITE : 0);
  }
}

/** dmirror_migrate_finalize_and_map: map the pages that moved in the device page table. */
function finalizeAndMap(args: MigrateVma, dmirror: Dmirror): void {
  dmirror.lock();
  try {
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      const d = args.dst[i]!;
      const dpage = migratePfnToPage(d);
      if (dpage < 0) continue;
      dmirror.store(args.start + i * PAGE_SIZE, { pfn: dpage, write: migratePfnHas(d, MIGRATE_PFN_WRITE), atomic: false });
    }
  } finally {
    dmirror.unlock();
  }
}

/**
 * HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device): migrate system pages (and empty
 * addresses of anonymous VMAs) into device memory, then read the whole range back through the
 * device page table: any page that did not end up there makes the command fail with ENOENT.
 */
export async function dmirrorMigrateToDevice(dmirror: Dmirror, cmd: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
  if (dmirror.mm.dead) fail('EINVAL', 'the mirrored process has exited');
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  for (let addr = cmd.addr; addr < end; ) {
    const { vma, next } = window(dmirror, addr, end);
    const args = newMigrateVma(vma, addr, next, MIGRATE_VMA_SELECT_SYSTEM, dmirror.device);
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
 * dmirror_devmem_fault_alloc_and_copy: a system page for every collected device page, filled
 * from it; the device's entry for the address goes (the page is leaving device memory).
 * Returns false if system memory ran out for any of them (those stay where they are).
 */
function allocAndCopyToSystem(args: MigrateVma, dmirror: Dmirror | undefined): boolean {
  const phys = args.vma.mm!.machine.phys;
  let ok = true;
  for (let i = 0; i < args.npages; i++) {
    const s = args.src[i]!;
    const spage = migratePfnToPage(s);
    if (spage < 0 || !migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
    if (!phys.pagemapOf(spage)) continue; // not device memory: the kernel WARNs and skips it
    const dpage = phys.tryAllocPages(0);
    if (dpage < 0) {
      ok = false; // this page stays in device memory
      continue;
    }
    phys.trylockPage(dpage);
    dmirror?.erase(args.start + i * PAGE_SIZE);
    phys.copyPage(dpage, spage);
    args.dst[i] = migratePfn(dpage) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
  }
  return ok;
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
 * range back to system memory; cpages counts the pages that moved.
 */
export async function dmirrorMigrateToSystem(dmirror: Dmirror, cmd: HmmDmirrorCmd, ctx: DmirrorCtx): Promise<void> {
  if (dmirror.mm.dead) fail('EINVAL', 'the mirrored process has exited');
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  const device = dmirror.device;
  for (let addr = cmd.addr; addr < end; ) {
    const { vma, next } = window(dmirror, addr, end);
    const args = newMigrateVma(vma, addr, next, device.selectFlags, device);
    migrateVmaSetup(args);
    allocAndCopyToSystem(args, dmirror);
    migrateVmaPages(args);
    cmd.cpages += migratedPages(args);
    migrateVmaFinalize(args);
    addr = next;
    await ctx.yield?.('dmirror: migrate window');
  }
}

/**
 * dev_pagemap_ops.migrate_to_ram (dmirror_devmem_fault): a CPU access hit one of this
 * device's private pages; migrate that page back, with the faulting page already locked
 * (fault_page), on behalf of the mirror that put it there.
 */
export function dmirrorDevmemFault(device: DmirrorDevice, vmf: VmFault): number {
  const phys = device.machine.phys;
  const owner = phys.zoneDeviceData.get(vmf.page);
  const dmirror = owner instanceof Dmirror ? owner : undefined;
  const args = newMigrateVma(vmf.vma, vmf.address, vmf.address + PAGE_SIZE, device.selectFlags, device, vmf.page);
  try {
    migrateVmaSetup(args);
  } catch (e) {
    if (e instanceof KernelError) return VM_FAULT_SIGBUS;
    throw e;
  }
  const ok = allocAndCopyToSystem(args, dmirror);
  migrateVmaPages(args);
  // No device finalize step: allocAndCopyToSystem already dropped the device's entry.
  migrateVmaFinalize(args);
  return ok ? 0 : VM_FAULT_OOM;
}
