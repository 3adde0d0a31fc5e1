// `hmmsim sweep`: a grid of runs on all cores (one worker thread per core), with progress;
// each output line is one run's --json record with its grid index (JSONL, or CSV with --csv).
// `--shard K/N` runs every N-th point from the K-th, so a grid spreads over machines (a Slurm
// array job, a Kubernetes Indexed Job: docs/simulator.md); `hmmsim merge` joins the shards.
// `hmmsim merge`: shard outputs -> what one machine would have written.

import { createWriteStream, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type Command } from 'commander';
import cliProgress from 'cli-progress';
import { ConfigError } from '../sim/cost-model.js';
import { configRunOptions, loadConfigFile } from '../sim/run-config.js';
import type { RunOptions, RunRecord } from '../sim/simulate.js';
import { expandGrid, GRID_KEYS, loadGridFile, mergeShards, parseShard, shardIndices, type Grid, type SweepLine } from '../sim/sweep.js';
import { addRunOptions, cliRunOptions, csvLine, flattenRecord, PROGRESS_INTERVAL_MS, positiveInteger } from './run.js';

type Line = SweepLine | { index: number; gridSize: number; failed: string; options: Partial<RunOptions> };

/** The grid a sweep's options describe: a grid file's axes, with the command line's lists on top. */
export function sweepGrid(o: Record<string, unknown>): { grid: Grid; base: Partial<RunOptions> } {
  let grid: Grid = {};
  let configPath = typeof o.config === 'string' ? o.config : undefined;
  if (typeof o.grid === 'string') {
    const g = loadGridFile(o.grid);
    grid = g.grid;
    configPath ??= g.config;
  }
  const cli = cliRunOptions(o) as Record<string, unknown>;
  for (const k of GRID_KEYS) if (cli[k] !== undefined) grid[k] = cli[k] as Array<string | number | boolean>;
  const base = configPath ? configRunOptions(configPath, loadConfigFile(configPath)) : {};
  return { grid, base };
}

