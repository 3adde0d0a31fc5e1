// Page data: copy_highpage is lazy (the copy shares the source's data slot); the first write to
// either side gets a private copy, and the last holder frees the slot. Nothing read through
// either page may tell a lazy copy from an eager one, or a head slot from a whole page.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkInvariants } from '../../src/mm/check.js';
import { Machine } from '../../src/mm/machine.js';
import { PAGE_SIZE } from '../../src/mm/constants.js';
import { HEAD_BYTES } from '../../src/mm/physmem.js';
import { swapOutPage } from '../../src/index.js';
import { ANON, P, pm, RW, setup } from './helpers.js';

function bytesOf(m: Machine, pfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  m.phys.readPage(pfn, 0, out, 0, PAGE_SIZE);
  return out;
}

describe('head slots: a page written only in its first HEAD_BYTES holds only those', () => {
  it('a small write takes a 64-byte head; the rest reads as zeros; a write past it grows the page, keeping the head\'s bytes', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    phys.writePage(a, 60, Uint8Array.of(1, 2, 3, 4), 0, 4);
    expect(phys.data.slotsInUse).toBe(1);
    expect(phys.data.bytesInUse).toBe(HEAD_BYTES);
    const page = bytesOf(m, a);
    expect(Array.from(page.subarray(58, 66))).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
    expect(page.reduce((x, b) => x + b, 0)).toBe(10);
    // A read that spans the head's end: its bytes, then zeros.
    const span = new Uint8Array(8).fill(0xee);
    phys.readPage(a, 60, span, 0, 8);
    expect(Array.from(span)).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
    phys.writePage(a, 64, Uint8Array.of(5), 0, 1);
    expect(phys.data.slotsInUse).toBe(1);
    expect(phys.data.bytesInUse).toBe(PAGE_SIZE);
    expect(Array.from(bytesOf(m, a).subarray(60, 66))).toEqual([1, 2, 3, 4, 5, 0]);
    expect(checkInvariants(m).filter((e) => e.startsWith('data'))).toEqual([]);
  });

  it('a shared head grown by one holder: the other keeps the head; eager copies of a head are heads', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    const c = phys.allocPages(0);
    phys.writePage(a, 0, Uint8Array.of(7), 0, 1);
    phys.copyPage(b, a);
    phys.writePage(b, 4000, Uint8Array.of(8), 0, 1);
    expect(phys.data.bytesInUse).toBe(HEAD_BYTES + PAGE_SIZE);
    expect([bytesOf(m, a)[0], bytesOf(m, a)[4000], bytesOf(m, b)[0], bytesOf(m, b)[4000]]).toEqual([7, 0, 7, 8]);
    phys.copyHighpage(c, a);
    expect(phys.data.bytesInUse).toBe(2 * HEAD_BYTES + PAGE_SIZE);
    phys.writePage(c, 1, Uint8Array.of(9), 0, 1);
    expect(Array.from(bytesOf(m, a).subarray(0, 2))).toEqual([7, 0]);
    expect(Array.from(bytesOf(m, c).subarray(0, 2))).toEqual([7, 9]);
    for (const f of [a, b, c]) phys.clearPage(f);
    expect(phys.data.slotsInUse).toBe(0);
  });

  it('property: any sequence of writes, lazy and eager copies and clears reads like a flat copy of every page', () => {
    const FRAMES = 3;
    const op = fc.oneof(
      fc.record({ k: fc.constant('write' as const), f: fc.nat(FRAMES - 1), off: fc.oneof(fc.nat(70), fc.nat(PAGE_SIZE - 1)), len: fc.integer({ min: 1, max: 80 }), v: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ k: fc.constantFrom('copy' as const, 'eager' as const), f: fc.nat(FRAMES - 1), g: fc.nat(FRAMES - 1) }),
      fc.record({ k: fc.constant('clear' as const), f: fc.nat(FRAMES - 1) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const m = new Machine({ ramBytes: 1 << 20 });
        const phys = m.phys;
        const pfns = Array.from({ length: FRAMES }, () => phys.allocPages(0));
        const ref = pfns.map(() => new Uint8Array(PAGE_SIZE));
        for (const o of ops) {
          if (o.k === 'write') {
            const len = Math.min(o.len, PAGE_SIZE - o.off);
            phys.writePage(pfns[o.f]!, o.off, new Uint8Array(len).fill(o.v), 0, len);
            ref[o.f]!.fill(o.v, o.off, o.off + len);
          } else if (o.k === 'clear') {
            phys.clearPage(pfns[o.f]!);
            ref[o.f]!.fill(0);
          } else if (o.f !== o.g) {
            if (o.k === 'copy') phys.copyPage(pfns[o.f]!, pfns[o.g]!);
            else phys.copyHighpage(pfns[o.f]!, pfns[o.g]!);
            ref[o.f]!.set(ref[o.g]!);
          }
          for (let i = 0; i < FRAMES; i++) expect(Buffer.compare(bytesOf(m, pfns[i]!), ref[i]!)).toBe(0);
          expect(checkInvariants(m).filter((e) => e.startsWith('data'))).toEqual([]);
        }
        for (const p of pfns) phys.clearPage(p);
        expect(phys.data.slotsInUse).toBe(0);
        m.dispose();
      }),
      { numRuns: 150 },
    );
  });
});

