// `npm run bench`: hmmsim against the real Linux kernel on this machine, in one run.
// Per operation: the model's rate, the kernel's, their ratio and the target; then the HMM
// operations that have no user-space peer, the memory figures, and the machine.

import { Command } from 'commander';
import { cpus, totalmem } from 'node:os';
import { isUnavailable, KERNEL_OPS, runKernelBench, type KernelBenchResult } from './kernel.js';
import { MODEL_OPS } from './model.js';
import { HMM_OPS } from './hmm.js';
import { VMA_OPS } from './vma.js';
import { measureMemory, type MemoryFigures } from './memory.js';
import { checkBenchRow } from './check.js';
import { simBench } from './sim.js';

interface Row {
  op: string;
  pages: number;
  modelRate: number;
  kernelRate: number | null;
  ratio: number | null;
  target: string;
  met: boolean | null;
  samples: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

const WARMUP_RUNS = 4;
const gc = (globalThis as { gc?: () => void }).gc;

function fmtRate(r: number | null): string {
  if (r === null) return '-';
  return r >= 1e6 ? `${(r / 1e6).toFixed(2)} M/s` : `${(r / 1e3).toFixed(1)} K/s`;
}

async function main(): Promise<void> {
  const program = new Command()
    .name('npm run bench --')
    .description('Benchmark hmmsim against the real kernel on this machine')
    .option('--size <MiB>', 'mapping size for the fault, mprotect, madvise and munmap operations', '1024')
    .option('--fork-size <MiB>', 'populated size for fork and the COW faults', '256')
    .option('--repeats <n>', 'samples per operation (the median is reported)', '5')
    .option('--quick', 'small sizes and 3 repeats, for a fast look')
    .option('--no-kernel', 'skip the real-kernel side')
    .option('--json', 'print the figures as JSON')
    .parse();
  const o = program.opts<{ size: string; forkSize: string; repeats: string; quick?: boolean; kernel: boolean; json?: boolean }>();
  const size = (o.quick ? 64 : Number(o.size)) * 2 ** 20;
  const forkSize = (o.quick ? 32 : Number(o.forkSize)) * 2 ** 20;
  const repeats = o.quick ? 3 : Number(o.repeats);
  if (!(size > 0 && forkSize > 0 && repeats > 0)) program.error('sizes and repeats must be positive numbers');
  const log = (s: string): void => {
    if (!o.json) process.stderr.write(s + '\n');
  };

  let kernel: KernelBenchResult | null = null;
  let kernelNote = '';
  if (o.kernel) {
    log(`kernel: ${size >> 20} MiB, fork ${forkSize >> 20} MiB, ${repeats} repeats ...`);
    const k = await runKernelBench({ sizeBytes: size, forkBytes: forkSize, repeats });
    if (isUnavailable(k)) kernelNote = k.unavailable;
    else kernel = k;
  }

  const rows: Row[] = [];
  for (const op of KERNEL_OPS) {
    log(`hmmsim: ${op} ...`);
    const samples: number[] = [];
    let pages = 0;
    // Unmeasured runs first, until V8 has optimized the hot paths (the C side was compiled
    // ahead of time): a path reaches its optimized code only after a few full executions.
    for (let w = 0; w < WARMUP_RUNS; w++) MODEL_OPS[op](Math.min(size, 128 << 20), Math.min(forkSize, 64 << 20));
    for (let r = 0; r < repeats; r++) {
      // No forced GC between samples: a full collection drops V8's call-target feedback and
      // makes the next sample run unoptimized code, which is not the steady state we measure.
      const s = MODEL_OPS[op](size, forkSize);
      pages = s.pages;
      samples.push(s.pages / s.seconds);
    }
    const modelRate = median(samples);
    const kernelRate = kernel ? kernel.ops[op].median_pages_per_s : null;
    const ratio = kernelRate ? modelRate / kernelRate : null;
    rows.push({ op, pages, modelRate, kernelRate, ratio, target: 'ratio >= 1', met: ratio === null ? null : ratio >= 1, samples });
  }
  for (const [op, spec] of Object.entries({ ...HMM_OPS, ...VMA_OPS })) {
    log(`hmmsim: ${op} ...`);
    const samples: number[] = [];
    let pages = 0;
    for (let w = 0; w < WARMUP_RUNS; w++) spec.run(Math.min(size, 64 << 20));
    for (let r = 0; r < repeats; r++) {
      const s = spec.run(size);
      pages = s.pages;
      samples.push(s.pages / s.seconds);
    }
    const modelRate = median(samples);
    rows.push({ op, pages, modelRate, kernelRate: null, ratio: null, target: spec.target, met: spec.met(modelRate, samples), samples });
  }
  rows.push(await checkBenchRow(repeats, log));
  log('memory ...');
  gc?.();
  const memory: MemoryFigures = measureMemory(Math.min(size, 256 << 20));

  const machine = {
    node: process.version,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: kernel?.machine.uname ?? kernelNote,
  };
  if (o.json) {
    process.stdout.write(JSON.stringify({ machine, sizeBytes: size, forkBytes: forkSize, repeats, rows, memory }, null, 2) + '\n');
    return;
  }
  const table = rows.map((r) => ({
    operation: r.op,
    pages: r.pages,
    hmmsim: fmtRate(r.modelRate),
    kernel: fmtRate(r.kernelRate),
    'hmmsim/kernel': r.ratio === null ? '-' : r.ratio.toFixed(2),
    target: r.target,
    met: r.met === null ? '-' : r.met ? 'yes' : 'NO',
  }));
  console.log(`hmmsim benchmark — ${machine.cpus}, ${machine.memGiB} GiB, node ${machine.node}`);
  console.log(`kernel: ${machine.kernel}`);
  console.log(`sizes: ${size >> 20} MiB (fork ${forkSize >> 20} MiB), median of ${repeats}`);
  console.table(table);
  const mem = memory;
  console.log('memory:');
  console.table([
    { figure: 'metadata per mapped page', bytes: mem.metadataPerMappedPage.toFixed(1), target: '<= 16', met: mem.metadataPerMappedPage <= 16 ? 'yes' : 'NO' },
    { figure: 'overhead per touched page (beyond its 4 KiB)', bytes: mem.overheadPerTouchedPage.toFixed(1), target: '<= 64', met: mem.overheadPerTouchedPage <= 64 ? 'yes' : 'NO' },
    { figure: 'sparse: 1 TiB mapped, 1,000 pages touched (model accounting)', bytes: mem.sparse.modelBytes, target: 'what it touches', met: mem.sparse.modelBytes < 64 << 20 ? 'yes' : 'NO' },
    { figure: 'sparse: heap + ArrayBuffer growth (Node)', bytes: mem.sparse.heapGrowthBytes, target: '-', met: '-' },
  ]);
}

await main();
await simBench();
