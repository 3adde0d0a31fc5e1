import { describe, expect, it } from 'vitest';
import {
  Machine, makeDeviceExclusive, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MmuIntervalNotifier, mmuIntervalNotifierInsert,
  mmuIntervalSetSeq, PAGE_SIZE, PROT_READ, PROT_WRITE, WouldBlock, type MmuNotifierRange,
} from '../../../src/index.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { K_DEVICE_EXCLUSIVE, K_PRESENT, KIND_MASK, type PtSlot } from '../../../src/mm/pagetable.js';
import type { Process } from '../../../src/index.js';
import { TestDevice } from './device.js';

function kind(p: Process, addr: number): number {
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  p.mm.pt.lookup(addr / PAGE_SIZE, s);
  return s.node.flg[s.idx]! & KIND_MASK;
}

describe('make_device_exclusive', () => {
  function setup() {
    const m = new Machine({ ramBytes: 16 << 20 });
    const p = m.spawn();
    const a = p.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const seen: Array<[string, unknown]> = [];
    const sub = new MmuIntervalNotifier({ invalidate: (s, r: MmuNotifierRange, seq) => (mmuIntervalSetSeq(s, seq), seen.push([r.event, r.owner]), true) });
    mmuIntervalNotifierInsert(sub, p.mm, a, 4 * PAGE_SIZE);
    return { m, p, a, seen };
  }

  it('mainline #35: the entry becomes device-exclusive (EXCLUSIVE with the owner); a CPU read restores it (EXCLUSIVE, no owner), data intact', () => {
    const { m, p, a, seen } = setup();
    p.writeU32(a, 41);
    const owner = { dev: 0 };
    const pfn = makeDeviceExclusive(p.mm, a, owner);
    expect(kind(p, a)).toBe(K_DEVICE_EXCLUSIVE);
    expect(seen).toEqual([['EXCLUSIVE', owner]]);
    expect(checkInvariants(m)).toEqual([]); // still mapped and referenced
    m.phys.writePage(pfn, 0, Uint8Array.of(42), 0, 1); // the device's atomic
    expect(p.readU32(a)).toBe(42);
    expect(kind(p, a)).toBe(K_PRESENT);
    expect(seen.slice(1)).toEqual([['EXCLUSIVE', null]]);
  });

  it('an untouched page is faulted in writable first; fork restores the entry and the child gets a COW copy', () => {
    const { m, p, a } = setup();
    makeDeviceExclusive(p.mm, a + PAGE_SIZE, 'dev');
    expect(kind(p, a + PAGE_SIZE)).toBe(K_DEVICE_EXCLUSIVE);
    const c = p.fork();
    expect(kind(p, a + PAGE_SIZE)).toBe(K_PRESENT);
    c.writeU32(a + PAGE_SIZE, 5);
    expect(p.readU32(a + PAGE_SIZE)).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
    c.exit();
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('bad input: unmapped EFAULT, read-only EFAULT (FOLL_WRITE); nothing changed', () => {
    const { p, a } = setup();
    p.writeU32(a, 1);
    expect(() => makeDeviceExclusive(p.mm, 0x10000, null)).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(() => makeDeviceExclusive(p.mm, a, null)).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
    expect(kind(p, a)).toBe(K_PRESENT);
  });
});

describe('make_device_exclusive: the cases around it', () => {
  function proc() {
    const m = new Machine({ ramBytes: 32 << 20 });
    const p = m.spawn();
    return { m, p };
  }

  it('an unaligned address is rounded down to its page (PAGE_ALIGN_DOWN)', () => {
    const { m, p } = proc();
    const a = p.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    makeDeviceExclusive(p.mm, a + PAGE_SIZE + 123, null);
    expect(kind(p, a + PAGE_SIZE)).toBe(K_DEVICE_EXCLUSIVE);
    expect(kind(p, a)).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a shared file page is EOPNOTSUPP (not anonymous); a private file mapping gets its COW copy made exclusive', () => {
    const { m, p } = proc();
    const f = m.fs.open('f');
    f.pwrite(Uint8Array.of(1, 2, 3), 0);
    const s = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    expect(() => makeDeviceExclusive(p.mm, s, null)).toThrow(expect.objectContaining({ errno: 'EOPNOTSUPP' }));
    expect(kind(p, s)).toBe(K_PRESENT);
    const pr = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, f, 0);
    const pfn = makeDeviceExclusive(p.mm, pr, null);
    expect(m.phys.isAnon(pfn)).toBe(true);
    expect(p.read(pr, 3)).toEqual(Uint8Array.of(1, 2, 3));
    const h = p.mmap(0, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | 0x40000 /* MAP_HUGETLB */);
    expect(() => makeDeviceExclusive(p.mm, h, null)).toThrow(expect.objectContaining({ errno: 'EOPNOTSUPP' }));
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a THP: its PMD is split (FOLL_SPLIT_PMD), one PTE becomes exclusive, the folio stays whole and every byte stays', () => {
    const { m, p } = proc();
    const a = p.mmap(0, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.madvise(a, 2 << 20, 14 /* MADV_HUGEPAGE */);
    p.writeU32(a + 9 * PAGE_SIZE, 99);
    makeDeviceExclusive(p.mm, a + 9 * PAGE_SIZE, 'dev');
    expect(kind(p, a + 9 * PAGE_SIZE)).toBe(K_DEVICE_EXCLUSIVE);
    expect(kind(p, a + 10 * PAGE_SIZE)).toBe(K_PRESENT);
    expect(checkInvariants(m)).toEqual([]);
    expect(p.readU32(a + 9 * PAGE_SIZE)).toBe(99);
  });

  it('a page locked by a migration: WouldBlock until it is unlocked', async () => {
    const { m, p } = proc();
    const a = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.writeU32(a, 5);
    const s: PtSlot = { node: null!, idx: 0, level: 0 };
    p.mm.pt.lookup(a / PAGE_SIZE, s);
    const pfn = s.node.val[s.idx]!;
    m.phys.trylockPage(pfn);
    let err: unknown;
    try {
      makeDeviceExclusive(p.mm, a, null);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WouldBlock);
    expect(kind(p, a)).toBe(K_PRESENT);
    setTimeout(() => m.phys.unlockPage(pfn), 1);
    await (err as WouldBlock).wait();
    expect(makeDeviceExclusive(p.mm, a, null)).toBe(pfn);
  });

  it('a device-private page comes back to system memory first; mprotect and munmap apply to exclusive entries', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const dev = new TestDevice(m, { frames: 4 });
    const p = m.spawn();
    const a = p.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.writeU32(a, 8);
    dev.migrateToDevice(p.mm, a, a + PAGE_SIZE);
    const pfn = makeDeviceExclusive(p.mm, a, 'dev');
    expect(m.phys.pagemapOf(pfn)).toBeUndefined();
    expect(dev.toRam).toBe(1);
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(kind(p, a)).toBe(K_DEVICE_EXCLUSIVE);
    expect(p.readU32(a)).toBe(8); // restored, read-only as mprotect left the entry
    expect(() => p.writeU32(a, 1)).toThrow(expect.objectContaining({ signal: 'SIGSEGV' }));
    makeDeviceExclusive(p.mm, a + PAGE_SIZE, 'dev');
    p.munmap(a, 2 * PAGE_SIZE);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });
});
