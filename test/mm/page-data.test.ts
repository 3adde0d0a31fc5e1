// Page data: copy_highpage is lazy (the copy shares the source's data slot); the first write to
// either side gets a private copy, and the last holder frees the slot. Nothing read through
// either page may tell a lazy copy from an eager one.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkInvariants } from '../../src/mm/check.js';
import { Machine } from '../../src/mm/machine.js';
import { PAGE_SIZE } from '../../src/mm/constants.js';
import { swapOutPage } from '../../src/index.js';
import { ANON, P, pm, RW, setup } from './helpers.js';

function bytesOf(m: Machine, pfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  m.phys.readPage(pfn, 0, out, 0, PAGE_SIZE);
  return out;
}

describe('eager page copies (PhysMem.copyHighpage, the copy engine\'s policy EAGER_PAGE_COPY)', () => {
  it('the copy has a slot of its own with the source\'s bytes at once; writes stay on their side', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    const c = phys.allocPages(0);
    phys.writePage(a, 4000, Uint8Array.of(1, 2, 3), 0, 3);
    phys.copyHighpage(b, a);
    expect(phys.dataSlotsInUse).toBe(2);
    expect(Buffer.compare(bytesOf(m, a), bytesOf(m, b))).toBe(0);
    phys.writePage(a, 4001, Uint8Array.of(9), 0, 1);
    expect(Array.from(bytesOf(m, b).subarray(4000, 4003))).toEqual([1, 2, 3]);
    // Onto a frame that shares a slot lazily: it gets its own, the sharer keeps the old bytes.
    phys.copyPage(c, b);
    phys.copyHighpage(c, a);
    expect(phys.dataSlotsInUse).toBe(3);
    expect(Array.from(bytesOf(m, c).subarray(4000, 4003))).toEqual([1, 9, 3]);
    expect(Array.from(bytesOf(m, b).subarray(4000, 4003))).toEqual([1, 2, 3]);
    expect(checkInvariants(m).filter((e) => e.startsWith('data'))).toEqual([]);
  });

  it('copying a page without data drops the copy\'s slot: it reads zeros', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    phys.writePage(b, 0, Uint8Array.of(8), 0, 1);
    phys.copyHighpage(b, a);
    expect(phys.hasData(b)).toBe(false);
    expect(phys.dataSlotsInUse).toBe(0);
  });
});

describe('lazy page copies (PhysMem.copyPage)', () => {
  it('a copy reads like its source, costs no slot until written, and writes stay on their own side', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    phys.writePage(a, 10, Uint8Array.of(1, 2, 3), 0, 3);
    phys.copyPage(b, a);
    expect(phys.dataSlotsInUse).toBe(1);
    expect(Buffer.compare(bytesOf(m, a), bytesOf(m, b))).toBe(0);
    phys.writePage(b, 11, Uint8Array.of(9), 0, 1);
    expect(phys.dataSlotsInUse).toBe(2);
    expect(Array.from(bytesOf(m, a).subarray(10, 13))).toEqual([1, 2, 3]);
    expect(Array.from(bytesOf(m, b).subarray(10, 13))).toEqual([1, 9, 3]);
    phys.writePage(a, 12, Uint8Array.of(7), 0, 1); // a is alone on its slot again: written in place
    expect(phys.dataSlotsInUse).toBe(2);
    expect(Array.from(bytesOf(m, b).subarray(10, 13))).toEqual([1, 9, 3]);
  });

  it('freeing the source hands the slot to the copy (a migration moves no bytes); freeing both frees it', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    phys.writePage(a, 0, Uint8Array.of(5), 0, 1);
    phys.copyPage(b, a);
    phys.putPage(a);
    expect(phys.dataSlotsInUse).toBe(1);
    expect(bytesOf(m, b)[0]).toBe(5);
    phys.writePage(b, 1, Uint8Array.of(6), 0, 1);
    expect(phys.dataSlotsInUse).toBe(1); // the sole holder writes in place
    phys.putPage(b);
    expect(phys.dataSlotsInUse).toBe(0);
  });

  it('copying over a page with data drops its old data; copying a page without data makes the copy read zeros', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    phys.writePage(b, 0, Uint8Array.of(8), 0, 1);
    phys.copyPage(b, a);
    expect(phys.hasData(b)).toBe(false);
    expect(bytesOf(m, b)[0]).toBe(0);
    expect(phys.dataSlotsInUse).toBe(0);
    phys.writePage(a, 0, Uint8Array.of(3), 0, 1);
    phys.copyPage(b, a);
    phys.copyPage(b, a); // copying again onto the same slot changes nothing
    expect(phys.dataSlotsInUse).toBe(1);
    expect(checkInvariants(m).filter((e) => e.startsWith('data'))).toEqual([]);
  });

  it('a slot freed by more holders than it had is caught (double free)', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    phys.writePage(a, 0, Uint8Array.of(1), 0, 1);
    const slot = phys.takeSlot(a);
    phys.freeSlot(slot);
    expect(() => phys.freeSlot(slot)).toThrow(/freed twice/);
  });

  it('fork + COW: parent and child keep their own bytes whichever writes first; every slot is accounted for', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(3), fc.nat(255)), { minLength: 1, maxLength: 24 }), (writes) => {
        const { m, p } = setup();
        const a = p.mmap(0, 4 * P, RW, ANON);
        const ref = [new Uint8Array(4), new Uint8Array(4)];
        for (let i = 0; i < 4; i++) {
          p.writeU8(a + i * P, i + 1);
          ref[0]![i] = ref[1]![i] = i + 1;
        }
        const c = p.fork();
        for (const [child, page, v] of writes) {
          (child ? c : p).writeU8(a + page * P, v);
          ref[child ? 1 : 0]![page] = v;
          expect(checkInvariants(m)).toEqual([]);
        }
        for (let i = 0; i < 4; i++) {
          expect(p.readU8(a + i * P)).toBe(ref[0]![i]);
          expect(c.readU8(a + i * P)).toBe(ref[1]![i]);
        }
        c.exit();
        p.exit();
        expect(m.phys.dataSlotsInUse).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('swap-in by one of two sharers shares the swap slot data; each side then writes its own copy', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU32(a, 0xabcdef);
    const c = p.fork();
    swapOutPage(m, pm(p, a).pfn); // both processes now hold the swap entry
    expect(m.phys.dataSlotsInUse).toBe(1);
    expect(c.readU32(a)).toBe(0xabcdef); // swap-in by the child: a new page sharing the swap slot's data
    expect(m.phys.dataSlotsInUse).toBe(1);
    c.writeU8(a, 0x11);
    expect(m.phys.dataSlotsInUse).toBe(2);
    expect(checkInvariants(m)).toEqual([]);
    expect(p.readU32(a)).toBe(0xabcdef); // the parent's swap-in takes the slot itself (last user)
    expect(c.readU32(a)).toBe(0xabcd11);
    p.writeU8(a + 1, 0x22);
    expect(p.readU32(a)).toBe(0xab22ef);
    expect(c.readU32(a)).toBe(0xabcd11);
    c.exit();
    p.exit();
    expect(m.phys.dataSlotsInUse).toBe(0);
  });
});
