// The dmirror devices (lib/test_hmm.c's struct dmirror_device) and their memory. Each device
// has ZONE_DEVICE memory of one type, private (the CPU cannot address it: devices 0 and 1) or
// coherent (it can: devices 2 and 3), registered in chunks (DEVMEM_CHUNK_SIZE, 256 MiB by
// default) with memremapPages, one at module load and more
// on demand. Idle pages sit on the device's free lists, small pages on one and 2 MiB folios
// (carved from a chunk registered for a huge allocation) on another; a page or folio handed
// out is initialised with deviceFrameInit (refcount 1, locked), and the pagemap's pageFree puts
// it back on the list of its size.
//
// The kernel's private device pages are "dummy" struct pages whose data lives in a system
// page the driver allocates beside each one (the backing page). hmmsim's device frames hold
// data themselves, so the driver reads and writes the device frame directly and allocates no
// backing pages; nothing the tests observe depends on that.
//
// RELEASE (dmirror_device_remove_chunks) evicts every chunk's pages back to system memory with
// migrate_device_range, then unregisters the chunks; later allocations register new ones.

import { fail, KernelError } from '../../mm/errno.js';
import { HPAGE_PMD_ORDER, PAGE_SIZE, PMD_NR } from '../../mm/constants.js';
import type { Machine } from '../../mm/machine.js';
import { DevPagemap, memremapPages, memunmapPages, type MemoryType } from '../../mm/memremap.js';
import {
  MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  migrateDeviceFinalize, migrateDevicePages, migrateDeviceRange, migratePfn, migratePfnHas, migratePfnToPage,
} from '../../mm/migrate.js';
import { dmirrorDevmemFault } from './migrate.js';
import { DMIRROR_NDEVICES, HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE } from './uapi.js';

/** DEVMEM_CHUNK_SIZE */
export const DEVMEM_CHUNK_SIZE = 256 * 2 ** 20;

export interface DmirrorOptions {
  /** Bytes of device memory per chunk (default DEVMEM_CHUNK_SIZE); a multiple of 2 MiB. */
  chunkBytes?: number;
  /** Create the two coherent devices (2 and 3) too (default true; the kernel needs spm_addr_dev0/1 for them). */
  coherent?: boolean;
}

/** struct dmirror_chunk: one registered range of device memory. */
export class DmirrorChunk {
  /** Set by RELEASE: pages freed from now on do not go back to the free list. */
  remove = false;
  constructor(readonly device: DmirrorDevice, readonly pagemap: DevPagemap) {}
  get firstPfn(): number {
    return this.pagemap.firstPfn;
  }
  get npages(): number {
    return this.pagemap.nframes;
  }
}

/** struct dmirror_device */
export class DmirrorDevice {
  readonly chunks: DmirrorChunk[] = [];
  /** Chunks RELEASE unregistered while a page was still in use: removed when it is freed. */
  private readonly zombies: DmirrorChunk[] = [];
  /** free_pages: idle small pages. */
  private free: number[] = [];
  /** free_folios: idle PMD-size folios, by head pfn. */
  private freeFolios: number[] = [];
  /** Pages handed out and given back (calloc, cfree). */
  calloc = 0;
  cfree = 0;
  private readonly chunkPages: number;

  constructor(
    readonly machine: Machine,
    readonly minor: number,
    /** zone_device_type: HMM_DMIRROR_MEMORY_DEVICE_PRIVATE or _COHERENT. */
    readonly zoneDeviceType: number,
    chunkBytes: number,
  ) {
    this.chunkPages = chunkBytes / PAGE_SIZE;
  }

  get name(): string {
    return `hmm_dmirror${this.minor}`;
  }
  get memoryType(): MemoryType {
    return this.zoneDeviceType === HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ? 'private' : 'coherent';
  }
  get isPrivate(): boolean {
    return this.zoneDeviceType === HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
  }
  /** dmirror_select_device: the migrate_vma selection for this device's pages. */
  get selectFlags(): number {
    return this.isPrivate ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
  }
  /** Idle device pages, small ones and those of idle folios. */
  get freePages(): number {
    return this.free.length + this.freeFolios.length * PMD_NR;
  }
  /** Device pages currently handed out. */
  get usedPages(): number {
    let n = 0;
    for (const c of this.chunks) n += c.npages;
    return n - this.freePages;
  }

  /** The chunk a device pfn belongs to. */
  chunkOf(pfn: number): DmirrorChunk | undefined {
    for (const c of this.chunks) if (c.pagemap.contains(pfn)) return c;
    for (const c of this.zombies) if (c.pagemap.contains(pfn)) return c;
    return undefined;
  }

