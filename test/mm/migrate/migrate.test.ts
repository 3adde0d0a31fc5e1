// The migration machinery (mm/migrate_device.c): invalidations, sleeping on migration entries,
// the reverse map, huge pages, fault_page, write permission, accounting.
import { describe, expect, it } from 'vitest';
import {
  getUserPages, MADV_HUGEPAGE, Machine, MAP_ANONYMOUS, MAP_SHARED, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migrateDeviceFinalize, migrateDevicePages, migrateDevicePfns, migratePfn,
  migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, MmuIntervalNotifier, mmuIntervalNotifierInsert,
  mmuIntervalSetSeq, newMigrateVma, PMD_SIZE, PROT_READ, putUserPages, splitFolio, WouldBlock, type MmuNotifierRange, type Process,
} from '../../../src/index.js';
import { TestDevice } from './device.js';
import {
  ANON, entry, expectAllFree, expectConsistent, K_DEVICE_PRIVATE, K_MIGRATION, K_PRESENT, P, pattern, RW, setup,
} from './helpers.js';

function watch(p: Process, start = 0, len = 2 ** 47): MmuNotifierRange[] {
  const seen: MmuNotifierRange[] = [];
  const sub = new MmuIntervalNotifier({ invalidate: (s, r, seq) => (mmuIntervalSetSeq(s, seq), seen.push(r), true) });
  mmuIntervalNotifierInsert(sub, p.mm, start, len);
  return seen;
}

describe('migrate_vma: invalidations', () => {
  it('setup sends one MIGRATE invalidation of the range with the owner; populating empties at pages() sends one more', () => {
    const { dev, p, a } = setup(4);
    p.write(a, pattern(1));
    const seen = watch(p);
    dev.migrateToDevice(p.mm, a, a + 4 * P);
    expect(seen.map((r) => [r.event, r.start, r.end, r.owner === dev.owner])).toEqual([
      ['MIGRATE', a, a + 4 * P, true], // collection
      ['MIGRATE', a + P, a + 4 * P, true], // migrate_vma_insert_page, from the first empty on
    ]);
  });

  it('a page another process maps is unmapped there too, under a CLEAR invalidation of that process', () => {
    const { dev, p, a } = setup(1);
    p.write(a, pattern(1));
    const c = p.fork();
    const seenC = watch(c);
    dev.migrateToDevice(p.mm, a, a + P);
    expect(seenC.map((r) => [r.event, r.start, r.end])).toEqual([['CLEAR', a, a + P]]);
    expect(entry(c, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: entry(p, a).val });
  });
});

describe('migrate_vma: sleeping on migration entries', () => {
  it('a CPU access to a page under migration sleeps until finalize (restored: the old page), GUP too', async () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(5));
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    expect(entry(p, a).kind).toBe(K_MIGRATION);
    expect(() => p.read(a, 1)).toThrow(WouldBlock);
    expect(() => getUserPages(p.mm, a, 1)).toThrow(WouldBlock);
    let done = false;
    const read = p.readAsync(a, P).then((b) => ((done = true), b));
    await new Promise((r) => setTimeout(r, 5));
    expect(done).toBe(false);
    migrateVmaPages(args); // no destination: the page stays
    migrateVmaFinalize(args);
    expect(await read).toEqual(pattern(5));
    expectConsistent(m);
  });

  it('a CPU access waiting on a page that moves to the device wakes at finalize and faults it back, with the device\'s bytes', async () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(5));
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    const read = p.readAsync(a, P);
    const d = dev.allocPage();
    m.phys.copyPage(d, migratePfnToPage(args.src[0]!));
    dev.write(d, 0, Uint8Array.of(1, 2));
    args.dst[0] = migratePfn(d) + MIGRATE_PFN_WRITE;
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    const want = pattern(5);
    want.set([1, 2]);
    expect(await read).toEqual(want);
    expect(dev.toRam).toBe(1);
    p.exit();
    expectAllFree(m, dev);
  });
});

