// amdkfd SVM on the GPU model (kfd_svm.c, kfd_migrate.c): ranges and the granularity window,
// the fault filters, migration on first GPU touch with the fall-back to system memory, BO
// eviction, svm_migrate_to_ram, invalidations, fork, XNACK off (queue eviction and restore),
// the attributes and teardown. Every test checks the data and the invariants.

import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../../src/mm/constants.js';
import { K_DEVICE_PRIVATE, KIND_MASK, type PtSlot } from '../../../../src/mm/pagetable.js';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE } from '../../../../src/drivers/gpu/access.js';
import type { KfdOptions } from '../../../../src/drivers/gpu/kfd/kfd_options.js';
import { KfdDriver } from '../../../../src/drivers/gpu/kfd/kfd_svm.js';
import { svmRangeMaxPages } from '../../../../src/drivers/gpu/kfd/svm_range.js';
import { PTE_SYSMEM, PTE_VALID, type GpuPtLeaf } from '../../../../src/drivers/gpu/page_table.js';
import type { GpuConfig } from '../../../../src/drivers/gpu/gpu.js';
import type { Process } from '../../../../src/mm/process.js';
import { errnoOf } from '../../../mm/helpers.js';
import { DataCheck, expectConsistent, listProgram, makeRig, seqProgram, sweepKernel } from '../helpers.js';

const MiB = 1 << 20;

function setup(opts: Partial<KfdOptions> = {}, config: Partial<GpuConfig> = {}, mb = 8) {
  const rig = makeRig(config);
  const kfd = new KfdDriver(rig.gpu, opts);
  const p = rig.machine.spawn();
  const raw = p.mmap(0, (mb + 2) * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const base = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
  const svms = kfd.attach(p);
  const data = new DataCheck(rig);
  return { rig, kfd, p, base, svms, data, vs: svms.gpuVaSpace };
}

const slot: PtSlot = { node: null!, idx: 0, level: 0 };
function cpuKind(p: Process, addr: number): number {
  p.mm.pt.lookup(addr / 4096, slot);
  return slot.node.flg[slot.idx]! & KIND_MASK;
}
function gpuLeaf(vs: { pt: { walk(v: number, l: GpuPtLeaf): void } }, addr: number): GpuPtLeaf {
  const l: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
  vs.pt.walk(addr / 4096, l);
  return l;
}
function teardown(s: ReturnType<typeof setup>): void {
  expect(s.data.errors).toEqual([]);
  expectConsistent(s.rig, s.kfd.owner);
  s.kfd.detach(s.p);
  s.p.exit();
  s.kfd.shutdown();
  expect(s.rig.machine.phys.usedRamFrames).toBe(0);
  expect(s.kfd.vram.usedFrames).toBe(0);
}

describe('kfd: options', () => {
  it('a bad option is EINVAL naming it, before the driver binds to the GPU', () => {
    const rig = makeRig({});
    const bad: [Partial<KfdOptions>, RegExp][] = [
      [{ granularity: 28 }, /granularity/], [{ xnack: 1 as unknown as boolean }, /xnack/], [{ faultFilterNs: -1 }, /faultFilterNs/],
      [{ seed: -1 }, /seed/], [{ seed: 0.5 }, /seed/], [{ nope: 1 } as Partial<KfdOptions>, /unknown kfd option nope/],
    ];
    for (const [o, msg] of bad) {
      expect(() => new KfdDriver(rig.gpu, o)).toThrow(msg);
      expect(errnoOf(() => new KfdDriver(rig.gpu, o))).toBe('EINVAL');
    }
    // Nothing was bound: a good driver still binds.
    expect(new KfdDriver(rig.gpu, { seed: 2 ** 53 - 1 }).options.seed).toBe(2 ** 53 - 1);
  });
});

describe('kfd: ranges and the granularity window', () => {
  it('svm_range_restore_pages: the first GPU touch creates a 2 MiB range and migrates its 2 MiB window (svm_default_granularity 9)', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base + 5 * 4096 + 8, ACCESS_WRITE]])] }, s.vs);
    s.rig.engine.run();
    expect(s.kfd.stats.rangesCreated).toBe(1);
    expect(s.svms.ranges[0]!.start).toBe(s.base);
    expect(s.svms.ranges[0]!.end).toBe(s.base + 2 * MiB);
    expect(s.kfd.stats.pagesMigratedToDevice).toBe(512);
    expect(cpuKind(s.p, s.base + 511 * 4096)).toBe(K_DEVICE_PRIVATE);
    const l = gpuLeaf(s.vs, s.base + 300 * 4096);
    expect(l.flags & PTE_VALID).toBeTruthy();
    expect(l.flags & PTE_SYSMEM).toBe(0);
    expect(s.kfd.stats.faultsServiced).toBe(1);
    teardown(s);
  });

  it('the window follows the granularity attribute: granularity 4 moves 64 KiB per fault', () => {
    const s = setup({ granularity: 4 });
    s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base + 20 * 4096, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    expect(s.kfd.stats.pagesMigratedToDevice).toBe(16);
    expect(cpuKind(s.p, s.base + 16 * 4096)).toBe(K_DEVICE_PRIVATE);
    expect(cpuKind(s.p, s.base + 32 * 4096)).not.toBe(K_DEVICE_PRIVATE);
    teardown(s);
  });

  it('svm_range_set_max_pages: 1/32 of VRAM, between 2 MiB and 1 GiB, a power of two', () => {
    expect(svmRangeMaxPages(8 * MiB)).toBe(512);
    expect(svmRangeMaxPages(64 * 2 ** 30)).toBe(1 << 18);
    expect(svmRangeMaxPages(24 * 2 ** 30)).toBe(1 << 17); // 196608 pages rounded down
  });

  it('setAttr registers ranges split to max_svm_range_pages; a prefetch location moves the whole range', () => {
    const s = setup({}, { vramBytes: 8 * MiB });
    s.kfd.setAttr(s.p, s.base, 4 * MiB, { access: true, prefetchLoc: 'gpu' });
    expect(s.svms.ranges.map((r) => r.end - r.start)).toEqual([2 * MiB, 2 * MiB]);
    expect(s.kfd.stats.pagesMigratedToDevice).toBe(1024);
    s.rig.gpu.launch(sweepKernel(s.base, 1024, 4, ACCESS_READ), s.vs);
    s.rig.engine.run();
    expect(s.rig.gpu.stats().faultsRaised).toBe(0); // validated and mapped at set_attr time
    teardown(s);
  });
});