function startWorker(): Worker {
  // Under tsx the sources are .ts, and a worker does not inherit tsx's loader: give it one.
  // Built, the worker is the .js next to this file.
  const ts = import.meta.url.endsWith('.ts');
  if (!ts) return new Worker(new URL('./sweep-worker.js', import.meta.url));
  const api = import.meta.resolve('tsx/esm/api');
  const main = new URL('./sweep-worker.ts', import.meta.url).href;
  const boot = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(main)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`));
}

/** Run the points, `jobs` at a time, calling `emit` in index order. */
export async function runPoints(
  points: Array<{ index: number; options: Partial<RunOptions> }>, gridSize: number, jobs: number,
  emit: (l: Line) => void, onDone: (n: number) => void,
): Promise<void> {
  const pending = new Map<number, Line>();
  const order = points.map((p) => p.index);
  let next = 0;
  let done = 0;
  const deliver = (l: Line) => {
    pending.set(l.index, l);
    while (next < order.length && pending.has(order[next]!)) {
      emit(pending.get(order[next]!)!);
      pending.delete(order[next]!);
      next++;
    }
    onDone(++done);
  };
  const toLine = (p: { index: number; options: Partial<RunOptions> }, m: { record?: RunRecord; error?: string }): Line =>
    m.error !== undefined ? { index: p.index, gridSize, failed: m.error, options: p.options } : { index: p.index, gridSize, ...m.record! };
  if (jobs <= 1 || points.length <= 1) {
    const { runSimulation } = await import('../sim/simulate.js');
    for (const p of points) {
      let m: { record?: RunRecord; error?: string };
      try {
        m = { record: runSimulation(p.options).record };
      } catch (e) {
        m = { error: (e as Error).message };
      }
      deliver(toLine(p, m));
    }
    return;
  }
  const queue = [...points];
  await Promise.all(Array.from({ length: Math.min(jobs, points.length) }, () => new Promise<void>((resolve, reject) => {
    const w = startWorker();
    let cur: { index: number; options: Partial<RunOptions> } | undefined;
    const feed = () => {
      cur = queue.shift();
      w.postMessage(cur ?? null);
      if (!cur) resolve();
    };
    w.on('message', (m: { index: number; record?: RunRecord; error?: string }) => {
      deliver(toLine(cur!, m));
      feed();
    });
    w.on('error', reject);
    feed();
  })));
}

export function registerSweep(program: Command): void {
  const cmd = program
    .command('sweep')
    .description('run a grid of simulations on all cores: any run option takes a comma list, or --grid <file>; one JSON record per line');
  addRunOptions(cmd, true)
    .option('--grid <file>', 'a JSON or YAML grid: option names with a value or a list of values (docs/simulator.md)')
    .option('--out <file>', 'write the records there (default: stdout)')
    .option('--csv', 'CSV instead of JSON lines')
    .option('--shard <K/N>', 'run only shard K of N (every N-th grid point from the K-th)')
    .option('--jobs <n>', 'worker threads (default: one per core)', positiveInteger)
    .option('--report <file>', 'write an HTML report: slowdown against oversubscription per workload and policy')
    .option('--no-progress', 'no progress output')
    .action(async (o: Record<string, unknown>) => {
      let grid: Grid;
      let base: Partial<RunOptions>;
      let shard = { k: 1, n: 1 };
      try {
        ({ grid, base } = sweepGrid(o));
        if (typeof o.shard === 'string') shard = parseShard(o.shard);
      } catch (e) {
        if (e instanceof ConfigError || e instanceof RangeError) program.error(`hmmsim sweep: ${e.message}`, { exitCode: 2 });
        throw e;
      }
      const all = expandGrid(grid);
      const idx = shardIndices(all.length, shard.k, shard.n);
      const points = idx.map((i) => ({ index: i, options: { ...base, ...all[i]! } }));
      const jobs = typeof o.jobs === 'number' ? o.jobs : cpus().length;
      const out: WriteStream | NodeJS.WriteStream = typeof o.out === 'string' ? createWriteStream(o.out) : process.stdout;
      let header: string[] | null = null;
      const lines: Line[] = [];
      let failures = 0;
      const emit = (l: Line) => {
        lines.push(l);
        if ('failed' in l) {
          failures++;
          process.stderr.write(`hmmsim sweep: point ${l.index} failed: ${l.failed}\n`);
        }
        if (o.csv) {
          const flat = flattenRecord(l as Record<string, unknown>);
          if (!header) {
            header = Object.keys(flat);
            out.write(csvLine(header) + '\n');
          }
          out.write(csvLine(header.map((h) => flat[h] ?? null)) + '\n');
        } else out.write(JSON.stringify(l) + '\n');
      };
      const showProgress = o.progress !== false;
      const bar = showProgress && process.stderr.isTTY
        ? new cliProgress.SingleBar({ format: 'hmmsim sweep {bar} {value}/{total} runs', stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic)
        : null;
      bar?.start(points.length, 0);
      let last = Date.now();
      const every = Number(process.env.HMMSIM_PROGRESS_MS) || PROGRESS_INTERVAL_MS;
      await runPoints(points, all.length, jobs, emit, (n) => {
        bar?.update(n);
        if (!bar && showProgress && Date.now() - last >= every) {
          last = Date.now();
          process.stderr.write(`hmmsim sweep: ${n} of ${points.length} runs done\n`);
        }
      });
      bar?.stop();
      if (out !== process.stdout) await new Promise<void>((r) => (out as WriteStream).end(r));
      if (typeof o.report === 'string') writeFileSync(o.report, (await import('../report/report.js')).renderSweepReport(lines.filter((l): l is SweepLine => !('failed' in l))));
      process.exitCode = failures ? 1 : 0;
    });

  program
    .command('merge')
    .description('join the outputs of sweep shards (JSON lines) into what one unsharded sweep writes')
    .argument('<files...>', 'shard outputs')
    .option('--out <file>', 'write there (default: stdout)')
    .option('--csv', 'CSV instead of JSON lines')
    .action((files: string[], o: { out?: string; csv?: boolean }) => {
      let merged: SweepLine[];
      try {
        const lines = files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l, i) => {
          try {
            return JSON.parse(l) as SweepLine;
          } catch {
            throw new RangeError(`${f}:${i + 1}: not a JSON line (merge reads sweeps' JSON-lines output)`);
          }
        }));
        merged = mergeShards(lines);
      } catch (e) {
        if (e instanceof RangeError || (e as NodeJS.ErrnoException).code === 'ENOENT') program.error(`hmmsim merge: ${(e as Error).message}`, { exitCode: 2 });
        throw e;
      }
      let text: string;
      if (o.csv) {
        const flat = merged.map((l) => flattenRecord(l as unknown as Record<string, unknown>));
        const header = flat.length ? Object.keys(flat[0]!) : [];
        text = [csvLine(header), ...flat.map((f) => csvLine(header.map((h) => f[h] ?? null)))].join('\n') + '\n';
      } else text = merged.map((l) => JSON.stringify(l)).join('\n') + (merged.length ? '\n' : '');
      if (o.out) writeFileSync(o.out, text);
      else process.stdout.write(text);
    });
}