describe('eager page copies (PhysMem.copyHighpage, the copy engine\'s policy EAGER_PAGE_COPY)', () => {
  it('the copy has a slot of its own with the source\'s bytes at once; writes stay on their side', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    const c = phys.allocPages(0);
    phys.writePage(a, 4000, Uint8Array.of(1, 2, 3), 0, 3);
    phys.copyHighpage(b, a);
    expect(phys.data.slotsInUse).toBe(2);
    expect(Buffer.compare(bytesOf(m, a), bytesOf(m, b))).toBe(0);
    phys.writePage(a, 4001, Uint8Array.of(9), 0, 1);
    expect(Array.from(bytesOf(m, b).subarray(4000, 4003))).toEqual([1, 2, 3]);
    // Onto a frame that shares a slot lazily: it gets its own, the sharer keeps the old bytes.
    phys.copyPage(c, b);
    phys.copyHighpage(c, a);
    expect(phys.data.slotsInUse).toBe(3);
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
    expect(phys.data.hasData(b)).toBe(false);
    expect(phys.data.slotsInUse).toBe(0);
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
    expect(phys.data.slotsInUse).toBe(1);
    expect(Buffer.compare(bytesOf(m, a), bytesOf(m, b))).toBe(0);
    phys.writePage(b, 11, Uint8Array.of(9), 0, 1);
    expect(phys.data.slotsInUse).toBe(2);
    expect(Array.from(bytesOf(m, a).subarray(10, 13))).toEqual([1, 2, 3]);
    expect(Array.from(bytesOf(m, b).subarray(10, 13))).toEqual([1, 9, 3]);
    phys.writePage(a, 12, Uint8Array.of(7), 0, 1); // a is alone on its slot again: written in place
    expect(phys.data.slotsInUse).toBe(2);
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
    expect(phys.data.slotsInUse).toBe(1);
    expect(bytesOf(m, b)[0]).toBe(5);
    phys.writePage(b, 1, Uint8Array.of(6), 0, 1);
    expect(phys.data.slotsInUse).toBe(1); // the sole holder writes in place
    phys.putPage(b);
    expect(phys.data.slotsInUse).toBe(0);
  });

  it('copying over a page with data drops its old data; copying a page without data makes the copy read zeros', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    const b = phys.allocPages(0);
    phys.writePage(b, 0, Uint8Array.of(8), 0, 1);
    phys.copyPage(b, a);
    expect(phys.data.hasData(b)).toBe(false);
    expect(bytesOf(m, b)[0]).toBe(0);
    expect(phys.data.slotsInUse).toBe(0);
    phys.writePage(a, 0, Uint8Array.of(3), 0, 1);
    phys.copyPage(b, a);
    phys.copyPage(b, a); // copying again onto the same slot changes nothing
    expect(phys.data.slotsInUse).toBe(1);
    expect(checkInvariants(m).filter((e) => e.startsWith('data'))).toEqual([]);
  });

  it('a slot freed by more holders than it had is caught (double free)', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const phys = m.phys;
    const a = phys.allocPages(0);
    phys.writePage(a, 0, Uint8Array.of(1), 0, 1);
    const slot = phys.data.takeSlot(a);
    phys.data.freeSlot(slot);
    expect(() => phys.data.freeSlot(slot)).toThrow(/freed twice/);
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
        expect(m.phys.data.slotsInUse).toBe(0);
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
    expect(m.phys.data.slotsInUse).toBe(1);
    expect(c.readU32(a)).toBe(0xabcdef); // swap-in by the child: a new page sharing the swap slot's data
    expect(m.phys.data.slotsInUse).toBe(1);
    c.writeU8(a, 0x11);
    expect(m.phys.data.slotsInUse).toBe(2);
    expect(checkInvariants(m)).toEqual([]);
    expect(p.readU32(a)).toBe(0xabcdef); // the parent's swap-in takes the slot itself (last user)
    expect(c.readU32(a)).toBe(0xabcd11);
    p.writeU8(a + 1, 0x22);
    expect(p.readU32(a)).toBe(0xab22ef);
    expect(c.readU32(a)).toBe(0xabcd11);
    c.exit();
    p.exit();
    expect(m.phys.data.slotsInUse).toBe(0);
  });
});
