// preprocess_fault_batch's order: FaultBatch sorts with a merge sort of its own; it must be the
// stable sort by (address space, address, most intrusive first), ties in fetch order.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FaultBatch } from '../../../../src/drivers/gpu/uvm/replayable_faults.js';

describe('fault batch sort', () => {
  it('orders as a stable sort by (asid, address, rank descending), whatever the batch', () => {
    const entry = fc.record({ asid: fc.nat(2), page: fc.nat(6), rank: fc.nat(3), filtered: fc.boolean() });
    fc.assert(fc.property(fc.array(entry, { minLength: 0, maxLength: 256 }), (es) => {
      const b = new FaultBatch(256, 4);
      es.forEach((e, i) => {
        b.asid[i] = e.asid;
        b.addr[i] = 2 ** 40 + e.page * 4096;
        b.rank[i] = e.rank;
        b.filtered[i] = e.filtered ? 1 : 0;
      });
      b.numCached = es.length;
      b.preprocess();
      const want = es.map((_, i) => i).filter((i) => !es[i]!.filtered)
        .sort((x, y) => es[x]!.asid - es[y]!.asid || es[x]!.page - es[y]!.page || es[y]!.rank - es[x]!.rank);
      expect(Array.from(b.order.subarray(0, b.numCoalesced))).toEqual(want);
    }), { numRuns: 300 });
  });
});