  /**
   * dmirror_allocate_chunk: register one more chunk and put its pages on the free lists: for a
   * huge allocation (`large`) every aligned 2 MiB block as a folio, the rest as small pages.
   * Coherent memory is one fixed range in the kernel (spm_addr_devN), so a coherent device
   * has at most one chunk registered at a time. Returns false when no chunk can be added.
   */
  allocateChunk(large = false): boolean {
    if (!this.isPrivate && this.chunks.length > 0) return false;
    const pagemap = new DevPagemap(this.memoryType, this, {
      pageFree: (pfn) => this.pageFree(pfn),
      migrateToRam: (vmf) => dmirrorDevmemFault(this, vmf),
      folioSplit: (head, tail) => this.folioSplit(head, tail),
    });
    try {
      memremapPages(this.machine, pagemap, this.chunkPages);
    } catch (e) {
      if (e instanceof KernelError) return false;
      throw e;
    }
    this.chunks.push(new DmirrorChunk(this, pagemap));
    const last = pagemap.firstPfn + pagemap.nframes;
    // A coherent device has one chunk (its SPM range) and cannot register another for a huge
    // allocation as the kernel's driver tries to: hmmsim carves its upper half into 2 MiB
    // folios from the start, so it serves both sizes (docs/api.md).
    const foliosFrom = large ? pagemap.firstPfn : this.isPrivate ? last : pagemap.firstPfn + Math.floor(pagemap.nframes / 2);
    for (let pfn = pagemap.firstPfn; pfn < last; ) {
      if (pfn >= foliosFrom && pfn % PMD_NR === 0 && pfn + PMD_NR <= last) {
        this.freeFolios.push(pfn);
        pfn += PMD_NR;
      } else {
        this.free.push(pfn++);
      }
    }
    return true;
  }

  /**
   * dmirror_devmem_alloc_page: an idle device page, or with `large` a 2 MiB device folio,
   * initialised (refcount 1) and locked as zone_device_folio_init leaves it; -1 when the
   * device is out of memory of that size.
   */
  allocPage(large = false): number {
    const list = large ? this.freeFolios : this.free;
    if (list.length === 0 && !this.allocateChunk(large)) return -1;
    const pfn = list.pop();
    if (pfn === undefined) return -1;
    this.calloc += large ? PMD_NR : 1;
    const phys = this.machine.phys;
    phys.deviceFrameInit(pfn, large ? HPAGE_PMD_ORDER : 0);
    phys.trylockPage(pfn);
    return pfn;
  }

  /** dev_pagemap_ops.folio_split (dmirror_devmem_folio_split): a tail of a split folio keeps the head's mirror. */
  private folioSplit(head: number, tail: number): void {
    const zdd = this.machine.phys.zoneDeviceData;
    const owner = zdd.get(head);
    if (owner !== undefined) zdd.set(tail, owner);
  }

  /** dev_pagemap_ops.folio_free (dmirror_devmem_free): the page's or folio's last reference went. */
  private pageFree(pfn: number): void {
    const phys = this.machine.phys;
    phys.zoneDeviceData.delete(pfn);
    const order = phys.frames.order(pfn);
    const chunk = this.chunkOf(pfn);
    if (chunk && !chunk.remove) {
      this.cfree += 1 << order;
      if (order > 0) this.freeFolios.push(pfn);
      else this.free.push(pfn);
      return;
    }
    // A page of a released chunk: unregister the chunk once its last page is idle.
    const zi = chunk ? this.zombies.indexOf(chunk) : -1;
    if (chunk && zi >= 0 && this.tryUnregister(chunk)) this.zombies.splice(zi, 1);
  }

  private tryUnregister(chunk: DmirrorChunk): boolean {
    const f = this.machine.phys.frames;
    for (let p = chunk.firstPfn; p < chunk.firstPfn + chunk.npages; p++) if (f.refcount[p]! > 0) return false;
    memunmapPages(this.machine, chunk.pagemap);
    return true;
  }

  /**
   * dmirror_device_remove_chunks (RELEASE, and module unload): take each chunk's idle pages
   * off the free list, migrate its pages in use back to system memory wherever they are
   * mapped (dmirror_device_evict_chunk), and unregister it (memunmap_pages).
   */
  removeChunks(): void {
    let error: unknown = null;
    for (const chunk of this.chunks.splice(0)) {
      chunk.remove = true;
      this.free = this.free.filter((pfn) => !chunk.pagemap.contains(pfn));
      this.freeFolios = this.freeFolios.filter((pfn) => !chunk.pagemap.contains(pfn));
      try {
        this.evictChunk(chunk);
      } catch (e) {
        error ??= e;
      }
      // Pages still in use (not evicted) unregister the chunk when the last of them is freed.
      if (!this.tryUnregister(chunk)) this.zombies.push(chunk);
    }
    this.free = [];
    this.freeFolios = [];
    if (error !== null) throw error;
  }

