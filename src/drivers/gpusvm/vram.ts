// A device's memory for gpusvm drivers: a drm_pagemap over `nframes` frames of private device
// memory, an allocator handing out DrmPagemapDevmem allocations of whole ranges (as Xe
// allocates a VRAM buffer object per range in xe_svm_alloc_vram), and the copy engine
// (copy_to_devmem / copy_to_ram: the frames' data is copied, lazily, by PhysMem.copyPage).
// It is the driver side of drm_pagemap_ops.populate_mm and drm_pagemap_devmem_ops, in one
// object; a driver with its own allocator (UVM's root chunks, a buddy) implements the same
// two interfaces instead.
//
// Free frames sit on a stack in an Int32Array. An allocation returns to it whole when its
// last page is freed (devmem_release), as a buffer object does.

import { fail } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Machine } from '../../mm/machine.js';
import { memunmapPages } from '../../mm/memremap.js';
import type { Mm } from '../../mm/mm.js';
import type { PhysMem } from '../../mm/physmem.js';
import type { MigratePfnArray } from '../../mm/migrate.js';
import { MIGRATE_CHUNK } from '../../mm/migrate_entries.js';
import {
  drmPagemapEvictToRam, drmPagemapMigrateToDevmem, DrmPagemap, DrmPagemapDevmem, type DrmPagemapDevmemOps, type DrmPagemapOps,
} from './pagemap.js';

/** How the copy engine moves one page's data. */
export interface PageCopy {
  copy(phys: PhysMem, dst: number, src: number): void;
}
/** The default: dst shares src's data slot until either is written (PhysMem.copyPage). */
export const LAZY_PAGE_COPY: PageCopy = { copy: (phys, dst, src) => phys.copyPage(dst, src) };
/** The bytes are copied at migration time, as the hardware's copy engine does (PhysMem.copyHighpage). */
export const EAGER_PAGE_COPY: PageCopy = { copy: (phys, dst, src) => phys.copyHighpage(dst, src) };

/** copy_to_devmem over entries [from, to); returns the device pages written (copied, or cleared for an empty address). */
function copyToDevmemChunk(phys: PhysMem, pageCopy: PageCopy, devPfns: Int32Array, sysPfns: Int32Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = devPfns[i]!;
    if (d < 0) continue;
    const s = sysPfns[i]!;
    if (s >= 0) pageCopy.copy(phys, d, s);
    else phys.clearPage(d); // an empty address: the device page reads as zeros
    n++;
  }
  return n;
}

/** copy_to_ram over entries [from, to); returns the pages copied. */
function copyToRamChunk(phys: PhysMem, pageCopy: PageCopy, devPfns: Int32Array, sysPfns: Int32Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = devPfns[i]!;
    const s = sysPfns[i]!;
    if (d < 0 || s < 0) continue;
    pageCopy.copy(phys, s, d);
    n++;
  }
  return n;
}

/** One allocation of VRAM: the frames it holds. */
export class VramAllocation extends DrmPagemapDevmem {
  released = false;
  constructor(mm: Mm, vram: Vram, readonly frames: Int32Array) {
    super(mm, vram, vram.dpagemap, frames.length * PAGE_SIZE);
  }
}

export interface VramStats {
  allocations: number;
  releases: number;
  /** Allocations refused (no room, or failNextAllocs). */
  allocFailures: number;
  /** Pages copied by the copy engine, each way. */
  pagesToDevice: number;
  pagesToRam: number;
}

/** Device memory with an allocator and a copy engine (see the header). */
export class Vram implements DrmPagemapOps, DrmPagemapDevmemOps {
  readonly dpagemap: DrmPagemap;
  private readonly freeStack: Int32Array;
  private nfree: number;
  /** Allocations not yet released (for evictAll and teardown). */
  private readonly live = new Set<VramAllocation>();
  readonly stats: VramStats = { allocations: 0, releases: 0, allocFailures: 0, pagesToDevice: 0, pagesToRam: 0 };
  /** Fault injection: the next n allocations fail (ENOSPC). */
  failNextAllocs = 0;
  /** Called for every copy the engine makes (pages, direction): a hook for a timing model. */
  onCopy: ((npages: number, toDevice: boolean) => void) | null = null;
  /** How each page's data moves (chosen once, before the first migration). */
  pageCopy: PageCopy = LAZY_PAGE_COPY;

