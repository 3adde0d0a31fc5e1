// `hmmsim run`: one GPU simulation — a workload (or a trace) under a driver on a preset GPU at
// an oversubscription — with a summary table, or its record as JSON or CSV, and an HTML report.

import { writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { ConfigError } from '../sim/cost-model.js';
import { configRunOptions, loadConfigFile } from '../sim/run-config.js';
// The simulator and the report (echarts) load only when a run starts: every other command starts quicker.
import type { RunHooks, RunOptions, RunRecord } from '../sim/simulate.js';
import { DEFAULT_PRESET, presetNames } from '../sim/presets/index.js';
import { workloadNames } from '../sim/workloads/index.js';
import { parseSeed } from './options.js';
import { textTable } from './table.js';

export function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number is required');
  return n;
}

export function nonNegativeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('a number >= 0 is required');
  return n;
}

/** on / off (also true / false, 1 / 0) as a boolean. */
export function onOff(v: string): boolean {
  const s = v.toLowerCase();
  if (s === 'on' || s === 'true' || s === '1') return true;
  if (s === 'off' || s === 'false' || s === '0') return false;
  throw new InvalidArgumentError('on or off is required');
}

export function positiveInteger(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('a positive integer is required');
  return n;
}

/** The run options every simulation command takes (run, and sweep with comma lists). */
export function addRunOptions(cmd: Command, list: boolean): Command {
  // under sweep every option takes a comma list
  const p = <T>(f: (v: string) => T) => (list ? (v: string) => v.split(',').map((x) => f(x.trim())) : f) as (v: string, prev: unknown) => unknown;
  const str = (v: string) => v;
  return cmd
    .option('--workload <name>', `workload: ${workloadNames().join(', ')} (default hotspot)`, p(str))
    .option('--trace <file>', 'replay a trace (hmmsim text, NVBit mem_trace or valgrind lackey; docs/traces.md) instead of a workload', p(str))
    .option('--driver <name>', 'GPU driver: uvm, kfd, nouveau (default uvm)', p(str))
    .option('--preset <name>', `GPU and link: ${presetNames().join(', ')} (default ${DEFAULT_PRESET})`, p(str))
    .option('--oversub <x>', 'oversubscription: VRAM = footprint / x (default 1.25)', p(positiveNumber))
    .option('--footprint <MiB>', 'the workload\'s memory, in MiB (default 64)', p(positiveNumber))
    .option('--prefetch <policy>', 'prefetcher: tree, none, seq64k, random4k (default: the driver\'s)', p(str))
    .option('--evict <policy>', 'eviction order: uvm, lru, lfu, fifo, random (default: the driver\'s)', p(str))
    .option('--compute-ns <ns>', 'compute per page access (default: the workload\'s); for a trace, a scale on its recorded compute', p(nonNegativeNumber))
    .option('--iterations <n>', 'outer iterations of the workload (time steps, passes)', p(positiveInteger))
    .option('--graph <kind>', 'bfs and sssp: random or powerlaw (default random)', p(str))
    .option('--xnack <on|off>', 'kfd only: XNACK on (retry faults, the default) or off (memory registered first, every fault fatal)', p(onOff))
    .option('--large-pages <on|off>', 'uvm only: map resident VRAM with 2 MiB and 64 KiB leaves as for managed memory (default off, as UVM on HMM)', p(onOff))
    .option('--seed <n>', 'seed (default 1)', p(parseSeed))
    .option('--config <file>', 'a JSON or YAML file: preset, run options, cost-model overrides (docs/cost-model.md)');
}

/** Options given on the command line (not defaults) as RunOptions fields. */
export function cliRunOptions(o: Record<string, unknown>): Partial<RunOptions> {
  const map: Array<[string, keyof RunOptions]> = [
    ['workload', 'workload'], ['trace', 'trace'], ['driver', 'driver'], ['preset', 'preset'], ['oversub', 'oversub'], ['footprint', 'footprintMiB'],
    ['prefetch', 'prefetch'], ['evict', 'evict'], ['computeNs', 'computeNs'], ['iterations', 'iterations'], ['graph', 'graph'], ['seed', 'seed'],
    ['xnack', 'xnack'], ['largePages', 'largePages'],
  ];
  const out: Record<string, unknown> = {};
  for (const [cli, key] of map) if (o[cli] !== undefined) out[key] = o[cli];
  return out as Partial<RunOptions>;
}

