// What a simulated program is: buffers laid out in one mapping, and a sequence of phases —
// GPU kernel launches (warps issuing page-granular accesses, src/drivers/gpu/access.ts) and
// CPU phases (one thread's accesses through the mm). Accesses carry no bytes: a 10 GiB
// footprint costs page metadata, not page data (docs/architecture.md decision 3).
//
// Phases are produced lazily: a phase may depend on what the previous ones did (bfs decides
// its next level from the frontier its last kernel built), so the simulator pulls the next
// phase only after the previous one has finished.

import { AccessChunk, type GpuKernel, type WarpProgram } from '../../drivers/gpu/access.js';

export const PAGE = 4096;

/** One buffer of a workload, at `offset` bytes into the workload's mapping. */
export interface WorkloadBuffer {
  name: string;
  offset: number;
  bytes: number;
}

/** A CPU thread's accesses, in the same chunked form as a warp's (src/drivers/gpu/access.ts). */
export type CpuProgram = WarpProgram;

export type Phase =
  | { kind: 'gpu'; kernel: GpuKernel }
  | { kind: 'cpu'; name: string; program: CpuProgram };

export interface WorkloadParams {
  /** Bytes of memory the workload uses (rounded to whole pages per buffer). */
  footprintBytes: number;
  /** Compute per page access, in ns of a warp's time: the workload's compute intensity. */
  computeNs: number;
  /** Warps per kernel launch. */
  warps: number;
  seed: number;
  /** Outer iterations (time steps, passes), where the workload has them. */
  iterations?: number;
}

export interface Workload {
  readonly name: string;
  readonly params: Readonly<WorkloadParams>;
  /** The buffers, laid out from offset 0; the mapping is `mappingBytes` long. */
  readonly buffers: readonly WorkloadBuffer[];
  readonly mappingBytes: number;
  /** The phases, with addresses relative to `base` (the mapping's start). */
  phases(base: number): Iterable<Phase>;
}

export interface WorkloadSpec {
  name: string;
  description: string;
  /** Regular workloads stream through memory; irregular ones jump (graphs, random access). */
  regular: boolean;
  /** Default compute per page access (ns), before calibration (docs/validation.md). */
  defaultComputeNs: number;
  defaultIterations: number;
  create(params: WorkloadParams): Workload;
}

/** Lay buffers out back to back, each rounded up to whole pages (and each at least one page). */
export function layout(parts: Array<[string, number]>): { buffers: WorkloadBuffer[]; mappingBytes: number } {
  const buffers: WorkloadBuffer[] = [];
  let off = 0;
  for (const [name, bytes] of parts) {
    const b = Math.max(PAGE, Math.ceil(bytes / PAGE) * PAGE);
    buffers.push({ name, offset: off, bytes: b });
    off += b;
  }
  return { buffers, mappingBytes: off };
}

/**
 * A warp that works through items w, w + W, w + 2W, ... (a grid-stride loop: consecutive warps
 * take consecutive items, as a GPU's block scheduler hands them out in order). `emit` appends
 * one item's accesses to the chunk; it must append at most `maxPerItem`.
 */
export class GridStrideWarp implements WarpProgram {
  private item: number;

  constructor(
    private readonly warp: number,
    private readonly warps: number,
    private readonly items: number,
    private readonly maxPerItem: number,
    private readonly emit: (item: number, chunk: AccessChunk) => void,
  ) {
    this.item = warp;
  }

  next(chunk: AccessChunk): number {
    if (chunk.capacity < this.maxPerItem) throw new RangeError(`chunk of ${chunk.capacity} cannot hold an item of up to ${this.maxPerItem} accesses`);
    chunk.length = 0;
    while (this.item < this.items && chunk.capacity - chunk.length >= this.maxPerItem) {
      this.emit(this.item, chunk);
      this.item += this.warps;
    }
    return chunk.length;
  }

  /** Warp w's index, for tests. */
  get index(): number {
    return this.warp;
  }
}

/** A kernel of `warps` grid-stride warps over `items` items. */
export function gridKernel(name: string, warps: number, items: number, maxPerItem: number, emit: (item: number, chunk: AccessChunk) => void): GpuKernel {
  const n = Math.max(1, Math.min(warps, items));
  const ws: WarpProgram[] = [];
  for (let w = 0; w < n; w++) ws.push(new GridStrideWarp(w, n, items, maxPerItem, emit));
  return { name, warps: ws };
}

/** A 32-bit mixing hash (splitmix-style finaliser): the seeded randomness workloads use without storing it. */
export function hash32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A uniform number in [0, 1) from (seed, a, b). */
export function unit(seed: number, a: number, b: number): number {
  return hash32(hash32(hash32(seed) ^ a) + Math.imul(b, 0x9e3779b9)) / 4294967296;
}

/** Validate the common parameters (RangeError naming the bad one). */
export function checkParams(p: WorkloadParams, minFootprint = 16 * PAGE): void {
  if (!(Number.isFinite(p.footprintBytes) && p.footprintBytes >= minFootprint)) throw new RangeError(`footprint must be at least ${minFootprint} bytes`);
  if (!(Number.isFinite(p.computeNs) && p.computeNs >= 0)) throw new RangeError('compute per access must be a non-negative number of ns');
  if (!(Number.isSafeInteger(p.warps) && p.warps >= 1)) throw new RangeError('warps must be a positive integer');
  if (p.iterations !== undefined && !(Number.isSafeInteger(p.iterations) && p.iterations >= 1)) throw new RangeError('iterations must be a positive integer');
}