  /** memremap_pages `nframes` frames of private memory owned by `owner`. */
  constructor(readonly machine: Machine, readonly owner: unknown, nframes: number) {
    if (!Number.isSafeInteger(nframes) || nframes <= 0) fail('EINVAL', 'VRAM needs at least one frame');
    this.dpagemap = new DrmPagemap(machine, owner, nframes, this);
    this.freeStack = new Int32Array(nframes);
    const first = this.dpagemap.pgmap.firstPfn;
    for (let i = 0; i < nframes; i++) this.freeStack[i] = first + nframes - 1 - i;
    this.nfree = nframes;
  }

  get totalPages(): number {
    return this.freeStack.length;
  }
  get freePages(): number {
    return this.nfree;
  }
  /** Frames held by allocations. */
  get usedPages(): number {
    return this.freeStack.length - this.nfree;
  }

  /** An allocation of npages frames for mm, or null when VRAM is short (or failNextAllocs). */
  alloc(mm: Mm, npages: number): VramAllocation | null {
    if (!Number.isSafeInteger(npages) || npages <= 0) fail('EINVAL', `bad VRAM allocation size ${npages}`);
    if (this.failNextAllocs > 0 || npages > this.nfree) {
      if (this.failNextAllocs > 0) this.failNextAllocs--;
      this.stats.allocFailures++;
      return null;
    }
    const frames = this.freeStack.slice(this.nfree - npages, this.nfree);
    this.nfree -= npages;
    const a = new VramAllocation(mm, this, frames);
    this.live.add(a);
    this.stats.allocations++;
    return a;
  }

  // ---- drm_pagemap_ops ----

  /** populate_mm: allocate the range's size and migrate it (xe_drm_pagemap_populate_mm). ENOSPC when VRAM is short. */
  populateMm(_dpagemap: DrmPagemap, start: number, end: number, mm: Mm, timesliceMs: number): void {
    const a = this.alloc(mm, (end - start) / PAGE_SIZE);
    if (!a) fail('ENOSPC', `VRAM: no room for ${(end - start) / PAGE_SIZE} pages`);
    try {
      drmPagemapMigrateToDevmem(a, mm, start, end, timesliceMs, this.owner);
    } catch (e) {
      this.devmemRelease(a); // still ours on error
      throw e;
    }
  }

  // ---- drm_pagemap_devmem_ops ----

  populateDevmemPfn(devmem: DrmPagemapDevmem, npages: number, pfns: MigratePfnArray): void {
    const frames = (devmem as VramAllocation).frames;
    if (pfns instanceof Float64Array) pfns.set(frames.subarray(0, npages)); // one native copy
    else for (let i = 0; i < npages; i++) pfns[i] = frames[i]!;
  }

  copyToDevmem(devPfns: Int32Array, sysPfns: Int32Array, npages: number): void {
    const phys = this.machine.phys;
    let n = 0;
    for (let i = 0; i < npages; i += MIGRATE_CHUNK) n += copyToDevmemChunk(phys, this.pageCopy, devPfns, sysPfns, i, Math.min(npages, i + MIGRATE_CHUNK));
    this.stats.pagesToDevice += n;
    this.onCopy?.(n, true);
  }

  copyToRam(devPfns: Int32Array, sysPfns: Int32Array, npages: number): void {
    const phys = this.machine.phys;
    let n = 0;
    for (let i = 0; i < npages; i += MIGRATE_CHUNK) n += copyToRamChunk(phys, this.pageCopy, devPfns, sysPfns, i, Math.min(npages, i + MIGRATE_CHUNK));
    this.stats.pagesToRam += n;
    this.onCopy?.(n, false);
  }

  devmemRelease(devmem: DrmPagemapDevmem): void {
    const a = devmem as VramAllocation;
    if (a.released) return;
    a.released = true;
    this.live.delete(a);
    this.freeStack.set(a.frames, this.nfree);
    this.nfree += a.frames.length;
    this.stats.releases++;
  }

  // ---- teardown ----

  /** Evict every allocation to system memory (drm_pagemap_evict_to_ram each); returns how many were evicted. */
  evictAll(): number {
    let n = 0;
    for (const a of [...this.live]) {
      if (a.mm.dead) continue;
      drmPagemapEvictToRam(a);
      n++;
    }
    return n;
  }

  /** Unregister the memory (memunmap_pages); EBUSY while any page is in use. */
  destroy(): void {
    memunmapPages(this.machine, this.dpagemap.pgmap);
  }
}
