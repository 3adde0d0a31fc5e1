// The graphs bfs and sssp walk, in Rodinia's CSR layout (a node array of {first edge, degree},
// an edge array, and per-vertex masks), without storing them: a vertex's neighbours come from
// a seeded hash, so a graph of a billion edges costs nothing but the frontier bitsets.
//
// - `random`: every neighbour uniform over the vertices (Erdos-Renyi-like).
// - `powerlaw`: neighbours drawn with a skew, rank = V * u^3, so in-degrees follow a power law
//   (density ~ rank^-2/3) — a few hot vertices are everyone's neighbours. Ranks are scattered
//   over vertex ids by multiplying by a number prime to V, so hot vertices are not adjacent.
// Every vertex has the same out-degree (Rodinia's graphgen draws it near a fixed mean).

import { hash32 } from './workload.js';

export type GraphKind = 'random' | 'powerlaw';

const SKEW = 3;

export class ImplicitGraph {
  readonly edges: number;
  private readonly seedHash: number;
  private readonly scatter: number;

  constructor(readonly vertices: number, readonly degree: number, readonly kind: GraphKind, seed: number) {
    if (!(Number.isSafeInteger(vertices) && vertices >= 2)) throw new RangeError('a graph needs at least 2 vertices');
    if (!(Number.isSafeInteger(degree) && degree >= 1 && degree <= 64)) throw new RangeError('degree must be an integer in 1..64');
    this.edges = vertices * degree;
    this.seedHash = hash32(seed ^ 0x5bd1e995);
    let m = Math.floor(vertices * 0.6180339887) | 1;
    while (gcd(m, vertices) !== 1) m += 2;
    this.scatter = m;
  }

  /** The k-th neighbour of v. */
  neighbor(v: number, k: number): number {
    const h = hash32(hash32(this.seedHash ^ v) + Math.imul(k + 1, 0x9e3779b9));
    const u = h / 4294967296;
    if (this.kind === 'random') return Math.floor(u * this.vertices);
    const rank = Math.floor(this.vertices * u ** SKEW);
    // (rank * scatter) mod V without losing precision past 2^53
    return mulMod(rank, this.scatter, this.vertices);
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function mulMod(a: number, b: number, m: number): number {
  if (a * b < 2 ** 53) return (a * b) % m;
  // split b into 2^20 pieces
  const hi = Math.floor(b / 1048576);
  const lo = b % 1048576;
  return (((a * hi) % m) * 1048576 % m + (a * lo) % m) % m;
}

/** A bitset over vertices. */
export class VertexSet {
  readonly words: Uint32Array;
  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }
  has(v: number): boolean {
    return (this.words[v >>> 5]! & (1 << (v & 31))) !== 0;
  }
  add(v: number): void {
    this.words[v >>> 5]! |= 1 << (v & 31);
  }
  clear(): void {
    this.words.fill(0);
  }
  /** Any member in [from, to)? Scans whole words, so ranges should be 32-aligned. */
  anyIn(from: number, to: number): boolean {
    const w0 = from >>> 5;
    const w1 = Math.ceil(to / 32);
    for (let w = w0; w < w1; w++) if (this.words[w]) return true;
    return false;
  }
  /** this |= other */
  or(other: VertexSet): void {
    const a = this.words;
    const b = other.words;
    for (let i = 0; i < a.length; i++) a[i]! |= b[i]!;
  }
  count(): number {
    let n = 0;
    for (let x of this.words) {
      x -= (x >>> 1) & 0x55555555;
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      n += (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
    }
    return n;
  }
}
