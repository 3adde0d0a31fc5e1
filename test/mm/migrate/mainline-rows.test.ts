// docs/edge-cases-mainline.md, rows 24-36 (migration, device memory, device-exclusive): one
// test each, named after the row.
import { describe, expect, it } from 'vitest';
import {
  getUserPages, makeDeviceExclusive, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas, migratePfnToPage,
  migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq,
  MAP_FIXED, mmapDevice, MREMAP_FIXED, MREMAP_MAYMOVE, newMigrateVma, remapPfnRange, unpinUserPages, VM_PFNMAP, type MigrateVma, type MmuNotifierRange,
  type Process,
} from '../../../src/index.js';
import { TestDevice } from './device.js';
import {
  ANON, entry, expectAllFree, expectConsistent, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_MIGRATION, K_PRESENT, P, pattern, RW, setup,
} from './helpers.js';

function watch(p: Process, start: number, len: number): MmuNotifierRange[] {
  const seen: MmuNotifierRange[] = [];
  const sub = new MmuIntervalNotifier({ invalidate: (s, r, seq) => (mmuIntervalSetSeq(s, seq), seen.push(r), true) });
  mmuIntervalNotifierInsert(sub, p.mm, start, len);
  return seen;
}

describe('docs/edge-cases-mainline.md rows 24-36', () => {
  it('mainline #24: migrate_vma_setup bad args (unaligned, start >= end, outside vma, hugetlb, special, null src/dst): -EINVAL, nothing changed', () => {
    const { m, dev, p, a } = setup(4);
    p.write(a, pattern(1));
    const vma = p.mm.findVma(a)!;
    const h = p.mmap(0x200000000, 2 << 20, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.write(h, Uint8Array.of(1));
    // A VM_SPECIAL vma, as a driver's mmap makes it: I/O pfns remapped (VM_IO | VM_PFNMAP).
    const io = m.phys.frames.capacity;
    const sp = mmapDevice(p.mm, 0x300000000, 4 * P, RW, MAP_SHARED | MAP_FIXED, 0, { mmap: (v) => remapPfnRange(v, v.start, io, 4 * P) });
    expect(p.mm.findVma(sp)!.flags & VM_PFNMAP).toBe(VM_PFNMAP);
    expect(p.mm.findVma(a)).toBe(vma); // a separate vma each: the errors below are the ones named
    const bad: MigrateVma[] = [
      newMigrateVma(vma, a + 1, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner),
      { ...newMigrateVma(vma, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner), end: a + P + 8 },
      newMigrateVma(vma, a + P, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner),
      newMigrateVma(vma, a + 2 * P, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner),
      newMigrateVma(vma, a - P, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner),
      newMigrateVma(vma, a + 3 * P, a + 5 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner),
      newMigrateVma(p.mm.findVma(h)!, h, h + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner),
      newMigrateVma(p.mm.findVma(sp)!, sp, sp + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner),
      { ...newMigrateVma(vma, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner), src: null as unknown as Float64Array },
      { ...newMigrateVma(vma, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner), dst: null as unknown as Float64Array },
      { ...newMigrateVma(vma, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner), vma: null as unknown as typeof vma },
    ];
    const events: string[] = [];
    const off = m.events.subscribe('invalidate', (e) => events.push(e.range.event));
    const before = [entry(p, a), entry(p, h), entry(p, a + P)];
    for (const args of bad) {
      if (args.src) args.src.fill(7);
      expect(() => migrateVmaSetup(args)).toThrow(expect.objectContaining({ errno: 'EINVAL', message: expect.not.stringContaining('no longer mapped') }));
      if (args.src) expect([...args.src].every((v) => v === 7)).toBe(true); // src untouched
    }
    off();
    expect(events).toEqual([]); // not even an invalidation
    expect([entry(p, a), entry(p, h), entry(p, a + P)]).toEqual(before);
    expect(p.read(a, P)).toEqual(pattern(1));
    expectConsistent(m);
  });

  it('mainline #25: migrate to device: empties in an anonymous VMA become device pages directly; the zero page counts as empty', () => {
    const { m, dev, p, a } = setup(4);
    p.read(a, 1); // zero page at page 0; page 1 has a table but no entry; pages 2-3 too
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 4 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    expect(args.cpages).toBe(4);
    expect([...args.src]).toEqual([MIGRATE_PFN_MIGRATE, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_MIGRATE]); // no VALID: nothing to copy
    const pages: number[] = [];
    for (let i = 0; i < 4; i++) {
      const d = dev.allocPage();
      m.phys.clearPage(d);
      pages.push(d);
      args.dst[i] = migratePfn(d);
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    for (let i = 0; i < 4; i++) {
      expect(migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)).toBe(true);
      expect(entry(p, a + i * P)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: pages[i], write: true });
    }
    expect(p.mm.rss[1]).toBe(4); // MM_ANONPAGES: device memory counts as what it backs
    expect(p.read(a, 2 * P)).toEqual(new Uint8Array(2 * P));
    expectConsistent(m);
    p.exit();
    expectAllFree(m, dev);
  });

  it('mainline #26: migrate to device in a file VMA: nothing migrates (empties not collected, page-cache pages refused at pages())', () => {
    const { m, dev, p } = setup(1);
    const s = p.mmap(0, 4 * P, RW, MAP_SHARED | MAP_ANONYMOUS); // shmem: a file VMA
    p.write(s, pattern(1));
    const f = m.fs.open('data');
    f.pwrite(pattern(2), 0);
    const pr = p.mmap(0, 2 * P, RW, MAP_PRIVATE, f, 0); // a private file mapping
    p.read(pr, 1); // maps the page-cache page
    for (const [start, n] of [[s, 4], [pr, 2]] as const) {
      const args = newMigrateVma(p.mm.findVma(start)!, start, start + n * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
      migrateVmaSetup(args);
      expect(args.src[1]).toBe(0); // an empty of a file VMA: not collected
      expect(migratePfnHas(args.src[0]!, MIGRATE_PFN_VALID)).toBe(true); // the page-cache page is collected ...
      const d = dev.allocPage();
      m.phys.copyPage(d, migratePfnToPage(args.src[0]!));
      args.dst[0] = migratePfn(d);
      migrateVmaPages(args);
      expect(migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)).toBe(false); // ... and refused: file pages stay in system memory
      migrateVmaFinalize(args);
      expect(entry(p, start).kind).toBe(K_PRESENT);
      expect(m.phys.pagemapOf(entry(p, start).val)).toBeUndefined();
    }
    expect(p.read(s, P)).toEqual(pattern(1));
    expect(f.pread(P, 0)).toEqual(pattern(2));
    // A private file mapping's page becomes anonymous when written (COW): that one can move.
    p.write(pr + 10, Uint8Array.of(5));
    expect(dev.migrateToDevice(p.mm, pr, pr + P)).toBe(1);
    expect(entry(p, pr).kind).toBe(K_DEVICE_PRIVATE);
    expect(dev.freed).toBe(2); // the two refused destinations
    expectConsistent(m);
    p.exit();
    f.close();
    m.fs.unlink('data');
    expectAllFree(m, dev);
  });

  it('mainline #27: migrate with a pinned page: that page is not migrated, its mapping restored; the others migrate', () => {
    const { m, dev, p, a } = setup(3);
    for (let i = 0; i < 3; i++) p.write(a + i * P, pattern(i));
    const [pinned] = getUserPages(p.mm, a + P, 1, { write: true, pin: true });
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 3 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    expect(args.src[1]).toBe(0);
    expect(args.cpages).toBe(2);
    expect(entry(p, a + P)).toMatchObject({ kind: K_PRESENT, val: pinned, write: true }); // never unmapped, or restored
    migrateVmaFinalize(args);
    expect(dev.migrateToDevice(p.mm, a, a + 3 * P)).toBe(2);
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE);
    expect(entry(p, a + P).val).toBe(pinned);
    expectConsistent(m);
    unpinUserPages(p.mm, [pinned!]);
    expect(dev.migrateToDevice(p.mm, a + P, a + 2 * P)).toBe(1); // unpinned, it can go
    for (let i = 0; i < 3; i++) expect(p.read(a + i * P, P)).toEqual(pattern(i));
    p.exit();
    expectAllFree(m, dev);
  });

  it('mainline #28: migrate with some dst = 0: those stay where they were; the rest move', () => {
    const { m, dev, p, a } = setup(4);
    const old: number[] = [];
    for (let i = 0; i < 4; i++) {
      p.write(a + i * P, pattern(i));
      old.push(entry(p, a + i * P).val);
    }
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 4 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    for (const i of [0, 2]) {
      const d = dev.allocPage();
      m.phys.copyPage(d, old[i]!);
      args.dst[i] = migratePfn(d) + MIGRATE_PFN_WRITE;
    }
    migrateVmaPages(args);
    expect([0, 1, 2, 3].map((i) => migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE))).toEqual([true, false, true, false]);
    migrateVmaFinalize(args);
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE);
    expect(entry(p, a + P)).toMatchObject({ kind: K_PRESENT, val: old[1], write: true });
    expect(entry(p, a + 3 * P)).toMatchObject({ kind: K_PRESENT, val: old[3], write: true });
    for (let i = 0; i < 4; i++) expect(p.read(a + i * P, P)).toEqual(pattern(i));
    p.exit();
    expectAllFree(m, dev);
  });

  it('mainline #29: migrate from device (SELECT_DEVICE_PRIVATE, own owner): only own pages collected', () => {
    const { m, dev, p, a } = setup(4);
    const other = new TestDevice(m, { frames: 8 });
    for (let i = 0; i < 4; i++) p.write(a + i * P, pattern(i));
    dev.migrateToDevice(p.mm, a, a + 2 * P);
    other.migrateToDevice(p.mm, a + 2 * P, a + 3 * P);
    // page 3 stays in system memory
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 4 * P, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, dev.owner);
    migrateVmaSetup(args);
    expect(args.cpages).toBe(2);
    for (const i of [0, 1]) expect(dev.pgmap.contains(migratePfnToPage(args.src[i]!))).toBe(true);
    expect(entry(p, a).kind).toBe(K_MIGRATION); // unmapped while collected
    expect(args.src[2]).toBe(0); // the other device's page
    expect(args.src[3]).toBe(0); // a system page: not selected
    expect(entry(p, a + 2 * P).kind).toBe(K_DEVICE_PRIVATE);
    migrateVmaFinalize(args);
    expect(dev.migrateToSystem(p.mm, a, a + 4 * P)).toBe(2);
    expect(entry(p, a + 2 * P).kind).toBe(K_DEVICE_PRIVATE); // still the other device's
    for (let i = 0; i < 4; i++) expect(p.read(a + i * P, P)).toEqual(pattern(i));
    p.exit();
    expectAllFree(m, dev, other);
  });

  it('mainline #30: CPU read of a device-private page: migrate_to_ram called once; the data is what the device wrote', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + 2 * P);
    const d = entry(p, a).val;
    dev.write(d, 0, pattern(9));
    expect(p.read(a, P)).toEqual(pattern(9));
    expect(p.read(a, 8)).toEqual(pattern(9, 8)); // now in system memory: no second call
    expect(dev.faults).toBe(1);
    expect(entry(p, a + P).kind).toBe(K_DEVICE_PRIVATE); // the neighbour stayed
    p.exit();
    expectAllFree(m, dev);
  });

  it('mainline #31: CPU write of a read-only device-private entry after fork: migrate back, then the COW break', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    const c = p.fork();
    expect(entry(c, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, write: false });
    c.write(a, Uint8Array.of(0xee));
    expect(dev.faults).toBe(1);
    // The shared device page came back once, for both (try_to_migrate through the rmap) ...
    expect(entry(p, a)).toMatchObject({ kind: K_PRESENT, write: false });
    // ... and the child's write broke COW: its page is its own.
    expect(entry(c, a)).toMatchObject({ kind: K_PRESENT, write: true });
    expect(entry(c, a).val).not.toBe(entry(p, a).val);
    expect(p.read(a, P)).toEqual(pattern(1));
    const want = pattern(1);
    want[0] = 0xee;
    expect(c.read(a, P)).toEqual(want);
    expectConsistent(m);
    c.exit();
    p.exit();
    expectAllFree(m, dev);
  });

  it('mainline #32: page_free is called exactly once per device page: after munmap, after exit, after migrating back', () => {
    const { m, dev, p, a } = setup(3);
    for (let i = 0; i < 3; i++) p.write(a + i * P, pattern(i));
    dev.migrateToDevice(p.mm, a, a + 3 * P);
    const d = [0, 1, 2].map((i) => entry(p, a + i * P).val);
    p.munmap(a, P);
    expect(dev.freedTimes.get(d[0]!)).toBe(1);
    p.read(a + P, 1); // migrate back
    expect(dev.freedTimes.get(d[1]!)).toBe(1);
    expect(dev.freedTimes.has(d[2]!)).toBe(false);
    p.exit();
    expect(dev.freedTimes.get(d[2]!)).toBe(1);
    expect(dev.freed).toBe(3);
    expectAllFree(m, dev);
  });

  it('mainline #33: fork with device-private pages: the child sees the same data; parent and child entries are read-only', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    p.write(a + P, pattern(2));
    dev.migrateToDevice(p.mm, a, a + 2 * P);
    const d = entry(p, a).val;
    const c = p.fork();
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: d, write: false });
    expect(entry(c, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: d, write: false });
    expect(m.phys.frames.refcount[d]).toBe(2); // one reference per mapping
    expect(c.mm.rss[1]).toBe(2);
    expect(c.read(a + P, P)).toEqual(pattern(2));
    expect(p.read(a, P)).toEqual(pattern(1));
    expectConsistent(m);
    c.exit();
    p.exit();
    expectAllFree(m, dev);
  });

  it('mainline #34: mremap of device-private entries: the data follows; UNMAP on the old range', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    p.write(a + P, pattern(2));
    dev.migrateToDevice(p.mm, a, a + 2 * P);
    const d = entry(p, a + P).val;
    const seen = watch(p, a, 2 * P);
    const b = p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, 0x20000000);
    expect(seen.map((r) => [r.event, r.start, r.end])).toEqual([['UNMAP', a, a + 2 * P]]);
    expect(entry(p, b + P)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: d });
    expect(dev.faults).toBe(0);
    expect(p.read(b + P, P)).toEqual(pattern(2));
    expect(p.read(b, P)).toEqual(pattern(1));
    p.exit();
    expectAllFree(m, dev);
  });

  it('mainline #35: make_device_exclusive then a CPU read: the entry is restored, data intact; a check for exclusivity fails afterwards', () => {
    const { m, p, a } = setup(1);
    p.write(a, pattern(1));
    const seen = watch(p, a, P);
    const owner = { gpu: 1 };
    const pfn = makeDeviceExclusive(p.mm, a, owner);
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_EXCLUSIVE, val: pfn });
    expect(seen.map((r) => [r.event, r.owner])).toEqual([['EXCLUSIVE', owner]]);
    m.phys.writePage(pfn, 0, Uint8Array.of(0x77), 0, 1); // the device's atomic
    const isExclusive = (): boolean => entry(p, a).kind === K_DEVICE_EXCLUSIVE; // the driver's CHECK_EXCLUSIVE
    expect(isExclusive()).toBe(true);
    const want = pattern(1);
    want[0] = 0x77;
    expect(p.read(a, P)).toEqual(want);
    expect(isExclusive()).toBe(false);
    expect(entry(p, a)).toMatchObject({ kind: K_PRESENT, val: pfn, write: true });
    expect(seen.slice(1).map((r) => [r.event, r.owner])).toEqual([['EXCLUSIVE', null]]);
    expectConsistent(m);
  });

  it('mainline #36: migrate_device_range evicts device pages of several processes (and a fork-shared one) back to system memory', () => {
    const { m, dev, p } = setup(1);
    const procs = [p, m.spawn()];
    const addrs = procs.map((q, k) => {
      const a = q.mmap(0, 4 * P, RW, ANON);
      for (let i = 0; i < 4; i++) q.write(a + i * P, pattern(10 * k + i));
      expect(dev.migrateToDevice(q.mm, a, a + 4 * P)).toBe(4);
      return a;
    });
    const child = procs[0]!.fork();
    expect(dev.evictAll()).toBe(8);
    expect(dev.freePages).toBe(dev.pgmap.nframes);
    expect(dev.freed).toBe(8);
    expect(dev.faults).toBe(0);
    procs.forEach((q, k) => {
      for (let i = 0; i < 4; i++) {
        expect(entry(q, addrs[k]! + i * P).kind).toBe(K_PRESENT);
        expect(q.read(addrs[k]! + i * P, P)).toEqual(pattern(10 * k + i));
      }
    });
    expect(entry(child, addrs[0]!).val).toBe(entry(procs[0]!, addrs[0]!).val); // still shared, still COW
    expect(entry(child, addrs[0]!).write).toBe(false);
    expectConsistent(m);
    for (const q of [child, ...procs]) q.exit();
    expectAllFree(m, dev);
  });
});
