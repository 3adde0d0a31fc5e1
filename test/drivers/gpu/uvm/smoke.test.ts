import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../../src/mm/constants.js';
import { UvmDriver } from '../../../../src/drivers/gpu/uvm/uvm.js';
import { ACCESS_READ, ACCESS_WRITE, DataCheck, expectConsistent, makeRig, sweepKernel } from '../helpers.js';

describe('uvm smoke', () => {
  it('a GPU sweep over CPU-written memory migrates it to VRAM with intact data; teardown frees everything', () => {
    const rig = makeRig();
    const uvm = new UvmDriver(rig.gpu);
    const p = rig.machine.spawn();
    const len = 4 << 20;
    const base = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const data = new DataCheck(rig);
    for (let a = base; a < base + len; a += 4096 * 3) data.cpuWrite(p, a + 8);
    const vs = uvm.attach(p);
    const run = rig.gpu.launch(sweepKernel(base, len / 4096, 16, ACCESS_READ), vs.gpuVaSpace);
    rig.engine.run();
    expect(run.done).toBe(true);
    expect(run.error).toBeNull();
    expect(data.errors).toEqual([]);
    expectConsistent(rig);
    const s = uvm.counters();
    expect(s.pagesMigratedToDevice).toBe(len / 4096);
    expect(s.faults).toBeGreaterThan(0);
    // The GPU writes, then the CPU reads everything back.
    const run2 = rig.gpu.launch(sweepKernel(base, len / 4096, 16, ACCESS_WRITE), vs.gpuVaSpace);
    rig.engine.run();
    expect(run2.error).toBeNull();
    for (let a = base; a < base + len; a += 4096) data.cpuRead(p, a + 8);
    expect(data.errors).toEqual([]);
    expect(uvm.counters().cpuFaults).toBeGreaterThan(0);
    expectConsistent(rig);
    uvm.shutdown();
    p.exit();
    expect(rig.machine.phys.usedRamFrames).toBe(0);
    expect(rig.gpu.vram.pgmap).toBeNull();
    expectConsistent(rig);
  });
});
