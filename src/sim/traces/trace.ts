// A recorded access trace as a workload: phases (GPU kernels with their warps, CPU phases),
// each warp's accesses in order. The readers (text.ts, nvbit.ts, lackey.ts) fill a
// TraceBuilder; `traceWorkload` replays it. A trace's addresses come from another process:
// they are kept page for page inside each cluster of nearby pages, and gaps of more than
// 1 GiB between clusters shrink to 2 MiB (alignment within a 2 MiB VA block is kept), so one
// mapping holds a trace whose heap and mmap areas are terabytes apart.

import { type AccessChunk, type AccessType, type GpuKernel, type WarpProgram } from '../../drivers/gpu/access.js';
import type { Phase, Workload, WorkloadBuffer } from '../workloads/workload.js';

const PAGE = 4096;
const BLOCK = 2 << 20;
const GAP = 1 << 30;

class Stream {
  addr: number[] = [];
  type: number[] = [];
  computeNs: number[] = [];
}

interface PhaseRec { kind: 'gpu' | 'cpu'; name: string; warps: Map<string, Stream> }

/** A parse error naming the file's line. */
export class TraceError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'TraceError';
  }
}

export class TraceBuilder {
  readonly phases: PhaseRec[] = [];
  private cur: PhaseRec | null = null;
  accesses = 0;
  private minPage = Infinity;
  private maxPage = -Infinity;
  private readonly pages = new Set<number>();

  constructor(readonly format: string) {}

  /** Start a phase (a kernel launch or a CPU phase). */
  begin(kind: 'gpu' | 'cpu', name: string): PhaseRec {
    this.cur = { kind, name, warps: new Map() };
    this.phases.push(this.cur);
    return this.cur;
  }

  /** The current phase, opening `kind` if there is none (or it is of the other kind). */
  current(kind: 'gpu' | 'cpu', name: string): PhaseRec {
    if (!this.cur || this.cur.kind !== kind) return this.begin(kind, name);
    return this.cur;
  }

  /** Append an access of `size` bytes at `addr`: one access per page it touches. */
  add(phase: PhaseRec, warp: string, addr: number, size: number, type: AccessType, computeNs: number): void {
    let s = phase.warps.get(warp);
    if (!s) phase.warps.set(warp, (s = new Stream()));
    const first = Math.floor(addr / PAGE);
    const last = Math.floor((addr + Math.max(1, size) - 1) / PAGE);
    for (let p = first; p <= last; p++) {
      s.addr.push(p * PAGE);
      s.type.push(type);
      s.computeNs.push(p === first ? computeNs : 0);
      this.pages.add(p);
      if (p < this.minPage) this.minPage = p;
      if (p > this.maxPage) this.maxPage = p;
      this.accesses++;
    }
  }

  /** Distinct pages touched. */
  get distinctPages(): number {
    return this.pages.size;
  }

  /** The address translation from trace addresses to offsets in one mapping, and its length. */
  layout(): { offsetOf: (addr: number) => number; bytes: number } {
    const sorted = [...this.pages].sort((a, b) => a - b);
    if (sorted.length === 0) return { offsetOf: () => 0, bytes: PAGE };
    // clusters: [traceStart, offsetStart]
    const starts: number[] = [];
    const offs: number[] = [];
    let off = sorted[0]! * PAGE % BLOCK;
    starts.push(sorted[0]! * PAGE);
    offs.push(off);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]! * PAGE;
      const a = sorted[i]! * PAGE;
      if (a - prev > GAP) {
        const endOff = offs[offs.length - 1]! + (prev - starts[starts.length - 1]!) + PAGE;
        // next cluster: one 2 MiB block later, at the same offset within its block
        off = Math.ceil(endOff / BLOCK) * BLOCK + BLOCK + (a % BLOCK);
        starts.push(a);
        offs.push(off);
      }
    }
    const lastPage = sorted[sorted.length - 1]! * PAGE;
    const bytes = offs[offs.length - 1]! + (lastPage - starts[starts.length - 1]!) + PAGE;
    const offsetOf = (addr: number): number => {
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid]! <= addr) lo = mid;
        else hi = mid - 1;
      }
      return offs[lo]! + (addr - starts[lo]!);
    };
    return { offsetOf, bytes: Math.ceil(bytes / BLOCK) * BLOCK };
  }
}

class ReplayWarp implements WarpProgram {
  private i = 0;
  constructor(private readonly addr: Float64Array, private readonly type: Uint8Array, private readonly cns: Float32Array) {}
  next(ch: AccessChunk): number {
    const n = Math.min(ch.capacity, this.addr.length - this.i);
    ch.addr.set(this.addr.subarray(this.i, this.i + n));
    ch.type.set(this.type.subarray(this.i, this.i + n));
    ch.computeNs.set(this.cns.subarray(this.i, this.i + n));
    this.i += n;
    ch.length = n;
    return n;
  }
}

export interface TraceWorkload extends Workload {
  readonly format: string;
  readonly accesses: number;
  readonly distinctPages: number;
}

/** A workload replaying the builder's phases; `computeScale` multiplies every recorded compute time. */
export function traceWorkload(b: TraceBuilder, name: string, computeScale = 1): TraceWorkload {
  if (b.accesses === 0) throw new TraceError(name, 0, 'the trace holds no memory access');
  const { offsetOf, bytes } = b.layout();
  const buffers: WorkloadBuffer[] = [{ name: 'trace', offset: 0, bytes }];
  // Arrays of offsets, built once; a replay adds the base.
  const phases = b.phases.filter((p) => p.warps.size > 0).map((p) => ({
    kind: p.kind,
    name: p.name,
    warps: [...p.warps.values()].map((s) => ({
      off: Float64Array.from(s.addr, offsetOf),
      type: Uint8Array.from(s.type),
      cns: Float32Array.from(s.computeNs, (x) => x * computeScale),
    })),
  }));
  return {
    name, format: b.format, accesses: b.accesses, distinctPages: b.distinctPages,
    params: { footprintBytes: b.distinctPages * PAGE, computeNs: 0, warps: 1, seed: 0 },
    buffers, mappingBytes: bytes,
    *phases(base: number): Iterable<Phase> {
      for (const p of phases) {
        const progs = p.warps.map((w) => {
          const a = new Float64Array(w.off.length);
          for (let i = 0; i < a.length; i++) a[i] = base + w.off[i]!;
          return new ReplayWarp(a, w.type, w.cns);
        });
        if (p.kind === 'gpu') {
          const kernel: GpuKernel = { name: p.name, warps: progs };
          yield { kind: 'gpu', kernel };
        } else {
          for (const prog of progs) yield { kind: 'cpu', name: p.name, program: prog };
        }
      }
    },
  };
}
