// Single-source shortest paths on a weighted CSR graph, Bellman-Ford style as GPU codes
// (Pannotia's sssp) run it: each round relaxes the edges of the vertices whose distance
// changed, with an atomic min on the neighbour's distance, until nothing changes. Distances are
// not stored: a relaxation improves an unreached vertex always, and a reached one with a
// seeded chance that shrinks every round (1/4, then x3/4 a round) — the re-relaxations that make sssp
// revisit vertices bfs visits once, with a bounded number of rounds.

import { ACCESS_ATOMIC } from '../../drivers/gpu/access.js';
import { ImplicitGraph, VertexSet } from './graph.js';
import { expandKernel, updateKernel } from './graph-kernels.js';
import { DEFAULT_DEGREE, graphBuffers, graphLayout, graphVertices, type GraphParams } from './bfs.js';
import { checkParams, unit, type Phase, type Workload, type WorkloadSpec } from './workload.js';

export const sssp: WorkloadSpec = {
  name: 'sssp',
  description: 'SSSP, Bellman-Ford style: rounds of atomic-min relaxation from the changed vertices on a weighted CSR graph',
  regular: false,
  defaultComputeNs: 25,
  defaultIterations: 1,
  create(params: GraphParams): Workload {
    checkParams(params);
    const degree = params.degree ?? DEFAULT_DEGREE;
    const kind = params.graph ?? 'random';
    const vertices = graphVertices(params.footprintBytes, degree, true);
    const graph = new ImplicitGraph(vertices, degree, kind, params.seed);
    const { buffers, mappingBytes } = graphLayout(vertices, degree, true);
    const cns = params.computeNs;
    const seed = params.seed;
    return {
      name: 'sssp', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const b = graphBuffers(base, buffers);
        const frontier = new VertexSet(vertices);
        const next = new VertexSet(vertices);
        const reached = new VertexSet(vertices);
        frontier.add(0);
        reached.add(0);
        let round = 0;
        const rule = {
          costAccess: ACCESS_ATOMIC,
          improves(n: number, v: number, k: number): boolean {
            if (!reached.has(n)) {
              reached.add(n);
              return true;
            }
            return unit(seed + round, v, k) < 0.25 * 0.75 ** round;
          },
        } as const;
        for (; ; round++) {
          next.clear();
          yield { kind: 'gpu', kernel: expandKernel(`sssp_relax#${round}`, params.warps, graph, frontier, next, b, rule, cns) };
          yield { kind: 'gpu', kernel: updateKernel(`sssp_update#${round}`, params.warps, vertices, next, b, cns) };
          if (next.count() === 0) return;
          frontier.words.set(next.words);
        }
      },
    };
  },
};
