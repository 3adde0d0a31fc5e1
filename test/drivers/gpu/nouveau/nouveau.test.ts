// nouveau SVM on the GPU model (nouveau_svm.c, nouveau_dmem.c): the drain-sort-map fault work,
// the grouping of sorted faults, one replay per drain, cancel on failure, atomics through
// make_device_exclusive, explicit migration, one-page migrate_to_ram, the chunk allocator with
// no eviction, invalidations, fork and teardown. Every test checks the data and the invariants.

import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../../src/mm/constants.js';
import { K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, KIND_MASK, type PtSlot } from '../../../../src/mm/pagetable.js';
import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_READ, ACCESS_WRITE } from '../../../../src/drivers/gpu/access.js';
import { NouveauDriver, type NouveauOptions } from '../../../../src/drivers/gpu/nouveau/nouveau_svm.js';
import { DMEM_CHUNK_PAGES, SG_MAX_SINGLE_ALLOC } from '../../../../src/drivers/gpu/nouveau/nouveau_dmem.js';
import { PTE_ATOMIC, PTE_SYSMEM, PTE_VALID, PTE_WRITE, type GpuPtLeaf } from '../../../../src/drivers/gpu/page_table.js';
import type { GpuConfig } from '../../../../src/drivers/gpu/gpu.js';
import type { Process } from '../../../../src/mm/process.js';
import { DataCheck, expectConsistent, listProgram, makeRig, seqProgram, sweepKernel } from '../helpers.js';

const MiB = 1 << 20;

