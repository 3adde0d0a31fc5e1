// GPU page sizes of UVM (block_gpu_compute_new_pte_state). On HMM with 4 KiB kernel pages UVM
// maps 4 KiB PTEs only (the default); with `largePages` it maps as for managed memory: a 2 MiB
// leaf for a block wholly resident in its root chunk with one permission, 64 KiB leaves for
// big-page regions resident and alike, 4 KiB for the rest, split again by invalidations,
// migrations back and eviction. Every test checks data and invariants.

import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../../src/mm/constants.js';
import { ACCESS_READ, ACCESS_WRITE, type AccessType } from '../../../../src/drivers/gpu/access.js';
import { UvmDriver, type UvmOptions } from '../../../../src/drivers/gpu/uvm/uvm.js';
import { PTE_VALID, SIZE_2M, SIZE_4K, SIZE_64K, type GpuPtLeaf } from '../../../../src/drivers/gpu/page_table.js';
import type { GpuConfig } from '../../../../src/drivers/gpu/gpu.js';
import { DataCheck, expectConsistent, listProgram, makeRig, seqProgram, sweepKernel } from '../helpers.js';

const MB = 1 << 20;

function setup(opts: Partial<UvmOptions> = {}, config: Partial<GpuConfig> = {}, mb = 8) {
  const rig = makeRig(config);
  const uvm = new UvmDriver(rig.gpu, { largePages: true, ...opts });
  const p = rig.machine.spawn();
  const base = p.mmap(0, mb * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const vs = uvm.attach(p);
  const data = new DataCheck(rig);
  const leaf = (addr: number): GpuPtLeaf => {
    const l: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
    vs.gpuVaSpace.pt.walk(addr / 4096, l);
    return l;
  };
  /** A warp per page of [from, to) reading it: every page faults in one batch, no prefetch needed. */
  const touch = (from: number, to: number, type: AccessType = ACCESS_READ): void => {
    const warps = [];
    for (let pg = from; pg < to; pg++) warps.push(listProgram([[base + pg * 4096 + 64, type]]));
    rig.gpu.launch({ name: 'touch', warps }, vs.gpuVaSpace);
    rig.engine.run();
  };
  return { rig, uvm, p, base, vs, data, leaf, touch };
}

describe('UVM GPU page sizes', () => {
  it('by default (HMM, 4 KiB PAGE_SIZE: Bug 3368756) a fully resident block is 512 4 KiB PTEs', () => {
    const { rig, uvm, p, base, leaf } = setup({ largePages: false });
    uvm.migrate(p, base, 2 * MB, 'gpu');
    expect(leaf(base).size).toBe(SIZE_4K);
    expect(leaf(base + 2 * MB - 4096).size).toBe(SIZE_4K);
    expect(leaf(base).flags & PTE_VALID).toBeTruthy();
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: a block made wholly resident (cudaMemPrefetchAsync) is one 2 MiB leaf on its root chunk', () => {
    const { rig, uvm, p, base, data, leaf, vs } = setup();
    for (let a = base; a < base + 2 * MB; a += 4096 * 5) data.cpuWrite(p, a + 64);
    uvm.migrate(p, base, 2 * MB, 'gpu');
    const l = leaf(base + 77 * 4096);
    expect([l.size, l.baseVpn * 4096]).toEqual([SIZE_2M, base]);
    // page p of the block at frame p of one 2 MiB-aligned root chunk
    const block = vs.blocks.get(base / (2 * MB))!;
    expect(block.vramPfn[0]! % 512).toBe(0);
    for (let pg = 0; pg < 512; pg++) expect(block.vramPfn[pg]).toBe(block.vramPfn[0]! + pg);
    expect(l.pfn).toBe(block.vramPfn[77]);
    expect(vs.gpuVaSpace.pt.mappedPages).toBe(512);
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 512, ACCESS_READ, 10, 5)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(data.errors).toEqual([]);
    expect(uvm.stats.faults).toBe(0);
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: faults that fill a block upgrade its mappings to a 2 MiB leaf', () => {
    const { rig, uvm, base, leaf, vs } = setup({ prefetch: 'none' });
    rig.gpu.launch(sweepKernel(base, 512, 8), vs.gpuVaSpace);
    rig.engine.run();
    expect(uvm.stats.faults).toBeGreaterThan(1);
    expect(leaf(base).size).toBe(SIZE_2M);
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: a resident 64 KiB region is one big PTE; a partial region stays 4 KiB', () => {
    const { rig, uvm, base, leaf, touch } = setup({ prefetch: 'none' });
    touch(16, 33); // region 1 whole, one page of region 2
    expect([leaf(base + 16 * 4096).size, leaf(base + 31 * 4096).baseVpn * 4096]).toEqual([SIZE_64K, base + 16 * 4096]);
    expect(leaf(base + 32 * 4096).size).toBe(SIZE_4K);
    expect(leaf(base + 33 * 4096).flags).toBe(0);
    expect(leaf(base + 15 * 4096).flags).toBe(0);
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: pages alike in residency but not in permission stay 4 KiB PTEs', () => {
    const { rig, uvm, p, base, leaf, touch } = setup({ prefetch: 'none' });
    touch(0, 16, ACCESS_WRITE);
    expect(leaf(base).size).toBe(SIZE_64K);
    p.mprotect(base, 4 * 4096, PROT_READ); // hmm_invalidate unmaps pages 0-3 (and splits the big PTE)
    expect(leaf(base).flags).toBe(0);
    expect(leaf(base + 4 * 4096).size).toBe(SIZE_4K);
    touch(0, 4); // mapped again read-only: the region mixes read-only and read-write
    expect(leaf(base).flags & PTE_VALID).toBeTruthy();
    expect(leaf(base).size).toBe(SIZE_4K);
    expect(leaf(base + 8 * 4096).size).toBe(SIZE_4K);
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: a partial invalidation (munmap of one page) splits the 2 MiB leaf and keeps the rest mapped', () => {
    const { rig, uvm, p, base, leaf, data, vs } = setup();
    for (let a = base; a < base + 2 * MB; a += 4096 * 3) data.cpuWrite(p, a + 64);
    uvm.migrate(p, base, 2 * MB, 'gpu');
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 512, ACCESS_READ, 10, 7)] }, vs.gpuVaSpace); // fills TLBs with the 2 MiB leaf
    rig.engine.run();
    p.munmap(base + 100 * 4096, 4096);
    data.forget(base + 100 * 4096, base + 101 * 4096);
    expect(leaf(base + 100 * 4096).flags).toBe(0);
    expect(leaf(base + 101 * 4096).size).toBe(SIZE_4K); // the rest of its region: 4 KiB
    expect(leaf(base + 96 * 4096).size).toBe(SIZE_4K);
    expect(leaf(base).size).toBe(SIZE_64K); // the other regions: big PTEs
    expect(leaf(base + 2 * MB - 4096).size).toBe(SIZE_64K);
    expect(vs.gpuVaSpace.pt.mappedPages).toBe(511);
    expectConsistent(rig, uvm.owner); // no TLB holds the 2 MiB translation any more
    rig.gpu.launch({ name: 'k2', warps: [seqProgram(base, 101, 512, ACCESS_READ, 10, 3)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(data.errors).toEqual([]);
    expect(uvm.stats.fatalFaults).toBe(0);
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: a page migrated back to system memory splits the leaf; faulted back in, the block is one 2 MiB leaf again', () => {
    const { rig, uvm, p, base, leaf, data, touch } = setup({ prefetch: 'none' });
    for (let a = base; a < base + 2 * MB; a += 4096 * 11) data.cpuWrite(p, a + 64);
    uvm.migrate(p, base, 2 * MB, 'gpu');
    data.cpuRead(p, base + 40 * 4096 + 64); // migrate_to_ram of page 40 (the prefetcher is off)
    expect(data.errors).toEqual([]);
    expect(leaf(base + 40 * 4096).flags).toBe(0);
    expect(leaf(base + 41 * 4096).size).toBe(SIZE_4K);
    expect(leaf(base + 64 * 4096).size).toBe(SIZE_64K);
    touch(40, 41);
    const l = leaf(base + 40 * 4096);
    expect([l.flags & PTE_VALID, l.size]).toEqual([PTE_VALID, SIZE_2M]);
    expect(rig.gpu.vram.contains(l.pfn)).toBe(true);
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: evicting one block\'s root chunk leaves the other blocks\' leaves intact', () => {
    const { rig, uvm, p, base, leaf, data, touch } = setup({ prefetch: 'none' }, { vramBytes: 4 * MB }, 8);
    for (let a = base; a < base + 6 * MB; a += 4096 * 13) data.cpuWrite(p, a + 64);
    uvm.migrate(p, base, 2 * MB, 'gpu');
    uvm.migrate(p, base + 2 * MB, 2 * MB, 'gpu');
    const second = leaf(base + 2 * MB);
    expect([leaf(base).size, second.size]).toEqual([SIZE_2M, SIZE_2M]);
    touch(1024, 1025); // a third block needs a root chunk: the first one allocated goes
    expect(uvm.stats.chunksEvicted).toBe(1);
    expect(leaf(base).flags).toBe(0);
    const after = leaf(base + 2 * MB);
    expect([after.size, after.pfn]).toEqual([SIZE_2M, second.pfn]);
    expect(leaf(base + 4 * MB).size).toBe(SIZE_4K);
    for (let a = base; a < base + 6 * MB; a += 4096 * 13) data.cpuRead(p, a + 64);
    expect(data.errors).toEqual([]);
    expectConsistent(rig, uvm.owner);
  });

  it('largePages: teardown frees every root chunk', () => {
    const { rig, uvm, p, base, touch } = setup({}, { vramBytes: 4 * MB });
    touch(0, 40, ACCESS_WRITE);
    uvm.migrate(p, base + 2 * MB, MB, 'gpu');
    touch(1024, 1030);
    p.exit();
    uvm.shutdown();
    expect(uvm.pmm.usedFrames).toBe(0);
    expect(Array.from(uvm.pmm.chunkOwner!)).toEqual([-1, -1]);
    expect(rig.machine.phys.usedRamFrames).toBe(0);
  });

  it('VRAM root chunks are 2 MiB-aligned frame ranges (what a 2 MiB leaf needs)', () => {
    for (const ramMb of [64, 63, 37]) {
      const rig = makeRig({ vramBytes: 6 * MB }, {}, ramMb * MB);
      const uvm = new UvmDriver(rig.gpu, { largePages: true });
      expect(uvm.pmm.firstPfn % 512).toBe(0);
    }
  });
});
