// Sweeps: a grid of runs (the product of every option's list of values, or the points a grid
// file lists), numbered in a fixed order so that shards of it (--shard K/N takes the points
// i with i mod N = K-1) partition it and their merge is what one machine produces.

import { z } from 'zod';
import { readConfigFile, zodToConfigError } from './cost-model.js';
import type { RunOptions, RunRecord } from './simulate.js';

/** The options a grid varies, in the order the product is taken (the last varies fastest). */
export const GRID_KEYS = ['workload', 'trace', 'driver', 'preset', 'prefetch', 'evict', 'graph', 'footprintMiB', 'oversub', 'computeNs', 'iterations', 'seed', 'xnack', 'largePages'] as const;
export type GridKey = typeof GRID_KEYS[number];
export type Grid = Partial<Record<GridKey, Array<string | number | boolean>>>;
export type GridPoint = Partial<RunOptions>;

/** Every point of a grid, in order. */
export function expandGrid(grid: Grid): GridPoint[] {
  let points: GridPoint[] = [{}];
  for (const k of GRID_KEYS) {
    const vals = grid[k];
    if (!vals || vals.length === 0) continue;
    const next: GridPoint[] = [];
    for (const p of points) for (const v of vals) next.push({ ...p, [k]: v });
    points = next;
  }
  return points;
}

/** `K/N`: shard K (1-based) of N. */
export function parseShard(s: string): { k: number; n: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(k) || k < 1 || k > n) throw new RangeError(`--shard wants K/N with 1 <= K <= N, not '${s}'`);
  return { k, n };
}

/** The indices of the grid that shard k of n runs. */
export function shardIndices(size: number, k: number, n: number): number[] {
  const out: number[] = [];
  for (let i = k - 1; i < size; i += n) out.push(i);
  return out;
}

const listOf = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

/** A grid file: each key a value or a list of values (the product is taken), or `points:` a list of runs. */
export function gridFileSchema() {
  const pos = z.number().finite().positive();
  const axes = {
    workload: listOf(z.string()), trace: listOf(z.string()), driver: listOf(z.string()), preset: listOf(z.string()), prefetch: listOf(z.string()),
    evict: listOf(z.string()), graph: listOf(z.enum(['random', 'powerlaw'])), footprintMiB: listOf(pos), oversub: listOf(pos),
    computeNs: listOf(z.number().finite().nonnegative()), iterations: listOf(z.number().int().positive()), seed: listOf(z.number().int().min(0)),
    xnack: listOf(z.boolean()), largePages: listOf(z.boolean()),
  };
  return z.object({ ...Object.fromEntries(Object.entries(axes).map(([k, v]) => [k, v.optional()])), config: z.string().optional() }).strict();
}

export function loadGridFile(path: string): { grid: Grid; config?: string } {
  const raw = readConfigFile(path);
  const r = gridFileSchema().safeParse(raw ?? {});
  if (!r.success) throw zodToConfigError(r.error, [], path);
  const { config, ...grid } = r.data as Grid & { config?: string };
  return config ? { grid, config } : { grid };
}

/** A sweep's output line: the run's record and its place in the grid. */
export interface SweepLine extends RunRecord {
  index: number;
  gridSize: number;
}

/** Join shard outputs into the unsharded output: every index once, in order. */
export function mergeShards(lines: SweepLine[]): SweepLine[] {
  if (lines.length === 0) return [];
  const size = lines[0]!.gridSize;
  const byIndex = new Map<number, SweepLine>();
  for (const l of lines) {
    if (l.gridSize !== size) throw new RangeError(`shards of different grids: ${size} and ${l.gridSize} points`);
    const prev = byIndex.get(l.index);
    if (prev && JSON.stringify({ ...prev, wallMs: 0 }) !== JSON.stringify({ ...l, wallMs: 0 })) throw new RangeError(`grid point ${l.index} appears twice with different results`);
    byIndex.set(l.index, l);
  }
  const missing: number[] = [];
  for (let i = 0; i < size; i++) if (!byIndex.has(i)) missing.push(i);
  if (missing.length) throw new RangeError(`${missing.length} of ${size} grid points missing (first: ${missing.slice(0, 5).join(', ')}): a shard is absent`);
  return [...byIndex.values()].sort((a, b) => a.index - b.index);
}
