// drm_pagemap (drivers/gpu/drm/drm_pagemap.c, include/drm/drm_pagemap.h): device memory for
// gpusvm drivers, and migration of a range of an mm to and from it.
//
//   DrmPagemap            a device's private memory: a MEMORY_DEVICE_PRIVATE dev_pagemap
//                         registered with memremap_pages, whose dev_pagemap_ops are
//                         drm_pagemap's (page_free, migrate_to_ram), and the driver's
//                         drm_pagemap_ops (populate_mm: allocate and migrate).
//   DrmPagemapDevmem      one allocation of device memory (Xe: a VRAM buffer object) and the
//                         driver's drm_pagemap_devmem_ops: populate_devmem_pfn (its frames),
//                         copy_to_devmem / copy_to_ram (the copy engine), devmem_release.
//   DrmPagemapZdd         page->zone_device_data of every device page of one migration: the
//                         allocation and the owner, refcounted by the pages; when the last
//                         page is freed the allocation is released.
//
//   drmPagemapMigrateToDevmem   migrate_vma_setup(SELECT_SYSTEM) / populate / copy /
//                               migrate_vma_pages / migrate_vma_finalize; all pages or none.
//   drmPagemapMigrateToRam      migrate_to_ram on a CPU fault: the whole allocation's window
//                               around the fault comes back (migrate_vma with fault_page).
//   drmPagemapEvictToRam        every page of an allocation back to system memory, whoever
//                               maps it (migrate_device_pfns / _pages / _finalize).
//
// hmmsim keeps zone_device_data per frame in the pagemap's own array (no per-page map), does
// no DMA mapping (a pfn is the device address), and does not model the timeslice (pages may
// migrate back at once; docs/gpusvm.md).

import { giveF64, giveI32, takeF64, takeI32 } from '../../mm/buffers.js';
import { fail, KernelError, type Errno } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import { VM_FAULT_SIGBUS, type VmFault } from '../../mm/fault.js';
import type { Machine } from '../../mm/machine.js';
import { DevPagemap, memremapPages, type DevPagemapOps } from '../../mm/memremap.js';
import type { Mm } from '../../mm/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM,
  migrateDeviceFinalize, migrateDevicePages, migrateDevicePfns, migratePfn, migratePfnHas, migratePfnToPage, migrateVmaFinalize,
  migrateVmaPages, migrateVmaSetup, newMigrateVma, type MigratePfnArray,
} from '../../mm/migrate.js';
import { MIGRATE_CHUNK } from '../../mm/migrate_entries.js';
import { freeMigrateVma } from '../../mm/migrate_pfn.js';
import { VM_WRITE } from '../../mm/vma.js';

/** struct drm_pagemap_ops: what the driver's device memory does for drm_pagemap_populate_mm. */
export interface DrmPagemapOps {
  /**
   * @populate_mm: put [start, end) of mm in this memory, migrating its data (best effort): allocate
   * a DrmPagemapDevmem and call drmPagemapMigrateToDevmem. Throws a KernelError on failure
   * (ENOSPC, EBUSY, ...); ENODEV once the device is gone.
   */
  populateMm(dpagemap: DrmPagemap, start: number, end: number, mm: Mm, timesliceMs: number): void;
}

/** struct drm_pagemap_devmem_ops: the driver's side of one allocation. */
export interface DrmPagemapDevmemOps {
  /** @devmem_release: the last page of the allocation was freed; give its memory back. */
  devmemRelease?(devmem: DrmPagemapDevmem): void;
  /** @populate_devmem_pfn: the allocation's first npages frames (raw pfns) into pfns[0..npages). */
  populateDevmemPfn(devmem: DrmPagemapDevmem, npages: number, pfns: MigratePfnArray): void;
  /**
   * @copy_to_devmem: copy system page sysPfns[i] into device page devPfns[i] for every i with
   * devPfns[i] >= 0; sysPfns[i] is -1 for an empty address (hmmsim clears the device page then).
   */
  copyToDevmem(devPfns: Int32Array, sysPfns: Int32Array, npages: number): void;
  /** @copy_to_ram: copy device page devPfns[i] into system page sysPfns[i] for every i where both are >= 0. */
  copyToRam(devPfns: Int32Array, sysPfns: Int32Array, npages: number): void;
}

