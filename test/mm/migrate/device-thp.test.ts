// Device-private THP (mm/migrate_device.c with MIGRATE_VMA_SELECT_COMPOUND, mm/huge_memory.c's
// device-private PMD handling, lib/test_hmm.c's huge allocations): a PMD-mapped THP moves to
// device memory whole and comes back whole, and every operation that meets a PMD leaf meets
// the device-private PMD: hmm_range_fault, the CPU fault, fork, partial munmap / mprotect /
// mremap, zap, pagemap, reclaim, exit.

import { describe, expect, it } from 'vitest';
import {
  FAULT_FLAG_WRITE, HMM_PFN_REQ_FAULT, HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnToMapOrder, HmmRange, hmmRangeFault, Machine,
  MADV_COLLAPSE, MADV_DONTNEED, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE,
  MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM, migratePfnHas, migrateVmaFinalize, migrateVmaSetup, mmuIntervalNotifierInsert,
  mmuIntervalReadBegin, MmuIntervalNotifier, MREMAP_FIXED, MREMAP_MAYMOVE, newMigrateVma, PAGE_SIZE, PMD_SIZE, PROT_READ, PROT_WRITE,
  swapOutPage, type Process,
} from '../../../src/index.js';
import { handleMmFault } from '../../../src/mm/fault.js';
import { pagemap } from '../../../src/mm/pagemap.js';
import { checkInvariants } from '../../../src/mm/check.js';
import {
  dmirrorInit, HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_FLAGS, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT, hmmDmirrorCmd, hmmDmirrorOpen, type DmirrorFile,
} from '../../../src/drivers/dmirror/index.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const P = PAGE_SIZE;
const NPAGES = PMD_SIZE / P;

/** A THP at a PMD-aligned address, filled with int i at int index i (hmm-tests.c's pattern, offset by `seed`). */
function thpSetup(seed = 0) {
  const m = new Machine({ ramBytes: 96 << 20 });
  const driver = dmirrorInit(m, { chunkBytes: 8 << 20 });
  const dev = driver.devices[0]!;
  const p = m.spawn();
  const fd = hmmDmirrorOpen(p, 0);
  const raw = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
  const map = Math.ceil(raw / PMD_SIZE) * PMD_SIZE;
  p.write(map, ints(seed));
  p.madvise(map, PMD_SIZE, MADV_COLLAPSE);
  expect(pagemap(p.mm, map)).toMatchObject({ present: true, order: 9 });
  return { m, dev, p, fd, map };
}

/** The first byte where two buffers differ, or -1 (a diff of two 2 MiB arrays would take minutes). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function ints(seed: number, n = PMD_SIZE / 4): Uint8Array {
  return new Uint8Array(Int32Array.from({ length: n }, (_, i) => i + seed).buffer);
}

async function toDevice(fd: DmirrorFile, addr: number, npages = NPAGES): Promise<number> {
  const cmd = hmmDmirrorCmd(addr, new Uint8Array(npages * P), npages);
  await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd);
  return cmd.cpages;
}

/** The device-private PMD at map: one 2 MiB device folio, every page of it at its offset. */
function expectDevicePmd(p: Process, map: number): number {
  const head = pagemap(p.mm, map).pfn;
  const f = p.mm.machine.phys.frames;
  expect(f.order(head)).toBe(9);
  for (const i of [0, 1, 255, 511]) {
    expect(pagemap(p.mm, map + i * P)).toMatchObject({ kind: 'device-private', present: false, swapped: true, order: 9, pfn: head + i });
  }
  return head;
}

function expectNoLeak(m: Machine, p: Process, dev: { usedPages: number }): void {
  expect(checkInvariants(m)).toEqual([]);
  p.exit();
  expect(dev.usedPages).toBe(0);
  expect(m.phys.usedRamFrames).toBe(0);
  expect(checkInvariants(m)).toEqual([]);
}

