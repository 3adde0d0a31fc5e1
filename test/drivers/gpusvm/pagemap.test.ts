// drm_pagemap: migration to device memory (all or nothing), migrate_to_ram of the whole
// allocation's window, evict_to_ram, and the allocation released with its last page (Vram).
import { describe, expect, it } from 'vitest';
import {
  drmGpusvmRangeFindOrInsert, drmGpusvmScanMm, drmPagemapEvictToRam, drmPagemapMigrateToDevmem, drmPagemapPageToDpagemap, DRM_GPUSVM_SCAN_EQUAL, EAGER_PAGE_COPY,
  DRM_GPUSVM_SCAN_MIXED, DRM_GPUSVM_SCAN_OTHER, DRM_GPUSVM_SCAN_SYSTEM, DRM_GPUSVM_SCAN_UNPOPULATED, Vram,
} from '../../../src/drivers/gpusvm/index.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { getUserPages, KernelError, pagemap, unpinUserPages } from '../../../src/index.js';
import { MiB, P, makeDriver, setup } from './helpers.js';

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof KernelError) return e.errno;
    throw e;
  }
  throw new Error('no error');
}

describe('drm_pagemap', () => {
  it('migrates a range into device memory with its data (holes read as zeros), and a CPU read brings the whole allocation back', () => {
    const { m, p, a } = setup(4 * MiB);
    for (let i = 0; i < 512; i += 2) p.writeU32(a + i * P, 1000 + i); // odd pages are holes
    const vram = new Vram(m, 'dev', 1024);
    vram.populateMm(vram.dpagemap, a, a + 2 * MiB, p.mm, 0);
    expect(vram.usedPages).toBe(512);
    for (let i = 0; i < 512; i++) {
      const e = pagemap(p.mm, a + i * P);
      expect(e.kind).toBe('device-private');
      expect(drmPagemapPageToDpagemap(m, e.pfn)).toBe(vram.dpagemap);
    }
    expect(vram.stats.pagesToDevice).toBe(512);
    // One CPU read: migrate_to_ram brings all 512 pages back (the allocation's window).
    expect(p.readU32(a + 100 * P)).toBe(1100);
    for (let i = 0; i < 512; i++) expect(pagemap(p.mm, a + i * P).kind).toBe('anon');
    for (let i = 0; i < 512; i++) expect(p.readU32(a + i * P)).toBe(i % 2 ? 0 : 1000 + i);
    expect(vram.usedPages).toBe(0);
    expect(vram.stats.releases).toBe(1);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('the eager copy engine (EAGER_PAGE_COPY) gives each device page its own bytes at copy time; the lazy one shares the slot', () => {
    for (const eager of [false, true]) {
      const { m, p, a } = setup(4 * MiB);
      for (let i = 0; i < 512; i++) p.writeU32(a + i * P, 7000 + i);
      const vram = new Vram(m, 'dev', 1024);
      if (eager) vram.pageCopy = EAGER_PAGE_COPY;
      const slotsAtCopy: number[] = [];
      vram.onCopy = () => void slotsAtCopy.push(m.phys.data.slotsInUse);
      vram.populateMm(vram.dpagemap, a, a + 2 * MiB, p.mm, 0);
      vram.evictAll();
      // While both copies live (before finalize frees the sources): twice the slots when the bytes were copied.
      expect(slotsAtCopy, eager ? 'eager' : 'lazy').toEqual(eager ? [1024, 1024] : [512, 512]);
      for (let i = 0; i < 512; i++) expect(p.readU32(a + i * P)).toBe(7000 + i);
      expect(checkInvariants(m)).toEqual([]);
    }
  });

  it('all or nothing: one pinned page makes the migration EBUSY; nothing moves, the allocation is released', () => {
    const { m, p, a } = setup(2 * MiB);
    for (let i = 0; i < 512; i++) p.writeU8(a + i * P, 7);
    const pinned = getUserPages(p.mm, a + 7 * P, 1, { pin: true });
    const vram = new Vram(m, 'dev', 1024);
    expect(errnoOf(() => vram.populateMm(vram.dpagemap, a, a + 2 * MiB, p.mm, 0))).toBe('EBUSY');
    expect(vram.usedPages).toBe(0);
    for (let i = 0; i < 512; i++) expect(pagemap(p.mm, a + i * P).kind).toBe('anon');
    expect(checkInvariants(m)).toEqual([]);
    unpinUserPages(p.mm, pinned);
  });

  it('errors: no VMA (ENOENT), outside the VMA or the allocation (EINVAL), no room (ENOSPC)', () => {
    const { m, p, a } = setup(2 * MiB);
    const vram = new Vram(m, 'dev', 16);
    const al = vram.alloc(p.mm, 16)!;
    expect(errnoOf(() => drmPagemapMigrateToDevmem(al, p.mm, 0x100000, 0x100000 + P, 0, 'dev'))).toBe('ENOENT');
    expect(errnoOf(() => drmPagemapMigrateToDevmem(al, p.mm, a + 2 * MiB - P, a + 2 * MiB + P, 0, 'dev'))).toBe('EINVAL');
    expect(errnoOf(() => drmPagemapMigrateToDevmem(al, p.mm, a, a + 17 * P, 0, 'dev'))).toBe('EINVAL');
    vram.devmemRelease(al);
    expect(errnoOf(() => vram.populateMm(vram.dpagemap, a, a + 17 * P, p.mm, 0))).toBe('ENOSPC');
    expect(vram.usedPages).toBe(0);
  });

  it('evict_to_ram brings every page of an allocation back, whoever maps it (after fork: both processes)', () => {
    const { m, p, a } = setup(2 * MiB);
    for (let i = 0; i < 16; i++) p.writeU8(a + i * P, i + 1);
    const vram = new Vram(m, 'dev', 64);
    vram.populateMm(vram.dpagemap, a, a + 16 * P, p.mm, 0);
    const child = p.fork(); // device-private entries are shared with the child
    expect(pagemap(child.mm, a).kind).toBe('device-private');
    expect(vram.evictAll()).toBe(1);
    for (let i = 0; i < 16; i++) {
      expect(pagemap(p.mm, a + i * P).kind).toBe('anon');
      expect(pagemap(child.mm, a + i * P).pfn).toBe(pagemap(p.mm, a + i * P).pfn);
      expect(child.readU8(a + i * P)).toBe(i + 1);
    }
    expect(vram.usedPages).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
    child.exit();
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('a CPU fault after a partial munmap migrates only what is left of the window (clipped to the VMA)', () => {
    const { m, p, a } = setup(2 * MiB);
    for (let i = 0; i < 512; i++) p.writeU8(a + i * P, 3);
    const vram = new Vram(m, 'dev', 512);
    vram.populateMm(vram.dpagemap, a, a + 2 * MiB, p.mm, 0);
    p.munmap(a, MiB);
    expect(vram.usedPages).toBe(512); // the allocation lives while any of its pages does
    expect(p.readU8(a + MiB)).toBe(3);
    for (let i = 256; i < 512; i++) expect(pagemap(p.mm, a + i * P).kind).toBe('anon');
    expect(vram.usedPages).toBe(0);
    void drmPagemapEvictToRam;
    expect(checkInvariants(m)).toEqual([]);
  });
});

describe('drm_gpusvm_scan_mm', () => {
  it('says where a range\'s pages are: unpopulated, system, this pagemap, another, mixed', () => {
    const { m, p, a } = setup(2 * MiB);
    const d = makeDriver(p.mm);
    const r = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, {});
    const vram = new Vram(m, 'dev', 1024);
    const other = new Vram(m, 'dev', 1024);
    expect(drmGpusvmScanMm(r, 'dev', vram.dpagemap.pgmap)).toBe(DRM_GPUSVM_SCAN_UNPOPULATED);
    for (let i = 0; i < 512; i++) p.writeU8(a + i * P, 1);
    expect(drmGpusvmScanMm(r, 'dev', vram.dpagemap.pgmap)).toBe(DRM_GPUSVM_SCAN_SYSTEM);
    vram.populateMm(vram.dpagemap, a, a + MiB, p.mm, 0);
    expect(drmGpusvmScanMm(r, 'dev', vram.dpagemap.pgmap)).toBe(DRM_GPUSVM_SCAN_MIXED);
    vram.populateMm(vram.dpagemap, a + MiB, a + 2 * MiB, p.mm, 0);
    expect(drmGpusvmScanMm(r, 'dev', vram.dpagemap.pgmap)).toBe(DRM_GPUSVM_SCAN_EQUAL);
    expect(drmGpusvmScanMm(r, 'dev', other.dpagemap.pgmap)).toBe(DRM_GPUSVM_SCAN_OTHER);
  });
});
