// uvm_perf_prefetch.c: the bitmap tree with UVM_PREFETCH_THRESHOLD_DEFAULT 51, big-page growth
// (grow_fault_granularity, UVM_BIG_PAGE_SIZE 64 KiB), first-touch populate, thrashing pages
// excluded; and the alternatives researchers compare (none, seq64k, random4k).

import { describe, expect, it } from 'vitest';
import { NoPrefetcher, Random4kPrefetcher, Seq64kPrefetcher, TreePrefetcher } from '../../../../src/drivers/gpu/uvm/perf_prefetch.js';
import { UVM_ID_GPU, type PrefetchInput } from '../../../../src/drivers/gpu/uvm/policy_types.js';

function input(over: Partial<Omit<PrefetchInput, 'faulted' | 'resident' | 'thrashing'>> & { faulted: number[]; resident?: number[]; thrashing?: number[] }): [PrefetchInput, Uint8Array] {
  const faulted = new Uint8Array(512);
  const resident = new Uint8Array(512);
  for (const p of over.faulted) faulted[p] = 1;
  for (const p of over.resident ?? []) resident[p] = 1;
  let thrashing: Uint8Array | null = null;
  if (over.thrashing) {
    thrashing = new Uint8Array(512);
    for (const p of over.thrashing) thrashing[p] = 1;
  }
  return [{
    first: over.first ?? 0, outer: over.outer ?? 512, faulted, resident, thrashing, firstTouchAtPreferred: over.firstTouchAtPreferred ?? false,
    dest: UVM_ID_GPU, threshold: over.threshold ?? 51, random: over.random ?? (() => 0.5),
  }, new Uint8Array(512)];
}

/** The marked pages as [first, outer) runs. */
function runs(out: Uint8Array): Array<[number, number]> {
  const r: Array<[number, number]> = [];
  for (let p = 0; p < out.length; p++) {
    if (!out[p]) continue;
    const s = p;
    while (p < out.length && out[p]) p++;
    r.push([s, p]);
  }
  return r;
}

describe('tree prefetcher (uvm_perf_prefetch.c)', () => {
  it('grow_fault_granularity: one fault pulls in its 64 KiB big page, and no further when the next level is at 50%', () => {
    const [i, out] = input({ faulted: [3] });
    new TreePrefetcher().compute(i, out);
    // [0,16) is full; [0,32) has 16 of 32 = 50%, not more than 51%.
    expect(runs(out)).toEqual([[0, 16]]);
  });

  it('compute_prefetch_region: the largest subtree over the 51% threshold wins', () => {
    // Big page [0,16) grown from the fault, 17 resident pages above: [0,64) holds 33 of 64 (51.6% > 51%).
    const [i, out] = input({ faulted: [0], resident: Array.from({ length: 17 }, (_, k) => 16 + k) });
    new TreePrefetcher().compute(i, out);
    expect(runs(out)).toEqual([[0, 64]]);
    // With 16 resident pages [0,64) holds 32 of 64 = 50%: only [0,32) qualifies.
    const [i2, out2] = input({ faulted: [0], resident: Array.from({ length: 16 }, (_, k) => 16 + k) });
    new TreePrefetcher().compute(i2, out2);
    expect(runs(out2)).toEqual([[0, 32]]);
  });

  it('the threshold is a module parameter (uvm_perf_prefetch_threshold)', () => {
    const [i, out] = input({ faulted: [0], resident: Array.from({ length: 16 }, (_, k) => 16 + k), threshold: 49 });
    new TreePrefetcher().compute(i, out);
    expect(runs(out)).toEqual([[0, 64]]);
  });

  it('a sequential sweep: faults on more than half the block prefetch all of it', () => {
    const resident = Array.from({ length: 256 }, (_, k) => k);
    const [i, out] = input({ faulted: [256], resident });
    new TreePrefetcher().compute(i, out);
    expect(runs(out)).toEqual([[0, 512]]);
  });

  it('thrashing pages: no big-page growth around them, and they are not used to compute regions', () => {
    const [i, out] = input({ faulted: [0, 40], thrashing: [5, 40] });
    new TreePrefetcher().compute(i, out);
    // Page 0's big page holds thrashing page 5: it is not grown; page 40 is thrashing itself.
    expect(runs(out)).toEqual([[0, 1]]);
  });

  it('first touch at the preferred location populates the whole region', () => {
    const [i, out] = input({ faulted: [7], first: 2, outer: 300, firstTouchAtPreferred: true });
    new TreePrefetcher().compute(i, out);
    expect(runs(out)).toEqual([[2, 300]]);
  });

  it('a region clipped by the VMA is aligned to big pages with ghost leaves and stays inside the region', () => {
    const [i, out] = input({ faulted: [3], first: 3, outer: 40 });
    new TreePrefetcher().compute(i, out);
    // The prefix [3,16) before the first big page is grown as one unit.
    expect(runs(out)).toEqual([[3, 16]]);
    const [i2, out2] = input({ faulted: [20], first: 3, outer: 40, resident: [16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34] });
    new TreePrefetcher().compute(i2, out2);
    for (const [s, e] of runs(out2)) {
      expect(s).toBeGreaterThanOrEqual(3);
      expect(e).toBeLessThanOrEqual(40);
    }
  });
});

describe('the alternatives', () => {
  it('none prefetches nothing', () => {
    const [i, out] = input({ faulted: [1, 2, 3] });
    new NoPrefetcher().compute(i, out);
    expect(runs(out)).toEqual([]);
  });

  it('seq64k: the aligned 64 KiB around each fault, clipped to the region', () => {
    const [i, out] = input({ faulted: [17, 100], first: 10, outer: 110 });
    new Seq64kPrefetcher().compute(i, out);
    expect(runs(out)).toEqual([[16, 32], [96, 110]]);
  });

  it('random4k: one random page of the region per fault', () => {
    let k = 0;
    const seq = [0.0, 0.999];
    const [i, out] = input({ faulted: [105, 106], first: 100, outer: 200, random: () => seq[k++]! });
    new Random4kPrefetcher().compute(i, out);
    expect(runs(out)).toEqual([[100, 101], [199, 200]]);
  });
});
