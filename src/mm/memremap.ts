// Device memory (struct dev_pagemap, mm/memremap.c): a physical range whose frames belong to a
// device driver. PRIVATE memory cannot be addressed by the CPU and is mapped only through
// device-private entries; COHERENT memory is mapped with ordinary PTEs.
//
// Reference counts follow mainline: an idle device frame has refcount 0; the driver takes it
// into use with phys.deviceFrameInit (zone_device_page_init: refcount 1), and when the last
// reference goes the core calls ops.pageFree once, handing the frame back to the driver.

import { fail } from './errno.js';
import { HPAGE_PMD_ORDER } from './constants.js';
import type { VmFault } from './fault.js';
import type { Machine } from './machine.js';

export type MemoryType = 'private' | 'coherent';

export interface DevPagemapOps {
  /** The last reference to a device page went away: the driver takes it back. */
  pageFree(pfn: number): void;
  /**
   * A CPU access hit a device-private entry of this pagemap (do_swap_page). The driver
   * migrates the page (vmf.page, locked and referenced by the fault) back to system memory
   * and returns 0, or a VM_FAULT_* code such as VM_FAULT_SIGBUS. Required for private
   * memory; coherent memory never gets this call.
   */
  migrateToRam?(vmf: VmFault): number;
  /**
   * folio_split: a large device folio is being split into small pages; `tail` becomes a page
   * of its own (the driver copies its per-page data, zone_device_data, from `head`). Optional.
   */
  folioSplit?(head: number, tail: number): void;
}

export class DevPagemap {
  /** Set by memremapPages (PhysMem.addPagemap). */
  firstPfn = 0;
  nframes = 0;
  /** How many times pageFree was called (for accounting tests). */
  freed = 0;
  constructor(
    readonly type: MemoryType,
    /** Identifies the driver: hmm_range_fault's dev_private_owner and migrate's pgmap_owner match against it. */
    readonly owner: unknown,
    readonly ops: DevPagemapOps,
  ) {}

  contains(pfn: number): boolean {
    return pfn >= this.firstPfn && pfn < this.firstPfn + this.nframes;
  }
}

/**
 * memremap_pages: register `nframes` frames of device memory for `pgmap` and return the first
 * pfn. EINVAL (as the kernel's WARN + -EINVAL) for an unknown type, a pagemap without
 * page_free, a private pagemap without migrate_to_ram, a pagemap without an owner, a bad frame
 * count, or a pagemap that is already registered; ERANGE when no physical window is left.
 */
export function memremapPages(machine: Machine, pgmap: DevPagemap, nframes: number): number {
  if (!(pgmap instanceof DevPagemap)) fail('EINVAL', 'not a dev_pagemap');
  if (pgmap.type !== 'private' && pgmap.type !== 'coherent') fail('EINVAL', `invalid pgmap type ${String(pgmap.type)}`);
  if (!pgmap.ops || typeof pgmap.ops.pageFree !== 'function') fail('EINVAL', 'missing page_free method');
  if (pgmap.type === 'private' && typeof pgmap.ops.migrateToRam !== 'function') fail('EINVAL', 'missing migrate_to_ram method');
  if (pgmap.owner === null || pgmap.owner === undefined) fail('EINVAL', 'missing owner');
  if (!Number.isSafeInteger(nframes) || nframes <= 0) fail('EINVAL', `bad frame count ${nframes}`);
  if (machine.phys.pagemapList.includes(pgmap)) fail('EINVAL', 'pagemap already registered');
  return machine.phys.addPagemap(pgmap, nframes);
}

/**
 * memunmap_pages: remove the pagemap. The kernel waits for every page reference to go;
 * hmmsim refuses with EBUSY while any page is still in use (nothing is migrated back: the
 * driver must evict its pages first, e.g. with migrateDeviceRange).
 */
export function memunmapPages(machine: Machine, pgmap: DevPagemap): void {
  const phys = machine.phys;
  if (!phys.pagemapList.includes(pgmap)) fail('EINVAL', 'pagemap not registered');
  phys.removePagemap(pgmap);
  for (let p = pgmap.firstPfn; p < pgmap.firstPfn + pgmap.nframes; p++) phys.zoneDeviceData.delete(p);
}

/**
 * zone_device_page_init / zone_device_folio_init: a driver takes an idle page of its pagemap
 * (order 0) or an idle PMD-size folio (order HPAGE_PMD_ORDER, aligned) into use: refcount 1
 * and locked, ready to be a migration's destination (migrate_vma_finalize unlocks it). EINVAL
 * for a pfn that is not device memory, a bad order or alignment, a folio running past its
 * pagemap, or a page already in use (the kernel WARNs and corrupts its count).
 */
export function zoneDevicePageInit(machine: Machine, pfn: number, order = 0): void {
  const phys = machine.phys;
  const f = phys.frames;
  const pgmap = Number.isSafeInteger(pfn) && pfn >= 0 && pfn < f.capacity ? phys.pagemapOf(pfn) : undefined;
  if (!pgmap) fail('EINVAL', `zone_device_page_init: pfn ${pfn} is not device memory`);
  if (order !== 0 && order !== HPAGE_PMD_ORDER) fail('EINVAL', `zone_device_folio_init: order ${order} (0 or ${HPAGE_PMD_ORDER})`);
  const n = 1 << order;
  if (pfn % n) fail('EINVAL', `zone_device_folio_init: pfn ${pfn} is not aligned to order ${order}`);
  if (pfn + n > pgmap.firstPfn + pgmap.nframes) fail('EINVAL', `zone_device_folio_init: the folio at ${pfn} runs past its pagemap`);
  for (let p = pfn; p < pfn + n; p++) {
    if (f.refcount[p] !== 0 || f.refcount[f.compoundHead(p)] !== 0) fail('EINVAL', `zone_device_page_init: device page ${p} is in use`);
  }
  phys.deviceFrameInit(pfn, order);
  phys.trylockPage(pfn);
}

/** page_pgmap(): the pagemap a frame belongs to, or undefined for system RAM. */
export function pagePgmap(machine: Machine, pfn: number): DevPagemap | undefined {
  return machine.phys.pagemapOf(pfn);
}

/** is_zone_device_page */
export function isZoneDevicePage(machine: Machine, pfn: number): boolean {
  return machine.phys.pagemapOf(pfn) !== undefined;
}

/** is_device_private_page */
export function isDevicePrivatePage(machine: Machine, pfn: number): boolean {
  return machine.phys.pagemapOf(pfn)?.type === 'private';
}

/** is_device_coherent_page */
export function isDeviceCoherentPage(machine: Machine, pfn: number): boolean {
  return machine.phys.pagemapOf(pfn)?.type === 'coherent';
}
