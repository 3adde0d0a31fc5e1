// `npm run bench`: hmmsim against the real Linux kernel on this machine, in one run, and the
// operations with no kernel peer against their targets. Every row is a Row (bench/row.ts):
// the model cold (first run in a fresh process) and steady (after warm-up runs), the kernel
// (steady), their ratio in CPU time, the target and whether it is met. Kernel, cold and
// steady samples are interleaved round by round, so that the load of a shared machine falls
// on all three alike. bench/README.md explains each figure.

import { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { setSlabPoolBytes } from '../src/mm/physmem.js';
import { loadCase } from './cases.js';
import { CHECK_SCHEDULES } from './check.js';
import { INVALIDATION_PAIRS } from './hmm.js';
import { isUnavailable, runKernelOp, type KernelOpName } from './kernel.js';
import { coldSample, timeCase } from './measure.js';
import { measureMemory, formatMemory, type MemoryFigures } from './memory.js';
import { VMA_TARGET, VMA_TARGET_RATE, VMAS } from './vma.js';
import { figureOf, figureOfValues, formatRows, formatWall, ratioOf, type Row, type Sample } from './row.js';
import { simRows } from './sim.js';

const MiB = 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc;

/** How to measure one row. */
interface RowSpec {
  name: string;
  unit: string;
  /** The case (bench/cases.ts) and its argument (bytes, or a count). */
  case: string;
  arg: number;
  /** The argument of the unmeasured warm-up runs (default: arg). */
  warmArg?: number;
  /** The kernel's peer operation and its size. */
  kernel?: { op: KernelOpName; bytes: number };
  /** The slab pool limit while this row runs (default: the model's, 1 GiB). */
  poolBytes?: number;
  /** Steady samples (default: --repeats). */
  repeats?: number;
  /** Force a collection before each steady sample, outside the window (rows of several GiB: the last sample's memory must be gone). */
  gcEach?: boolean;
  /** Measured with the next row, round by round (a ratio of the two rows must see the same load and collections). */
  withNext?: boolean;
  target?: string;
  /** Whether the target is met; by default, for a row with a kernel peer, ratio >= 1 cold and steady. */
  met?: (r: Row) => boolean;
  note?: string;
}

const KERNEL_TARGET = 'ratio >= 1, cold and steady';
const kernelMet = (r: Row): boolean => (r.ratio?.steady ?? 0) >= 1 && (r.ratio?.cold ?? 0) >= 1;

interface Settings {
  size: number;
  bigSize: number;
  forkSize: number;
  hmmSize: number;
  repeats: number;
  cold: number;
  warmups: number;
  notifiers: number[];
  vmas: number;
  checkSchedules: number;
  demoSize: number;
  kernel: boolean;
}

function specs(s: Settings): RowSpec[] {
  const mib = (b: number) => (b >= 1024 * MiB ? `${b / (1024 * MiB)} GiB` : `${b / MiB} MiB`);
  const warm = (b: number) => Math.min(b, 128 * MiB);
  const k = (op: KernelOpName, bytes: number) => (s.kernel ? { op, bytes } : undefined);
  const mm = (name: string, c: KernelOpName, bytes: number, extra: Partial<RowSpec> = {}): RowSpec => ({
    name, unit: 'pages/s', case: c, arg: bytes, warmArg: warm(bytes), kernel: k(c, bytes), target: KERNEL_TARGET, met: kernelMet, ...extra,
  });
  const rows: RowSpec[] = [
    mm(`anon write fault, ${mib(s.size)}`, 'anon_write_fault', s.size),
    mm(`anon write fault, ${mib(s.size)}, no slab pool`, 'anon_write_fault', s.size, {
      poolBytes: 0, note: 'every sample takes fresh host memory, as the cold run does',
    }),
    mm(`anon write fault, ${mib(s.bigSize)}`, 'anon_write_fault', s.bigSize, {
      repeats: Math.min(s.repeats, 3), gcEach: true, note: 'past the 1 GiB pool: the rest is fresh host memory',
    }),
    mm(`zero-page read fault, ${mib(s.size)}`, 'zero_read_fault', s.size),
    mm(`mprotect, ${mib(s.size)} populated`, 'mprotect', s.size),
    mm(`madvise(DONTNEED), ${mib(s.size)} populated`, 'madvise_dontneed', s.size),
    mm(`munmap, ${mib(s.size)} populated`, 'munmap', s.size),
    mm(`fork, ${mib(s.forkSize)} populated`, 'fork', s.forkSize),
    mm(`COW fault, ${mib(s.forkSize)}`, 'cow_fault', s.forkSize),
  ];
  for (const n of s.notifiers) {
    rows.push({
      name: `invalidation (one-page mprotect), ${n.toLocaleString('en-US')} notifiers`,
      unit: 'invalidations/s', case: 'invalidations', arg: n, warmArg: Math.min(n, 10_000),
      ...(n === 0 ? { kernel: k('mprotect_page', 4096), target: KERNEL_TARGET, met: kernelMet } : {}),
    });
  }
  rows.push(
    {
      name: `migrate_vma to device and back, ${mib(s.hmmSize)}, data copied`, unit: 'pages/s', case: 'migrate_eager', arg: s.hmmSize,
      warmArg: warm(s.hmmSize), target: '>= 1 M pages/s, cold and steady', met: (r) => r.hmmsim.steady.median >= 1e6 && (r.hmmsim.cold?.median ?? Infinity) >= 1e6,
      note: 'the copy engine copies each page (copy_highpage) when it migrates',
    },
    {
      name: `migrate_vma to device and back, ${mib(s.hmmSize)}, lazy (shared slot)`, unit: 'pages/s', case: 'migrate_lazy', arg: s.hmmSize,
      warmArg: warm(s.hmmSize), note: 'the device page shares the data slot; no bytes move',
    },
    {
      name: `hmm_range_fault snapshot, ${mib(s.hmmSize)}`, unit: 'pages/s', case: 'hmm_snapshot', arg: s.hmmSize, warmArg: warm(s.hmmSize),
      target: '>= 20 M pages/s cold', met: (r) => (r.hmmsim.cold?.median ?? 0) >= 20e6 && r.hmmsim.steady.median >= 20e6,
    },
    {
      name: `hmm_range_fault write faults, ${mib(s.hmmSize)}`, unit: 'pages/s', case: 'hmm_range_fault_write', arg: s.hmmSize,
      warmArg: warm(s.hmmSize), target: '>= 2 M pages/s', met: (r) => r.hmmsim.steady.median >= 2e6,
    },
    ...(['exit', 'munmap'] as const).map((op): RowSpec => ({
      name: `${op} of a process's ${s.vmas.toLocaleString('en-US')} one-page VMAs`, unit: 'VMAs/s', case: `${op}_vmas`, arg: s.vmas,
      target: VMA_TARGET, met: (r) => r.hmmsim.steady.median >= VMA_TARGET_RATE && (r.hmmsim.cold?.median ?? Infinity) >= VMA_TARGET_RATE,
      note: 'the VmaSet B-tree (issue 10 item 8)',
    })),
    {
      name: 'check: zoo scenarios, minimal driver', unit: 'schedules/s', case: 'check', arg: s.checkSchedules,
      target: '>= 1,000 schedules/s', met: (r) => r.hmmsim.steady.median >= 1000,
    },
    // A steady sample is ~100 ms, so one major collection landing in it moves it 2x (5 samples
    // spread 54-130 ms): these rows take twice the samples (a gc() before each made them 3-5x
    // slower, a full collection being no state a run meets).
    { name: `hmmsim demo --size ${s.demoSize / MiB}, with its checks`, unit: 'ms', case: 'demo', arg: s.demoSize, withNext: true, repeats: 2 * s.repeats },
    { name: `hmmsim demo --size ${s.demoSize / MiB}: its parts (bench/demo.ts)`, unit: 'ms', case: 'demo_parts', arg: s.demoSize, repeats: 2 * s.repeats },
  );
  return rows;
}

/** The samples of one row as they are taken. */
interface Taken {
  spec: RowSpec;
  kernel: Sample[];
  cold: Sample[];
  steady: Sample[];
  kernelNote?: string;
}

/**
 * Measure a group of rows (one row, or rows marked withNext and the row after them) round by
 * round: in each round every row takes its kernel, cold and steady samples before the next row
 * does, so that the load of the machine and the collections fall on them alike.
 */
async function measureRows(group: RowSpec[], s: Settings, log: (m: string) => void): Promise<Row[]> {
  const cases = await Promise.all(group.map(async (spec) => {
    const c = await loadCase(spec.case);
    if (!c) throw new Error(`no bench case ${spec.case}`);
    return c;
  }));
  const taken: Taken[] = group.map((spec) => ({ spec, kernel: [], cold: [], steady: [] }));
  const rounds = Math.max(...group.map((spec) => spec.repeats ?? s.repeats));
  // Unmeasured runs first, until V8 has optimized the hot paths (the C side was compiled ahead of time).
  for (let w = 0; w < s.warmups; w++) {
    for (const [i, spec] of group.entries()) await withPool(spec, () => timeCase(cases[i]!, spec.warmArg ?? spec.arg));
  }
  for (let r = 0; r < rounds; r++) {
    for (const [i, t] of taken.entries()) {
      const spec = t.spec;
      if (r >= (spec.repeats ?? s.repeats)) continue;
      log(`  ${spec.name}: round ${r + 1}/${spec.repeats ?? s.repeats}`);
      if (spec.kernel && t.kernelNote === undefined) {
        const k = runKernelOp(spec.kernel.op, spec.kernel.bytes, 1);
        if (isUnavailable(k)) t.kernelNote = k.unavailable;
        else t.kernel.push(...k.samples);
      }
      if (r < s.cold) t.cold.push(coldSample(spec.case, spec.arg, spec.poolBytes === undefined ? {} : { poolBytes: spec.poolBytes }));
      if (spec.gcEach) gc?.();
      t.steady.push(await withPool(spec, () => timeCase(cases[i]!, spec.arg)));
    }
  }
  return taken.map(rowOf);
}

/** Run fn with the row's slab pool limit, if it sets one. */
async function withPool<T>(spec: RowSpec, fn: () => Promise<T>): Promise<T> {
  const oldPool = spec.poolBytes === undefined ? undefined : setSlabPoolBytes(spec.poolBytes);
  try {
    return await fn();
  } finally {
    if (oldPool !== undefined) setSlabPoolBytes(oldPool);
  }
}

function rowOf({ spec, kernel, cold, steady, kernelNote }: Taken): Row {
  const row: Row = {
    name: spec.name,
    unit: spec.unit,
    hmmsim: { cold: cold.length > 0 ? figureOf(cold, spec.unit) : null, steady: figureOf(steady, spec.unit) },
    met: null,
    load: +loadavg()[0]!.toFixed(2),
  };
  if (kernel.length > 0) {
    const ks = figureOf(kernel, spec.unit);
    row.kernel = { steady: ks };
    row.ratio = {
      cold: row.hmmsim.cold ? ratioOf(spec.unit, row.hmmsim.cold.median, ks.median) : null,
      steady: ratioOf(spec.unit, row.hmmsim.steady.median, ks.median),
    };
  }
  const hasKernelTarget = spec.target === KERNEL_TARGET;
  if (spec.target && (!hasKernelTarget || row.kernel)) {
    row.target = spec.target;
    row.met = spec.met ? spec.met(row) : null;
  }
  const note = [spec.note, kernelNote && `kernel: ${kernelNote}`].filter(Boolean).join('; ');
  if (note) row.note = note;
  return row;
}

/** Rows computed from others: the demo against its parts, the notifier growth. */
function derive(rows: Row[], s: Settings): void {
  const demo = rows.find((r) => r.unit === 'ms' && r.name.endsWith('with its checks'));
  const parts = rows.find((r) => r.unit === 'ms' && r.name.includes('its parts'));
  if (demo && parts) {
    const cold = demo.hmmsim.cold && parts.hmmsim.cold ? demo.hmmsim.cold.median / parts.hmmsim.cold.median : null;
    const steady = demo.hmmsim.steady.median / parts.hmmsim.steady.median;
    const fig = (x: number, wall: number) => figureOfValues([x], [wall]);
    rows.push({
      name: `hmmsim demo --size ${s.demoSize / MiB} / its parts`,
      unit: 'x',
      hmmsim: {
        cold: cold === null ? null : fig(cold, demo.hmmsim.cold!.wall / parts.hmmsim.cold!.wall),
        steady: fig(steady, demo.hmmsim.steady.wall / parts.hmmsim.steady.wall),
      },
      target: '<= 1.5, cold and steady',
      met: steady <= 1.5 && (cold === null || cold <= 1.5),
      note: 'CPU time of the steps (the demo with its checks) over the parts\'; the medians\' ratio',
      ...(demo.load === undefined ? {} : { load: demo.load }),
    });
  }
  // Invalidations: the lookup grows with the log of the notifiers; the fixed cost of an mprotect dominates below that.
  const inv = rows.filter((r) => r.unit === 'invalidations/s');
  const base = inv.find((r) => r.name.endsWith(' 1 notifiers'));
  const most = inv.at(-1);
  if (base && most && most !== base) {
    most.target = 'within 3x of 1 notifier';
    most.met = most.hmmsim.steady.median * 3 >= base.hmmsim.steady.median && (!most.hmmsim.cold || !base.hmmsim.cold || most.hmmsim.cold.median * 3 >= base.hmmsim.cold.median);
  }
}

async function main(): Promise<void> {
  const program = new Command()
    .name('npm run bench --')
    .description('Benchmark hmmsim against the real kernel on this machine')
    .option('--size <MiB>', 'mapping size of the mm operations', '1024')
    .option('--big-size <MiB>', 'the larger write-fault size (beyond the 1 GiB slab pool)', '4096')
    .option('--fork-size <MiB>', 'populated size for fork and the COW faults', '256')
    .option('--hmm-size <MiB>', 'size of the HMM operations (migration, snapshot, hmm_range_fault)', '1024')
    .option('--repeats <n>', 'steady samples per row (and kernel samples)', '5')
    .option('--cold <n>', 'cold samples per row, each in a fresh process', '3')
    .option('--quick', 'small sizes, 3 repeats, 1 cold sample: a fast look')
    .option('--tiny', 'tiny sizes, 1 sample each: checks that every row runs (seconds of work, plus process starts)')
    .option('--only <regexp>', 'only the rows whose name matches')
    .option('--no-kernel', 'skip the real-kernel side')
    .option('--json', 'print the figures as JSON')
    .option('--save <file>', 'also write the JSON document to this file')
    .option('--print <file>', 'print the table of a JSON document saved earlier (--json or --save); measure nothing')
    .parse();
  const o = program.opts<{
    size: string; bigSize: string; forkSize: string; hmmSize: string; repeats: string; cold: string;
    quick?: boolean; tiny?: boolean; only?: string; kernel: boolean; json?: boolean; save?: string; print?: string;
  }>();
  if (o.print) {
    printReport(JSON.parse(readFileSync(o.print, 'utf8')) as Report);
    return;
  }
  const s: Settings = {
    size: Number(o.size) * MiB, bigSize: Number(o.bigSize) * MiB, forkSize: Number(o.forkSize) * MiB, hmmSize: Number(o.hmmSize) * MiB,
    repeats: Number(o.repeats), cold: Number(o.cold), warmups: 3,
    notifiers: [0, 1, 100, 10_000, 1_000_000], vmas: VMAS, checkSchedules: CHECK_SCHEDULES, demoSize: 64 * MiB, kernel: o.kernel,
  };
  if (o.quick) Object.assign(s, { size: 64 * MiB, bigSize: 256 * MiB, forkSize: 32 * MiB, hmmSize: 64 * MiB, repeats: 3, cold: 1, notifiers: [0, 1, 100, 10_000, 100_000], vmas: 10_000, checkSchedules: 100, demoSize: 16 * MiB });
  if (o.tiny) Object.assign(s, { size: 4 * MiB, bigSize: 8 * MiB, forkSize: 4 * MiB, hmmSize: 4 * MiB, repeats: 1, cold: 1, warmups: 1, notifiers: [0, 1, 100], vmas: 1000, checkSchedules: 5, demoSize: 4 * MiB });
  for (const [k, v] of Object.entries(s)) if (typeof v === 'number' && !(Number.isSafeInteger(v) && v >= 0)) program.error(`${k} must be a non-negative integer`);
  if (s.repeats < 1 || s.size < MiB) program.error('--repeats must be >= 1 and sizes >= 1 MiB');
  const log = (m: string): void => {
    if (!o.json) process.stderr.write(m + '\n');
  };
  const only = o.only ? new RegExp(o.only) : null;
  const loadStart = loadavg();
  const rows: Row[] = [];
  let uname = '';
  const wanted = specs(s).filter((spec) => !only || only.test(spec.name));
  for (let i = 0; i < wanted.length; ) {
    const group = [wanted[i++]!];
    while (group.at(-1)!.withNext && i < wanted.length) group.push(wanted[i++]!);
    log(`${group.map((g) => g.name).join(' | ')} ...`);
    rows.push(...(await measureRows(group, s, log)));
  }
  rows.push(...simRows({ quick: o.quick, tiny: o.tiny, only, log }));
  derive(rows, s);
  if (s.kernel) {
    const k = runKernelOp('munmap', 4096, 1);
    uname = isUnavailable(k) ? k.unavailable : k.machine.uname;
  }
  log('memory ...');
  gc?.();
  const memory: MemoryFigures = measureMemory(Math.min(s.size, 256 * MiB));
  const machine = {
    node: process.version,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: uname,
    loadAverage: { start: loadStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) },
  };
  const doc: Report = { machine, settings: { ...s, invalidationPairs: INVALIDATION_PAIRS }, rows, memory };
  if (o.save) writeFileSync(o.save, JSON.stringify(doc, null, 2) + '\n');
  if (o.json) {
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    return;
  }
  printReport(doc);
}

/** What --json prints (the shape of issue 13: machine, rows, memory; and the settings of the run). */
interface Report {
  machine: { node: string; cpus: string; memGiB: number; kernel: string; loadAverage: { start: number[]; end: number[] } };
  settings: Settings & { invalidationPairs: number };
  rows: Row[];
  memory: MemoryFigures;
}

function printReport({ machine, settings: s, rows, memory }: Report): void {
  console.log(`hmmsim benchmark: ${machine.cpus}, ${machine.memGiB} GiB, node ${machine.node}`);
  console.log(`kernel: ${machine.kernel || '(not run)'}`);
  console.log(`load average (1, 5, 15 min): ${machine.loadAverage.start.join(', ')} at start, ${machine.loadAverage.end.join(', ')} at end`);
  console.log(`CPU time; median (min-max) of ${s.repeats} steady and ${s.cold} cold samples, kernel and model interleaved; load: 1-minute load average after the row\n`);
  console.log(formatRows(rows));
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.name}: ${r.note}`);
  if (notes.length) console.log(`\nnotes:\n${notes.join('\n')}`);
  console.log('\nwall time (medians), for comparison:');
  console.log(formatWall(rows));
  console.log('\nmemory:');
  console.log(formatMemory(memory));
}

await main();