describe('migrate_vma: the reverse map and huge pages', () => {
  it('a page shared by fork is migrated once for both processes (try_to_migrate); a later write in either breaks COW', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(7));
    const c = p.fork();
    expect(dev.migrateToDevice(p.mm, a, a + P)).toBe(1);
    expect(entry(c, a).val).toBe(entry(p, a).val);
    expect(m.phys.frames.refcount[entry(p, a).val]).toBe(2);
    p.write(a, Uint8Array.of(1));
    expect(c.read(a, P)).toEqual(pattern(7));
    expect(p.read(a, 1)).toEqual(Uint8Array.of(1));
    c.exit();
    p.exit();
    expectAllFree(m, dev);
  });

  it('a THP mapped whole by a fork child is split in both processes through the reverse map (split_folio), then migrates', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, { frames: 1024 });
    const p = m.spawn();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.write(a, pattern(1));
    p.write(a + 300 * P, pattern(2));
    const c = p.fork();
    expect(entry(c, a).level).toBe(1);
    const seenC = watch(c);
    expect(dev.migrateToDevice(p.mm, a, a + PMD_SIZE)).toBe(512);
    expect(seenC.map((r) => [r.event, r.start, r.end])[0]).toEqual(['CLEAR', a, a + PMD_SIZE]); // the child's PMD split
    expect(entry(c, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, level: 0, val: entry(p, a).val });
    c.write(a + 300 * P, Uint8Array.of(9));
    expect(p.read(a + 300 * P, P)).toEqual(pattern(2));
    expect(c.read(a, P)).toEqual(pattern(1));
    expectConsistent(m);
    c.exit();
    p.exit();
    expectAllFree(m, dev);
  });

  it('a THP with a reference beyond its mappings (a GUP) cannot be split: it stays mapped whole, src 0 for its range', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, { frames: 1024 });
    const p = m.spawn();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.write(a, pattern(1));
    const refs = getUserPages(p.mm, a + 7 * P, 1);
    expect(dev.migrateToDevice(p.mm, a, a + 8 * P)).toBe(0);
    expect(entry(p, a).level).toBe(1);
    expect([...dev.last!.src]).toEqual(new Array(8).fill(0));
    putUserPages(p.mm, refs);
    expect(dev.migrateToDevice(p.mm, a, a + 8 * P)).toBe(8);
    expect(p.read(a, P)).toEqual(pattern(1));
    p.exit();
    expectAllFree(m, dev);
  });
});

