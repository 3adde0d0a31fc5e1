// The three drivers on one small workload: the data every driver leaves behind is the same, and
// each one's documented difference shows in its counters: nouveau migrates nothing on GPU
// faults and maps system memory remotely, draining the buffer with one replay per drain; kfd
// moves memory in 2 MiB windows, one fault at a time, and brings a whole window back on a CPU
// fault; uvm batches faults and with the tree prefetcher takes fewer faults than without.

import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/mm/constants.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { Machine } from '../../../src/mm/machine.js';
import { Engine } from '../../../src/sim/engine.js';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, type AccessType } from '../../../src/drivers/gpu/access.js';
import { checkGpuInvariants } from '../../../src/drivers/gpu/check.js';
import { createGpuSystem, type GpuSystemOptions } from '../../../src/drivers/gpu/system.js';
import type { GpuBatchEvent } from '../../../src/drivers/gpu/events.js';
import { sweepKernel } from './helpers.js';

/**
 * The data every driver must leave: a write stores a value set by its page and the pass (not
 * by the order the driver lets warps run), a read checks the word against the reference.
 */
class PageValues {
  readonly ref = new Map<number, number>();
  readonly errors: string[] = [];
  pass = 1;
  private readonly buf = new Uint8Array(4);
  private readonly dv = new DataView(this.buf.buffer);
  constructor(private readonly phys: Machine['phys']) {}
  value(addr: number): number {
    return (Math.imul(Math.floor(addr / 4096), 2654435761) + this.pass) >>> 0;
  }
  gpu(addr: number, type: AccessType, pfn: number): void {
    const off = addr % 4096;
    if (type === ACCESS_WRITE || type === ACCESS_ATOMIC) {
      this.dv.setUint32(0, this.value(addr), true);
      this.phys.writePage(pfn, off, this.buf, 0, 4);
      this.ref.set(addr, this.value(addr));
    } else if (type === ACCESS_READ) {
      this.phys.readPage(pfn, off, this.buf, 0, 4);
      const want = this.ref.get(addr) ?? 0;
      if (this.dv.getUint32(0, true) !== want && this.errors.length < 5) this.errors.push(`GPU read 0x${addr.toString(16)}`);
    }
  }
  cpuRead(p: { readU32(a: number): number }, addr: number): void {
    if (p.readU32(addr) !== (this.ref.get(addr) ?? 0) && this.errors.length < 5) this.errors.push(`CPU read 0x${addr.toString(16)}`);
  }
  cpuWrite(p: { writeU32(a: number, v: number): void }, addr: number): void {
    p.writeU32(addr, this.value(addr));
    this.ref.set(addr, this.value(addr));
  }
}

const PAGES = 1024; // 4 MiB: two 2 MiB blocks

