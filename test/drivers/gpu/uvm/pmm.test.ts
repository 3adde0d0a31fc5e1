// uvm_pmm_gpu.c: 2 MiB root chunks handed out as 4 KiB pages to HMM VA blocks, pinned while
// a migration fills them; pick_root_chunk_to_evict's order (the USED list by allocation time)
// and the alternatives (lru, lfu, fifo, random).

import { describe, expect, it } from 'vitest';
import { UvmPmm } from '../../../../src/drivers/gpu/uvm/pmm.js';
import { EVICTION_POLICIES } from '../../../../src/drivers/gpu/uvm/policies.js';
import type { EvictionPolicy } from '../../../../src/drivers/gpu/uvm/policy_types.js';

function pmmWith(policy: EvictionPolicy, chunks = 4, access: { lastNs: Float64Array | null; count: Float64Array | null } = { lastNs: null, count: null }, random = () => 0) {
  return new UvmPmm(100000, chunks * 512, policy, random, access);
}

/** Allocate one page in the chunk that allocation packs into, unpinned into block 1 at time t. */
function allocIn(pmm: UvmPmm, t: number): number {
  const pfn = pmm.allocPinned();
  pmm.unpinAllocated(pfn, 1, (pfn - 100000) % 512, t);
  return pfn;
}

/** Fill chunks 0..n-1 completely, chunk c at time 10 * c. */
function fill(pmm: UvmPmm, n: number): number[][] {
  const pfns: number[][] = [];
  for (let c = 0; c < n; c++) {
    pfns.push([]);
    for (let k = 0; k < 512; k++) pfns[c]!.push(allocIn(pmm, 10 * c));
  }
  return pfns;
}

describe('UVM PMM', () => {
  it('packs pages into partly used root chunks before taking a free one', () => {
    const pmm = pmmWith(EVICTION_POLICIES.uvm!());
    const a = pmm.allocPinned();
    const b = pmm.allocPinned();
    expect(pmm.chunkOf(a)).toBe(0);
    expect(pmm.chunkOf(b)).toBe(0);
    pmm.free(a);
    expect(pmm.chunkOf(pmm.allocPinned())).toBe(0);
    expect(pmm.freeFrames).toBe(4 * 512 - 2);
  });

  it('a page freed twice is an error, and free pages are never evicted', () => {
    const pmm = pmmWith(EVICTION_POLICIES.uvm!());
    const a = allocIn(pmm, 0);
    pmm.free(a);
    expect(() => pmm.free(a)).toThrow(/freed twice/);
    expect(pmm.pickVictim()).toBe(-1);
  });

  it('a root chunk with a pinned page (a migration in flight) is not evicted', () => {
    const pmm = pmmWith(EVICTION_POLICIES.uvm!(), 2);
    const chunks = fill(pmm, 2); // the USED list is [0, 1]
    expect(pmm.pickVictim()).toBe(0);
    pmm.free(chunks[0]![3]!);
    const pinned = pmm.allocPinned(); // packs into chunk 0, pinned
    expect(pmm.chunkOf(pinned)).toBe(0);
    expect(pmm.pickVictim()).toBe(1);
    pmm.unpinAllocated(pinned, 1, 3, 50);
    expect(pmm.pickVictim()).toBe(1); // chunk 0 moved to the tail when the page was allocated
  });

  it('uvm order (pick_root_chunk_to_evict): LRU by allocation time, not by access', () => {
    const pmm = pmmWith(EVICTION_POLICIES.uvm!(), 3);
    const chunks = fill(pmm, 3);
    expect(pmm.pickVictim()).toBe(0);
    // A new allocation into chunk 0 (after a free) moves it to the tail of the USED list.
    pmm.free(chunks[0]![7]!);
    allocIn(pmm, 100);
    expect(pmm.pickVictim()).toBe(1);
  });

  it('fifo: the chunk that went from free to used first, whatever was allocated since', () => {
    const pmm = pmmWith(EVICTION_POLICIES.fifo!(), 3);
    const chunks = fill(pmm, 3);
    pmm.free(chunks[0]![7]!);
    allocIn(pmm, 100);
    expect(pmm.pickVictim()).toBe(0);
  });

  it('lru: least recently accessed (the access registers), an allocation counting as an access', () => {
    const lastNs = new Float64Array(3);
    const pmm = pmmWith(EVICTION_POLICIES.lru!(), 3, { lastNs, count: new Float64Array(3) });
    fill(pmm, 3); // allocated at 0, 10, 20
    lastNs.set([500, 30, 400]);
    expect(pmm.pickVictim()).toBe(1);
    lastNs[1] = 600;
    expect(pmm.pickVictim()).toBe(2);
  });

  it('lfu: fewest accesses since the chunk was allocated', () => {
    const count = new Float64Array(3);
    const pmm = pmmWith(EVICTION_POLICIES.lfu!(), 3, { lastNs: new Float64Array(3), count });
    const chunks = fill(pmm, 3);
    count.set([50, 9, 70]);
    expect(pmm.pickVictim()).toBe(1);
    // Chunk 1 is emptied and refilled: its count starts again from 9.
    for (const pfn of chunks[1]!) pmm.free(pfn);
    count[1] = 60;
    for (let k = 0; k < 512; k++) allocIn(pmm, 200);
    expect(pmm.pickVictim()).toBe(0);
  });

  it('random: only evictable chunks, from the seed', () => {
    let r = 0.99;
    const pmm = pmmWith(EVICTION_POLICIES.random!(), 4, { lastNs: null, count: null }, () => r);
    fill(pmm, 2);
    expect(pmm.pickVictim()).toBe(1);
    r = 0;
    expect(pmm.pickVictim()).toBe(0);
  });

  it('only the LRU and LFU orders ask the GPU for access registers', () => {
    expect(Object.entries(EVICTION_POLICIES).filter(([, f]) => f().needsAccessTracking).map(([n]) => n)).toEqual(['lru', 'lfu']);
  });
});
