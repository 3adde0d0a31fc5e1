// Shared helpers of the migration tests.
import { expect } from 'vitest';
import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process } from '../../../src/index.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { E_WRITE, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, KIND_MASK, type PtSlot } from '../../../src/mm/pagetable.js';
import { TestDevice, type TestDeviceOptions } from './device.js';

export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
export const P = PAGE_SIZE;
export { K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP };

export interface Entry {
  kind: number;
  val: number;
  write: boolean;
  level: number;
}

/** The page-table entry covering addr in p (the lowest one that exists). */
export function entry(p: Process, addr: number): Entry {
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  p.mm.pt.lookup(Math.floor(addr / P), s);
  const flg = s.node.flg[s.idx]!;
  return { kind: flg & KIND_MASK, val: s.node.val[s.idx]!, write: (flg & E_WRITE) !== 0, level: s.level };
}

/** A machine with a test device and one process with `pages` pages of anonymous memory. */
export function setup(pages = 8, dev: TestDeviceOptions = {}, ramBytes = 32 << 20) {
  const m = new Machine({ ramBytes });
  const d = new TestDevice(m, dev);
  const p = m.spawn();
  const a = p.mmap(0, pages * P, RW, ANON);
  return { m, dev: d, p, a };
}

/** A page's worth of bytes derived from a seed (so a wrong page or a zeroed one shows). */
export function pattern(seed: number, len = P): Uint8Array {
  const b = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** checkInvariants is clean (extra references a test driver holds passed by frame). */
export function expectConsistent(m: Machine, extra: Array<[number, number]> = []): void {
  expect(checkInvariants(m, { extraRefs: new Map(extra) })).toEqual([]);
}

/** After every process exited: no RAM frame in use, every device frame back, page_free once per use. */
export function expectAllFree(m: Machine, ...devs: TestDevice[]): void {
  expect(m.phys.usedRamFrames).toBe(0);
  expect(m.phys.data.slotsInUse, 'data slots held after every frame was freed, device frames included').toBe(0);
  for (const d of devs) {
    expect(d.freePages).toBe(d.pgmap.nframes);
    expect(d.freedOncePerUse()).toEqual([]);
    expect(d.pgmap.freed).toBe(d.freed);
  }
  expectConsistent(m);
}