/** Config file first, then the command line on top. */
export function resolveRunOptions(o: Record<string, unknown>): Partial<RunOptions> {
  const fromFile = typeof o.config === 'string' ? configRunOptions(o.config, loadConfigFile(o.config)) : {};
  return { ...fromFile, ...cliRunOptions(o) };
}

/** The record flattened to one CSV row (dotted column names), in a fixed column order. */
export function flattenRecord(r: RunRecord | Record<string, unknown>): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  const walk = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
    } else out[prefix] = v === undefined ? null : (v as string | number | null);
  };
  walk('', r);
  return out;
}

export function csvLine(values: Array<string | number | null>): string {
  return values.map((v) => {
    const s = v === null ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(',');
}

/** How often a progress line is printed when stderr is not a terminal (HMMSIM_PROGRESS_MS overrides it), as the demo does. */
export const PROGRESS_INTERVAL_MS = 3000;

/** Progress on stderr: a bar on a terminal, else a line every few seconds. */
export function progressReporter(enabled: boolean, label: string): { hooks: RunHooks; stop: () => void } {
  if (!enabled) return { hooks: {}, stop: () => {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({ format: `${label} {phase} phases, {sim} ms simulated, {events} events`, stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic);
    bar.start(1, 0, { phase: 0, sim: '0', events: 0 });
    return {
      hooks: { onProgress: (p) => bar.update(0, { phase: p.phasesDone, sim: (p.simulatedNs / 1e6).toFixed(2), events: p.events }) },
      stop: () => bar.stop(),
    };
  }
  let last = Date.now();
  const every = Number(process.env.HMMSIM_PROGRESS_MS) || PROGRESS_INTERVAL_MS;
  return {
    hooks: {
      onProgress: (p) => {
        const now = Date.now();
        if (now - last < every) return;
        last = now;
        process.stderr.write(`${label}: ${p.phasesDone} phases done, ${(p.simulatedNs / 1e6).toFixed(2)} ms simulated, ${p.events} events\n`);
      },
    },
    stop: () => {},
  };
}

function fmtUs(us: number): string {
  return us >= 1e6 ? `${(us / 1e6).toFixed(3)} s` : us >= 1e3 ? `${(us / 1e3).toFixed(3)} ms` : `${us.toFixed(1)} us`;
}

export function summary(r: RunRecord): string {
  const c = r.config;
  const lines: string[] = [];
  lines.push(`hmmsim run: ${c.workload} on ${c.preset}, driver ${c.driver} (prefetch ${c.prefetch}, evict ${c.evict}), ` +
    `footprint ${c.footprintMiB.toFixed(1)} MiB, VRAM ${c.vramMiB} MiB (oversubscription ${c.oversub}), seed ${c.seed}`);
  lines.push('');
  lines.push(`simulated time: ${fmtUs(r.simulatedTimeUs)}${r.error ? `  (KERNEL KILLED: ${r.error})` : ''}`);
  lines.push('');
  const total = r.simulatedTimeUs || 1;
  lines.push(textTable(['where the time went', 'time', 'share'], Object.entries(r.breakdownUs).map(([k, v]) => [k, fmtUs(v), `${((100 * v) / total).toFixed(1)}%`]), { align: ['left', 'right', 'right'] }));
  lines.push('');
  const g = r.gpu;
  lines.push(textTable(['GPU', 'count'], [
    ['faults', g.faults], ['faults coalesced', g.coalesced], ['fault batches', g.batches], ['average batch size', Number(g.avgBatchSize.toFixed(1))],
    ['average batch time (us)', Number(g.avgBatchUs.toFixed(1))], ['pages migrated to VRAM', g.pagesMigratedToDevice],
    ['pages migrated to system memory', g.pagesMigratedToSystem], ['pages evicted', g.pagesEvicted], ['pages prefetched', g.pagesPrefetched],
    ['thrashing events', g.thrashingEvents], ['remote accesses', g.remoteAccesses], ['TLB misses', g.tlbMisses], ['page accesses', g.accesses],
    ['host-to-device MiB', Number((g.htodBytes / 2 ** 20).toFixed(1))], ['device-to-host MiB', Number((g.dtohBytes / 2 ** 20).toFixed(1))],
  ], { align: ['left', 'right'] }));
  if (r.cpu.faults) {
    lines.push('');
    lines.push(`CPU faults: ${r.cpu.faults} (${Object.entries(r.cpu.faultsByKind).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }
  lines.push('');
  lines.push(`simulated in ${(r.wallMs / 1000).toFixed(2)} s`);
  return lines.join('\n');
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run', { isDefault: true })
    .description('simulate a workload (or a trace) on a GPU under an HMM driver: where the time goes, faults, batches, migrations');
  addRunOptions(cmd, false)
    .option('--json', 'print the run\'s record as JSON')
    .option('--csv', 'print the run\'s record as CSV (a header and one row)')
    .option('--report <file>', 'write a self-contained HTML report with plots')
    .option('--record <file>', 'record the run (events, CPU and GPU page tables) for the visualizer: hmmsim view <file> (gzip-compressed if it ends in .gz)')
    .option('--no-progress', 'no progress output')
    .addOption(new Option('--memory-limit <MiB>', 'refuse a run needing more host memory than this').argParser(positiveNumber).hideHelp())
    .action(async (o: Record<string, unknown>) => {
      const { RunError, runSimulation } = await import('../sim/simulate.js');
      const { TraceError } = await import('../sim/traces/index.js');
      const { renderRunReport } = await import('../report/report.js');
      let opts: Partial<RunOptions>;
      try {
        opts = resolveRunOptions(o);
      } catch (e) {
        if (e instanceof ConfigError) program.error(`hmmsim run: ${e.message}`, { exitCode: 2 });
        throw e;
      }
      const prog = progressReporter(o.progress !== false && !o.json && !o.csv, 'hmmsim run');
      const rec = typeof o.record === 'string' ? (await import('../sim/record/run.js')).recordRun({}, prog.hooks) : null;
      let result;
      try {
        result = runSimulation(opts, rec ? rec.hooks : prog.hooks, typeof o.memoryLimit === 'number' ? o.memoryLimit * 2 ** 20 : undefined);
      } catch (e) {
        prog.stop();
        if (e instanceof RunError || e instanceof TraceError || e instanceof ConfigError) program.error(`hmmsim run: ${e.message}`, { exitCode: 2 });
        throw e;
      }
      prog.stop();
      const r = result.record;
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else if (o.csv) {
        const flat = flattenRecord(r);
        process.stdout.write(csvLine(Object.keys(flat)) + '\n' + csvLine(Object.values(flat)) + '\n');
      } else process.stdout.write(summary(r) + '\n');
      if (typeof o.report === 'string') {
        writeFileSync(o.report, renderRunReport({ ...r, config: { ...r.config }, series: result.series, batches: result.batches }, `hmmsim run: ${r.config.workload}`));
        if (!o.json && !o.csv) process.stdout.write(`report: ${o.report}\n`);
      }
      if (rec && typeof o.record === 'string') {
        const { writeRecord } = await import('../sim/record/io.js');
        const doc = rec.finish();
        const bytes = writeRecord(o.record, doc);
        process.stderr.write(`hmmsim run: recorded ${doc.events.count} events (${(bytes / 2 ** 20).toFixed(1)} MiB) to ${o.record}; see them with: hmmsim view ${o.record}\n`);
      }
      process.exitCode = r.error ? 1 : 0;
    });
}
