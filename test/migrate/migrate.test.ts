import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Machine, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MIGRATE_VMA_SELECT_SYSTEM, MmuIntervalNotifier, mmuIntervalNotifierInsert,
  mmuIntervalSetSeq, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, PAGE_SIZE, PROT_READ, PROT_WRITE,
  type MmuNotifierRange, type Process,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { K_DEVICE_PRIVATE, K_MIGRATION, K_PRESENT, KIND_MASK, E_WRITE, type PtSlot } from '../../src/mm/pagetable.js';
import { TestDevice } from './device.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function entry(p: Process, addr: number): { kind: number; val: number; write: boolean } {
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  p.mm.pt.lookup(addr / PAGE_SIZE, s);
  return { kind: s.node.flg[s.idx]! & KIND_MASK, val: s.node.val[s.idx]!, write: (s.node.flg[s.idx]! & E_WRITE) !== 0 };
}

function setup(pages = 8) {
  const m = new Machine({ ramBytes: 32 << 20 });
  const dev = new TestDevice(m, 256);
  const p = m.spawn();
  const a = p.mmap(0, pages * PAGE_SIZE, RW, ANON);
  return { m, dev, p, a };
}

describe('migrate_vma (mm/migrate_device.c)', () => {
  it('round trip: CPU data -> device page -> device writes -> CPU fault migrates back with the device data', () => {
    const { m, dev, p, a } = setup();
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, 0x1000 + i);
    expect(dev.migrateToDevice(p.mm, a, a + 4 * PAGE_SIZE)).toBe(4);
    const e = entry(p, a + PAGE_SIZE);
    expect(e.kind).toBe(K_DEVICE_PRIVATE);
    expect(e.write).toBe(true);
    expect(m.phys.usedRamFrames).toBe(0); // the system pages were freed
    // The device changes page 1 in its own memory.
    m.phys.writePage(e.val, 0, Uint8Array.of(0xaa, 0xbb), 0, 2);
    expect(p.read(a + PAGE_SIZE, 2)).toEqual(Uint8Array.of(0xaa, 0xbb)); // do_swap_page -> migrate_to_ram
    expect(dev.toRam).toBe(1);
    expect(entry(p, a + PAGE_SIZE).kind).toBe(K_PRESENT);
    expect(dev.freed).toBe(1); // page_free once, for the page that came back
    expect(p.readU32(a + 2 * PAGE_SIZE)).toBe(0x1002);
    expect(checkInvariants(m)).toEqual([]);
    p.exit();
    expect(dev.freed).toBe(4);
    expect(dev.freePages).toBe(256);
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('mainline #25: empties in an anonymous VMA (and the zero page) become device pages directly', () => {
    const { m, dev, p, a } = setup();
    p.read(a, 4); // zero page at page 0; pages 1.. are empty
    expect(dev.migrateToDevice(p.mm, a, a + 8 * PAGE_SIZE)).toBe(8);
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE);
    expect(p.readU32(a + 5 * PAGE_SIZE)).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('mainline #26: a shared (file-backed) VMA collects nothing', () => {
    const { dev, p } = setup();
    const s = p.mmap(0, 4 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.writeU32(s, 1);
    expect(dev.migrateToDevice(p.mm, s, s + 4 * PAGE_SIZE)).toBe(0);
    expect(entry(p, s).kind).toBe(K_PRESENT);
  });

  it('mainline #27: a pinned page is not migrated and keeps its mapping; the others move', () => {
    const { m, dev, p, a } = setup();
    for (let i = 0; i < 3; i++) p.writeU32(a + i * PAGE_SIZE, i + 1);
    const pinned = entry(p, a + PAGE_SIZE).val;
    m.phys.getPage(pinned);
    m.phys.pincount.set(pinned, 1);
    expect(dev.migrateToDevice(p.mm, a, a + 3 * PAGE_SIZE)).toBe(2);
    expect(entry(p, a + PAGE_SIZE)).toMatchObject({ kind: K_PRESENT, val: pinned, write: true });
    expect(checkInvariants(m)).toEqual([]);
  });

  it('mainline #28: where the driver leaves dst empty the page stays; the rest move', () => {
    const { m, dev, p, a } = setup();
    for (let i = 0; i < 3; i++) p.writeU32(a + i * PAGE_SIZE, i + 1);
    dev.failAllocs = 1;
    expect(dev.migrateToDevice(p.mm, a, a + 3 * PAGE_SIZE)).toBe(2);
    expect(entry(p, a).kind).toBe(K_PRESENT);
    expect(p.readU32(a)).toBe(1);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a page shared by fork is unmapped in both processes and migrated once (try_to_migrate through the rmap)', () => {
    const { m, dev, p, a } = setup();
    p.writeU32(a, 7);
    const c = p.fork();
    expect(dev.migrateToDevice(p.mm, a, a + PAGE_SIZE)).toBe(1);
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE);
    expect(entry(c, a).kind).toBe(K_DEVICE_PRIVATE);
    expect(entry(c, a).val).toBe(entry(p, a).val);
    // mainline #31: entries are read-only after fork; a CPU write migrates back, then breaks COW.
    expect(entry(p, a).write).toBe(false);
    c.writeU32(a, 8);
    expect(p.readU32(a)).toBe(7);
    expect(c.readU32(a)).toBe(8);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('setup sends one MIGRATE invalidation with the owner, so a driver can ignore its own', () => {
    const { dev, p, a } = setup();
    p.writeU32(a, 1);
    const seen: MmuNotifierRange[] = [];
    const sub = new MmuIntervalNotifier({ invalidate: (s, r, seq) => (mmuIntervalSetSeq(s, seq), seen.push(r), true) });
    mmuIntervalNotifierInsert(sub, p.mm, a, PAGE_SIZE);
    dev.migrateToDevice(p.mm, a, a + PAGE_SIZE);
    expect(seen.map((r) => [r.event, r.owner === dev.owner])).toEqual([['MIGRATE', true]]);
  });

  it('a CPU access to a page under migration sleeps until finalize, then sees the new page', async () => {
    const { m, dev, p, a } = setup();
    p.writeU32(a, 0x55);
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM, dev);
    migrateVmaSetup(args);
    expect(entry(p, a).kind).toBe(K_MIGRATION);
    const read = p.readAsync(a, 4);
    let done = false;
    void read.then(() => { done = true; });
    await Promise.resolve();
    expect(done).toBe(false);
    migrateVmaPages(args); // no dst: the page stays
    migrateVmaFinalize(args);
    expect(new DataView((await read).buffer).getUint32(0, true)).toBe(0x55);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('mainline #24: bad arguments are EINVAL and change nothing', () => {
    const { m, p, a } = setup();
    p.writeU32(a, 3);
    const vma = p.mm.findVma(a)!;
    const bad = [
      newMigrateVma(vma, a + 1, a + PAGE_SIZE, 1, null),
      newMigrateVma(vma, a, a, 1, null),
      newMigrateVma(vma, a - PAGE_SIZE, a + PAGE_SIZE, 1, null),
      { ...newMigrateVma(vma, a, a + 2 * PAGE_SIZE, 1, null), src: new Float64Array(1) },
      newMigrateVma(vma, a, a + PAGE_SIZE, 64, null),
    ];
    for (const args of bad) expect(() => migrateVmaSetup(args)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(entry(p, a).kind).toBe(K_PRESENT);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('property: random migrations both ways, CPU and device writes, fork, munmap and mprotect keep data and frames right', () => {
    type Op = { k: 'todev' | 'cpuw' | 'devw' | 'cpur' | 'fork' | 'munmap' | 'ro' | 'rw'; page: number; n: number; v: number };
    const op = fc.record({
      k: fc.constantFrom('todev', 'cpuw', 'devw', 'cpur', 'fork', 'munmap', 'ro', 'rw') as fc.Arbitrary<Op['k']>,
      page: fc.nat(15), n: fc.integer({ min: 1, max: 4 }), v: fc.integer({ min: 1, max: 0xffff }),
    });
    fc.assert(fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const m = new Machine({ ramBytes: 8 << 20 });
      const dev = new TestDevice(m, 128);
      const procs: Array<{ p: Process; ref: Map<number, number>; ro: Set<number>; gone: Set<number> }> = [];
      const p0 = m.spawn();
      const a = p0.mmap(0x10000000, 16 * PAGE_SIZE, RW, ANON);
      procs.push({ p: p0, ref: new Map(), ro: new Set(), gone: new Set() });
      for (const o of ops) {
        const t = procs[o.v % procs.length]!;
        const pages = [...Array(o.n).keys()].map((i) => o.page + i).filter((pg) => pg < 16);
        const live = pages.filter((pg) => !t.gone.has(pg));
        switch (o.k) {
          case 'todev':
            for (const pg of live) dev.migrateToDevice(t.p.mm, a + pg * PAGE_SIZE, a + (pg + 1) * PAGE_SIZE);
            break;
          case 'cpuw':
            for (const pg of live) if (!t.ro.has(pg)) { t.p.writeU32(a + pg * PAGE_SIZE, o.v); t.ref.set(pg, o.v); }
            break;
          case 'devw':
            // The device writes its own page in place (only an exclusive, writable device entry).
            for (const pg of live) {
              const e = entry(t.p, a + pg * PAGE_SIZE);
              if (e.kind === K_DEVICE_PRIVATE && e.write && m.phys.frames.refcount[e.val] === 1) {
                const b = new Uint8Array(4);
                new DataView(b.buffer).setUint32(0, o.v + 1, true);
                m.phys.writePage(e.val, 0, b, 0, 4);
                t.ref.set(pg, o.v + 1);
              }
            }
            break;
          case 'cpur':
            for (const pg of live) expect(t.p.readU32(a + pg * PAGE_SIZE)).toBe(t.ref.get(pg) ?? 0);
            break;
          case 'fork':
            if (procs.length < 3) procs.push({ p: t.p.fork(), ref: new Map(t.ref), ro: new Set(t.ro), gone: new Set(t.gone) });
            break;
          case 'munmap':
            t.p.munmap(a + o.page * PAGE_SIZE, o.n * PAGE_SIZE);
            for (const pg of pages) { t.gone.add(pg); t.ref.delete(pg); }
            break;
          case 'ro':
          case 'rw':
            if (live.length !== pages.length || pages.length === 0) break;
            t.p.mprotect(a + pages[0]! * PAGE_SIZE, pages.length * PAGE_SIZE, o.k === 'ro' ? PROT_READ : RW);
            for (const pg of pages) {
              if (o.k === 'ro') t.ro.add(pg);
              else t.ro.delete(pg);
            }
            break;
        }
        expect(checkInvariants(m)).toEqual([]);
      }
      for (const t of procs) for (let pg = 0; pg < 16; pg++) if (!t.gone.has(pg)) expect(t.p.readU32(a + pg * PAGE_SIZE)).toBe(t.ref.get(pg) ?? 0);
      for (const t of procs) t.p.exit();
      expect(m.phys.usedRamFrames).toBe(0);
      expect(dev.freePages).toBe(128);
      expect(checkInvariants(m)).toEqual([]);
    }), { numRuns: 200 });
  });
});

describe('migrate_device_range', () => {
  it('mainline #36: evicts device pages of several processes (and a fork-shared one) back to system memory, data intact', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, 64);
    const procs = [m.spawn(), m.spawn()];
    const addrs = procs.map((p, k) => {
      const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
      for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, 100 * k + i);
      expect(dev.migrateToDevice(p.mm, a, a + 4 * PAGE_SIZE)).toBe(4);
      return a;
    });
    const child = procs[0]!.fork(); // shares the device pages of process 0
    expect(dev.evictAll()).toBe(8);
    expect(dev.freePages).toBe(64);
    expect(dev.freed).toBe(8);
    procs.forEach((p, k) => {
      for (let i = 0; i < 4; i++) {
        expect(entry(p, addrs[k]! + i * PAGE_SIZE).kind).toBe(K_PRESENT);
        expect(p.readU32(addrs[k]! + i * PAGE_SIZE)).toBe(100 * k + i);
      }
    });
    expect(entry(child, addrs[0]!).val).toBe(entry(procs[0]!, addrs[0]!).val); // still shared, COW
    expect(checkInvariants(m)).toEqual([]);
    expect(() => m.phys.removePagemap(dev.pgmap)).not.toThrow(); // nothing in use any more
  });
});

describe('device-private pages under munmap, mremap, and misuse', () => {
  it('mainline #34: mremap moves device-private entries (UNMAP on the old range); munmap frees the page once (#32)', () => {
    const { m, dev, p, a } = setup();
    p.writeU32(a, 123);
    dev.migrateToDevice(p.mm, a, a + PAGE_SIZE);
    const events: string[] = [];
    const sub = new MmuIntervalNotifier({ invalidate: (s, r, seq) => (mmuIntervalSetSeq(s, seq), events.push(`${r.event} ${r.start === a}`), true) });
    mmuIntervalNotifierInsert(sub, p.mm, a, PAGE_SIZE);
    const b = p.mremap(a, PAGE_SIZE, PAGE_SIZE, 1 | 2, 0x20000000);
    expect(events).toEqual(['UNMAP true']);
    expect(entry(p, b).kind).toBe(K_DEVICE_PRIVATE);
    expect(p.readU32(b)).toBe(123);
    dev.migrateToDevice(p.mm, b, b + PAGE_SIZE);
    const freed = dev.freed;
    p.munmap(b, PAGE_SIZE);
    expect(dev.freed).toBe(freed + 1);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('pages of another owner are not collected (mainline #29)', () => {
    const { m, dev, p, a } = setup();
    const other = new TestDevice(m, 8);
    p.writeU32(a, 1);
    other.migrateToDevice(p.mm, a, a + PAGE_SIZE);
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + PAGE_SIZE, 2 /* SELECT_DEVICE_PRIVATE */, dev.owner);
    migrateVmaSetup(args);
    expect(args.cpages).toBe(0);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE);
  });

  it('a destination page given twice is EINVAL before anything moves', () => {
    const { m, dev, p, a } = setup();
    p.writeU32(a, 1);
    p.writeU32(a + PAGE_SIZE, 2);
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + 2 * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    const d = dev.pgmap.firstPfn;
    m.phys.deviceFrameInit(d);
    args.dst[0] = args.dst[1] = Math.floor(d) * 64 + 1;
    expect(() => migrateVmaPages(args)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    args.dst.fill(0);
    m.phys.putPage(d);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(p.readU32(a + PAGE_SIZE)).toBe(2);
    expect(checkInvariants(m)).toEqual([]);
  });
});

describe('huge pages', () => {
  it('a THP round-trips: the folio is split, its 512 pages go to the device and come back with the device data', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, 1024);
    const p = m.spawn();
    const a = p.mmap(0, 2 << 20, RW, ANON);
    p.madvise(a, 2 << 20, 14 /* MADV_HUGEPAGE */);
    for (let i = 0; i < 512; i += 7) p.writeU32(a + i * PAGE_SIZE, 5000 + i);
    expect(m.phys.usedRamFrames).toBe(512);
    expect(dev.migrateToDevice(p.mm, a, a + (2 << 20))).toBe(512);
    expect(m.phys.usedRamFrames).toBe(0);
    const e = entry(p, a + 14 * PAGE_SIZE);
    m.phys.writePage(e.val, 4, Uint8Array.of(9), 0, 1);
    for (let i = 0; i < 512; i += 7) expect(p.readU32(a + i * PAGE_SIZE)).toBe(5000 + i);
    expect(p.read(a + 14 * PAGE_SIZE + 4, 1)[0]).toBe(9);
    expect(checkInvariants(m)).toEqual([]);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
    expect(dev.freePages).toBe(1024);
  });

  it('a THP shared by fork is split in both processes (split_folio) and migrates; both still read their data', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, 1024);
    const p = m.spawn();
    const a = p.mmap(0, 2 << 20, RW, ANON);
    p.madvise(a, 2 << 20, 14);
    p.writeU32(a, 1);
    const c = p.fork();
    expect(dev.migrateToDevice(p.mm, a, a + (2 << 20))).toBe(512);
    expect(p.readU32(a)).toBe(1);
    expect(c.readU32(a)).toBe(1);
    expect(checkInvariants(m)).toEqual([]);
  });
});