function run(opts: GpuSystemOptions) {
  const machine = new Machine({ ramBytes: 64 << 20, swapBytes: 16 << 20 });
  const engine = new Engine();
  const { gpu, driver } = createGpuSystem(machine, engine, { config: { vramBytes: 8 << 20 }, ...opts });
  const p = machine.spawn();
  const raw = p.mmap(0, PAGES * 4096 + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const base = Math.ceil(raw / (2 << 20)) * (2 << 20);
  const vs = driver.attach(p).gpuVaSpace;
  const data = new PageValues(machine.phys);
  gpu.observeAccesses((_w, addr, type, pfn) => data.gpu(addr, type, pfn));
  const batches: GpuBatchEvent[] = [];
  gpu.events.subscribe('batch', (e) => void batches.push(e));
  // Kernel 1 writes every page, the CPU reads one back and writes a few, kernel 2 reads everything.
  gpu.launch(sweepKernel(base, PAGES, 16, ACCESS_WRITE), vs);
  engine.run();
  const afterGpu = { ...driver.counters() };
  data.cpuRead(p, base + 100 * 4096 + 8);
  const afterCpu = { ...driver.counters() };
  data.pass = 2;
  for (let pg = 0; pg < PAGES; pg += 97) data.cpuWrite(p, base + pg * 4096 + 8);
  gpu.launch(sweepKernel(base, PAGES, 16, ACCESS_READ), vs);
  engine.run();
  expect(data.errors).toEqual([]);
  expect(checkGpuInvariants(machine, gpu, { owner: driver.owner })).toEqual([]);
  expect(checkInvariants(machine)).toEqual([]);
  const words: number[] = [];
  for (let pg = 0; pg < PAGES; pg++) words.push(p.readU32(base + pg * 4096 + 8));
  const stats = gpu.stats();
  driver.detach(p);
  p.exit();
  driver.shutdown();
  expect(machine.phys.usedRamFrames).toBe(0);
  return { words, afterGpu, afterCpu, final: driver.counters(), stats, batches };
}

describe('uvm, kfd and nouveau on one workload', () => {
  const uvm = run({ driver: 'uvm' });
  const uvmNone = run({ driver: 'uvm', uvm: { prefetch: 'none' } });
  const kfd = run({ driver: 'kfd' });
  const nouveau = run({ driver: 'nouveau' });

  it('leave the same data behind', () => {
    expect(kfd.words).toEqual(uvm.words);
    expect(nouveau.words).toEqual(uvm.words);
    expect(uvmNone.words).toEqual(uvm.words);
    expect(new Set(uvm.words).size).toBeGreaterThan(PAGES / 2); // every page got its own value
  });

  it('nouveau migrates nothing on GPU faults: every access goes over the interconnect; one replay per drain', () => {
    expect(nouveau.final.pagesMigratedToDevice).toBe(0);
    expect(nouveau.final.vramPagesUsed).toBe(0);
    expect(nouveau.stats.remoteAccesses).toBe(nouveau.stats.accesses);
    expect(nouveau.final.replays).toBe(nouveau.final.drains);
    expect(nouveau.final.cpuFaults).toBe(0); // nothing in VRAM, nothing to fault back
  });

  it('kfd moves memory in 2 MiB windows, one fault at a time, and a CPU fault brings a whole window back', () => {
    expect(kfd.afterGpu.pagesMigratedToDevice).toBe(PAGES);
    expect(kfd.afterGpu.pagesMigratedToDevice! % 512).toBe(0);
    expect(kfd.afterGpu.migrationsToDevice).toBe(2);
    expect(kfd.batches.every((b) => b.fetched === 1)).toBe(true);
    expect(kfd.afterCpu.pagesMigratedToSystem! - kfd.afterGpu.pagesMigratedToSystem!).toBe(512);
    // Every move, either way and by either cause, is a whole window.
    expect(kfd.final.pagesMigratedToDevice! % 512).toBe(0);
    expect(kfd.final.pagesMigratedToSystem! % 512).toBe(0);
    expect(kfd.final.pagesMigratedToDevice).toBeGreaterThan(PAGES); // kernel 2 took the windows the CPU pulled back
  });

  it('uvm batches faults, and the tree prefetcher takes fewer faults than no prefetch', () => {
    expect(Math.max(...uvm.batches.map((b) => b.fetched))).toBeGreaterThan(1);
    expect(uvm.afterGpu.faults).toBeLessThan(uvmNone.afterGpu.faults!);
    // A CPU fault brings back the page and what the prefetcher picks toward the CPU: less than a 2 MiB window.
    expect(uvm.afterCpu.pagesMigratedToSystem! - uvm.afterGpu.pagesMigratedToSystem!).toBeLessThan(512);
  });

  it('differ in the GPU faults the same kernels take: nouveau most, kfd fewest', () => {
    expect(nouveau.stats.faultsRaised).toBeGreaterThan(uvmNone.stats.faultsRaised / 2);
    expect(kfd.stats.faultsRaised).toBeLessThan(uvmNone.stats.faultsRaised);
  });
});

describe('createGpuSystem', () => {
  it('refuses an unknown driver with EINVAL naming the drivers, before it builds a GPU (whose own EINVAL would come first)', () => {
    const machine = new Machine({ ramBytes: 16 << 20 });
    const before = machine.phys.frames.capacity;
    let err: unknown;
    try {
      createGpuSystem(machine, new Engine(), { driver: 'amdgpu' as GpuSystemOptions['driver'], config: { vramBytes: 8 << 20, sms: 0 } });
    } catch (e) {
      err = e;
    }
    // sms: 0 is the GPU's own EINVAL: the driver's name must be the one reported, as it is checked first
    expect(String(err)).toMatch(/EINVAL.*unknown GPU driver 'amdgpu' \(drivers: uvm, kfd, nouveau\)/);
    expect(machine.phys.frames.capacity).toBe(before);
    machine.dispose();
  });
});
