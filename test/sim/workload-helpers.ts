// A test double of the GPU for workload tests: it runs each phase's warps round-robin, one
// chunk at a time, and records every access. It has no memory, faults or time: it only shows
// what a workload asks for, in the order a GPU that interleaves warps would see it.

import { AccessChunk } from '../../src/drivers/gpu/access.js';
import type { Workload } from '../../src/sim/workloads/index.js';

export interface Recorded {
  /** One entry per phase. */
  phases: Array<{ kind: 'gpu' | 'cpu'; name: string; addr: number[]; type: number[]; warp: number[] }>;
}

export const BASE = 0x7f00_0000_0000;

export function record(w: Workload, chunkSize = 256, base = BASE): Recorded {
  const out: Recorded = { phases: [] };
  const chunk = new AccessChunk(chunkSize);
  for (const ph of w.phases(base)) {
    const rec = { kind: ph.kind, name: ph.kind === 'gpu' ? ph.kernel.name : ph.name, addr: [] as number[], type: [] as number[], warp: [] as number[] };
    out.phases.push(rec);
    const progs = ph.kind === 'gpu' ? [...ph.kernel.warps] : [ph.program];
    const live = progs.map((_, i) => i);
    while (live.length) {
      for (let j = 0; j < live.length; ) {
        const wi = live[j]!;
        const n = progs[wi]!.next(chunk);
        if (n === 0) { live.splice(j, 1); continue; }
        for (let i = 0; i < n; i++) { rec.addr.push(chunk.addr[i]!); rec.type.push(chunk.type[i]!); rec.warp.push(wi); }
        j++;
      }
    }
  }
  return out;
}

/** The buffer an address falls in, and its page index there. */
export function where(w: Workload, addr: number, base = BASE): { buf: string; page: number } {
  const off = addr - base;
  for (const b of w.buffers) if (off >= b.offset && off < b.offset + b.bytes) return { buf: b.name, page: Math.floor((off - b.offset) / 4096) };
  throw new Error(`address ${addr.toString(16)} outside every buffer`);
}

/** Count of accesses per (buffer, type) in a phase. */
export function tally(w: Workload, ph: Recorded['phases'][number]): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < ph.addr.length; i++) {
    const k = `${where(w, ph.addr[i]!).buf}:${ph.type[i]}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}
