// Misuse of the migration API: a typed errno and nothing changed (page tables, src, data, no
// invalidation sent); where the kernel itself answers without an error (a file mapping, a
// range already under migration) the test shows that nothing migrates instead.
import { describe, expect, it } from 'vitest';
import {
  allocPages, DevPagemap, Machine, MAP_ANONYMOUS, mmapDevice, putPage, vmInsertPage, MAP_SHARED, memremapPages, MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_SYSTEM, migrateDeviceFinalize,
  migrateDevicePages, migrateDeviceRange, migratePfn, migratePfnHas,
  migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, VM_MIXEDMAP, type MigrateVma, type Process,
} from '../../../src/index.js';
import { entry, expectAllFree, expectConsistent, K_DEVICE_PRIVATE, K_MIGRATION, K_PRESENT, P, pattern, setup, type Entry } from './helpers.js';
import type { TestDevice } from './device.js';

function snapshot(p: Process, a: number, n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => entry(p, a + i * P));
}

/** Expect `fn` to fail with errno having sent no invalidation and changed no entry of [a, a + n pages). */
function expectRefused(m: Machine, p: Process, a: number, n: number, errno: string, fn: () => void): void {
  const before = snapshot(p, a, n);
  const events: string[] = [];
  const off = m.events.subscribe('invalidate', (e) => events.push(e.range.event));
  try {
    expect(fn).toThrow(expect.objectContaining({ errno }));
  } finally {
    off();
  }
  expect(events).toEqual([]);
  expect(snapshot(p, a, n)).toEqual(before);
}

/** Give each collected page a device destination with its data. */
function fill(m: Machine, dev: TestDevice, args: MigrateVma): number[] {
  const out: number[] = [];
  for (let i = 0; i < args.npages; i++) {
    if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
    const d = dev.allocPage();
    const s = migratePfnToPage(args.src[i]!);
    if (s >= 0) m.phys.copyPage(d, s);
    args.dst[i] = migratePfn(d);
    out.push(d);
  }
  return out;
}