function setup(opts: Partial<NouveauOptions> = {}, config: Partial<GpuConfig> = {}, mb = 8) {
  const rig = makeRig(config);
  const nv = new NouveauDriver(rig.gpu, opts);
  const p = rig.machine.spawn();
  const base = p.mmap(0, mb * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const svmm = nv.attach(p);
  const data = new DataCheck(rig);
  return { rig, nv, p, base, svmm, data, vs: svmm.gpuVaSpace };
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
  expectConsistent(s.rig, s.nv.owner);
  s.nv.detach(s.p);
  s.p.exit();
  s.nv.shutdown();
  expect(s.rig.machine.phys.usedRamFrames).toBe(0);
  expect(s.nv.dmem.usedFrames).toBe(0);
}

describe('nouveau: the fault work', () => {
  it('nouveau_svm_fault maps one page per fault through hmm_range_fault and never migrates on a GPU fault', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 32, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    expect(s.nv.stats.faultsHandled).toBe(32);
    expect(s.nv.stats.pagesMapped).toBe(32);
    expect(s.nv.stats.pagesMigratedToDevice).toBe(0);
    expect(s.nv.dmem.chunks).toBe(0);
    const l = gpuLeaf(s.vs, s.base);
    expect(l.flags & PTE_SYSMEM).toBeTruthy();
    expect(l.flags & PTE_WRITE).toBeTruthy();
    expect(s.rig.gpu.stats().remoteAccesses).toBe(32);
    teardown(s);
  });

  it('drains the whole buffer (no batch cap), sorts it, and issues one replay per drain', () => {
    const s = setup();
    s.rig.gpu.launch(sweepKernel(s.base, 512, 64, ACCESS_READ), s.vs);
    s.rig.engine.run();
    expect(s.nv.stats.replays).toBe(s.nv.stats.drains);
    expect(s.nv.stats.faults).toBeGreaterThan(s.nv.stats.drains * 8); // many faults per drain
    expect(s.rig.gpu.stats().replays).toBe(s.nv.stats.replays);
    teardown(s);
  });

  it('a read fault maps read-only unless the CPU page is writable; a write asks for write (HMM_PFN_REQ_WRITE)', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'r', warps: [listProgram([[s.base, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    // Never touched: hmm_range_fault without REQ_WRITE maps the zero page, read-only.
    expect(gpuLeaf(s.vs, s.base).flags & PTE_WRITE).toBe(0);
    s.rig.gpu.launch({ name: 'w', warps: [listProgram([[s.base, ACCESS_WRITE]])] }, s.vs);
    s.rig.engine.run();
    expect(gpuLeaf(s.vs, s.base).flags & PTE_WRITE).toBeTruthy();
    teardown(s);
  });

  it('sorted faults on one page: the first handled covers the ones after it (nouveau_svm_fault_cmp, the skip loop)', () => {
    const s = setup();
    const w = (): ReturnType<typeof listProgram> => listProgram([[s.base + 8, ACCESS_READ]]);
    s.rig.gpu.launch({ name: 'k', warps: [w(), w(), w(), w(), w(), w()] }, s.vs);
    s.rig.engine.run();
    expect(s.nv.stats.faultsHandled).toBe(1);
    expect(s.nv.stats.faultsSkipped).toBe(s.nv.stats.faults - 1);
    teardown(s);
  });

  it('a prefetch fault faults nothing in (hmm flags 0)', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base, ACCESS_PREFETCH]])] }, s.vs);
    s.rig.engine.run();
    expect(s.nv.stats.faultsHandled).toBe(1);
    expect(gpuLeaf(s.vs, s.base).flags).toBe(0);
    expect(s.rig.machine.phys.usedRamFrames).toBeLessThan(16); // nothing populated for the buffer
    teardown(s);
  });

  it('the 2019 window: 16 pages from the fault, the faults inside handled by one hmm_range_fault', () => {
    const s = setup({ window: '64k' });
    const warps = [];
    for (let i = 0; i < 16; i++) warps.push(listProgram([[s.base + i * 4096, ACCESS_WRITE]]));
    s.rig.gpu.launch({ name: 'k', warps }, s.vs);
    s.rig.engine.run();
    expect(s.nv.stats.faultsHandled).toBeLessThan(s.nv.stats.faults);
    expect(s.nv.stats.pagesMapped).toBe(16);
    teardown(s);
  });

  it('a fault outside any VMA cancels the channel (GP100_VMM_VN_FAULT_CANCEL)', () => {
    const s = setup();
    const run = s.rig.gpu.launch({ name: 'k', warps: [listProgram([[0x7000_0000_0000, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    expect(run.error).toMatch(/fatal/);
    expect(s.nv.stats.faultsCancelled).toBe(1);
    teardown(s);
  });

  it('nouveau_atomic_range_fault: an atomic takes the page with make_device_exclusive and maps it with atomics', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [listProgram([[s.base, ACCESS_ATOMIC], [s.base, ACCESS_READ]])] }, s.vs);
    s.rig.engine.run();
    expect(cpuKind(s.p, s.base)).toBe(K_DEVICE_EXCLUSIVE);
    expect(gpuLeaf(s.vs, s.base).flags & PTE_ATOMIC).toBeTruthy();
    expect(s.nv.stats.deviceExclusive).toBe(1);
    s.data.cpuRead(s.p, s.base); // the CPU takes it back; the GPU mapping goes
    expect(gpuLeaf(s.vs, s.base).flags).toBe(0);
    teardown(s);
  });
});

describe('nouveau: device memory', () => {
  it('NOUVEAU_SVM_BIND MIGRATE moves the range to VRAM in 2 MiB chunks, one copy per page, and maps it', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 300, ACCESS_WRITE, 10)] }, s.vs);
    s.rig.engine.run();
    let copies = 0;
    s.rig.gpu.events.subscribe('migrate', (e) => void (copies += e.npages === 1 ? 1 : 1000));
    s.nv.migrate(s.p, s.base, 600 * 4096, 'gpu');
    expect(s.nv.stats.pagesMigratedToDevice).toBe(600);
    expect(copies).toBe(300); // the 300 written pages, each its own copy; the rest cleared
    expect(s.nv.dmem.chunks).toBe(2); // 600 pages: two 2 MiB chunks
    expect(cpuKind(s.p, s.base + 599 * 4096)).toBe(K_DEVICE_PRIVATE);
    expect(gpuLeaf(s.vs, s.base).flags & PTE_SYSMEM).toBe(0);
    s.rig.gpu.launch({ name: 'r', warps: [seqProgram(s.base, 0, 600, ACCESS_READ, 10)] }, s.vs);
    s.rig.engine.run();
    expect(s.rig.gpu.stats().remoteAccesses).toBe(300); // the first kernel's writes
    expect(SG_MAX_SINGLE_ALLOC).toBe(128);
    teardown(s);
  });

  it('migrating to the CPU is not a bind target: EINVAL', () => {
    const s = setup();
    expect(() => s.nv.migrate(s.p, s.base, 4096, 'cpu')).toThrow(/EINVAL/);
    teardown(s);
  });

  it('nouveau_dmem_migrate_to_ram: a CPU access brings back exactly one page', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 64, ACCESS_WRITE, 10)] }, s.vs);
    s.rig.engine.run();
    s.nv.migrate(s.p, s.base, 64 * 4096, 'gpu');
    s.data.cpuRead(s.p, s.base + 10 * 4096 + 64);
    expect(s.nv.stats.cpuFaults).toBe(1);
    expect(s.nv.stats.pagesMigratedToSystem).toBe(1);
    expect(cpuKind(s.p, s.base + 10 * 4096)).not.toBe(K_DEVICE_PRIVATE);
    expect(cpuKind(s.p, s.base + 11 * 4096)).toBe(K_DEVICE_PRIVATE);
    expect(gpuLeaf(s.vs, s.base + 10 * 4096).flags).toBe(0); // nouveau_svmm_invalidate before the copy
    expect(gpuLeaf(s.vs, s.base + 11 * 4096).flags & PTE_VALID).toBeTruthy();
    teardown(s);
  });

  it('no eviction: VRAM full, the rest of a migration stays in system memory; freed pages go back to the LIFO', () => {
    const s = setup({}, { vramBytes: 2 * MiB });
    s.nv.migrate(s.p, s.base, 600 * 4096, 'gpu');
    expect(s.nv.stats.pagesMigratedToDevice).toBe(DMEM_CHUNK_PAGES);
    expect(s.nv.stats.migrateShort).toBe(600 - DMEM_CHUNK_PAGES);
    expect(s.nv.dmem.allocFailures).toBeGreaterThan(0);
    s.p.munmap(s.base, 4096);
    s.data.forget(s.base, s.base + 4096);
    expect(s.nv.dmem.usedFrames).toBe(DMEM_CHUNK_PAGES - 1);
    s.nv.migrate(s.p, s.base + 600 * 4096, 4096, 'gpu');
    expect(s.nv.dmem.usedFrames).toBe(DMEM_CHUNK_PAGES); // the freed page, reused
    teardown(s);
  });

  it('invalidation: munmap and mprotect clear the GPU PTEs; own migrations are skipped by the notifier', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 8, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    s.p.mprotect(s.base, 4096, PROT_READ);
    expect(gpuLeaf(s.vs, s.base).flags).toBe(0);
    expect(gpuLeaf(s.vs, s.base + 4096).flags & PTE_VALID).toBeTruthy();
    s.nv.migrate(s.p, s.base + 4096, 4096, 'gpu');
    expect(gpuLeaf(s.vs, s.base + 4096).flags & PTE_SYSMEM).toBe(0); // re-pointed at VRAM by nouveau_pfns_map
    s.p.munmap(s.base + 2 * 4096, 4096);
    s.data.forget(s.base + 2 * 4096, s.base + 3 * 4096);
    expect(gpuLeaf(s.vs, s.base + 2 * 4096).flags).toBe(0);
    teardown(s);
  });

  it('fork: the child keeps its copy; a GPU write to a VRAM page shared after fork breaks the COW', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 4, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    s.nv.migrate(s.p, s.base, 4 * 4096, 'gpu');
    const child = s.p.fork();
    const before = child.readU32(s.base + 64);
    s.rig.gpu.launch({ name: 'k2', warps: [seqProgram(s.base, 0, 4, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    expect(child.readU32(s.base + 64)).toBe(before);
    s.data.cpuRead(s.p, s.base + 64);
    child.exit();
    teardown(s);
  });

  it('exit with the GPU attached: nouveau_svmm_release drops the SVMM\'s mappings (no invalidation follows exit_mmap)', () => {
    const s = setup();
    s.rig.gpu.launch({ name: 'k', warps: [seqProgram(s.base, 0, 8, ACCESS_WRITE)] }, s.vs);
    s.rig.engine.run();
    s.p.exit();
    expect(gpuLeaf(s.vs, s.base).flags).toBe(0);
    expectConsistent(s.rig, s.nv.owner);
    s.nv.detach(s.p);
    s.nv.shutdown();
    expect(s.rig.machine.phys.usedRamFrames).toBe(0);
  });

  it('teardown evicts every chunk (migrate_device_range) and leaves no frame', () => {
    const s = setup();
    s.nv.migrate(s.p, s.base, 8 * MiB, 'gpu');
    s.rig.gpu.launch({ name: 'r', warps: [seqProgram(s.base, 0, 2048, ACCESS_READ, 1, 16)] }, s.vs);
    s.rig.engine.run();
    expect(s.rig.gpu.stats().remoteAccesses).toBe(0);
    const child = s.p.fork();
    s.nv.detach(s.p);
    s.nv.shutdown(); // the child's and parent's VRAM pages go back to system memory
    expect(s.nv.dmem.usedFrames).toBe(0);
    expectConsistent(s.rig);
    child.exit();
    s.p.exit();
    expect(s.rig.machine.phys.usedRamFrames).toBe(0);
  });
});
