// Data round trips: bytes the CPU wrote, migrated to a device, changed there, and read back by
// a CPU fault (or migrated back explicitly) are exactly right; afterwards every frame is free
// and page_free ran once per device page.
import { describe, expect, it } from 'vitest';
import { MADV_HUGEPAGE, MADV_PAGEOUT, Machine, PMD_SIZE } from '../../../src/index.js';
import { TestDevice } from './device.js';
import { ANON, entry, expectAllFree, expectConsistent, K_DEVICE_PRIVATE, K_NONE, K_PRESENT, K_SWAP, P, pattern, RW, setup } from './helpers.js';

describe('round trips through device memory', () => {
  it('migrate_vma_finalize releases the system pages it leaves as put_page on each in turn would: the same pages come from later allocations, listened-to frees or not', () => {
    const allocAfter = (listen: boolean): number[] => {
      const { m, dev, p, a } = setup(64);
      const frees: number[] = [];
      if (listen) m.events.subscribe('free', (e) => void (e.device || frees.push(e.pfn)));
      // Pages written out of order, so that their frames are not one run.
      for (let i = 0; i < 64; i++) p.write(a + ((i * 37) % 64) * P, pattern(i, 8));
      const hole = p.mmap(0, 4 * P, RW, ANON); // frames taken between theirs
      p.write(hole, pattern(99, 8));
      expect(dev.migrateToDevice(p.mm, a, a + 64 * P)).toBe(64);
      if (listen) expect(frees.length).toBe(64); // one event per page, at its page
      expectConsistent(m);
      const got: number[] = [];
      for (let i = 0; i < 80; i++) got.push(m.phys.allocPages(0));
      return got;
    };
    expect(allocAfter(false)).toEqual(allocAfter(true));
  });

  it('a single page: CPU bytes -> device page -> device changes them -> a CPU read faults them back exactly', () => {
    const { m, dev, p, a } = setup(4);
    const data = pattern(1);
    p.write(a + P, data);
    expect(dev.migrateToDevice(p.mm, a + P, a + 2 * P)).toBe(1);
    const e = entry(p, a + P);
    expect(e).toMatchObject({ kind: K_DEVICE_PRIVATE, write: true });
    expect(m.phys.usedRamFrames).toBe(0); // the system page went back to the allocator
    expect(dev.read(e.val, 0, P)).toEqual(data); // the driver copied it
    const change = pattern(2, 100);
    dev.write(e.val, 1000, change);
    data.set(change, 1000);
    expect(p.read(a + P, P)).toEqual(data); // do_swap_page -> migrate_to_ram
    expect(dev.toRam).toBe(1);
    expect(entry(p, a + P).kind).toBe(K_PRESENT);
    expect(dev.freedTimes.get(e.val)).toBe(1);
    expectConsistent(m);
    p.exit();
    expectAllFree(m, dev);
  });

  it('a range: one CPU read across 16 device pages brings each back in turn with the device\'s bytes', () => {
    const { m, dev, p, a } = setup(16);
    const want = new Uint8Array(16 * P);
    for (let i = 0; i < 16; i++) want.set(pattern(10 + i), i * P);
    p.write(a, want);
    expect(dev.migrateToDevice(p.mm, a, a + 16 * P)).toBe(16);
    for (let i = 0; i < 16; i += 3) {
      const change = pattern(100 + i, 64);
      dev.write(entry(p, a + i * P).val, P - 64, change); // the last bytes of the page: a read crosses into the next
      want.set(change, i * P + P - 64);
    }
    expect(p.read(a + 10, 16 * P - 20)).toEqual(want.subarray(10, 16 * P - 10));
    expect(dev.toRam).toBe(16);
    p.exit();
    expectAllFree(m, dev);
  });

  it('migrate_to_system brings a range back explicitly, device changes included; the device frames are freed', () => {
    const { m, dev, p, a } = setup(8);
    for (let i = 0; i < 8; i++) p.write(a + i * P, pattern(i));
    dev.migrateToDevice(p.mm, a, a + 8 * P);
    const dpfn = entry(p, a + 5 * P).val;
    dev.write(dpfn, 0, Uint8Array.of(1, 2, 3));
    expect(dev.migrateToSystem(p.mm, a, a + 8 * P)).toBe(8);
    expect(dev.freePages).toBe(dev.pgmap.nframes);
    expect(dev.faults).toBe(0);
    for (let i = 0; i < 8; i++) {
      expect(entry(p, a + i * P).kind).toBe(K_PRESENT);
      const want = pattern(i);
      if (i === 5) want.set([1, 2, 3]);
      expect(p.read(a + i * P, P)).toEqual(want);
    }
    p.exit();
    expectAllFree(m, dev);
  });

  it('a huge page: the THP is split, its 512 pages go to the device and come back with the device\'s bytes', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, { frames: 1024 });
    const p = m.spawn();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    for (let i = 0; i < 512; i += 7) p.write(a + i * P, pattern(i, 16));
    expect(entry(p, a).level).toBe(1); // one PMD leaf
    expect(m.phys.usedRamFrames).toBe(512);
    expect(dev.migrateToDevice(p.mm, a, a + PMD_SIZE)).toBe(512);
    expect(m.phys.usedRamFrames).toBe(0);
    const e = entry(p, a + 14 * P);
    expect(e).toMatchObject({ kind: K_DEVICE_PRIVATE, level: 0 });
    dev.write(e.val, 4, Uint8Array.of(9));
    for (let i = 0; i < 512; i += 7) {
      const want = pattern(i, 16);
      if (i === 14) want[4] = 9;
      expect(p.read(a + i * P, 16)).toEqual(want);
    }
    expect(p.read(a + 3 * P, 16)).toEqual(new Uint8Array(16)); // a page nobody wrote
    expectConsistent(m);
    p.exit();
    expectAllFree(m, dev);
  });

  it('part of a huge page: the folio is split and only the range moves; the rest stays mapped with its data', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, { frames: 64 });
    const p = m.spawn();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    for (let i = 0; i < 512; i += 50) p.write(a + i * P, pattern(i, 8));
    expect(dev.migrateToDevice(p.mm, a + 100 * P, a + 110 * P)).toBe(10);
    expect(entry(p, a + 105 * P).kind).toBe(K_DEVICE_PRIVATE);
    expect(entry(p, a + 150 * P)).toMatchObject({ kind: K_PRESENT, level: 0 });
    expect(m.phys.usedRamFrames).toBe(502); // the ten moved pages were freed by the split folio's small pages
    for (let i = 0; i < 512; i += 50) expect(p.read(a + i * P, 8)).toEqual(pattern(i, 8));
    p.exit();
    expectAllFree(m, dev);
  });

  it('a range with holes: never-touched, zero-page and missing-table pages become device pages; a swapped page stays; all read back right', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, { frames: 2048 });
    const p = m.spawn();
    // 1024 pages over two PMD ranges: the second range has no page table at all.
    const a = p.mmap(0x40000000, 1024 * P, RW, ANON);
    p.write(a, pattern(1));
    p.read(a + 2 * P, 1); // zero page
    p.write(a + 3 * P, pattern(3));
    p.madvise(a + 3 * P, P, MADV_PAGEOUT); // swapped out
    p.write(a + 4 * P, pattern(4));
    expect(entry(p, a + 1 * P).kind).toBe(K_NONE);
    expect(entry(p, a + 3 * P).kind).toBe(K_SWAP);
    expect(entry(p, a + 600 * P).level).toBeGreaterThan(0); // no PTE table there
    expect(dev.migrateToDevice(p.mm, a, a + 1024 * P)).toBe(1023);
    expect(entry(p, a + 3 * P).kind).toBe(K_SWAP);
    for (const i of [0, 1, 2, 4, 600, 1023]) expect(entry(p, a + i * P).kind).toBe(K_DEVICE_PRIVATE);
    dev.write(entry(p, a + 600 * P).val, 8, Uint8Array.of(6, 0, 0, 6));
    expect(p.read(a, P)).toEqual(pattern(1));
    expect(p.read(a + P, P)).toEqual(new Uint8Array(P));
    expect(p.read(a + 2 * P, P)).toEqual(new Uint8Array(P));
    expect(p.read(a + 3 * P, P)).toEqual(pattern(3)); // swap-in
    expect(p.read(a + 4 * P, P)).toEqual(pattern(4));
    expect(p.read(a + 600 * P + 8, 4)).toEqual(Uint8Array.of(6, 0, 0, 6));
    expectConsistent(m);
    p.exit();
    expectAllFree(m, dev);
  });

  it('device-coherent memory: mapped with ordinary PTEs, the CPU reads and writes it in place; it migrates back on request', () => {
    const { m, dev, p, a } = setup(4, { type: 'coherent' });
    p.write(a, pattern(7));
    p.write(a + P, pattern(8));
    expect(dev.migrateToDevice(p.mm, a, a + 4 * P)).toBe(4);
    const e = entry(p, a);
    expect(e.kind).toBe(K_PRESENT);
    expect(m.phys.pagemapOf(e.val)).toBe(dev.pgmap);
    dev.write(e.val, 0, Uint8Array.of(42));
    const want = pattern(7);
    want[0] = 42;
    expect(p.read(a, P)).toEqual(want); // no fault: coherent memory is CPU addressable
    p.write(a + P + 1, Uint8Array.of(43));
    expect(dev.read(entry(p, a + P).val, 1, 1)).toEqual(Uint8Array.of(43));
    expect(dev.faults).toBe(0);
    expect(dev.migrateToSystem(p.mm, a, a + 4 * P)).toBe(4);
    expect(m.phys.pagemapOf(entry(p, a).val)).toBeUndefined();
    expect(p.read(a, P)).toEqual(want);
    p.exit();
    expectAllFree(m, dev);
  });
});
