// A minimal driver on gpusvm for the tests: a DevicePageTable bound and unbound by the ops,
// the usual invalidate body, and a log of what the ops saw.
import {
  DevicePageTable, DPTE_WRITE, drmGpusvmInit, gpusvmInvalidateRanges, type DrmGpusvm, type DrmGpusvmOps, type DrmGpusvmOptions,
} from '../../../src/drivers/gpusvm/index.js';
import { HMM_PFN_WRITE } from '../../../src/hmm/range.js';
import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Mm, type MmuNotifierRange, type Process } from '../../../src/index.js';

export const P = PAGE_SIZE;
export const MiB = 1 << 20;
export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

export interface TestDriver {
  gpusvm: DrmGpusvm;
  pt: DevicePageTable;
  events: MmuNotifierRange[];
  binds: number;
  unbinds: number;
}

export function makeDriver(mm: Mm, opts: { chunkSizes?: number[]; notifierSize?: number; options?: DrmGpusvmOptions } = {}): TestDriver {
  const d: TestDriver = { gpusvm: null!, pt: new DevicePageTable(), events: [], binds: 0, unbinds: 0 };
  const ops: DrmGpusvmOps = {
    invalidate: (g, n, r) => {
      d.events.push(r);
      gpusvmInvalidateRanges(g, n, r);
    },
    bind: (_g, range) => {
      d.binds++;
      const base = range.start / P;
      const pfns = range.pages.pfns!;
      const fl = range.pages.hmmFlags!;
      for (let i = 0; i < pfns.length; i++) d.pt.map(base + i, pfns[i]!, fl[i]! & HMM_PFN_WRITE ? DPTE_WRITE : 0);
    },
    unbind: (_g, range) => {
      d.unbinds++;
      d.pt.unmapRange(range.start / P, range.end / P);
    },
  };
  d.gpusvm = drmGpusvmInit('test', mm, 0, mm.taskSize, opts.notifierSize ?? 512 * MiB, ops, opts.chunkSizes ?? [2 * MiB, 64 * 1024, P], opts.options);
  return d;
}

/** A machine, a process, and an anonymous mapping of `bytes` at a 2 MiB-aligned fixed address. */
export function setup(bytes = 8 * MiB, at = 0x40000000): { m: Machine; p: Process; a: number } {
  const m = new Machine({ ramBytes: 128 * MiB, swapBytes: 64 * MiB, thp: 'never' });
  const p = m.spawn();
  const a = p.mmap(at, bytes, RW, ANON | 0x10 /* MAP_FIXED */);
  return { m, p, a };
}

/** Write one byte to each page of [a, a + n pages) from the CPU. */
export function touch(p: Process, a: number, n: number, v = 1): void {
  for (let i = 0; i < n; i++) p.writeU8(a + i * P, v);
}
