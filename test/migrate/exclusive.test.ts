import { describe, expect, it } from 'vitest';
import {
  Machine, makeDeviceExclusive, MAP_ANONYMOUS, MAP_PRIVATE, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq,
  PAGE_SIZE, PROT_READ, PROT_WRITE, type MmuNotifierRange,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { K_DEVICE_EXCLUSIVE, K_PRESENT, KIND_MASK, type PtSlot } from '../../src/mm/pagetable.js';
import type { Process } from '../../src/index.js';

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
