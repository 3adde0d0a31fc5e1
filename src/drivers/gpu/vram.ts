// The GPU's memory (VRAM) as the host sees it: a range of device frames the driver registers
// with memremap_pages, as MEMORY_DEVICE_PRIVATE (PCIe: the CPU cannot address it, it maps the
// pages only through device-private entries and faults them back through migrate_to_ram) or
// as MEMORY_DEVICE_COHERENT (NVLink-C2C-like links: the CPU maps and accesses it directly).
// The driver owns the frames: it allocates them (its own allocator), and gets each back
// through page_free when the last reference goes.

import { fail } from '../../mm/errno.js';
import type { Machine } from '../../mm/machine.js';
import { DevPagemap, memremapPages, memunmapPages, type DevPagemapOps, type MemoryType } from '../../mm/memremap.js';

/** 2 MiB in 4 KiB frames: VRAM is sized in whole root chunks. */
export const VRAM_CHUNK_FRAMES = 512;

export class Vram {
  readonly frames: number;
  pgmap: DevPagemap | null = null;

  constructor(private readonly machine: Machine, readonly bytes: number, readonly type: MemoryType) {
    if (!Number.isSafeInteger(bytes) || bytes < VRAM_CHUNK_FRAMES * 4096 || bytes % (VRAM_CHUNK_FRAMES * 4096)) {
      fail('EINVAL', `VRAM size must be a positive multiple of 2 MiB, got ${bytes}`);
    }
    if (type !== 'private' && type !== 'coherent') fail('EINVAL', `VRAM type must be 'private' or 'coherent', got ${String(type)}`);
    this.frames = bytes / 4096;
  }

  /** First frame (pfn) of VRAM; valid once registered. */
  get firstPfn(): number {
    if (!this.pgmap) throw new Error('VRAM is not registered');
    return this.pgmap.firstPfn;
  }

  /** memremap_pages: hand VRAM to the host with the driver's pagemap ops; returns the first pfn. */
  register(owner: unknown, ops: DevPagemapOps): number {
    if (this.pgmap) fail('EBUSY', 'VRAM is already registered');
    const pgmap = new DevPagemap(this.type, owner, ops);
    const first = memremapPages(this.machine, pgmap, this.frames);
    this.pgmap = pgmap;
    return first;
  }

  /** memunmap_pages: EBUSY while any VRAM page is still in use. */
  unregister(): void {
    if (!this.pgmap) return;
    memunmapPages(this.machine, this.pgmap);
    this.pgmap = null;
  }

  /** Whether pfn is a frame of this VRAM. */
  contains(pfn: number): boolean {
    return this.pgmap !== null && pfn >= this.pgmap.firstPfn && pfn < this.pgmap.firstPfn + this.frames;
  }
}