/** struct drm_pagemap_devmem: one allocation of device memory. Drivers extend it (Xe: the BO). */
export class DrmPagemapDevmem {
  /** The completion `detached`: every page of the allocation has been freed. */
  detached = false;
  /** Timeslice expiration (kept, not enforced: docs/gpusvm.md). */
  timesliceExpiration = 0;

  constructor(
    readonly mm: Mm,
    readonly ops: DrmPagemapDevmemOps,
    readonly dpagemap: DrmPagemap,
    /** Bytes. */
    readonly size: number,
  ) {}

  get npages(): number {
    return this.size / PAGE_SIZE;
  }
}

/** drm_pagemap_devmem_init (the allocation is a value here: construct it). */
export function drmPagemapDevmemInit(mm: Mm, ops: DrmPagemapDevmemOps, dpagemap: DrmPagemap, size: number): DrmPagemapDevmem {
  return new DrmPagemapDevmem(mm, ops, dpagemap, size);
}

/** struct drm_pagemap_zdd */
export class DrmPagemapZdd {
  refcount = 1;
  devmemAllocation: DrmPagemapDevmem | null = null;
  constructor(readonly devicePrivatePageOwner: unknown) {}
}

function zddGet(zdd: DrmPagemapZdd): DrmPagemapZdd {
  zdd.refcount++;
  return zdd;
}

/** drm_pagemap_zdd_put: the last reference detaches and releases the allocation. */
function zddPut(zdd: DrmPagemapZdd): void {
  if (--zdd.refcount > 0) return;
  const devmem = zdd.devmemAllocation;
  if (devmem) {
    devmem.detached = true;
    devmem.ops.devmemRelease?.(devmem);
  }
}

/** struct drm_pagemap, with the dev_pagemap it describes. */
export class DrmPagemap implements DevPagemapOps {
  readonly pgmap: DevPagemap;
  /**
   * hmmsim: called between migrate_vma_pages and migrate_vma_finalize of a successful
   * migration into this memory (src and dst as migrate_vma left them). A gpusvm instance sets
   * it for the migration it runs itself, to re-point its range at the device pages (the owner
   * filter, notifier.ts); null otherwise.
   */
  onMigrated: ((start: number, src: MigratePfnArray, dst: MigratePfnArray, npages: number) => void) | null = null;
  /** page->zone_device_data, per frame of the pagemap. */
  private readonly zdds: Array<DrmPagemapZdd | null>;

  /** memremap_pages of nframes private frames owned by `owner`, with drm_pagemap's dev_pagemap_ops. */
  constructor(readonly machine: Machine, readonly owner: unknown, nframes: number, readonly ops: DrmPagemapOps) {
    if (!ops || typeof ops.populateMm !== 'function') fail('EINVAL', 'drm_pagemap: ops.populateMm is required');
    this.pgmap = new DevPagemap('private', owner, this);
    memremapPages(machine, this.pgmap, nframes);
    this.zdds = new Array<DrmPagemapZdd | null>(nframes).fill(null);
  }

  /** The drm_pagemap a dev_pagemap belongs to, or null (container_of, when its ops are drm_pagemap's). */
  static fromPgmap(pgmap: DevPagemap): DrmPagemap | null {
    return pgmap.ops instanceof DrmPagemap ? pgmap.ops : null;
  }

  /** page->zone_device_data of one of this pagemap's frames. */
  zddOf(pfn: number): DrmPagemapZdd | null {
    return this.zdds[pfn - this.pgmap.firstPfn] ?? null;
  }

  /** drm_pagemap_get_devmem_page: take an idle frame into use for zdd, locked, for a migration destination. */
  getDevmemPage(pfn: number, zdd: DrmPagemapZdd): void {
    const i = pfn - this.pgmap.firstPfn;
    if (i < 0 || i >= this.zdds.length) fail('EINVAL', `drm_pagemap: pfn ${pfn} is not in this pagemap`);
    const phys = this.machine.phys;
    phys.deviceFrameInit(pfn);
    phys.trylockPage(pfn);
    this.zdds[i] = zddGet(zdd);
  }

