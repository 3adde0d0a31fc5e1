// Tiled SGEMM (C = A x B, N x N floats): each thread block computes one T x T tile of C,
// stepping k over the tiles of A's block row and B's block column, then writes its C tile.
// A tile's rows are a row apart, so each is its own page once a row is longer than a page.
// The access count grows as N^3 / T^2; T grows with N (an L2-level blocking) to keep it near
// 2 x 10^7, so large footprints stay quick to simulate.

import { ACCESS_READ, ACCESS_WRITE, type AccessChunk, type GpuKernel, type WarpProgram } from '../../drivers/gpu/access.js';
import { checkParams, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

export interface SgemmParams extends WorkloadParams {
  tile?: number;
}

/** The tile edge for N: at least 32, a power of two, so that 2 N^3 / T^2 <= 2e7 where possible. */
export function sgemmTile(n: number): number {
  let t = 32;
  while (t < n / 2 && (2 * n ** 3) / t ** 2 > 2e7) t *= 2;
  return t;
}

class SgemmWarp implements WarpProgram {
  private blk: number;
  private k = 0;
  private row = 0;
  private phase = 0; // 0: A rows, 1: B rows, then next k; 2: C rows

  constructor(w: number, private readonly warps: number, private readonly g: {
    n: number; t: number; nt: number; a: number; b: number; c: number; cns: number;
  }) {
    this.blk = w;
  }

  next(ch: AccessChunk): number {
    ch.length = 0;
    const { n, t, nt, a, b, c, cns } = this.g;
    const blocks = nt * nt;
    const rowPage = (base: number, r: number, col: number) => base + Math.floor(((r * n + col) * 4) / PAGE) * PAGE;
    let last = -1;
    while (this.blk < blocks && ch.length < ch.capacity) {
      const bi = Math.floor(this.blk / nt);
      const bj = this.blk % nt;
      const rows = Math.min(t, n - (this.phase === 1 ? this.k : bi) * t);
      if (this.row >= rows) {
        this.row = 0;
        last = -1;
        if (this.phase === 0) this.phase = 1;
        else if (this.phase === 1) { this.phase = 0; if (++this.k === nt) this.phase = 2; }
        else { this.phase = 0; this.k = 0; this.blk += this.warps; }
        continue;
      }
      let p: number;
      if (this.phase === 0) p = rowPage(a, bi * t + this.row, this.k * t);
      else if (this.phase === 1) p = rowPage(b, this.k * t + this.row, bj * t);
      else p = rowPage(c, bi * t + this.row, bj * t);
      this.row++;
      if (p === last) continue;
      last = p;
      ch.push(p, this.phase === 2 ? ACCESS_WRITE : ACCESS_READ, cns);
    }
    return ch.length;
  }
}

export const sgemm: WorkloadSpec = {
  name: 'sgemm',
  description: 'Tiled SGEMM: each block streams a row of A tiles and a column of B tiles, then writes its C tile',
  regular: true,
  defaultComputeNs: 400,
  defaultIterations: 1,
  create(params: SgemmParams): Workload {
    checkParams(params);
    const n = Math.max(64, Math.floor(Math.sqrt(params.footprintBytes / 12)));
    const t = params.tile ?? sgemmTile(n);
    const nt = Math.ceil(n / t);
    const { buffers, mappingBytes } = layout([['A', 4 * n * n], ['B', 4 * n * n], ['C', 4 * n * n]]);
    return {
      name: 'sgemm', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const [a, b, c] = buffers.map((x) => base + x.offset) as [number, number, number];
        const g = { n, t, nt, a, b, c, cns: params.computeNs };
        const warps = Math.max(1, Math.min(params.warps, nt * nt));
        const ws: WarpProgram[] = [];
        for (let w = 0; w < warps; w++) ws.push(new SgemmWarp(w, warps, g));
        const kernel: GpuKernel = { name: 'sgemm', warps: ws };
        yield { kind: 'gpu', kernel };
      },
    };
  },
};
