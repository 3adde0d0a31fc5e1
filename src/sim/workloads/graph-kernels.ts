// The two kernels of Rodinia's bfs (and the relaxation kernel sssp uses in their place), at
// page granularity. A warp runs 32 consecutive vertices (threads) at once; every warp reads its
// 32 mask bytes; for each vertex in the frontier it reads the vertex's node entry and edge
// list, and for each edge the neighbour's visited flag, writing its cost and update flag when
// the neighbour is new. Pages repeated back to back within a warp are one access.

import { ACCESS_READ, ACCESS_WRITE, type AccessChunk, type AccessType, type GpuKernel, type WarpProgram } from '../../drivers/gpu/access.js';
import type { ImplicitGraph, VertexSet } from './graph.js';
import { gridKernel, PAGE } from './workload.js';

export interface GraphBuffers {
  /** byte per vertex */
  mask: number;
  updating: number;
  visited: number;
  /** 8 bytes per vertex ({first edge, degree}) */
  nodes: number;
  /** 4 bytes per edge */
  edges: number;
  /** 4 bytes per edge, or -1 (bfs has no weights) */
  weights: number;
  /** 4 bytes per vertex: bfs's cost, sssp's distance */
  cost: number;
}

export interface ExpandRule {
  /** How the neighbour's cost is written: a plain write (bfs) or an atomic min (sssp). */
  costAccess: AccessType;
  /** Whether an edge to n makes n enter the next frontier (called once per edge, in order). */
  improves(n: number, v: number, k: number): boolean;
}

const pageOf = (base: number, byteOff: number) => base + Math.floor(byteOff / PAGE) * PAGE;

class ExpandWarp implements WarpProgram {
  private g: number;
  private lane = 0;
  private k = -1; // -1: the vertex's header (node, edges) is still to be read
  private maskRead = false;
  private lastNode = -1;
  private lastEdge = -1;
  private lastWeight = -1;

  constructor(
    w: number,
    private readonly warps: number,
    private readonly groups: number,
    private readonly graph: ImplicitGraph,
    private readonly frontier: VertexSet,
    private readonly nextSet: VertexSet,
    private readonly b: GraphBuffers,
    private readonly rule: ExpandRule,
    private readonly cns: number,
  ) {
    this.g = w;
  }

  next(ch: AccessChunk): number {
    if (ch.capacity < 8) throw new RangeError('chunk too small');
    ch.length = 0;
    const { graph, frontier, b, cns } = this;
    const V = graph.vertices;
    const d = graph.degree;
    while (this.g < this.groups) {
      if (ch.capacity - ch.length < 4) return ch.length;
      const v0 = this.g * 32;
      if (!this.maskRead) {
        ch.push(pageOf(b.mask, v0), ACCESS_READ, cns);
        this.maskRead = true;
        if (frontier.words[this.g] === 0) { this.advanceGroup(); continue; }
      }
      if (this.k < 0) {
        // the next lane in the frontier (lanes not in it issue nothing): skip to its bit
        const rest = this.lane >= 32 ? 0 : frontier.words[this.g]! >>> this.lane;
        const lane = rest === 0 ? 32 : this.lane + 31 - Math.clz32(rest & -rest);
        if (lane !== this.lane) {
          this.lane = lane;
          // the chunk ends where it would have ended lane by lane
          if (ch.capacity - ch.length < 4) return ch.length;
        }
      }
      const v = v0 + this.lane;
      if (this.lane >= 32 || v >= V) { this.advanceGroup(); continue; }
      if (this.k < 0) {
        const np = pageOf(b.nodes, v * 8);
        if (np !== this.lastNode) { ch.push(np, ACCESS_READ, cns); this.lastNode = np; }
        const ep = pageOf(b.edges, v * d * 4);
        if (ep !== this.lastEdge) { ch.push(ep, ACCESS_READ, cns); this.lastEdge = ep; }
        if (b.weights >= 0) {
          const wp = pageOf(b.weights, v * d * 4);
          if (wp !== this.lastWeight) { ch.push(wp, ACCESS_READ, cns); this.lastWeight = wp; }
        }
        this.k = 0;
        continue;
      }
      // one edge: an edge list that crosses a page boundary reads the next edge page
      const e = v * d + this.k;
      const eoff = e * 4;
      // e mod 1024 (edges per page) by its low bits: past 2^31 bytes, % on the offset is a call to fmod
      if ((e & (PAGE / 4 - 1)) === 0 && this.k > 0) {
        ch.push(pageOf(b.edges, eoff), ACCESS_READ, cns);
        this.lastEdge = pageOf(b.edges, eoff);
        if (b.weights >= 0) { ch.push(pageOf(b.weights, eoff), ACCESS_READ, cns); this.lastWeight = pageOf(b.weights, eoff); }
        if (ch.capacity - ch.length < 3) return ch.length;
      }
      const n = graph.neighbor(v, this.k);
      ch.push(pageOf(b.visited, n), ACCESS_READ, cns);
      if (this.rule.improves(n, v, this.k)) {
        ch.push(pageOf(b.cost, n * 4), this.rule.costAccess, cns);
        ch.push(pageOf(b.updating, n), ACCESS_WRITE, cns);
        this.nextSet.add(n);
      }
      if (++this.k === d) { this.k = -1; this.lane++; }
    }
    return ch.length;
  }

  private advanceGroup(): void {
    this.g += this.warps;
    this.lane = 0;
    this.k = -1;
    this.maskRead = false;
  }
}

/** Rodinia bfs Kernel (and sssp's relaxation): expand the frontier into `next`. */
export function expandKernel(
  name: string, warps: number, graph: ImplicitGraph, frontier: VertexSet, next: VertexSet, b: GraphBuffers, rule: ExpandRule, cns: number,
): GpuKernel {
  const groups = Math.ceil(graph.vertices / 32);
  const n = Math.max(1, Math.min(warps, groups));
  const ws: WarpProgram[] = [];
  for (let w = 0; w < n; w++) ws.push(new ExpandWarp(w, n, groups, graph, frontier, next, b, rule, cns));
  return { name, warps: ws };
}

/** Rodinia bfs Kernel2: every warp reads its 32 update flags; where any is set, it sets mask and visited. */
export function updateKernel(name: string, warps: number, vertices: number, next: VertexSet, b: GraphBuffers, cns: number): GpuKernel {
  const groups = Math.ceil(vertices / 32);
  return gridKernel(name, warps, groups, 3, (g, ch) => {
    const v0 = g * 32;
    ch.push(pageOf(b.updating, v0), ACCESS_READ, cns);
    if (next.words[g] !== 0) {
      ch.push(pageOf(b.mask, v0), ACCESS_WRITE, cns);
      ch.push(pageOf(b.visited, v0), ACCESS_WRITE, cns);
    }
  });
}
