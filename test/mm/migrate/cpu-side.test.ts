// The core mm with device entries (mm/memory.c: do_swap_page, copy_nonpresent_pte, zap_pte_range): fork,
// munmap/zap, mprotect, mremap, madvise, swap-out and exit on device-private pages and
// migration entries, and the dev_pagemap registration (memremap_pages).
import { describe, expect, it } from 'vitest';
import {
  DevPagemap, isDeviceCoherentPage, isDevicePrivatePage, isZoneDevicePage, MADV_COLLAPSE, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT,
  Machine, memremapPages, memunmapPages, MIGRATE_PFN_MIGRATE, migrateDeviceFinalize, migrateDevicePages, migrateDeviceRange,
  migratePfn, migratePfnHas, migratePfnToPage, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq, pagePgmap, PMD_SIZE,
  PROT_READ, type MmuNotifierRange,
} from '../../../src/index.js';
import { TestDevice } from './device.js';
import { ANON, entry, expectAllFree, expectConsistent, K_DEVICE_PRIVATE, K_MIGRATION, K_PRESENT, P, pattern, RW, setup } from './helpers.js';

describe('the core mm on device-private entries', () => {
  it('fork copies a device-private entry with a reference and an rmap entry; the child\'s exit and the parent\'s each drop one; page_free once', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    const d = entry(p, a).val;
    const c = p.fork();
    expect(m.rmap.count(d)).toBe(2);
    expect(m.phys.frames.mapcount[d]).toBe(2);
    c.exit();
    expect(m.phys.frames.refcount[d]).toBe(1);
    expect(dev.freed).toBe(0);
    expect(p.read(a, P)).toEqual(pattern(1)); // the parent's entry is read-only but still its own data
    p.exit();
    expectAllFree(m, dev);
  });

  it('munmap (zap) of a device-private entry drops its reference and rss; the last one calls page_free', () => {
    const { m, dev, p, a } = setup(4);
    for (let i = 0; i < 4; i++) p.write(a + i * P, pattern(i));
    dev.migrateToDevice(p.mm, a, a + 4 * P);
    const d = entry(p, a + P).val;
    p.munmap(a + P, 2 * P);
    expect(p.mm.rss[1]).toBe(2);
    expect(dev.freed).toBe(2);
    expect(dev.freedTimes.get(d)).toBe(1);
    p.madvise(a, P, MADV_DONTNEED);
    expect(dev.freed).toBe(3);
    expect(p.read(a, 4)).toEqual(new Uint8Array(4));
    expectConsistent(m);
    p.exit();
    expectAllFree(m, dev);
  });

  it('mprotect: a writable device-private entry becomes read-only (PROTECTION_VMA); making the vma writable again does not upgrade it', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    const seen: MmuNotifierRange[] = [];
    mmuIntervalNotifierInsert(new MmuIntervalNotifier({ invalidate: (s, r, q) => (mmuIntervalSetSeq(s, q), seen.push(r), true) }), p.mm, a, P);
    p.mprotect(a, P, PROT_READ);
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, write: false });
    expect(seen.map((r) => r.event)).toEqual(['PROTECTION_VMA']);
    p.mprotect(a, P, RW);
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, write: false });
    p.write(a, Uint8Array.of(3)); // migrates back, then the write fault makes it writable
    expect(entry(p, a)).toMatchObject({ kind: K_PRESENT, write: true });
    expect(dev.faults).toBe(1);
    p.exit();
    expectAllFree(m, dev);
  });

  it('swap-out and MADV_PAGEOUT never touch device-private pages', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + 2 * P);
    const before = [entry(p, a), entry(p, a + P)];
    p.madvise(a, 2 * P, MADV_PAGEOUT);
    expect([entry(p, a), entry(p, a + P)]).toEqual(before);
    expect(m.swap.used).toBe(0);
    p.exit();
    expectAllFree(m, dev);
  });

  it('MADV_COLLAPSE refuses a range holding device memory (khugepaged never collapses ZONE_DEVICE pages)', () => {
    for (const type of ['private', 'coherent'] as const) {
      const m = new Machine({ ramBytes: 32 << 20 });
      const dev = new TestDevice(m, { frames: 8, type });
      const p = m.spawn();
      const a = p.mmap(0, PMD_SIZE, RW, ANON);
      p.madvise(a, PMD_SIZE, 15 /* MADV_NOHUGEPAGE */);
      p.write(a, pattern(1));
      dev.migrateToDevice(p.mm, a, a + P);
      p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
      expect(() => p.madvise(a, PMD_SIZE, MADV_COLLAPSE)).toThrow(expect.objectContaining({ errno: 'EAGAIN' }));
      expect(m.phys.pagemapOf(entry(p, a).val)).toBe(dev.pgmap);
      expect(p.read(a, P)).toEqual(pattern(1));
      p.exit();
      expectAllFree(m, dev);
    }
  });

  it('exit of the last of several mappings (fork, parent exits first) calls page_free once', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + 2 * P);
    const c = p.fork();
    const g = c.fork();
    p.exit();
    c.exit();
    expect(dev.freed).toBe(0);
    expect(g.read(a, P)).toEqual(pattern(1)); // migrates page 0 back: page_free for it
    expect(dev.freed).toBe(1);
    g.exit();
    expect(dev.freed).toBe(2);
    expectAllFree(m, dev);
  });

  it('fork during an eviction copies the migration entries, and the page stops being exclusive: a later write breaks COW', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    const n = dev.pgmap.nframes;
    const src = new Float64Array(n);
    const dst = new Float64Array(n);
    migrateDeviceRange(m, src, dev.pgmap.firstPfn, n); // no mmap lock: fork can run in between
    const i = src.findIndex((v) => migratePfnHas(v, MIGRATE_PFN_MIGRATE));
    expect(entry(p, a).kind).toBe(K_MIGRATION);
    const c = p.fork();
    expect(entry(c, a)).toMatchObject({ kind: K_MIGRATION, write: false });
    const page = m.phys.allocPages(0);
    m.phys.trylockPage(page);
    m.phys.copyPage(page, migratePfnToPage(src[i]!));
    dst[i] = migratePfn(page);
    migrateDevicePages(m, src, dst, n);
    migrateDeviceFinalize(m, src, dst, n);
    expect(entry(c, a)).toMatchObject({ kind: K_PRESENT, val: page, write: false });
    expect(entry(p, a)).toMatchObject({ kind: K_PRESENT, val: page, write: false });
    p.write(a, Uint8Array.of(0xff));
    expect(c.read(a, P)).toEqual(pattern(1));
    expect(entry(p, a).val).not.toBe(page);
    expectConsistent(m);
    c.exit();
    p.exit();
    expectAllFree(m, dev);
  });
});