describe('kfd: fault handling', () => {
  it('AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING: faults on a range validated less than 2 ms ago are dropped', () => {
    const s = setup();
    // Many warps fault on different pages of one range at once: one services the range, the others find it restored.
    s.rig.gpu.launch(sweepKernel(s.base, 512, 16, ACCESS_READ), s.vs);
    s.rig.engine.run();
    expect(s.kfd.stats.faultsServiced).toBe(1);
    expect(s.kfd.stats.faultsAlreadyRestored).toBeGreaterThan(0);
    expect(s.kfd.stats.faults).toBe(s.kfd.stats.faultsServiced + s.kfd.stats.faultsAlreadyRestored + s.kfd.stats.faultsFiltered);
    teardown(s);
  });

  it('a fault after the 2 ms window is serviced again (an invalidated range is revalidated)', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    s.rig.engine.run(s.rig.engine.now() + 3e6);
    s.p.mprotect(s.base, 4096, PROT_READ); // an invalidation unmaps the GPU (XNACK on)
    expect(gpuLeaf(s.vs, s.base).flags).toBe(0);
    s.rig.gpu.launch({ name: 'k2', warps: [listProgram([[s.base + 8, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    expect(s.kfd.stats.faultsServiced).toBe(2);
    expect(gpuLeaf(s.vs, s.base).flags & PTE_VALID).toBeTruthy();
    teardown(s);
  });

  it('amdgpu_gmc_filter_faults: a second fault on a page still pending is dropped', () => {
    const s = setup();
    const w = (): ReturnType<typeof listProgram> => listProgram([[s.base + 8, ACCESS_READ]]);
    s.rig.gpu.launch({ name: 'k', warps: [w(), w(), w(), w()] }, s.vs);
    s.rig.engine.run();
    expect(s.kfd.stats.faultsFiltered).toBeGreaterThan(0);
    expect(s.kfd.stats.faultsServiced).toBe(1);
    teardown(s);
  });

  it('a fault outside any VMA, and a write to a read-only VMA, cancel the kernel', () => {
    const s = setup();
    const run = s.rig.gpu.launch({ name: 'k', warps: [listProgram([[0x7000_0000_0000, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    expect(run.error).toMatch(/fatal/);
    s.p.mprotect(s.base, 2 * MiB, PROT_READ);
    const run2 = s.rig.gpu.launch({ name: 'k2', warps: [listProgram([[s.base, ACCESS_WRITE]])] }, s.vs);
    s.rig.engine.run();
    expect(run2.error).toMatch(/fatal/);
    expect(s.kfd.stats.fatalFaults).toBe(2);
    teardown(s);
  });

  it('preferred location sysmem: the window stays in system memory, mapped over the interconnect', () => {
    const s = setup();
    s.kfd.setAttr(s.p, s.base, 2 * MiB, { preferredLoc: 'sysmem' });
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 8, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    expect(s.kfd.stats.pagesMigratedToDevice).toBe(0);
    expect(gpuLeaf(s.vs, s.base).flags & PTE_SYSMEM).toBeTruthy();
    expect(s.rig.gpu.stats().remoteAccesses).toBe(8);
    teardown(s);
  });
});

describe('kfd: VRAM pressure, CPU faults, invalidation', () => {
  it('svm_range_evict_svm_bo_worker: VRAM short, TTM evicts the oldest BO whole; data intact', () => {
    const s = setup({}, { vramBytes: 4 * MiB }, 8);
    for (let i = 0; i < 3; i++) {
      s.rig.gpu.launch({ name: `k${i}`, warps: [seqProgram(s.base + i * 2 * MiB, 0, 512, ACCESS_WRITE, 10, 64)] }, s.vs);
      s.rig.engine.run();
    }
    expect(s.kfd.stats.bosEvicted).toBe(1);
    expect(s.kfd.stats.pagesEvicted).toBe(512); // the whole BO, not a page
    expect(cpuKind(s.p, s.base)).not.toBe(K_DEVICE_PRIVATE); // the first range's BO went
    expect(cpuKind(s.p, s.base + 4 * MiB)).toBe(K_DEVICE_PRIVATE);
    s.rig.gpu.launch({ name: 'check', warps: [seqProgram(s.base, 0, 1536, ACCESS_READ, 10, 64)] }, s.vs);
    s.rig.engine.run();
    teardown(s);
  });

  it('when eviction frees nothing (a page of the BO cannot move) the window falls back to system memory', () => {
    const s = setup({}, { vramBytes: 2 * MiB }, 8);
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 512, ACCESS_WRITE, 10, 64)] }, s.vs);
    s.rig.engine.run();
    const held = gpuLeaf(s.vs, s.base).pfn;
    s.rig.machine.phys.getPage(held); // an extra reference: migrate_vma cannot move this page, so the BO stays
    s.rig.gpu.launch({ name: 'k2', warps: [listProgram([[s.base + 2 * MiB, ACCESS_WRITE]])] }, s.vs);
    s.rig.engine.run();
    expect(s.kfd.counters()).toMatchObject({ bosEvicted: 1, pagesEvicted: 511, vramFallbacks: 1 });
    expect(gpuLeaf(s.vs, s.base + 2 * MiB).flags & PTE_SYSMEM).toBeTruthy();
    s.rig.machine.phys.putPage(held);
    teardown(s);
  });

  it('svm_migrate_to_ram: a CPU access brings the whole 2 MiB window back', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 512, ACCESS_WRITE, 10, 32)] }, s.vs);
    s.rig.engine.run();
    s.data.cpuRead(s.p, s.base + 64 * 4096 + 64);
    expect(s.kfd.stats.cpuFaults).toBe(1);
    expect(s.kfd.stats.pagesMigratedToSystem).toBe(512);
    expect(cpuKind(s.p, s.base + 511 * 4096)).not.toBe(K_DEVICE_PRIVATE);
    expect(gpuLeaf(s.vs, s.base).flags).toBe(0); // its own migration unmapped the GPU
    expect(s.svms.ranges[0]!.bo).toBeNull(); // no VRAM page left: the range let go of its BO
    for (let pg = 0; pg < 512; pg += 32) s.data.cpuRead(s.p, s.base + pg * 4096 + 64);
    teardown(s);
  });

  it('munmap of a whole range removes it; its VRAM pages are freed', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base, ACCESS_WRITE], [s.base + 2 * MiB, ACCESS_WRITE]])] }, s.vs);
    s.rig.engine.run();
    expect(s.svms.ranges.length).toBe(2);
    s.p.munmap(s.base, 2 * MiB);
    s.data.forget(s.base, s.base + 2 * MiB);
    s.rig.engine.run();
    expect(s.svms.ranges.length).toBe(1);
    expect(s.kfd.vram.usedFrames).toBe(512); // the other range's BO
    teardown(s);
  });

  it('fork: the child sees the parent\'s data; a GPU write after fork breaks the COW in system memory', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 4, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    const child = s.p.fork();
    const before = child.readU32(s.base + 64);
    expect(before).toBe(s.data.ref.get(s.base + 64));
    s.rig.engine.run(s.rig.engine.now() + 3e6);
    s.rig.gpu.launch({ name: 'k2', warps: [seqProgram(s.base, 0, 4, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    expect(child.readU32(s.base + 64)).toBe(before); // the child's copy did not change
    s.data.cpuRead(s.p, s.base + 64);
    child.exit();
    teardown(s);
  });

  it('svm_migrate_to_ram from a forked child: the window comes back in the child\'s VMA ("COW mapping in child process")', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 512, ACCESS_WRITE, 10, 64)] }, s.vs);
    s.rig.engine.run();
    const child = s.p.fork();
    expect(cpuKind(child, s.base + 64 * 4096)).toBe(K_DEVICE_PRIVATE);
    expect(child.readU32(s.base + 64 * 4096 + 64)).toBe(s.data.ref.get(s.base + 64 * 4096 + 64));
    expect(s.kfd.stats.cpuFaults).toBe(1);
    expect(cpuKind(child, s.base + 128 * 4096)).not.toBe(K_DEVICE_PRIVATE); // the whole window, in the child
    for (let pg = 0; pg < 512; pg += 64) expect(child.readU32(s.base + pg * 4096 + 64)).toBe(s.data.ref.get(s.base + pg * 4096 + 64));
    child.exit();
    teardown(s);
  });

  it('atomics on system memory need PCIe AtomicOps: without them the fault is fatal, with them the page is mapped atomic', () => {
    for (const native of [false, true]) {
      const s = setup({}, { nativeSysmemAtomics: native });
      s.kfd.setAttr(s.p, s.base, 2 * MiB, { preferredLoc: 'sysmem' });
      const run = s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base, ACCESS_ATOMIC]])] }, s.vs);
      s.rig.engine.run();
      expect(run.error === null).toBe(native);
      teardown(s);
    }
  });
});