describe('migrate_vma: fault_page, permissions, accounting', () => {
  it('migrate_to_ram: setup accepts the fault page locked and referenced by the fault; it stays locked until the fault path unlocks it', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(3));
    dev.migrateToDevice(p.mm, a, a + P);
    const d = entry(p, a).val;
    const states: unknown[] = [];
    dev.onPages = (args) => states.push([args.faultPage, m.phys.isLocked(d), m.phys.frames.refcount[d], migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)]);
    expect(p.read(a, P)).toEqual(pattern(3));
    // In migrate_to_ram: the fault's reference and the migration's; the lock is the fault's.
    expect(states).toEqual([[d, true, 2, true]]);
    expect(m.phys.isLocked(d)).toBe(false);
    expect(dev.freedTimes.get(d)).toBe(1);
    // fault_page must be a locked device-private page.
    const vma = p.mm.findVma(a)!;
    dev.migrateToDevice(p.mm, a, a + P);
    const d2 = entry(p, a).val;
    expect(() => migrateVmaSetup(newMigrateVma(vma, a, a + P, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, dev.owner, d2))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => migrateVmaSetup(newMigrateVma(vma, a, a + P, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, dev.owner, 5))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: d2 });
    p.exit();
    expectAllFree(m, dev);
  });

  it('a device-private entry is writable iff the migration entry was; coming back, a read-only entry stays read-only', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    p.write(a + P, pattern(2));
    p.mprotect(a + P, P, PROT_READ); // now two vmas
    dev.migrateToDevice(p.mm, a, a + P);
    expect(migratePfnHas(dev.last!.src[0]!, MIGRATE_PFN_WRITE)).toBe(true);
    dev.migrateToDevice(p.mm, a + P, a + 2 * P);
    expect(migratePfnHas(dev.last!.src[0]!, MIGRATE_PFN_WRITE)).toBe(false);
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, write: true });
    expect(entry(p, a + P)).toMatchObject({ kind: K_DEVICE_PRIVATE, write: false });
    dev.migrateToSystem(p.mm, a, a + P);
    dev.migrateToSystem(p.mm, a + P, a + 2 * P);
    expect(entry(p, a)).toMatchObject({ kind: K_PRESENT, write: true });
    expect(entry(p, a + P)).toMatchObject({ kind: K_PRESENT, write: false });
    expect(p.read(a + P, P)).toEqual(pattern(2));
    p.exit();
    expectAllFree(m, dev);
  });

  it('rss: device memory counts as the anonymous memory it backs, through migration both ways', () => {
    const { m, dev, p, a } = setup(4);
    for (let i = 0; i < 3; i++) p.write(a + i * P, pattern(i));
    expect(p.mm.rss[1]).toBe(3);
    dev.migrateToDevice(p.mm, a, a + 4 * P); // 3 pages and 1 empty
    expect(p.mm.rss[1]).toBe(4);
    dev.migrateToSystem(p.mm, a, a + 4 * P);
    expect(p.mm.rss[1]).toBe(4);
    p.exit();
    expectAllFree(m, dev);
  });

  it('a device page referenced by someone after setup fails at pages() (folio_migrate_mapping): MIGRATE cleared, restored', () => {
    const { m, dev, p, a } = setup(1);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    const d = entry(p, a).val;
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + P, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, dev.owner);
    migrateVmaSetup(args);
    expect(args.cpages).toBe(1); // a ZONE_DEVICE page is allowed one unexplained reference at setup ...
    m.phys.getPage(d);
    const page = m.phys.allocPages(0);
    m.phys.trylockPage(page);
    args.dst[0] = migratePfn(page);
    migrateVmaPages(args);
    expect(migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)).toBe(false); // ... but not when its state moves
    migrateVmaFinalize(args);
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: d });
    m.phys.putPage(d);
    expectConsistent(m);
  });

  it('coherent pages are selected only with SELECT_DEVICE_COHERENT and their owner', () => {
    const { m, dev, p, a } = setup(1, { type: 'coherent' });
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    for (const [flags, owner] of [[MIGRATE_VMA_SELECT_SYSTEM, dev.owner], [MIGRATE_VMA_SELECT_DEVICE_PRIVATE, dev.owner], [MIGRATE_VMA_SELECT_DEVICE_COHERENT, {}]] as const) {
      const args = newMigrateVma(p.mm.findVma(a)!, a, a + P, flags, owner);
      migrateVmaSetup(args);
      expect(args.cpages).toBe(0);
      migrateVmaFinalize(args);
    }
    expect(dev.migrateToSystem(p.mm, a, a + P)).toBe(1);
    expect(p.read(a, P)).toEqual(pattern(1));
    p.exit();
    expectAllFree(m, dev);
  });

  it('a device-private page can move straight to another device\'s memory', () => {
    const { m, dev, p, a } = setup(1);
    const other = new TestDevice(m, { frames: 4 });
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + P, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, dev.owner);
    migrateVmaSetup(args);
    const d = other.allocPage();
    m.phys.copyPage(d, migratePfnToPage(args.src[0]!));
    args.dst[0] = migratePfn(d) + MIGRATE_PFN_WRITE;
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(entry(p, a)).toMatchObject({ kind: K_DEVICE_PRIVATE, val: d, write: true });
    expect(other.migrateToSystem(p.mm, a, a + P)).toBe(1);
    expect(p.read(a, P)).toEqual(pattern(1));
    p.exit();
    expectAllFree(m, dev, other);
  });

  it('migrate_device_pfns: chosen device pages (raw pfns in src) are evicted wherever they are mapped', () => {
    const { m, dev, p, a } = setup(3);
    for (let i = 0; i < 3; i++) p.write(a + i * P, pattern(i));
    dev.migrateToDevice(p.mm, a, a + 3 * P);
    const pick = entry(p, a + 2 * P).val;
    const src = [pick];
    migrateDevicePfns(m, src, 1);
    expect(migratePfnToPage(src[0]!)).toBe(pick);
    expect(entry(p, a + 2 * P).kind).toBe(K_MIGRATION);
    const page = m.phys.allocPages(0);
    m.phys.trylockPage(page);
    m.phys.copyPage(page, pick);
    const dst = [migratePfn(page)];
    migrateDevicePages(m, src, dst, 1);
    migrateDeviceFinalize(m, src, dst, 1);
    expect(entry(p, a + 2 * P)).toMatchObject({ kind: K_PRESENT, val: page, write: true });
    expect(entry(p, a + P).kind).toBe(K_DEVICE_PRIVATE);
    expect(p.read(a + 2 * P, P)).toEqual(pattern(2));
    p.exit();
    expectAllFree(m, dev);
  });

  it('migrate_to_ram returning an error code reaches the CPU access as a signal or ENOMEM', () => {
    const { dev, p, a } = setup(1);
    p.write(a, pattern(1));
    dev.migrateToDevice(p.mm, a, a + P);
    dev.faultResult = 2; // VM_FAULT_SIGBUS
    expect(() => p.read(a, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    dev.faultResult = 0;
    expect(p.read(a, P)).toEqual(pattern(1));
  });
});

