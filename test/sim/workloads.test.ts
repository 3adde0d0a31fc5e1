import { describe, expect, it } from 'vitest';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, AccessChunk } from '../../src/drivers/gpu/access.js';
import {
  backprop, bfs, fdtd, getWorkload, hotspot, nw, pingpong, ra, sgemm, sssp, stream, WORKLOADS, type WorkloadParams,
} from '../../src/sim/workloads/index.js';
import { ImplicitGraph } from '../../src/sim/workloads/graph.js';
import { BASE, record, tally, where } from './workload-helpers.js';

const MiB = 2 ** 20;
const P = (footprintBytes: number, extra: Partial<WorkloadParams> = {}): WorkloadParams => ({ footprintBytes, computeNs: 10, warps: 8, seed: 1, ...extra });
const R = ACCESS_READ;
const W = ACCESS_WRITE;

describe('every workload', () => {
  it('lays its buffers out within a page or so of the footprint, page-aligned, and stays inside them', () => {
    for (const spec of Object.values(WORKLOADS)) {
      const w = spec.create(P(2 * MiB, { iterations: 1 }));
      expect(Math.abs(w.mappingBytes - 2 * MiB) / (2 * MiB), spec.name).toBeLessThan(0.05);
      for (const b of w.buffers) expect(b.offset % 4096 + b.bytes % 4096).toBe(0);
      const r = record(w);
      expect(r.phases.length, spec.name).toBeGreaterThan(0);
      for (const ph of r.phases) for (const a of ph.addr) where(w, a); // throws when outside
    }
  });

  it('costs metadata, not bytes: a 10 GiB footprint is created and starts without allocating its size', () => {
    const before = process.memoryUsage().rss;
    for (const name of ['stream', 'bfs', 'ra']) {
      const w = getWorkload(name).create(P(10 * 1024 * MiB));
      const it = w.phases(BASE)[Symbol.iterator]();
      const first = it.next().value!;
      expect(first.kind).toBe('gpu');
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(400 * MiB);
  });

  it('refuses bad parameters and unknown names', () => {
    expect(() => stream.create(P(100))).toThrow(RangeError);
    expect(() => stream.create(P(MiB, { warps: 0 }))).toThrow(/warps/);
    expect(() => getWorkload('gups')).toThrow(/stream, backprop/);
  });

  it('is deterministic for a seed', () => {
    const a = record(ra.create(P(MiB, { seed: 3 })));
    const b = record(ra.create(P(MiB, { seed: 3 })));
    const c = record(ra.create(P(MiB, { seed: 4 })));
    expect(a).toEqual(b);
    expect(a.phases[0]!.addr).not.toEqual(c.phases[0]!.addr);
  });
});

describe('stream (triad)', () => {
  it('each iteration reads every page of b and c once and writes every page of a once, in address order per warp', () => {
    const w = stream.create(P(3 * MiB, { iterations: 2 }));
    const r = record(w);
    expect(r.phases.map((p) => p.name)).toEqual(['triad#0', 'triad#1']);
    const pages = w.buffers[0]!.bytes / 4096;
    const t = tally(w, r.phases[0]!);
    expect(Object.fromEntries(t)).toEqual({ [`a:${W}`]: pages, [`b:${R}`]: pages, [`c:${R}`]: pages });
    const ph = r.phases[0]!;
    const last = new Map<number, number>();
    for (let i = 0; i < ph.addr.length; i++) {
      const prev = last.get(ph.warp[i]!) ?? -Infinity;
      const pg = where(w, ph.addr[i]!).page;
      expect(pg).toBeGreaterThanOrEqual(prev);
      last.set(ph.warp[i]!, pg);
    }
  });
});

describe('backprop', () => {
  it('forward pass reads the weights; adjustment writes weights and previous deltas; both cover the matrix once', () => {
    const w = backprop.create(P(8 * MiB));
    const r = record(w);
    expect(r.phases.map((p) => p.name)).toEqual(['layerforward#0', 'adjust_weights#0']);
    const wp = w.buffers.find((b) => b.name === 'weights')!.bytes / 4096;
    const f = tally(w, r.phases[0]!);
    const a = tally(w, r.phases[1]!);
    expect(f.get(`weights:${R}`)).toBe(wp);
    expect(f.get(`weights:${W}`)).toBeUndefined();
    expect(a.get(`weights:${W}`)).toBe(wp);
    expect(a.get(`prevDeltas:${W}`)).toBe(wp);
    expect(w.buffers.find((b) => b.name === 'weights')!.bytes / w.mappingBytes).toBeGreaterThan(0.45);
  });
});

describe('hotspot', () => {
  it('reads each source page three times (row above, at, below) bar the edges, power once, writes the other grid; grids swap each step', () => {
    const w = hotspot.create(P(12 * MiB, { iterations: 2 }));
    const r = record(w);
    const pages = w.buffers[0]!.bytes / 4096;
    const t0 = tally(w, r.phases[0]!);
    const t1 = tally(w, r.phases[1]!);
    const rowPages = Math.round((4 * Math.floor(Math.sqrt((12 * MiB) / 12))) / 4096);
    expect(t0.get(`tempA:${R}`)).toBe(3 * pages - 2 * rowPages);
    expect(t0.get(`power:${R}`)).toBe(pages);
    expect(t0.get(`tempB:${W}`)).toBe(pages);
    expect(t1.get(`tempB:${R}`)).toBe(3 * pages - 2 * rowPages);
    expect(t1.get(`tempA:${W}`)).toBe(pages);
  });
});

describe('fdtd', () => {
  it('three kernels per step, each writing one field: ey, then ex, then hz', () => {
    const w = fdtd.create(P(12 * MiB, { iterations: 2 }));
    const r = record(w);
    expect(r.phases.length).toBe(6);
    const writes = r.phases.map((ph) => [...new Set(ph.addr.filter((_, i) => ph.type[i] === W).map((a) => where(w, a).buf))]);
    expect(writes).toEqual([['ey'], ['ex'], ['hz'], ['ey'], ['ex'], ['hz']]);
    const reads = r.phases.slice(0, 3).map((ph) => [...new Set(ph.addr.filter((_, i) => ph.type[i] === R).map((a) => where(w, a).buf))].sort());
    expect(reads).toEqual([['hz'], ['hz'], ['ex', 'ey']]);
  });
});

describe('nw', () => {
  it('one kernel per anti-diagonal, each block once, a block only after the blocks above and left of it', () => {
    const w = nw.create(P(4 * MiB));
    const r = record(w);
    const n = Math.floor(Math.sqrt((4 * MiB) / 8) / 16) * 16 - 1;
    const blocks = Math.floor(n / 16);
    expect(r.phases.length).toBe(2 * blocks - 1);
    // items per kernel rise to `blocks` then fall
    const writesPerKernel = r.phases.map((ph) => ph.type.filter((t) => t === W).length);
    expect(writesPerKernel[blocks - 1]).toBe(Math.max(...writesPerKernel));
    expect(writesPerKernel[0]).toBeLessThan(writesPerKernel[blocks - 1]!);
    // the reference matrix is only read
    for (const ph of r.phases) for (let i = 0; i < ph.addr.length; i++) if (where(w, ph.addr[i]!).buf === 'reference') expect(ph.type[i]).toBe(R);
    // rows longer than a page: a block touches ~16 distinct pages of each matrix
    const k = r.phases[blocks - 1]!;
    expect(new Set(k.addr).size).toBeGreaterThan(blocks * 16);
  });
});

describe('bfs', () => {
  function referenceBfs(g: ImplicitGraph): { levels: number; reached: number; edgesScanned: number } {
    const seen = new Uint8Array(g.vertices);
    let frontier = [0];
    seen[0] = 1;
    let levels = 0;
    let reached = 1;
    let edgesScanned = 0;
    while (frontier.length) {
      levels++;
      const next: number[] = [];
      for (const v of frontier) for (let k = 0; k < g.degree; k++) {
        edgesScanned++;
        const n = g.neighbor(v, k);
        if (!seen[n]) { seen[n] = 1; next.push(n); reached++; }
      }
      frontier = next;
    }
    return { levels, reached, edgesScanned };
  }

  it('runs one level per kernel pair, scans each reached vertex\'s edges once, writes the cost of each reached vertex once', () => {
    const w = bfs.create(P(MiB, { seed: 7 }));
    const r = record(w);
    const vertices = w.buffers.find((b) => b.name === 'mask')!.bytes; // >= vertices
    const V = Math.floor(MiB / (3 + 8 + 4 + 6 * 4));
    expect(vertices).toBeGreaterThanOrEqual(V);
    const ref = referenceBfs(new ImplicitGraph(V, 6, 'random', 7));
    expect(r.phases.length).toBe(2 * ref.levels);
    let visitedReads = 0;
    let costWrites = 0;
    for (const ph of r.phases) for (let i = 0; i < ph.addr.length; i++) {
      const b = where(w, ph.addr[i]!).buf;
      if (b === 'visited' && ph.type[i] === R) visitedReads++;
      if (b === 'cost') { costWrites++; expect(ph.type[i]).toBe(W); }
    }
    expect(visitedReads).toBe(ref.edgesScanned);
    expect(costWrites).toBe(ref.reached - 1);
    expect(ref.reached).toBeGreaterThan(0.9 * V);
  });

  it('random neighbours are uniform; power-law ones crowd onto a few hot vertices, scattered over the ids', () => {
    const V = 100_000;
    const share = (kind: 'random' | 'powerlaw') => {
      const g = new ImplicitGraph(V, 6, kind, 2);
      const inDeg = new Uint32Array(V);
      for (let v = 0; v < V; v++) for (let k = 0; k < 6; k++) inDeg[g.neighbor(v, k)]!++;
      const sorted = [...inDeg].sort((a, b) => b - a);
      const top = sorted.slice(0, V / 100).reduce((a, b) => a + b, 0) / (6 * V);
      // where the hottest vertices are: spread over the id space, not packed at the start
      const hot = [...inDeg.keys()].sort((a, b) => inDeg[b]! - inDeg[a]!).slice(0, 100);
      return { top, hotSpread: Math.max(...hot) - Math.min(...hot) };
    };
    const r = share('random');
    const p = share('powerlaw');
    expect(r.top).toBeLessThan(0.03);
    expect(p.top).toBeGreaterThan(0.2);
    expect(p.hotSpread).toBeGreaterThan(V / 2);
  });

  it('works with a chunk just big enough (warps resume mid-vertex)', () => {
    const w1 = record(bfs.create(P(MiB / 2)), 8);
    const w2 = record(bfs.create(P(MiB / 2)), 1024);
    const count = (r: typeof w1) => r.phases.reduce((s, p) => s + p.addr.length, 0);
    expect(count(w1)).toBeGreaterThan(0);
    // the same accesses, dedup aside (a small chunk restarts the per-warp page dedup)
    expect(Math.abs(count(w1) - count(w2)) / count(w2)).toBeLessThan(0.1);
  });
});

describe('sssp', () => {
  it('relaxes with atomics, reads weights, and re-relaxes: more edge scans than one per edge', () => {
    const s = sssp.create(P(MiB, { seed: 5 }));
    const rs = record(s);
    let atomics = 0;
    let weights = 0;
    for (const ph of rs.phases) for (let i = 0; i < ph.addr.length; i++) {
      const b = where(s, ph.addr[i]!).buf;
      if (b === 'cost') { expect(ph.type[i]).toBe(ACCESS_ATOMIC); atomics++; }
      if (b === 'weights') weights++;
    }
    expect(weights).toBeGreaterThan(0);
    const V = Math.floor(MiB / (3 + 8 + 4 + 6 * 8));
    expect(atomics).toBeGreaterThan(V); // some vertices improved more than once
    let scans = 0;
    for (const ph of rs.phases) for (let i = 0; i < ph.addr.length; i++) if (where(s, ph.addr[i]!).buf === 'visited') scans++;
    expect(scans).toBeGreaterThan(1.1 * 6 * V); // each vertex's edges once, and re-relaxations on top
  });
});

describe('ra', () => {
  it('updates `iterations` random pages per page, hitting nearly all pages and never streaming', () => {
    const w = ra.create(P(4 * MiB, { iterations: 4 }));
    const r = record(w);
    const ph = r.phases[0]!;
    const pages = 4 * MiB / 4096;
    expect(ph.addr.length).toBe(4 * pages);
    expect(ph.type.every((t) => t === W)).toBe(true);
    expect(new Set(ph.addr).size / pages).toBeGreaterThan(0.95); // 1 - e^-4 = 0.98
    let adjacent = 0;
    for (let i = 1; i < ph.addr.length; i++) if (Math.abs(ph.addr[i]! - ph.addr[i - 1]!) === 4096) adjacent++;
    expect(adjacent / ph.addr.length).toBeLessThan(0.01);
  });
});

describe('sgemm', () => {
  it('reads A and B, writes each C page once per tile column that covers it; A is read once per block column', () => {
    const w = sgemm.create({ ...P(12 * MiB), tile: 128 } as WorkloadParams);
    const r = record(w);
    const n = Math.floor(Math.sqrt((12 * MiB) / 12)); // 1024: a row is one page
    const nt = Math.ceil(n / 128);
    const t = tally(w, r.phases[0]!);
    expect(t.get(`A:${W}`)).toBeUndefined();
    expect(t.get(`B:${W}`)).toBeUndefined();
    // each block writes its tile's rows: every row of C once per block column
    expect(t.get(`C:${W}`)).toBe(n * nt);
    // A's rows: each block reads its tile rows for every k: n rows x nt k-steps x nt block columns
    expect(t.get(`A:${R}`)).toBe(n * nt * nt);
  });
});

describe('pingpong', () => {
  it('alternates a GPU kernel over every page with a CPU phase writing every page', () => {
    const w = pingpong.create(P(MiB, { iterations: 2 }));
    const r = record(w);
    expect(r.phases.map((p) => p.kind)).toEqual(['gpu', 'cpu', 'gpu', 'cpu']);
    const pages = MiB / 4096;
    expect(new Set(r.phases[1]!.addr).size).toBe(pages);
    expect(r.phases[1]!.type.every((t) => t === W)).toBe(true);
    expect(new Set(r.phases[0]!.addr).size).toBe(pages);
  });
});

describe('chunks', () => {
  it('a chunk smaller than an item is refused', () => {
    const k = [...stream.create(P(MiB)).phases(BASE)][0]!;
    if (k.kind !== 'gpu') throw new Error('want gpu');
    expect(() => k.kernel.warps[0]!.next(new AccessChunk(2))).toThrow(RangeError);
  });
});