describe('device-private THP: migration whole', () => {
  it('MIGRATE_VMA_SELECT_COMPOUND collects a PMD-mapped THP as one MIGRATE_PFN_COMPOUND entry behind a PMD migration entry', () => {
    const { m, p, map } = thpSetup();
    const head = pagemap(p.mm, map).pfn;
    const args = newMigrateVma(p.mm.findVma(map)!, map, map + PMD_SIZE, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND, null);
    migrateVmaSetup(args);
    expect(args.cpages).toBe(1);
    expect(migratePfnHas(args.src[0]!, MIGRATE_PFN_COMPOUND) && migratePfnHas(args.src[0]!, MIGRATE_PFN_MIGRATE)).toBe(true);
    expect([...args.src].slice(1).every((s) => s === 0)).toBe(true);
    expect(pagemap(p.mm, map + 7 * P)).toMatchObject({ kind: 'migration', order: 9, pfn: head + 7 });
    expect(m.phys.frames.order(head)).toBe(9); // not split
    migrateVmaFinalize(args); // no destination: the THP comes back whole
    expect(pagemap(p.mm, map + 7 * P)).toMatchObject({ kind: 'anon', present: true, order: 9, pfn: head + 7 });
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a THP moves to one 2 MiB device folio (one device-private PMD), is snapshot with PMD order, and a CPU read brings it back as a THP', async () => {
    const { m, dev, p, fd, map } = thpSetup(3);
    const calloc = dev.calloc;
    expect(await toDevice(fd, map)).toBe(NPAGES);
    expect(dev.calloc - calloc).toBe(NPAGES); // one folio allocation
    const head = expectDevicePmd(p, map);
    const snap = hmmDmirrorCmd(map, new Uint8Array(NPAGES), NPAGES);
    await fd.ioctl(HMM_DMIRROR_SNAPSHOT, snap);
    const want = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD;
    expect((snap.ptr as Uint8Array).every((b) => b === want)).toBe(true);
    const freed = dev.chunks[0]!.pagemap.freed + (dev.chunks[1]?.pagemap.freed ?? 0);
    expect(p.read(map + 100 * P, 4)).toEqual(ints(3).subarray(100 * P, 100 * P + 4)); // migrate_to_ram of the whole folio
    expect(pagemap(p.mm, map)).toMatchObject({ kind: 'anon', present: true, order: 9 });
    expect(firstDiff(p.read(map, PMD_SIZE) as Uint8Array, ints(3))).toBe(-1);
    const freedNow = dev.chunks[0]!.pagemap.freed + (dev.chunks[1]?.pagemap.freed ?? 0);
    expect(freedNow - freed).toBe(1); // one page_free for the folio
    expect(m.phys.frames.refcount[head]).toBe(0);
    expectNoLeak(m, p, dev);
  });

  it('FAIL_ALLOC: the 2 MiB device allocation fails, the driver gives small pages and the core splits the THP; the data arrives', async () => {
    const { m, dev, p, fd, map } = thpSetup(5);
    await fd.ioctl(HMM_DMIRROR_FLAGS, hmmDmirrorCmd(map, 0, HMM_DMIRROR_FLAG_FAIL_ALLOC));
    expect(await toDevice(fd, map)).toBe(NPAGES);
    const e = [0, 1, 511].map((i) => pagemap(p.mm, map + i * P));
    expect(e.every((x) => x.kind === 'device-private' && x.order === 0)).toBe(true);
    expect(m.phys.frames.order(e[0]!.pfn)).toBe(0);
    expect(firstDiff(p.read(map, PMD_SIZE) as Uint8Array, ints(5))).toBe(-1); // each page faults back on its own
    expect(pagemap(p.mm, map + 9 * P)).toMatchObject({ kind: 'anon', order: 0 });
    expectNoLeak(m, p, dev);
  });

  it('MIGRATE_TO_SYS moves the device folio back whole (one entry), or, with FAIL_ALLOC, as 512 small pages', async () => {
    for (const fail of [false, true]) {
      const { m, dev, p, fd, map } = thpSetup(7);
      await toDevice(fd, map);
      if (fail) await fd.ioctl(HMM_DMIRROR_FLAGS, hmmDmirrorCmd(map, 0, HMM_DMIRROR_FLAG_FAIL_ALLOC));
      const cmd = hmmDmirrorCmd(map, 0, NPAGES);
      await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, cmd);
      expect(cmd.cpages).toBe(fail ? NPAGES : 1);
      expect(pagemap(p.mm, map + 3 * P)).toMatchObject({ kind: 'anon', present: true, order: fail ? 0 : 9 });
      expect(firstDiff(p.read(map, PMD_SIZE) as Uint8Array, ints(7))).toBe(-1);
      expectNoLeak(m, p, dev);
    }
  });

  it('an empty aligned PMD range migrates as one compound hole to a device folio; a huge zero page the same way', async () => {
    for (const zero of [false, true]) {
      const m = new Machine({ ramBytes: 64 << 20 });
      const dev = dmirrorInit(m, { chunkBytes: 8 << 20 }).devices[0]!;
      const p = m.spawn();
      const fd = hmmDmirrorOpen(p, 0);
      const raw = p.mmap(0, 2 * PMD_SIZE, PROT_READ, ANON);
      const map = Math.ceil(raw / PMD_SIZE) * PMD_SIZE;
      p.madvise(map, PMD_SIZE, 14 /* MADV_HUGEPAGE */);
      if (zero) {
        p.read(map, 4);
        expect(pagemap(p.mm, map)).toMatchObject({ kind: 'zero', order: 9 });
      }
      expect(await toDevice(fd, map)).toBe(NPAGES);
      expectDevicePmd(p, map);
      expect(firstDiff(p.read(map, PMD_SIZE), new Uint8Array(PMD_SIZE))).toBe(-1);
      expectNoLeak(m, p, dev);
    }
  });
});