describe('migrate_vma: file pages', () => {
  it('a page-cache page moves to another system page: the page cache, every mapping and the file see the new one', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, { frames: 4 });
    const p = m.spawn();
    const s = p.mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, pattern(1));
    const c = p.fork(); // a shared mapping: the child maps the same page-cache page
    expect(c.read(s, 4)).toEqual(pattern(1, 4));
    const old = entry(p, s).val;
    const file = p.mm.findVma(s)!.file!;
    const args = newMigrateVma(p.mm.findVma(s)!, s, s + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    expect(args.cpages).toBe(1); // the empty of a file vma is not collected
    expect(entry(c, s).kind).toBe(K_MIGRATION);
    const page = m.phys.allocPages(0);
    m.phys.trylockPage(page);
    m.phys.copyPage(page, old);
    args.dst[0] = migratePfn(page);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(file.pages.get(0)).toBe(page);
    expect(entry(p, s)).toMatchObject({ kind: K_PRESENT, val: page });
    expect(entry(c, s)).toMatchObject({ kind: K_PRESENT, val: page });
    c.write(s, Uint8Array.of(0xab));
    expect(p.read(s, 1)).toEqual(Uint8Array.of(0xab));
    expect(file.pread(1, 0)).toEqual(Uint8Array.of(0xab));
    expectConsistent(m);
    c.exit();
    p.exit();
    expectAllFree(m, dev);
  });

  it('finalize without pages() restores everything and releases the destinations; a dst changed after pages() is EINVAL', () => {
    const { m, dev, p, a } = setup(2);
    p.write(a, pattern(1));
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    for (let i = 0; i < 2; i++) args.dst[i] = migratePfn(dev.allocPage());
    migrateVmaFinalize(args);
    expect(entry(p, a).kind).toBe(K_PRESENT);
    expect(entry(p, a + P).kind).toBe(0);
    expect(dev.freed).toBe(2);
    const again = newMigrateVma(p.mm.findVma(a)!, a, a + P, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(again);
    const d = dev.allocPage();
    m.phys.copyPage(d, migratePfnToPage(again.src[0]!));
    again.dst[0] = migratePfn(d);
    migrateVmaPages(again);
    again.dst[0] = migratePfn(dev.allocPage());
    expect(() => migrateVmaFinalize(again)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    const other = migratePfnToPage(again.dst[0]!);
    again.dst[0] = migratePfn(d);
    migrateVmaFinalize(again);
    m.phys.unlockPage(other);
    m.phys.putPage(other);
    expect(p.read(a, P)).toEqual(pattern(1));
    p.exit();
    expectAllFree(m, dev);
  });
});

describe('split_folio', () => {
  it('redistributes the folio\'s references: each small page gets its own mappings, the head also the caller\'s; other references refuse', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const p = m.spawn();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.write(a + 3 * P, pattern(3));
    const head = entry(p, a).val;
    const c = p.fork();
    c.munmap(a + 256 * P, 256 * P); // the child's PMD is split; it maps the first half by PTEs
    const f = m.phys.frames;
    expect(f.refcount[head]).toBe(1 + 256);
    m.phys.getPage(head); // the caller's reference
    const refs = getUserPages(p.mm, a + 5 * P, 1); // and someone else's
    expect(splitFolio(m, head, 1)).toBe(false);
    expect(entry(p, a).level).toBe(1); // nothing changed
    putUserPages(p.mm, refs);
    expect(splitFolio(m, head, 1)).toBe(true);
    expect(entry(p, a).level).toBe(0); // the parent's PMD was split too
    expect(f.refcount[head]).toBe(2 + 1);
    expect(f.refcount[head + 7]).toBe(2);
    expect(f.refcount[head + 300]).toBe(1);
    expect(f.flags[head + 7]! & 0x18).toBe(0); // neither head nor tail any more
    m.phys.putPage(head);
    expectConsistent(m);
    expect(c.read(a + 3 * P, P)).toEqual(pattern(3));
    c.exit();
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });
});
