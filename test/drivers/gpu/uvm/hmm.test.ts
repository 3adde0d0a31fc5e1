// UVM on HMM end to end (uvm_hmm.c and what it drives): residency, eviction of root chunks,
// migrate_to_ram, invalidations, fork, hints, explicit migration, atomics through
// make_device_exclusive, access counters. Every test checks the data a warp read and the
// GPU's and the mm's invariants.

import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../../src/mm/constants.js';
import { K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, KIND_MASK, type PtSlot } from '../../../../src/mm/pagetable.js';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE } from '../../../../src/drivers/gpu/access.js';
import { UvmDriver, type UvmOptions } from '../../../../src/drivers/gpu/uvm/uvm.js';
import { PTE_SYSMEM, PTE_VALID, type GpuPtLeaf } from '../../../../src/drivers/gpu/page_table.js';
import type { GpuConfig } from '../../../../src/drivers/gpu/gpu.js';
import type { GpuEvictEvent } from '../../../../src/drivers/gpu/events.js';
import { DataCheck, expectConsistent, listProgram, makeRig, seqProgram, sweepKernel, type Rig } from '../helpers.js';

function setup(opts: Partial<UvmOptions> = {}, config: Partial<GpuConfig> = {}, mb = 8, flags = MAP_PRIVATE | MAP_ANONYMOUS) {
  const rig = makeRig(config);
  const uvm = new UvmDriver(rig.gpu, opts);
  const p = rig.machine.spawn();
  const base = p.mmap(0, mb << 20, PROT_READ | PROT_WRITE, flags);
  const vs = uvm.attach(p);
  const data = new DataCheck(rig);
  return { rig, uvm, p, base, vs, data };
}

const slot: PtSlot = { node: null!, idx: 0, level: 0 };
function cpuKind(_rig: Rig, p: { mm: { pt: { lookup(v: number, s: PtSlot): void } } }, addr: number): number {
  p.mm.pt.lookup(addr / 4096, slot);
  return slot.node.flg[slot.idx]! & KIND_MASK;
}
function gpuLeaf(vs: { gpuVaSpace: { pt: { walk(v: number, l: GpuPtLeaf): void } } }, addr: number): GpuPtLeaf {
  const l: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
  vs.gpuVaSpace.pt.walk(addr / 4096, l);
  return l;
}