describe('device-private THP: every PMD path', () => {
  it('hmm_range_fault: the owner sees VALID|WRITE with HMM_PFN_ORDER 9 on every page; another owner faulting it brings the folio back as a THP', async () => {
    const { m, dev, p, fd, map } = thpSetup();
    await toDevice(fd, map);
    const head = expectDevicePmd(p, map);
    const sub = new MmuIntervalNotifier({ invalidate: () => true });
    mmuIntervalNotifierInsert(sub, p.mm, map, PMD_SIZE);
    const owned = new HmmRange({ notifier: sub, start: map, end: map + PMD_SIZE, devPrivateOwner: dev });
    owned.notifierSeq = mmuIntervalReadBegin(sub);
    hmmRangeFault(owned);
    for (const i of [0, 200, 511]) {
      expect(owned.hmmFlags[i]! & (HMM_PFN_VALID | HMM_PFN_WRITE)).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
      expect(hmmPfnToMapOrder(owned, i)).toBe(9);
      expect(owned.hmmPfns[i]).toBe(head + i);
    }
    const other = new HmmRange({ notifier: sub, start: map, end: map + PMD_SIZE, devPrivateOwner: {}, defaultFlags: 0 });
    other.notifierSeq = mmuIntervalReadBegin(sub);
    hmmRangeFault(other);
    expect(other.hmmFlags[5]! & HMM_PFN_VALID).toBe(0); // not ours, not asked to fault: none
    const faulting = new HmmRange({ notifier: sub, start: map, end: map + PMD_SIZE, devPrivateOwner: {}, defaultFlags: HMM_PFN_REQ_FAULT });
    faulting.notifierSeq = mmuIntervalReadBegin(sub);
    hmmRangeFault(faulting);
    expect(hmmPfnToMapOrder(faulting, 5)).toBe(9);
    expect(m.phys.pagemapOf(faulting.hmmPfns[5]!)).toBeUndefined();
    expect(pagemap(p.mm, map)).toMatchObject({ kind: 'anon', order: 9 });
    expectNoLeak(m, p, dev);
  });

  it('a second device snapshots the folio as NONE and, reading it, brings it back (the owner check)', async () => {
    const { m, dev, p, fd, map } = thpSetup(2);
    await toDevice(fd, map);
    const fd1 = hmmDmirrorOpen(p, 1);
    const snap = hmmDmirrorCmd(map, new Uint8Array(NPAGES), NPAGES);
    await fd1.ioctl(HMM_DMIRROR_SNAPSHOT, snap);
    expect((snap.ptr as Uint8Array)[0]).toBe(HMM_DMIRROR_PROT_NONE);
    const read = hmmDmirrorCmd(map, new Uint8Array(PMD_SIZE), NPAGES);
    await fd1.ioctl(HMM_DMIRROR_READ, read);
    expect(firstDiff(read.ptr as Uint8Array, ints(2))).toBe(-1);
    expect(pagemap(p.mm, map)).toMatchObject({ kind: 'anon', order: 9 });
    expectNoLeak(m, p, dev);
  });

  it('the CPU fault on a device-private PMD with no THP to come back to: FAIL_ALLOC, the folio comes back split', async () => {
    const { m, dev, p, fd, map } = thpSetup(4);
    await toDevice(fd, map);
    await fd.ioctl(HMM_DMIRROR_FLAGS, hmmDmirrorCmd(map, 0, HMM_DMIRROR_FLAG_FAIL_ALLOC));
    expect(handleMmFault(p.mm, p.mm.findVma(map)!, map + 3 * P, FAULT_FLAG_WRITE)).toBe(0);
    expect(pagemap(p.mm, map + 3 * P)).toMatchObject({ kind: 'anon', order: 0 });
    expect(pagemap(p.mm, map + 300 * P)).toMatchObject({ kind: 'anon', order: 0 });
    expect(firstDiff(p.read(map, PMD_SIZE) as Uint8Array, ints(4))).toBe(-1);
    expectNoLeak(m, p, dev);
  });

  it('fork shares the device folio read-only; a CPU read in the child brings it back for both; a write in the parent then COWs', async () => {
    const { m, dev, p, fd, map } = thpSetup(6);
    await toDevice(fd, map);
    const head = expectDevicePmd(p, map);
    const c = p.fork();
    expect(m.phys.frames.refcount[head]).toBe(2);
    expect(m.phys.entireMapcount.get(head)).toBe(2);
    expect(pagemap(p.mm, map)).toMatchObject({ kind: 'device-private', write: false, order: 9 });
    expect(pagemap(c.mm, map)).toMatchObject({ kind: 'device-private', write: false, order: 9 });
    expect(checkInvariants(m)).toEqual([]);
    expect(c.read(map + 8, 4)).toEqual(ints(6).subarray(8, 12));
    const back = pagemap(p.mm, map);
    expect(back).toMatchObject({ kind: 'anon', order: 9 });
    expect(pagemap(c.mm, map).pfn).toBe(back.pfn); // one THP, both mapping it
    p.write(map, new Uint8Array([9, 9, 9, 9]));
    expect(c.read(map, 4)).toEqual(ints(6).subarray(0, 4));
    expect(p.read(map, 4)).toEqual(new Uint8Array([9, 9, 9, 9]));
    c.exit();
    expectNoLeak(m, p, dev);
  });

  it('munmap of half a device-private PMD splits it (split_huge_pmd); the rest faults back page by page and the unmapped half goes back to the driver', async () => {
    for (const offset of [0, PMD_SIZE / 4, PMD_SIZE / 2]) {
      const { m, dev, p, fd, map } = thpSetup(8);
      await toDevice(fd, map);
      const head = expectDevicePmd(p, map);
      p.munmap(map + offset, PMD_SIZE / 2);
      const kept = offset === 0 ? map + PMD_SIZE / 2 : map;
      expect(pagemap(p.mm, kept)).toMatchObject({ kind: 'device-private', order: 0, pfn: head + (kept - map) / P });
      expect(checkInvariants(m)).toEqual([]);
      const want = ints(8);
      for (let a = map; a < map + PMD_SIZE; a += P) {
        if (a >= map + offset && a < map + offset + PMD_SIZE / 2) continue;
        expect(firstDiff(p.read(a, P), want.subarray(a - map, a - map + P))).toBe(-1);
      }
      expect(dev.usedPages).toBe(0); // every device page went back, the unmapped ones with the split
      expectNoLeak(m, p, dev);
    }
  });

  it('mprotect of part of a device-private PMD splits it and write-protects that part only', async () => {
    const { m, dev, p, fd, map } = thpSetup(1);
    await toDevice(fd, map);
    p.mprotect(map, PMD_SIZE / 2, PROT_READ);
    expect(pagemap(p.mm, map)).toMatchObject({ kind: 'device-private', write: false, order: 0 });
    expect(pagemap(p.mm, map + PMD_SIZE / 2)).toMatchObject({ kind: 'device-private', write: true, order: 0 });
    expect(checkInvariants(m)).toEqual([]);
    expect(firstDiff(p.read(map, PMD_SIZE) as Uint8Array, ints(1))).toBe(-1);
    expectNoLeak(m, p, dev);
  });

  it('mremap moves a device-private PMD whole to an aligned address and splits it for an unaligned one', async () => {
    for (const shift of [0, 16 * P]) {
      const { m, dev, p, fd, map } = thpSetup(9);
      await toDevice(fd, map);
      const head = expectDevicePmd(p, map);
      const target = Math.ceil(p.mmap(0, 3 * PMD_SIZE, RW, ANON) / PMD_SIZE) * PMD_SIZE + shift;
      const to = p.mremap(map, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
      expect(pagemap(p.mm, to + 3 * P)).toMatchObject({ kind: 'device-private', order: shift ? 0 : 9, pfn: head + 3 });
      expect(checkInvariants(m)).toEqual([]);
      expect(firstDiff(p.read(to, PMD_SIZE) as Uint8Array, ints(9))).toBe(-1);
      expectNoLeak(m, p, dev);
    }
  });

  it('mremap of part of a device-private PMD splits it: the moved half keeps its device pages at the new address, the rest stays', async () => {
    for (const [from, len] of [[0, PMD_SIZE / 2], [PMD_SIZE / 4, PMD_SIZE / 4]] as const) {
      const { m, dev, p, fd, map } = thpSetup(11);
      await toDevice(fd, map);
      const head = expectDevicePmd(p, map);
      const target = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
      const to = p.mremap(map + from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, target);
      expect(pagemap(p.mm, to)).toMatchObject({ kind: 'device-private', order: 0, pfn: head + from / P });
      const stay = from === 0 ? map + len : map;
      expect(pagemap(p.mm, stay)).toMatchObject({ kind: 'device-private', order: 0, pfn: head + (stay - map) / P });
      expect(checkInvariants(m)).toEqual([]);
      const want = ints(11);
      expect(firstDiff(p.read(to, len) as Uint8Array, want.subarray(from, from + len))).toBe(-1);
      expect(firstDiff(p.read(stay, P) as Uint8Array, want.subarray(stay - map, stay - map + P))).toBe(-1);
      expectNoLeak(m, p, dev);
    }
  });

  it('zap (MADV_DONTNEED) frees the device folio with one page_free; reclaim refuses device pages; exit frees one folio per PMD', async () => {
    const { m, dev, p, fd, map } = thpSetup();
    await toDevice(fd, map);
    const head = expectDevicePmd(p, map);
    expect(() => swapOutPage(m, head)).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    p.madvise(map, PMD_SIZE, MADV_PAGEOUT);
    expect(pagemap(p.mm, map)).toMatchObject({ kind: 'device-private', order: 9 });
    const pgmap = m.phys.pagemapOf(head)!;
    const freed = pgmap.freed;
    p.madvise(map, PMD_SIZE, MADV_DONTNEED);
    expect(pgmap.freed - freed).toBe(1);
    expect(pagemap(p.mm, map).kind).toBe('none');
    const again = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
    const map2 = Math.ceil(again / PMD_SIZE) * PMD_SIZE;
    p.write(map2, ints(0));
    p.madvise(map2, PMD_SIZE, MADV_COLLAPSE);
    await toDevice(fd, map2);
    const head2 = expectDevicePmd(p, map2);
    const pgmap2 = m.phys.pagemapOf(head2)!;
    const before = pgmap2.freed;
    p.exit();
    expect(pgmap2.freed - before).toBe(1);
    expect(dev.usedPages).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });
});
