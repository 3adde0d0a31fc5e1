// One row of the `npm run bench` table, the format every bench file produces (model against
// kernel, HMM operations, the race explorer, the demo, the simulator), and the table itself.
//
// Figures are in the row's unit: a rate (pages/s, invalidations/s, schedules/s: higher is
// better) or a cost (ms, x: lower is better). Each is the median of its samples in CPU time,
// with the spread (min and max) and the median in wall time beside it.

import { textTable } from '../src/cli/table.js';

/** One timed window: the work it did (pages, calls, runs) and its CPU and wall seconds. */
export interface Sample {
  work: number;
  cpu: number;
  wall: number;
}

/** The median of a set of samples, in the row's unit, with the spread and the wall-time median. */
export interface Figure {
  /** Median, CPU time. */
  median: number;
  min: number;
  max: number;
  /** Median, wall time. */
  wall: number;
  samples: number;
}

export interface Row {
  name: string;
  /** 'pages/s', 'invalidations/s', 'schedules/s' (higher is better), 'ms', 'x' (lower is better). */
  unit: string;
  /** cold: the first run in a fresh process (null when not measured); steady: after warm-up runs in one process. */
  hmmsim: { cold: Figure | null; steady: Figure };
  /** The real kernel on this machine doing the same operation (steady: it has no JIT to warm). */
  kernel?: { steady: Figure };
  /** hmmsim / kernel in CPU time (for a cost unit: kernel / hmmsim), so that >= 1 is as fast as the kernel. */
  ratio?: { cold: number | null; steady: number };
  /** The goal, in words ('ratio >= 1', '>= 1 M pages/s', '<= 1.5'). */
  target?: string;
  /** Whether the target is met on every figure it applies to (null: no target). */
  met: boolean | null;
  /** What the row measures or what limits it, in a line. */
  note?: string;
  /** The machine's 1-minute load average when the row's samples ended (the machine is shared; read each figure beside it). */
  load?: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

const LOWER_IS_BETTER = new Set(['ms', 'x', 's']);

export function lowerIsBetter(unit: string): boolean {
  return LOWER_IS_BETTER.has(unit);
}

/** The figure of a row's samples in its unit: work per second, or for a cost unit milliseconds (or the raw value) per unit of work. */
export function figureOf(samples: readonly Sample[], unit: string): Figure {
  const value = (s: Sample, seconds: number): number => (unit === 'ms' ? (seconds * 1000) / s.work : unit === 'x' || unit === 's' ? seconds / s.work : s.work / seconds);
  const cpu = samples.map((s) => value(s, s.cpu));
  return { median: median(cpu), min: Math.min(...cpu), max: Math.max(...cpu), wall: median(samples.map((s) => value(s, s.wall))), samples: samples.length };
}

/** A figure from values already in the row's unit (a ratio computed per run). */
export function figureOfValues(cpu: readonly number[], wall: readonly number[]): Figure {
  return { median: median(cpu), min: Math.min(...cpu), max: Math.max(...cpu), wall: median(wall), samples: cpu.length };
}

/** hmmsim against kernel, oriented so that >= 1 means hmmsim is as fast. */
export function ratioOf(unit: string, hmmsim: number, kernel: number): number {
  return lowerIsBetter(unit) ? kernel / hmmsim : hmmsim / kernel;
}

function fmtNum(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)} K`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** A figure as text: median and its spread, e.g. "2.31 M (2.1-2.4)". */
export function fmtFigure(f: Figure | null | undefined): string {
  if (!f) return '-';
  if (f.samples === 1) return fmtNum(f.median);
  return `${fmtNum(f.median)} (${fmtNum(f.min)}-${fmtNum(f.max)})`;
}

function fmtRatio(r: number | null | undefined): string {
  return r === null || r === undefined ? '-' : r.toFixed(2);
}

/** The table `npm run bench` prints: one line per row, CPU-time medians with their spread. */
export function formatRows(rows: readonly Row[]): string {
  const head = ['operation', 'unit', 'hmmsim cold', 'hmmsim steady', 'kernel', 'ratio cold', 'ratio steady', 'target', 'met', 'load'];
  const body = rows.map((r) => [
    r.name,
    r.unit,
    fmtFigure(r.hmmsim.cold),
    fmtFigure(r.hmmsim.steady),
    fmtFigure(r.kernel?.steady),
    fmtRatio(r.ratio?.cold),
    fmtRatio(r.ratio?.steady),
    r.target ?? '-',
    r.met === null ? '-' : r.met ? 'met' : 'MISSED',
    r.load === undefined ? '-' : r.load.toFixed(1),
  ]);
  return textTable(head, body, { align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left', 'left', 'right'] });
}

/** The same rows in wall time (medians), for comparison with the CPU-time table. */
export function formatWall(rows: readonly Row[]): string {
  const head = ['operation', 'unit', 'hmmsim cold', 'hmmsim steady', 'kernel'];
  const body = rows.map((r) => [r.name, r.unit, r.hmmsim.cold ? fmtNum(r.hmmsim.cold.wall) : '-', fmtNum(r.hmmsim.steady.wall), r.kernel ? fmtNum(r.kernel.steady.wall) : '-']);
  return textTable(head, body, { align: ['left', 'left', 'right', 'right', 'right'] });
}