describe('migration: bad input', () => {
  it('a range outside the vma (past its end, before its start, a stale vma): EINVAL, src untouched, nothing changed', () => {
    const { m, dev, p, a } = setup(4);
    for (let i = 0; i < 4; i++) p.write(a + i * P, pattern(i));
    const vma = p.mm.findVma(a)!;
    for (const [s, e] of [[a + 2 * P, a + 6 * P], [a - P, a + P], [a - 8 * P, a - 6 * P]]) {
      const args = newMigrateVma(vma, s!, e!, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
      args.src.fill(3);
      expectRefused(m, p, a, 4, 'EINVAL', () => migrateVmaSetup(args));
      expect([...args.src].every((v) => v === 3)).toBe(true);
    }
    p.munmap(a, 2 * P); // the vma object is gone; [a + 2P, a + 4P) is another one now
    expectRefused(m, p, a + 2 * P, 2, 'EINVAL', () => migrateVmaSetup(newMigrateVma(vma, a + 2 * P, a + 3 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner)));
    for (let i = 2; i < 4; i++) expect(p.read(a + i * P, P)).toEqual(pattern(i));
    expectConsistent(m);
  });

  it('a device file mapping (VM_MIXEDMAP): EINVAL; an ordinary file mapping: no errno in the kernel, and nothing migrates', () => {
    const { m, dev, p } = setup(1);
    // The driver's mmap inserts pages of its own (vm_insert_page), as dmirror's does.
    const d = mmapDevice(p.mm, 0x400000000, 2 * P, 3, MAP_SHARED, 0, {
      mmap: (v) => {
        for (let a = v.start; a < v.end; a += P) {
          const page = allocPages(m);
          vmInsertPage(v, a, page);
          putPage(m, page);
        }
      },
    });
    p.write(d, pattern(1));
    expect(p.mm.findVma(d)!.flags & VM_MIXEDMAP).toBe(VM_MIXEDMAP);
    expectRefused(m, p, d, 2, 'EINVAL', () => migrateVmaSetup(newMigrateVma(p.mm.findVma(d)!, d, d + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner)));
    expect(p.read(d, P)).toEqual(pattern(1));
    const x = p.mmap(0x500000000, 2 * P, 3, MAP_SHARED | MAP_ANONYMOUS);
    p.write(x, pattern(1));
    const before = snapshot(p, x, 2);
    expect(dev.migrateToDevice(p.mm, x, x + 2 * P)).toBe(0);
    expect(snapshot(p, x, 2)).toEqual(before);
    expect(p.read(x, P)).toEqual(pattern(1));
    expectConsistent(m);
  });

  it('src or dst of the wrong length: EINVAL at setup; a dst swapped for one of another length at pages(): EINVAL, nothing moved', () => {
    const { m, dev, p, a } = setup(4);
    for (let i = 0; i < 4; i++) p.write(a + i * P, pattern(i));
    const vma = p.mm.findVma(a)!;
    for (const [ns, nd] of [[4, 3], [4, 5], [3, 4], [0, 4]]) {
      const args = { ...newMigrateVma(vma, a, a + 4 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner), src: new Float64Array(ns!), dst: new Float64Array(nd!) };
      expectRefused(m, p, a, 4, 'EINVAL', () => migrateVmaSetup(args));
    }
    const same = newMigrateVma(vma, a, a + 4 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    same.dst = same.src;
    expectRefused(m, p, a, 4, 'EINVAL', () => migrateVmaSetup(same));
    // Plain arrays of numbers work as well as Float64Arrays.
    const args = { ...newMigrateVma(vma, a, a + 4 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner), src: [0, 0, 0, 0], dst: [0, 0, 0, 0] };
    migrateVmaSetup(args);
    const good = args.dst;
    fill(m, dev, args);
    args.dst = [...good, 0];
    expectRefused(m, p, a, 4, 'EINVAL', () => migrateVmaPages(args));
    args.dst = good;
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(entry(p, a + 3 * P).kind).toBe(K_DEVICE_PRIVATE);
    for (let i = 0; i < 4; i++) expect(p.read(a + i * P, P)).toEqual(pattern(i));
    p.exit();
    expectAllFree(m, dev);
  });

  it('a destination page given twice, a source page given as a destination, or a free page: EINVAL before anything moves', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    p.write(a + P, pattern(2));
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    const [d0] = fill(m, dev, args);
    const bad = [
      [migratePfn(d0!), migratePfn(d0!)],
      [migratePfn(d0!), args.src[0]! - MIGRATE_PFN_MIGRATE],
      [args.src[1]! - MIGRATE_PFN_MIGRATE, migratePfn(d0!)], // rising order (system page, then device page): a source all the same
      [migratePfn(d0!), migratePfn(dev.pgmap.firstPfn + 200)], // never handed out
      [migratePfn(d0!), migratePfn(m.phys.ramFrames - 1)], // free RAM
      [migratePfn(d0!), migratePfn(2 ** 31)], // no such frame
    ];
    const good = [...args.dst];
    const setDst = (v: number[]): void => v.forEach((x, i) => (args.dst[i] = x));
    for (const dst of bad) {
      setDst(dst);
      expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaPages(args));
      expect(migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)).toBe(true); // nothing cleared either
    }
    setDst(good);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(p.read(a + P, P)).toEqual(pattern(2));
    p.exit();
    expectAllFree(m, dev);
  });

  it('the destinations are checked across the 64-entry chunks of the check: a page given twice far apart is EINVAL, distinct pages out of order are not', () => {
    const n = 200;
    const { m, dev, p, a } = setup(n);
    for (let i = 0; i < n; i++) p.write(a + i * P, pattern(i));
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + n * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    fill(m, dev, args);
    const good = [...args.dst];
    // Entry 64, the first of the second chunk, repeats entry 10's page: in order within its
    // chunk, given twice across chunks.
    args.dst[64] = good[10]!;
    expectRefused(m, p, a, n, 'EINVAL', () => migrateVmaPages(args));
    // Two distinct pages swapped across a chunk boundary: out of order, and nothing wrong.
    args.dst[63] = good[64]!;
    args.dst[64] = good[63]!;
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    for (const i of [0, 10, 63, 64, 100, n - 1]) expect(entry(p, a + i * P).kind).toBe(K_DEVICE_PRIVATE);
    expect(p.read(a + 63 * P, P)).toEqual(pattern(64)); // the swapped destinations hold what the driver copied into them
    expect(p.read(a + 100 * P, P)).toEqual(pattern(100));
    p.exit();
    expectAllFree(m, dev);
  });

  it('a migration set up twice, pages() or finalize() without setup, finalize twice, src changed by the driver: EINVAL, nothing changed', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    p.write(a + P, pattern(2));
    const vma = p.mm.findVma(a)!;
    const fresh = newMigrateVma(vma, a, a + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaPages(fresh));
    expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaFinalize(fresh));
    const args = newMigrateVma(vma, a, a + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    expect(entry(p, a).kind).toBe(K_MIGRATION);
    const collected = [...args.src];
    expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaSetup(args));
    expect([...args.src]).toEqual(collected);
    // The kernel's own answer to a second migration of pages under migration: nothing collected.
    const second = newMigrateVma(vma, a, a + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(second);
    expect(second.cpages).toBe(0);
    migrateVmaFinalize(second);
    fill(m, dev, args);
    args.src[1] = migratePfn(12345) + MIGRATE_PFN_MIGRATE;
    expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaPages(args));
    args.src[1] = collected[1]!;
    migrateVmaPages(args);
    expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaPages(args));
    migrateVmaFinalize(args);
    expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaFinalize(args));
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE);
    expect(p.read(a + P, P)).toEqual(pattern(2));
    p.exit();
    expectAllFree(m, dev);
  });

  it('setup on an exited process: ESRCH; migrate_device_range over memory that is not device memory: EINVAL, nothing locked', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(1));
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    const pfn = entry(p, a).val;
    expect(() => migrateDeviceRange(m, new Float64Array(2), pfn, 2)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => migrateDeviceRange(m, new Float64Array(2), dev.pgmap.firstPfn + dev.pgmap.nframes - 1, 2)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => migrateDeviceRange(m, new Float64Array(1), dev.pgmap.firstPfn, 2)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(m.phys.isLocked(pfn)).toBe(false);
    expect(entry(p, a).kind).toBe(K_PRESENT);
    p.exit();
    expect(() => migrateVmaSetup(args)).toThrow(expect.objectContaining({ errno: 'ESRCH' }));
    expectAllFree(m, dev);
  });

  it('memremapPages of 2^31 frames: ENOMEM at once, nothing registered (the frame table cannot describe them)', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const pgmap = new DevPagemap('private', {}, { pageFree: () => {}, migrateToRam: () => 0 });
    const cap = m.phys.frames.capacity;
    const t = Date.now();
    expect(() => memremapPages(m, pgmap, 2 ** 31)).toThrow(expect.objectContaining({ errno: 'ENOMEM' }));
    expect(() => memremapPages(m, pgmap, 2 ** 33)).toThrow(expect.objectContaining({ errno: 'ERANGE' }));
    expect(Date.now() - t).toBeLessThan(1000);
    expect(m.phys.pagemapList).toEqual([]);
    expect(m.phys.frames.capacity).toBe(cap);
    expect(memremapPages(m, pgmap, 16)).toBeGreaterThan(0); // and the window is still there
  });

  it('migrate_vma_pages with a dst entry that is not an encoded pfn (NaN, -1, 1.5): EINVAL before anything moves (deviation 31)', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    fill(m, dev, args);
    const good = args.dst[0]!;
    for (const bad of [NaN, -1, 1.5, Infinity]) {
      args.dst[0] = bad;
      expectRefused(m, p, a, 2, 'EINVAL', () => migrateVmaPages(args));
    }
    args.dst[0] = good;
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(p.read(a, P)).toEqual(pattern(1));
    p.exit();
    expectAllFree(m, dev);
  });

  it('migrate_device_pages / migrate_device_finalize with npages NaN or -1, or entries that are not encoded pfns: EINVAL, nothing moved or released', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(3));
    dev.migrateToDevice(p.mm, a, a + P);
    const dpfn = entry(p, a).val;
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    migrateDeviceRange(m, src, dpfn, 1);
    expect(entry(p, a).kind).toBe(K_MIGRATION);
    const page = m.phys.allocPages(0);
    m.phys.trylockPage(page);
    m.phys.copyPage(page, dpfn);
    dst[0] = migratePfn(page);
    for (const n of [NaN, -1, 1.5]) {
      expect(() => migrateDevicePages(m, src, dst, n)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
      expect(() => migrateDeviceFinalize(m, src, dst, n)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    }
    for (const bad of [NaN, -1]) {
      expect(() => migrateDevicePages(m, [bad], dst, 1)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
      expect(() => migrateDeviceFinalize(m, src, [bad], 1)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    }
    expect(entry(p, a).kind).toBe(K_MIGRATION); // nothing remapped, nothing released
    expect(m.phys.isLocked(dpfn)).toBe(true);
    migrateDevicePages(m, src, dst, 1);
    migrateDeviceFinalize(m, src, dst, 1);
    expect(entry(p, a).kind).toBe(K_PRESENT);
    expect(p.read(a, P)).toEqual(pattern(3));
    p.exit();
    expectAllFree(m, dev);
  });
});