  /** dev_pagemap_ops.page_free (drm_pagemap_page_free): the page's zdd reference goes. */
  pageFree(pfn: number): void {
    const i = pfn - this.pgmap.firstPfn;
    const zdd = this.zdds[i];
    this.zdds[i] = null;
    if (zdd) zddPut(zdd);
  }

  /** dev_pagemap_ops.migrate_to_ram (drm_pagemap_migrate_to_ram) */
  migrateToRam(vmf: VmFault): number {
    return drmPagemapMigrateToRam(this, vmf);
  }
}

/** drm_pagemap_page_to_dpagemap: the drm_pagemap a device page was populated from, or null. */
export function drmPagemapPageToDpagemap(machine: Machine, pfn: number): DrmPagemap | null {
  const pgmap = machine.phys.pagemapOf(pfn);
  const dp = pgmap ? DrmPagemap.fromPgmap(pgmap) : null;
  return dp?.zddOf(pfn)?.devmemAllocation?.dpagemap ?? null;
}

/** drm_pagemap_migration_unlock_put_pages: release the destinations a failed migration allocated. */
function unlockPutPages(machine: Machine, pfns: MigratePfnArray, npages: number): void {
  const phys = machine.phys;
  for (let i = 0; i < npages; i++) {
    const p = migratePfnToPage(pfns[i]!);
    if (p < 0) continue;
    phys.unlockPage(p);
    phys.putPage(p);
    pfns[i] = 0;
  }
}

/**
 * drm_pagemap_migrate_to_devmem: migrate [start, end) of mm (inside one anonymous VMA) into
 * devmem. All or nothing: EFAULT if nothing could be collected, EBUSY if some page could not
 * (shared, pinned, locked), ENOENT without a VMA, EINVAL for a range outside it or larger than
 * the allocation, EBUSY for a VMA that is not anonymous, and whatever the driver's
 * populate_devmem_pfn / copy_to_devmem throw. On success the allocation belongs to the pages
 * (it is released with the last of them); on error it is still the caller's.
 */
export function drmPagemapMigrateToDevmem(devmem: DrmPagemapDevmem, mm: Mm, start: number, end: number, timesliceMs: number, pgmapOwner: unknown): void {
  const ops = devmem.ops;
  if (!ops || typeof ops.populateDevmemPfn !== 'function' || typeof ops.copyToDevmem !== 'function' || typeof ops.copyToRam !== 'function') {
    fail('EOPNOTSUPP', 'drm_pagemap_migrate_to_devmem: populate_devmem_pfn, copy_to_devmem and copy_to_ram are required');
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start % PAGE_SIZE || end % PAGE_SIZE || end <= start) {
    fail('EINVAL', 'drm_pagemap_migrate_to_devmem: start and end must be page aligned, start < end');
  }
  mm.assertLive();
  const vma = mm.vmas.lookup(start);
  if (!vma) fail('ENOENT', `drm_pagemap_migrate_to_devmem: no VMA at 0x${start.toString(16)}`);
  if (end > vma.end || start < vma.start) fail('EINVAL', 'drm_pagemap_migrate_to_devmem: range outside its VMA');
  if (!vma.isAnonymous()) fail('EBUSY', 'drm_pagemap_migrate_to_devmem: not an anonymous VMA');
  const npages = (end - start) / PAGE_SIZE;
  if (npages * PAGE_SIZE > devmem.size) fail('EINVAL', 'drm_pagemap_migrate_to_devmem: range larger than the allocation');
  const machine = mm.machine;
  const dpagemap = devmem.dpagemap;
  const zdd = new DrmPagemapZdd(pgmapOwner);
  const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner);
  let err: Errno | null = null;
  let cause: unknown = null;
  try {
    migrateVmaSetup(args);
  } catch (e) {
    zddPut(zdd);
    throw e;
  }
  const { src, dst } = args;
  if (args.cpages === 0) err = 'EFAULT';
  else if (args.cpages !== npages) err = 'EBUSY';
  else {
    const taken = new Int32Array(1); // device pages taken so far, for the error path
    try {
      ops.populateDevmemPfn(devmem, npages, dst);
      const devPfns = takeI32(npages);
      const sysPfns = takeI32(npages);
      const writable = (vma.flags & VM_WRITE) !== 0;
      for (let i = 0; i < npages; i += MIGRATE_CHUNK) {
        takeDevmemPages(dpagemap, zdd, src, dst, devPfns, sysPfns, i, Math.min(npages, i + MIGRATE_CHUNK), writable, taken);
      }
      ops.copyToDevmem(devPfns, sysPfns, npages);
      giveI32(devPfns);
      giveI32(sysPfns);
      devmem.timesliceExpiration = timesliceMs;
      zdd.devmemAllocation = devmem; // owns the caller's reference from here on
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      err = e.errno;
      cause = e;
      dst.fill(0, taken[0], npages); // raw pfns from populate_devmem_pfn: not taken yet
    }
  }
  if (err) unlockPutPages(machine, dst, npages);
  migrateVmaPages(args);
  if (!err) dpagemap.onMigrated?.(start, src, dst, npages);
  migrateVmaFinalize(args);
  freeMigrateVma(args);
  zddPut(zdd);
  if (err) {
    if (cause instanceof KernelError) throw cause;
    fail(err, err === 'EFAULT' ? 'drm_pagemap_migrate_to_devmem: nothing to migrate' : 'drm_pagemap_migrate_to_devmem: not every page could be collected');
  }
}