describe('residency and migration', () => {
  it('a GPU fault migrates the page into VRAM (a device-private entry of UVM\'s owner)', () => {
    const { rig, uvm, p, base, vs } = setup({ prefetch: 'none' });
    rig.gpu.launch({ name: 'k', warps: [listProgram([[base + 8, ACCESS_WRITE]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(cpuKind(rig, p, base)).toBe(K_DEVICE_PRIVATE);
    const l = gpuLeaf(vs, base);
    expect(l.flags & PTE_VALID).toBeTruthy();
    expect(l.flags & PTE_SYSMEM).toBe(0);
    expect(rig.gpu.vram.contains(l.pfn)).toBe(true);
    expect(uvm.stats.pagesMigratedToDevice).toBe(1);
    expect(uvm.stats.pagesPopulated).toBe(1); // never touched by the CPU: populated, not copied
    expectConsistent(rig, uvm.owner);
  });

  it('the tree prefetcher takes fewer faults than no prefetch on a sequential sweep', () => {
    const faults: Record<string, number> = {};
    for (const prefetch of ['tree', 'none', 'seq64k']) {
      const { rig, uvm, base, vs, data } = setup({ prefetch });
      rig.gpu.launch(sweepKernel(base, 1024, 8), vs.gpuVaSpace);
      rig.engine.run();
      expect(data.errors).toEqual([]);
      faults[prefetch] = uvm.stats.faults;
      expectConsistent(rig);
    }
    expect(faults.tree).toBeLessThan(faults.none! / 4);
    expect(faults.seq64k).toBeLessThan(faults.none!);
  });

  it('migrate_to_ram: a CPU access to a VRAM page brings it back with its data', () => {
    const { rig, uvm, p, base, vs, data } = setup({ prefetch: 'none' });
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 8, ACCESS_WRITE)] }, vs.gpuVaSpace);
    rig.engine.run();
    data.cpuRead(p, base + 3 * 4096 + 64);
    expect(data.errors).toEqual([]);
    expect(uvm.stats.cpuFaults).toBe(1);
    expect(cpuKind(rig, p, base + 3 * 4096)).not.toBe(K_DEVICE_PRIVATE);
    expect(cpuKind(rig, p, base + 4 * 4096)).toBe(K_DEVICE_PRIVATE);
    // The GPU mapping of the page that left is gone; the others stay.
    expect(gpuLeaf(vs, base + 3 * 4096).flags).toBe(0);
    expect(gpuLeaf(vs, base + 4 * 4096).flags & PTE_VALID).toBeTruthy();
    expectConsistent(rig);
  });

  it('eviction: VRAM smaller than the footprint evicts whole 2 MiB root chunks in allocation order, data intact', () => {
    const { rig, uvm, p, base, vs, data } = setup({}, { vramBytes: 4 << 20 }, 8);
    const evicts: GpuEvictEvent[] = [];
    rig.gpu.events.subscribe('evict', (e) => evicts.push(e));
    for (let a = base; a < base + (8 << 20); a += 4096 * 7) data.cpuWrite(p, a + 64);
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 2048, ACCESS_READ)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(data.errors).toEqual([]);
    expect(uvm.stats.chunksEvicted).toBeGreaterThanOrEqual(2);
    // The first chunk filled (the first 2 MiB of the sweep) is the first evicted.
    expect(evicts[0]!.chunk).toBe(0);
    expect(evicts[0]!.pages).toBe(512);
    expect(uvm.pmm.usedFrames).toBeLessThanOrEqual(1024);
    for (let a = base; a < base + (8 << 20); a += 4096 * 7) data.cpuRead(p, a + 64);
    expect(data.errors).toEqual([]);
    expectConsistent(rig);
  });

  it('evicted pages are mapped remotely only with access-counter migrations (uvm_va_space_map_remote_on_eviction)', () => {
    for (const acm of [false, true]) {
      const { rig, uvm, base, vs } = setup({ accessCounterMigrations: acm }, { vramBytes: 2 << 20 }, 4);
      rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 1024, ACCESS_READ)] }, vs.gpuVaSpace);
      rig.engine.run();
      const l = gpuLeaf(vs, base);
      expect(uvm.stats.pagesEvicted).toBeGreaterThan(0);
      expect(!!(l.flags & PTE_VALID)).toBe(acm);
      if (acm) expect(l.flags & PTE_SYSMEM).toBeTruthy();
      expectConsistent(rig);
    }
  });
});