describe('memremap_pages / memunmap_pages', () => {
  const ops = { pageFree: () => {}, migrateToRam: () => 0 };

  it('registers private and coherent pagemaps; the page predicates tell them apart', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const priv = new DevPagemap('private', 'a', ops);
    const coh = new DevPagemap('coherent', 'b', { pageFree: () => {} });
    const pf = memremapPages(m, priv, 16);
    const cf = memremapPages(m, coh, 16);
    expect(pf).toBeGreaterThanOrEqual(m.phys.ramFrames);
    expect([isZoneDevicePage(m, pf), isDevicePrivatePage(m, pf), isDeviceCoherentPage(m, pf)]).toEqual([true, true, false]);
    expect([isZoneDevicePage(m, cf + 15), isDevicePrivatePage(m, cf + 15), isDeviceCoherentPage(m, cf + 15)]).toEqual([true, false, true]);
    expect([isZoneDevicePage(m, 3), pagePgmap(m, 3)]).toEqual([false, undefined]);
    expect(pagePgmap(m, pf + 3)).toBe(priv);
    expect(m.phys.frames.refcount[pf]).toBe(0); // idle device pages have no reference
  });

  it('refuses a pagemap without page_free, a private one without migrate_to_ram, one without an owner, a bad size, one registered twice: EINVAL', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const good = new DevPagemap('private', 'x', ops);
    memremapPages(m, good, 4);
    const bad: Array<[DevPagemap, number]> = [
      [new DevPagemap('private', 'x', { migrateToRam: () => 0 } as unknown as typeof ops), 4],
      [new DevPagemap('private', 'x', { pageFree: () => {} }), 4],
      [new DevPagemap('private', null, ops), 4],
      [new DevPagemap('fsdax' as 'private', 'x', ops), 4],
      [new DevPagemap('coherent', 'x', ops), 0],
      [new DevPagemap('coherent', 'x', ops), 1.5],
      [good, 4],
    ];
    const before = m.phys.pagemapList.length;
    for (const [pg, n] of bad) expect(() => memremapPages(m, pg, n)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(m.phys.pagemapList.length).toBe(before);
  });

  it('memunmap_pages is EBUSY while a page is in use (nothing migrated back); after eviction it succeeds and the driver data goes', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + 2 * P);
    const d = entry(p, a).val;
    m.phys.zoneDeviceData.set(d, { mine: true });
    expect(() => memunmapPages(m, dev.pgmap)).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE);
    dev.evictAll();
    memunmapPages(m, dev.pgmap);
    expect(m.phys.zoneDeviceData.has(d)).toBe(false);
    expect(isZoneDevicePage(m, d)).toBe(false);
    expect(() => memunmapPages(m, dev.pgmap)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(p.read(a, P)).toEqual(pattern(1));
    expectConsistent(m);
  });
});