/**
 * drm_pagemap_migrate_to_devmem's loop over the pages [from, to): each device page
 * populate_devmem_pfn gave becomes dst's entry (migrate_pfn, writable if the source was or the
 * VMA is, for an empty address), and the zdd's page (drm_pagemap_get_devmem_page); the copy
 * engine's pfn lists are filled. taken[0] counts the pages taken when getDevmemPage throws.
 */
function takeDevmemPages(
  dpagemap: DrmPagemap, zdd: DrmPagemapZdd, src: MigratePfnArray, dst: MigratePfnArray, devPfns: Int32Array, sysPfns: Int32Array,
  from: number, to: number, writableVma: boolean, taken: Int32Array,
): void {
  for (let i = from; i < to; i++) {
    const page = dst[i]!;
    const s = src[i]!;
    devPfns[i] = page;
    sysPfns[i] = migratePfnToPage(s);
    const write = migratePfnHas(s, MIGRATE_PFN_WRITE) || (sysPfns[i]! < 0 && writableVma);
    dst[i] = migratePfn(page) + (write ? MIGRATE_PFN_WRITE : 0);
    dpagemap.getDevmemPage(page, zdd);
    taken[0] = i + 1;
  }
}

/**
 * drm_pagemap_migrate_populate_ram_pfn: a locked system page for every collected device page
 * (of zdd only, when a fault page names one); false if system memory ran out (all released).
 */
function populateRamPfn(machine: Machine, dpagemap: DrmPagemap | null, zdd: DrmPagemapZdd | null, src: MigratePfnArray, dst: MigratePfnArray, npages: number): number {
  let mpages = 0;
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) {
    const n = ramPfnChunk(machine, dpagemap, zdd, src, dst, i, Math.min(npages, i + MIGRATE_CHUNK));
    if (n < 0) {
      unlockPutPages(machine, dst, npages);
      return -1;
    }
    mpages += n;
  }
  return mpages;
}

/** populateRamPfn for entries [from, to): the pages it allocated, or -1 when none was free (dst keeps what it has). */
function ramPfnChunk(machine: Machine, dpagemap: DrmPagemap | null, zdd: DrmPagemapZdd | null, src: MigratePfnArray, dst: MigratePfnArray, from: number, to: number): number {
  const phys = machine.phys;
  let mpages = 0;
  for (let i = from; i < to; i++) {
    const s = src[i]!;
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
    const spage = migratePfnToPage(s);
    if (spage < 0) continue;
    if (zdd && dpagemap?.zddOf(spage) !== zdd) continue;
    const page = phys.tryAllocPages(0);
    if (page < 0) return -1;
    phys.trylockPage(page);
    dst[i] = migratePfn(page) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    mpages++;
  }
  return mpages;
}