describe('invalidations', () => {
  it('munmap removes the GPU mappings and their TLB entries; a later GPU access is fatal', () => {
    const { rig, uvm, p, base, vs } = setup();
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 16)] }, vs.gpuVaSpace);
    rig.engine.run();
    p.munmap(base, 2 << 20);
    expect(gpuLeaf(vs, base).flags).toBe(0);
    expectConsistent(rig);
    const run = rig.gpu.launch({ name: 'k2', warps: [seqProgram(base, 0, 1)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(run.error).toMatch(/fatal/);
    expect(uvm.stats.fatalFaults).toBe(1);
    expectConsistent(rig);
  });

  it('fork write-protects the parent: the GPU loses write access, and its next write breaks the COW', () => {
    const { rig, p, base, vs, data } = setup({ prefetch: 'none' });
    data.cpuWrite(p, base + 64);
    rig.gpu.launch({ name: 'k', warps: [listProgram([[base + 64, ACCESS_WRITE]])] }, vs.gpuVaSpace);
    rig.engine.run();
    const child = p.fork();
    expectConsistent(rig);
    rig.gpu.launch({ name: 'k2', warps: [listProgram([[base + 64, ACCESS_WRITE], [base + 64, ACCESS_READ]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(data.errors).toEqual([]);
    data.cpuRead(p, base + 64);
    expect(data.errors).toEqual([]);
    // The child still sees the value from before the fork, not the GPU's later write.
    expect(child.readU32(base + 64)).not.toBe(p.readU32(base + 64));
    child.exit();
    expectConsistent(rig);
  });

  for (const ro of [true, false]) {
    it(`fork, then the child's own VA space reads on the GPU a page the parent has in VRAM${ro ? ' (read-only mapping)' : ''}: the child gets its own copy; no fault loop`, () => {
      // Before the fix the child's block planned a mapping of the parent's VRAM page, dropped it
      // at commit (not its page), and the warp faulted for ever.
      const { rig, uvm, p, base, vs, data } = setup({ prefetch: 'none' });
      data.cpuWrite(p, base + 64);
      rig.gpu.launch({ name: 'k', warps: [listProgram([[base + 64, ACCESS_READ]])] }, vs.gpuVaSpace);
      rig.engine.run();
      const parentVram = gpuLeaf(vs, base).pfn;
      expect(rig.gpu.vram.contains(parentVram)).toBe(true);
      if (ro) p.mprotect(base, 8 << 20, PROT_READ);
      const child = p.fork();
      const vc = uvm.attach(child);
      const run = rig.gpu.launch({ name: 'child', warps: [listProgram([[base + 64, ACCESS_READ]])] }, vc.gpuVaSpace);
      for (let steps = 0; run.endNs < 0 && steps < 10_000; steps++) if (!rig.engine.step()) break;
      expect(run.endNs).toBeGreaterThan(0);
      expect(run.error).toBeNull();
      expect(uvm.stats.faults).toBeLessThan(10);
      expect(data.errors).toEqual([]); // the child's GPU read the parent's value
      const lc = gpuLeaf(vc, base);
      expect(lc.flags & PTE_VALID).toBeTruthy();
      expect(lc.pfn).not.toBe(parentVram); // its own page, not the parent's
      expectConsistent(rig);
      data.cpuRead(child, base + 64);
      data.cpuRead(p, base + 64);
      expect(data.errors).toEqual([]);
      expectConsistent(rig);
      child.exit();
      expectConsistent(rig);
    });
  }

  it('mprotect read-only downgrades the GPU; reads go on, a write is fatal', () => {
    const { rig, p, base, vs } = setup();
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 8, ACCESS_WRITE)] }, vs.gpuVaSpace);
    rig.engine.run();
    p.mprotect(base, 8 * 4096, PROT_READ);
    expectConsistent(rig);
    const r = rig.gpu.launch({ name: 'r', warps: [seqProgram(base, 0, 8, ACCESS_READ)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(r.error).toBeNull();
    const w = rig.gpu.launch({ name: 'w', warps: [seqProgram(base, 0, 1, ACCESS_WRITE)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(w.error).toMatch(/fatal/);
    expectConsistent(rig);
  });

  it('process exit with pages in VRAM frees every frame; shutdown leaves nothing behind', () => {
    const { rig, uvm, p, base, vs } = setup();
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 600, ACCESS_WRITE)] }, vs.gpuVaSpace);
    rig.engine.run();
    const freed = rig.gpu.vram.pgmap!.freed;
    const used = uvm.pmm.usedFrames;
    expect(used).toBeGreaterThan(0);
    uvm.detach(p);
    p.exit();
    expect(uvm.pmm.usedFrames).toBe(0);
    expect(rig.gpu.vram.pgmap!.freed - freed).toBe(used); // page_free once per device page
    uvm.shutdown();
    expect(rig.machine.phys.usedRamFrames).toBe(0);
    expectConsistent(rig);
  });
});

describe('options', () => {
  it('a seed outside 0..2^53-1 is EINVAL; seeds past 2^32 are streams of their own, not wrapped', () => {
    for (const seed of [-1, 0.5, 2 ** 53, Number.NaN]) expect(() => new UvmDriver(makeRig().gpu, { seed })).toThrow(/EINVAL.*seed/);
    const draws = (seed: number) => {
      const uvm = new UvmDriver(makeRig().gpu, { seed });
      return Array.from({ length: 4 }, () => uvm.random());
    };
    expect(draws(2 ** 32 + 1)).not.toEqual(draws(1));
    expect(draws(7)).toEqual(draws(7));
  });
});

describe('hints and explicit migration', () => {
  it('preferred location CPU: GPU faults map system memory remotely, nothing migrates', () => {
    const { rig, uvm, p, base, vs, data } = setup();
    uvm.setPreferredLocation(p, base, 1 << 20, 'cpu');
    data.cpuWrite(p, base + 64);
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 16, ACCESS_READ)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(data.errors).toEqual([]);
    expect(uvm.stats.pagesMigratedToDevice).toBe(0);
    expect(gpuLeaf(vs, base).flags & PTE_SYSMEM).toBeTruthy();
    expect(rig.gpu.stats().remoteAccesses).toBe(16);
    expectConsistent(rig);
  });

  it('preferred location GPU: the first touch populates the whole VA block region', () => {
    const { rig, uvm, p, base, vs } = setup();
    uvm.setPreferredLocation(p, base, 2 << 20, 'gpu');
    rig.gpu.launch({ name: 'k', warps: [listProgram([[base + 5 * 4096, ACCESS_READ]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(uvm.stats.pagesMigratedToDevice).toBe(512);
    expect(uvm.stats.faults).toBe(1);
    expectConsistent(rig);
  });

  it('accessed-by: a page already in system memory is mapped there rather than migrated', () => {
    const { rig, uvm, p, base, vs, data } = setup({ prefetch: 'none' });
    data.cpuWrite(p, base + 64);
    uvm.setAccessedBy(p, base, 4096, true);
    // UVM learns of the CPU residency when it maps remotely or migrates back; first make it CPU resident in UVM's view.
    uvm.migrate(p, base, 4096, 'cpu');
    rig.gpu.launch({ name: 'k', warps: [listProgram([[base + 64, ACCESS_READ]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(data.errors).toEqual([]);
    expectConsistent(rig);
  });

  it('read-mostly is accepted and changes nothing for HMM memory (Bug 3660922)', () => {
    const { rig, uvm, p, base, vs } = setup({ prefetch: 'none' });
    uvm.setReadMostly(p, base, 4096, true);
    rig.gpu.launch({ name: 'k', warps: [listProgram([[base, ACCESS_READ]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(uvm.stats.pagesMigratedToDevice).toBe(1);
    expectConsistent(rig);
  });

  it('cudaMemPrefetchAsync (UvmMigrate): to the GPU, then back to the CPU, data intact, no GPU fault', () => {
    const { rig, uvm, p, base, vs, data } = setup();
    for (let i = 0; i < 64; i++) data.cpuWrite(p, base + i * 4096 + 64);
    const done = uvm.migrate(p, base, 64 * 4096, 'gpu');
    expect(done).toBeGreaterThan(rig.engine.now());
    expect(uvm.stats.pagesMigratedToDevice).toBe(64);
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 64, ACCESS_READ)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(uvm.stats.faults).toBe(0);
    uvm.migrate(p, base, 64 * 4096, 'cpu');
    expect(uvm.stats.pagesMigratedToSystem).toBe(64);
    for (let i = 0; i < 64; i++) data.cpuRead(p, base + i * 4096 + 64);
    expect(data.errors).toEqual([]);
    expectConsistent(rig);
  });

  it('hints validate their input', () => {
    const { uvm, p, base } = setup();
    expect(() => uvm.setPreferredLocation(p, base + 1, 4096, 'gpu')).toThrow(/EINVAL|multiples/);
    expect(() => uvm.setPreferredLocation(p, base, 4096, 'elsewhere' as never)).toThrow(/EINVAL|preferred/);
    expect(() => uvm.migrate(p, base + (64 << 20), 4096, 'gpu')).toThrow(/not fully mapped/);
  });
});

describe('atomics and shared memory', () => {
  it('GPU atomics on system memory over PCIe take the page with make_device_exclusive; a CPU touch takes it back', () => {
    const { rig, uvm, p, base, vs, data } = setup();
    uvm.setPreferredLocation(p, base, 4096, 'cpu');
    data.cpuWrite(p, base + 64);
    rig.gpu.launch({ name: 'k', warps: [listProgram([[base + 64, ACCESS_ATOMIC]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(uvm.stats.deviceExclusive).toBe(1);
    expect(cpuKind(rig, p, base)).toBe(K_DEVICE_EXCLUSIVE);
    expectConsistent(rig);
    data.cpuRead(p, base + 64);
    expect(data.errors).toEqual([]);
    expect(gpuLeaf(vs, base).flags).toBe(0);
    expectConsistent(rig);
  });

  it('shared memory cannot migrate (uvm_hmm_must_use_sysmem): it is mapped remotely; atomics on it are fatal', () => {
    const { rig, uvm, base, vs } = setup({}, {}, 8, MAP_SHARED | MAP_ANONYMOUS);
    rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 8, ACCESS_WRITE)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(uvm.stats.pagesMigratedToDevice).toBe(0);
    expect(gpuLeaf(vs, base).flags & PTE_SYSMEM).toBeTruthy();
    const a = rig.gpu.launch({ name: 'a', warps: [listProgram([[base, ACCESS_ATOMIC]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(a.error).toMatch(/fatal/);
    expectConsistent(rig);
  });
});

describe('the fault buffer under pressure', () => {
  it('a tiny fault buffer overflows: dropped faults come back after the replay and everything completes', () => {
    const { rig, uvm, base, vs, data } = setup({ prefetch: 'none', faultBatchCount: 8 }, { faultBufferEntries: 8, sms: 8, warpsPerSm: 8 });
    const run = rig.gpu.launch(sweepKernel(base, 512, 64, ACCESS_READ), vs.gpuVaSpace);
    rig.engine.run();
    expect(run.error).toBeNull();
    expect(rig.gpu.faultBuffer.dropped).toBeGreaterThan(0);
    expect(uvm.stats.pagesMigratedToDevice).toBe(512);
    expect(data.errors).toEqual([]);
    expectConsistent(rig);
  });
});

describe('access counters', () => {
  it('remote accesses past the threshold notify the driver; with migrations on, the region moves to VRAM', () => {
    for (const acm of [false, true]) {
      const { rig, uvm, p, base, vs, data } = setup({ accessCounterMigrations: acm }, { accessCounters: { threshold: 64 } });
      uvm.setPreferredLocation(p, base, 2 << 20, 'cpu');
      data.cpuWrite(p, base + 64);
      rig.gpu.launch({ name: 'k', warps: [seqProgram(base, 0, 200, ACCESS_READ, 50, 1)] }, vs.gpuVaSpace);
      rig.engine.run();
      uvm.setPreferredLocation(p, base, 2 << 20, null);
      rig.gpu.launch({ name: 'k2', warps: [seqProgram(base, 0, 200, ACCESS_READ)] }, vs.gpuVaSpace);
      rig.engine.run();
      expect(uvm.stats.accessCounterNotifications).toBeGreaterThan(0);
      expect(uvm.stats.accessCounterMigrations > 0).toBe(acm);
      expect(data.errors).toEqual([]);
      expectConsistent(rig);
    }
  });
});