describe('kfd: XNACK off', () => {
  it('no retry faults: a kernel on memory no range registered is killed', () => {
    const s = setup({ xnack: false });
    const run = s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    expect(run.error).toMatch(/fatal/);
    teardown(s);
  });

  it('a CPU invalidation quiesces the queues; svm_range_restore_work revalidates 1 ms later and resumes them', () => {
    const s = setup({ xnack: false });
    s.kfd.register(s.p, s.base, 2 * MiB);
    const warps = [seqProgram(s.base, 0, 512, ACCESS_READ, 200), seqProgram(s.base, 0, 512, ACCESS_READ, 200)];
    const run = s.rig.gpu.launch({ name: 'k', warps }, s.vs);
    s.rig.engine.run(20_000);
    const t0 = s.rig.engine.now();
    s.data.cpuWrite(s.p, s.base + 100 * 4096 + 16); // a plain write to a present page: no invalidation
    expect(s.kfd.stats.queueEvictions).toBe(0);
    s.p.mprotect(s.base + 4096, 4096, PROT_READ);
    expect(s.kfd.stats.queueEvictions).toBe(1);
    expectConsistent(s.rig, s.kfd.owner);
    s.rig.engine.run(t0 + 0.9e6);
    expect(s.kfd.stats.restores).toBe(0);
    s.rig.engine.run();
    expect(s.kfd.stats.restores).toBe(1);
    expect(run.error).toBeNull();
    expect(run.endNs).toBeGreaterThan(t0 + 1e6);
    expect(s.rig.gpu.stats().faultsRaised).toBe(0);
    teardown(s);
  });
});