/** Device and system pfns of a migration back to RAM, for copy_to_ram. */
function copyBack(ops: DrmPagemapDevmemOps, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  const devPfns = takeI32(npages);
  const sysPfns = takeI32(npages);
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) copyBackPfns(src, dst, devPfns, sysPfns, i, Math.min(npages, i + MIGRATE_CHUNK));
  ops.copyToRam(devPfns, sysPfns, npages);
  giveI32(devPfns);
  giveI32(sysPfns);
}

/** copyBack's pfn lists for entries [from, to). */
function copyBackPfns(src: MigratePfnArray, dst: MigratePfnArray, devPfns: Int32Array, sysPfns: Int32Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const d = migratePfnToPage(dst[i]!);
    devPfns[i] = d >= 0 ? migratePfnToPage(src[i]!) : -1;
    sysPfns[i] = d;
  }
}

/**
 * __drm_pagemap_migrate_to_ram via drm_pagemap_migrate_to_ram: a CPU fault on one of this
 * pagemap's pages brings back the allocation-sized, aligned window around the fault (clipped
 * to the VMA), the pages of the faulting page's allocation only. VM_FAULT_SIGBUS on failure.
 */
export function drmPagemapMigrateToRam(dpagemap: DrmPagemap, vmf: VmFault): number {
  const zdd = dpagemap.zddOf(vmf.page);
  const devmem = zdd?.devmemAllocation;
  if (!zdd || !devmem) return VM_FAULT_SIGBUS;
  const size = devmem.size;
  const vma = vmf.vma;
  const start = Math.max(vma.start, Math.floor(vmf.address / size) * size);
  const end = Math.min(vma.end, Math.floor(vmf.address / size) * size + size);
  const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT, zdd.devicePrivatePageOwner, vmf.page);
  try {
    migrateVmaSetup(args);
  } catch (e) {
    if (e instanceof KernelError) return VM_FAULT_SIGBUS;
    throw e;
  }
  const machine = dpagemap.machine;
  let ok = true;
  if (args.cpages > 0) {
    const mpages = populateRamPfn(machine, dpagemap, zdd, args.src, args.dst, args.npages);
    if (mpages < 0) ok = false;
    else if (mpages > 0) copyBack(devmem.ops, args.src, args.dst, args.npages);
  }
  migrateVmaPages(args);
  migrateVmaFinalize(args);
  freeMigrateVma(args);
  return ok ? 0 : VM_FAULT_SIGBUS;
}

/**
 * drm_pagemap_evict_to_ram: every page of the allocation back to system memory, whoever maps
 * it (migrate_device_pfns). Retries twice until the allocation is detached (all its pages
 * freed); then EBUSY. EFAULT if its mm has exited, ENOMEM if system memory ran out.
 */
export function drmPagemapEvictToRam(devmem: DrmPagemapDevmem): void {
  const ops = devmem.ops;
  const machine = devmem.dpagemap.machine;
  const npages = devmem.npages;
  let err: Errno | null = null;
  for (let retry = 0; retry < 3; retry++) {
    if (devmem.mm.dead) fail('EFAULT', 'drm_pagemap_evict_to_ram: the mm has exited');
    const src = takeF64(npages);
    const dst = takeF64(npages);
    ops.populateDevmemPfn(devmem, npages, src);
    migrateDevicePfns(machine, src, npages);
    const mpages = populateRamPfn(machine, null, null, src, dst, npages);
    if (mpages < 0) err = 'ENOMEM';
    else if (mpages > 0) copyBack(ops, src, dst, npages);
    migrateDevicePages(machine, src, dst, npages);
    migrateDeviceFinalize(machine, src, dst, npages);
    giveF64(src);
    giveF64(dst);
    if (devmem.detached) return;
  }
  fail(err ?? 'EBUSY', 'drm_pagemap_evict_to_ram: pages of the allocation are still in device memory');
}

/**
 * drm_pagemap_populate_mm: ask the pagemap's driver to put [start, end) of mm in its memory
 * (best effort). EFAULT if the mm has exited; otherwise what ops.populateMm throws.
 */
export function drmPagemapPopulateMm(dpagemap: DrmPagemap, start: number, end: number, mm: Mm, timesliceMs = 0): void {
  if (mm.dead) fail('EFAULT', 'drm_pagemap_populate_mm: the mm has exited');
  dpagemap.ops.populateMm(dpagemap, start, end, mm, timesliceMs);
}
