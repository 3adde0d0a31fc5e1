// tlbInvalidate visits a TLB only over the pages the MMU marked for it (tlb_marks.ts): it must
// drop exactly what invalidating every TLB over the whole range drops.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ACCESS_READ } from '../../../src/drivers/gpu/access.js';
import { GpuEventBus } from '../../../src/drivers/gpu/events.js';
import { GpuMmu, XLATE_HIT } from '../../../src/drivers/gpu/mmu.js';
import { PROT_READ, SIZE_2M, SIZE_4K, SIZE_64K } from '../../../src/drivers/gpu/page_table.js';

const walkNs = { l2TlbHitNs: 1, pageWalkNs: 2, pageWalk2MNs: 3 };

function mmu(utlbs: number): GpuMmu {
  // small TLBs, so that fills replace entries whose marks stay behind
  return new GpuMmu(0, 4, utlbs, 16, 4, 32, 4, new GpuEventBus(), walkNs);
}

const op = fc.oneof(
  fc.record({ k: fc.constant('map' as const), vpn: fc.nat(2047), size: fc.constantFrom(SIZE_4K, SIZE_64K, SIZE_2M) }),
  fc.record({ k: fc.constant('access' as const), vpn: fc.nat(2047), utlb: fc.nat(39) }),
  fc.record({ k: fc.constant('access' as const), vpn: fc.nat(2047), utlb: fc.nat(39) }),
  fc.record({ k: fc.constant('invalidate' as const), vpn: fc.nat(2047), n: fc.integer({ min: 1, max: 1100 }) }),
  fc.record({ k: fc.constant('all' as const) }),
);

describe('TLB invalidation through the marks', () => {
  it('drops exactly what invalidating every TLB over the range drops, translates as probing the L2 always (40 uTLBs: mark bits shared)', () => {
    fc.assert(fc.property(fc.array(op, { minLength: 30, maxLength: 120 }), (ops) => {
      const a = mmu(40);
      const b = mmu(40);
      const va = a.createVaSpace();
      const vb = b.createVaSpace();
      vb.tlbMarks.may = () => true; // the reference probes its L2 on every miss
      for (const o of ops) {
        if (o.k === 'map') {
          const n = [1, 16, 512][o.size]!;
          const vpn = o.vpn - (o.vpn % n);
          a.map(va, vpn, 1024 + vpn, o.size, PROT_READ);
          b.map(vb, vpn, 1024 + vpn, o.size, PROT_READ);
        } else if (o.k === 'access') {
          const r = a.translate(va.asid, o.vpn, ACCESS_READ, o.utlb);
          expect(b.translate(vb.asid, o.vpn, ACCESS_READ, o.utlb)).toBe(r);
          if (r === XLATE_HIT) expect(a.slot).toBe(b.slot);
          expect([a.stats.l2Hits, a.stats.walks]).toEqual([b.stats.l2Hits, b.stats.walks]);
        } else if (o.k === 'invalidate') {
          a.unmap(va, o.vpn, o.vpn + o.n, 'test');
          b.unmap(vb, o.vpn, o.vpn + o.n, 'test');
          const n = a.tlbInvalidate(va, o.vpn, o.vpn + o.n);
          let m = b.l2.invalidate(vb.asid, o.vpn, o.vpn + o.n);
          for (const u of b.utlbs) m += u.invalidate(vb.asid, o.vpn, o.vpn + o.n);
          expect(n).toBe(m);
        } else {
          expect(a.tlbInvalidateAll(va)).toBe(b.tlbInvalidateAll(vb));
        }
        expect(Array.from(a.l2.key)).toEqual(Array.from(b.l2.key));
        for (let i = 0; i < a.utlbs.length; i++) expect(Array.from(a.utlbs[i]!.key)).toEqual(Array.from(b.utlbs[i]!.key));
      }
    }), { numRuns: 150 });
  });

  it('skips the TLBs that never translated the range', () => {
    const a = mmu(4);
    const vs = a.createVaSpace();
    a.map(vs, 0x10, 99, SIZE_4K, PROT_READ);
    expect(a.translate(vs.asid, 0x10, ACCESS_READ, 2)).toBe(XLATE_HIT);
    const calls: number[] = [];
    a.utlbs.forEach((u, i) => {
      const inv = u.invalidate.bind(u);
      u.invalidate = (asid, s, e) => (calls.push(i), inv(asid, s, e));
    });
    expect(a.tlbInvalidate(vs, 0, 0x100)).toBe(2); // the L2's entry and uTLB 2's
    expect(calls).toEqual([2]);
    expect(a.tlbInvalidate(vs, 0, 0x100)).toBe(0);
    expect(calls).toEqual([2]);
  });
});
