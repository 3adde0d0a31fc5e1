// Rodinia bfs on a CSR graph (random or power-law, src/sim/workloads/graph.ts): from vertex 0,
// one pair of kernels per level (expand the frontier; turn update flags into the next
// frontier) until no vertex is added. The next level's kernels are made only after the last
// level's have run, from the frontier they built.

import { ACCESS_WRITE } from '../../drivers/gpu/access.js';
import { ImplicitGraph, VertexSet, type GraphKind } from './graph.js';
import { expandKernel, updateKernel, type GraphBuffers } from './graph-kernels.js';
import { checkParams, layout, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

export interface GraphParams extends WorkloadParams {
  graph?: GraphKind;
  degree?: number;
}

export const DEFAULT_DEGREE = 6;

/** Vertices that fit a footprint: per vertex 3 flag bytes, an 8-byte node, a 4-byte cost, and 4 (+4 weighted) bytes per edge. */
export function graphVertices(footprint: number, degree: number, weighted: boolean): number {
  return Math.max(1024, Math.floor(footprint / (3 + 8 + 4 + degree * (weighted ? 8 : 4))));
}

export function graphLayout(vertices: number, degree: number, weighted: boolean) {
  const parts: Array<[string, number]> = [
    ['nodes', 8 * vertices], ['edges', 4 * vertices * degree],
    ['mask', vertices], ['updating', vertices], ['visited', vertices], ['cost', 4 * vertices],
  ];
  if (weighted) parts.splice(2, 0, ['weights', 4 * vertices * degree]);
  return layout(parts);
}

export function graphBuffers(base: number, buffers: ReturnType<typeof layout>['buffers']): GraphBuffers {
  const at = (n: string) => {
    const b = buffers.find((x) => x.name === n);
    return b ? base + b.offset : -1;
  };
  return { nodes: at('nodes'), edges: at('edges'), weights: at('weights'), mask: at('mask'), updating: at('updating'), visited: at('visited'), cost: at('cost') };
}

export const bfs: WorkloadSpec = {
  name: 'bfs',
  description: 'Rodinia bfs: level-synchronous breadth-first search on a CSR graph (random or power-law)',
  regular: false,
  defaultComputeNs: 20,
  defaultIterations: 1,
  create(params: GraphParams): Workload {
    checkParams(params);
    const degree = params.degree ?? DEFAULT_DEGREE;
    const kind = params.graph ?? 'random';
    const vertices = graphVertices(params.footprintBytes, degree, false);
    const graph = new ImplicitGraph(vertices, degree, kind, params.seed);
    const { buffers, mappingBytes } = graphLayout(vertices, degree, false);
    const cns = params.computeNs;
    return {
      name: 'bfs', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const b = graphBuffers(base, buffers);
        const frontier = new VertexSet(vertices);
        const next = new VertexSet(vertices);
        const reached = new VertexSet(vertices);
        frontier.add(0);
        reached.add(0);
        const rule = {
          costAccess: ACCESS_WRITE,
          improves(n: number): boolean {
            if (reached.has(n)) return false;
            reached.add(n);
            return true;
          },
        } as const;
        for (let level = 0; ; level++) {
          next.clear();
          yield { kind: 'gpu', kernel: expandKernel(`bfs_kernel#${level}`, params.warps, graph, frontier, next, b, rule, cns) };
          yield { kind: 'gpu', kernel: updateKernel(`bfs_kernel2#${level}`, params.warps, vertices, next, b, cns) };
          if (next.count() === 0) return;
          frontier.words.set(next.words);
        }
      },
    };
  },
};
