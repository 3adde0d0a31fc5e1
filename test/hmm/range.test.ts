// The pfn encodings (hmm/range.ts) and the sync timing switch of the 4.17 mirror.

import { describe, expect, it } from 'vitest';
import {
  HmmRange, hmmPfnEncode, hmmPfnDecode, hmmPfnToMapOrder, hmmPfnToPage, hmmPfnToPhys, MmuIntervalNotifier, HMM_PFN_VALID,
  HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_ORDER_SHIFT, type Process,
} from '../../src/index.js';
import {
  HmmMirror, hmmMirrorRegister, HmmRange as HmmRange417, hmmPfnToPage as hmmPfnToPage417, hmmPfnToPfn, hmmPfnFromPage,
  hmmPfnFromPfn, hmmVmaGetPfns, hmmVmaRangeDone,
} from '../../src/hmm/v417/index.js';
import * as hmm417 from '../../src/hmm/v417/index.js';
import { anon, cpuPfn, newMachine, P, slotOf } from './helpers.js';

function range(p: Process, a: number, shift: number, flags: [number, number, number], values: [number, number, number]): HmmRange417 {
  return new HmmRange417({ vma: p.mm.findVma(a)!, start: a, end: a + P, flags, values, pfnShift: shift });
}

describe('4.17 driver-defined encoding', () => {
  it('entries beyond 32 bits are exact: multiplication by 2**pfnShift, never <<', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 1);
    const r = range(p, a, 20, [1 << 17, 1 << 18, 1 << 19], [3, 5, 6]);
    const pfn = 0xfffffff1; // a 32-bit pfn shifted by 20: about 2^52
    const e = hmmPfnFromPfn(r, pfn);
    expect(e).toBe(pfn * 2 ** 20 + (1 << 17));
    expect(e).toBeGreaterThan(2 ** 51);
    expect(Number.isSafeInteger(e)).toBe(true);
    expect(hmmPfnToPfn(r, e)).toBe(pfn);
    expect(hmmPfnToPage417(r, e + (1 << 18))).toBe(pfn);
    expect(hmmPfnFromPage(r, 77)).toBe(hmmPfnFromPfn(r, 77));
    expect((e | 0) === e).toBe(false); // what a 32-bit shift would have lost
  });

  it('special values and entries without VALID decode to NULL / -1', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 1);
    const r = range(p, a, 8, [0x10, 0x20, 0x40], [0x1, 0x2, 0x1]); // ERROR and SPECIAL may be equal
    for (const v of [0x1, 0x2]) {
      expect(hmmPfnToPage417(r, v)).toBeNull();
      expect(hmmPfnToPfn(r, v)).toBe(-1);
    }
    expect(hmmPfnToPfn(r, 5 * 256 + 0x20)).toBe(-1); // WRITE without VALID
    expect(hmmPfnToPfn(r, 5 * 256 + 0x30)).toBe(5);
  });

  it('a snapshot writes the driver\'s own format (here pfn << 12 with bits 9..11)', () => {
    const m = newMachine();
    const p = m.spawn();
    hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), p.mm);
    const a = anon(p, 2);
    p.writeU8(a, 1);
    const r = new hmm417.HmmRange({ vma: p.mm.findVma(a)!, start: a, end: a + 2 * P, flags: [1 << 9, 1 << 10, 1 << 11], values: [0xff, 0x100, 0xff], pfnShift: 12 });
    hmmVmaGetPfns(r);
    expect(r.pfns[0]).toBe(cpuPfn(p.mm, a) * 4096 + (1 << 9) + (1 << 10));
    expect(r.pfns[1]).toBe(0x100);
    expect(hmm417.hmmPfnToPage(r, r.pfns[0]!)).toBe(cpuPfn(p.mm, a));
    hmmVmaRangeDone(r);
  });
});

describe('mainline encoding: hmmFlags holds the top byte of the u64', () => {
  it('encode/decode round-trips through the kernel u64, bits 63/62/61 and the order at 56', () => {
    const r = new HmmRange({ notifier: new MmuIntervalNotifier({ invalidate: () => true }), start: 0x10000, end: 0x10000 + 2 * P });
    r.hmmFlags[0] = HMM_PFN_VALID | HMM_PFN_WRITE | 9;
    r.hmmPfns[0] = 0xdeadbeef;
    const v = hmmPfnEncode(r, 0);
    expect(v).toBe((1n << 63n) | (1n << 62n) | (9n << BigInt(HMM_PFN_ORDER_SHIFT)) | 0xdeadbeefn);
    hmmPfnDecode(r, 1, (1n << 61n) | 5n);
    expect([r.hmmFlags[1], r.hmmPfns[1]]).toEqual([HMM_PFN_ERROR, 5]);
    expect(hmmPfnToMapOrder(r, 0)).toBe(9);
    expect(hmmPfnToPage(r, 0)).toBe(0xdeadbeef);
    expect(hmmPfnToPhys(r, 0)).toBe(0xdeadbeef * P);
    expect(() => hmmPfnDecode(r, 1, 1n << 40n)).toThrow(/32 bits/);
  });
});

describe('4.17 sync timing (docs/api.md)', () => {
  for (const syncAt of ['start', 'end'] as const) {
    it(`syncAt '${syncAt}': the sync callback sees the CPU entry ${syncAt === 'start' ? 'before' : 'after'} the change`, () => {
      const m = newMachine();
      const p = m.spawn();
      const a = anon(p, 2);
      p.writeU8(a, 1);
      const old = cpuPfn(p.mm, a);
      const seen: number[] = [];
      hmmMirrorRegister(new HmmMirror({
        syncCpuDevicePagetables: (_m, _u, s) => {
          const sl = slotOf(p.mm, s);
          seen.push(sl.node.val[sl.idx]!);
        },
      }), p.mm, { syncAt });
      p.fork();
      p.writeU8(a, 2); // COW break: a new frame
      const now = cpuPfn(p.mm, a);
      expect(now).not.toBe(old);
      // fork's PROTECTION_PAGE, then the COW break's CLEAR
      expect(seen).toEqual(syncAt === 'start' ? [old, old] : [old, now]);
    });
  }
});