  /**
   * dmirror_device_evict_chunk: migrate_device_range over the chunk, each page to a new
   * system page, each folio to a new THP. The kernel allocates with __GFP_NOFAIL; when system
   * memory runs out here the pages left without a destination are restored where they were
   * (as migrate_device_finalize restores any page whose destination failed), and the eviction
   * reports ENOMEM once every page is back in place.
   */
  private evictChunk(chunk: DmirrorChunk): void {
    const n = chunk.npages;
    const src = new Float64Array(n);
    const dst = new Float64Array(n);
    const machine = this.machine;
    const phys = machine.phys;
    migrateDeviceRange(machine, src, chunk.firstPfn, n);
    let missing = 0;
    for (let i = 0; i < n; i++) {
      const s = src[i]!;
      const spage = migratePfnToPage(s);
      if (spage < 0 || !migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
      const compound = migratePfnHas(s, MIGRATE_PFN_COMPOUND);
      const dpage = missing > 0 ? -1 : phys.tryAllocPages(compound ? HPAGE_PMD_ORDER : 0);
      if (dpage < 0) {
        missing++;
        continue;
      }
      phys.trylockPage(dpage);
      for (let k = 0, n = compound ? PMD_NR : 1; k < n; k++) phys.copyPage(dpage + k, spage + k);
      dst[i] = migratePfn(dpage) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0) + (compound ? MIGRATE_PFN_COMPOUND : 0);
    }
    migrateDevicePages(machine, src, dst, n);
    migrateDeviceFinalize(machine, src, dst, n);
    if (missing > 0) fail('ENOMEM', `out of system memory evicting ${this.name}'s memory: ${missing} page(s) stay in device memory`);
  }
}

/** The loaded driver: its devices, by minor. */
export class DmirrorDriver {
  readonly devices: DmirrorDevice[] = [];
  constructor(readonly machine: Machine, readonly options: Required<DmirrorOptions>) {}

  device(minor: number): DmirrorDevice | undefined {
    return this.devices[minor];
  }

  /** hmm_dmirror_exit: evict and unregister every device's memory. */
  unload(): void {
    for (const d of this.devices) d.removeChunks();
    drivers.delete(this.machine);
  }
}

const drivers = new WeakMap<Machine, DmirrorDriver>();

/**
 * hmm_dmirror_init: load the driver on a machine. Devices 0 and 1 get device-private memory,
 * 2 and 3 device-coherent memory; each registers its first chunk now.
 */
export function dmirrorInit(machine: Machine, opts: DmirrorOptions = {}): DmirrorDriver {
  if (drivers.has(machine)) fail('EEXIST', 'the dmirror driver is already loaded on this machine');
  const chunkBytes = opts.chunkBytes ?? DEVMEM_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0 || chunkBytes % (2 * 2 ** 20)) fail('EINVAL', 'chunkBytes must be a positive multiple of 2 MiB');
  const options: Required<DmirrorOptions> = { chunkBytes, coherent: opts.coherent ?? true };
  const driver = new DmirrorDriver(machine, options);
  const n = options.coherent ? DMIRROR_NDEVICES : 2;
  for (let minor = 0; minor < n; minor++) {
    const type = minor < 2 ? HMM_DMIRROR_MEMORY_DEVICE_PRIVATE : HMM_DMIRROR_MEMORY_DEVICE_COHERENT;
    const dev = new DmirrorDevice(machine, minor, type, chunkBytes);
    if (!dev.allocateChunk()) fail('ENOMEM', `no physical window for ${dev.name}'s memory`);
    driver.devices.push(dev);
  }
  drivers.set(machine, driver);
  return driver;
}

/** The driver loaded on a machine, if any. */
export function dmirrorDriverOf(machine: Machine): DmirrorDriver | undefined {
  return drivers.get(machine);
}

/** The dmirror device that owns a device page (dmirror_page_to_device), or undefined. */
export function dmirrorPageToDevice(machine: Machine, pfn: number): DmirrorDevice | undefined {
  const owner = machine.phys.pagemapOf(pfn)?.owner;
  return owner instanceof DmirrorDevice ? owner : undefined;
}

