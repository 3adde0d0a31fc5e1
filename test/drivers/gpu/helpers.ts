// Shared pieces of the GPU driver tests: a machine with a GPU on an event engine, warp
// programs, a data-carrying observer checked against a reference, and the invariant checks.

import { expect } from 'vitest';
import { Machine } from '../../../src/mm/machine.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { Engine } from '../../../src/sim/engine.js';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, type AccessChunk, type AccessType, type WarpProgram } from '../../../src/drivers/gpu/access.js';
import { Gpu, type GpuConfig } from '../../../src/drivers/gpu/gpu.js';
import type { GpuCosts } from '../../../src/drivers/gpu/costs.js';
import { checkGpuInvariants } from '../../../src/drivers/gpu/check.js';
import type { Warp } from '../../../src/drivers/gpu/sm.js';

export interface Rig {
  machine: Machine;
  engine: Engine;
  gpu: Gpu;
}

export function makeRig(config: Partial<GpuConfig> = {}, costs: Partial<GpuCosts> = {}, ramBytes = 64 << 20): Rig {
  const machine = new Machine({ ramBytes, swapBytes: 16 << 20 });
  const engine = new Engine();
  const gpu = new Gpu(machine, engine, { vramBytes: 8 << 20, ...config }, costs);
  return { machine, engine, gpu };
}

/** A warp touching pages [from, to) of a buffer in order, `type` each, `computeNs` apart. */
export function seqProgram(base: number, from: number, to: number, type: AccessType = ACCESS_READ, computeNs = 50, stride = 1): WarpProgram {
  let p = from;
  return {
    next(chunk: AccessChunk): number {
      chunk.length = 0;
      while (p < to && chunk.push(base + p * 4096 + 64, type, computeNs)) p += stride;
      return chunk.length;
    },
  };
}

/** A warp issuing the given (address, type) list. */
export function listProgram(list: Array<[number, AccessType]>, computeNs = 50): WarpProgram {
  let i = 0;
  return {
    next(chunk: AccessChunk): number {
      chunk.length = 0;
      while (i < list.length && chunk.push(list[i]![0], list[i]![1], computeNs)) i++;
      return chunk.length;
    },
  };
}

/** Split pages [0, pages) of a buffer over `warps` warps, interleaved by 16-page runs. */
export function sweepKernel(base: number, pages: number, warps: number, type: AccessType = ACCESS_READ, computeNs = 50): { name: string; warps: WarpProgram[] } {
  const ws: WarpProgram[] = [];
  for (let w = 0; w < warps; w++) {
    const list: Array<[number, AccessType]> = [];
    for (let run = w * 16; run < pages; run += warps * 16) for (let p = run; p < Math.min(pages, run + 16); p++) list.push([base + p * 4096 + 8, type]);
    ws.push(listProgram(list, computeNs));
  }
  return { name: 'sweep', warps: ws };
}

/**
 * Data-carrying mode: every GPU write stores a fresh 32-bit value at its address and every GPU
 * read checks the word against the reference; CPU accesses go through the same reference.
 */
export class DataCheck {
  readonly ref = new Map<number, number>();
  readonly errors: string[] = [];
  private next = 1;
  private readonly buf = new Uint8Array(4);
  private readonly dv = new DataView(this.buf.buffer);
  constructor(private readonly rig: Rig) {
    rig.gpu.observeAccesses((w: Warp, addr: number, type: AccessType, pfn: number) => this.gpuAccess(w, addr, type, pfn));
  }
  private gpuAccess(_w: Warp, addr: number, type: AccessType, pfn: number): void {
    const off = addr % 4096 & ~3;
    const word = addr - (addr % 4096) + off;
    const phys = this.rig.machine.phys;
    if (type === ACCESS_WRITE || type === ACCESS_ATOMIC) {
      const v = this.next++ >>> 0;
      this.dv.setUint32(0, v, true);
      phys.writePage(pfn, off, this.buf, 0, 4);
      this.ref.set(word, v);
    } else {
      phys.readPage(pfn, off, this.buf, 0, 4);
      const got = this.dv.getUint32(0, true);
      const want = this.ref.get(word) ?? 0;
      if (got !== want && this.errors.length < 10) this.errors.push(`GPU read 0x${word.toString(16)} (pfn ${pfn}): ${got}, expected ${want}`);
    }
  }
  cpuWrite(proc: { writeU32(a: number, v: number): void }, addr: number): void {
    const v = this.next++ >>> 0;
    proc.writeU32(addr, v);
    this.ref.set(addr, v);
  }
  cpuRead(proc: { readU32(a: number): number }, addr: number): void {
    const got = proc.readU32(addr);
    const want = this.ref.get(addr) ?? 0;
    if (got !== want && this.errors.length < 10) this.errors.push(`CPU read 0x${addr.toString(16)}: ${got}, expected ${want}`);
  }
  /** Forget a range (munmapped: its contents are gone). */
  forget(start: number, end: number): void {
    for (const k of [...this.ref.keys()]) if (k >= start && k < end) this.ref.delete(k);
  }
}

/** The mm's and the GPU's invariants hold. */
export function expectConsistent(rig: Rig, owner?: unknown): void {
  expect(checkGpuInvariants(rig.machine, rig.gpu, owner === undefined ? {} : { owner })).toEqual([]);
  expect(checkInvariants(rig.machine)).toEqual([]);
}

export { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE };
