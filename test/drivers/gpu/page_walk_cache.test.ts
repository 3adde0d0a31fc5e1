// GpuPageTable.walk goes through a cache of PTE tables by 2 MiB region: a table that leaves the
// tree (emptied by an unmap, replaced by a 2 MiB leaf) must leave the cache, or a walk would
// read a detached table.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GpuPageTable, PROT_READ, PROT_READ_WRITE, PTE_BIG, PTE_VALID, type GpuPtLeaf } from '../../../src/drivers/gpu/page_table.js';

const op = fc.oneof(
  fc.record({ k: fc.constant('map' as const), vpn: fc.nat(2047), size: fc.constantFrom(0, 0, 1, 2), prot: fc.constantFrom(PROT_READ, PROT_READ_WRITE) }),
  fc.record({ k: fc.constant('unmap' as const), vpn: fc.nat(2047), n: fc.integer({ min: 1, max: 600 }) }),
  fc.record({ k: fc.constant('protect' as const), vpn: fc.nat(2047), n: fc.integer({ min: 1, max: 600 }), prot: fc.constantFrom(0, PROT_READ) }),
);

describe('GPU page-walk cache', () => {
  it('walks agree with a per-page model after every map, unmap and downgrade', () => {
    fc.assert(fc.property(fc.array(op, { minLength: 10, maxLength: 60 }), (ops) => {
      const pt = new GpuPageTable();
      const model = new Map<number, [number, number]>(); // vpn -> [pfn, flags]
      const leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
      const wrong: number[] = [];
      const check = (v: number): void => {
        pt.walk(v, leaf);
        const e = model.get(v);
        if (e ? leaf.pfn !== e[0] || (leaf.flags & ~PTE_BIG) !== e[1] : leaf.flags & PTE_VALID) wrong.push(v);
      };
      for (const o of ops) {
        if (o.k === 'map') {
          const n = [1, 16, 512][o.size]!;
          const vpn = o.vpn - (o.vpn % n);
          pt.map(vpn, 4096 + vpn, o.size as 0 | 1 | 2, o.prot);
          for (let i = 0; i < n; i++) model.set(vpn + i, [4096 + vpn + i, o.prot]);
          check(o.vpn);
        } else {
          if (o.k === 'unmap' || o.prot === 0) pt.unmap(o.vpn, o.vpn + o.n);
          else pt.protect(o.vpn, o.vpn + o.n, o.prot);
          for (let v = o.vpn; v < o.vpn + o.n; v++) {
            const e = model.get(v);
            if (!e) continue;
            if (o.k === 'unmap' || o.prot === 0) model.delete(v);
            else model.set(v, [e[0], e[1] & o.prot]);
          }
          check(o.vpn);
          check(o.vpn + o.n - 1);
        }
        // every page of the first four regions: each region's table walked (and cached) now
        for (let v = 0; v < 2048 + 600; v += 7) check(v);
      }
      expect(wrong).toEqual([]);
    }), { numRuns: 100 });
  });
});
