// `hmmsim demo`: the built-in HMM
// walk-through (src/sim/demo.ts), its summary and data check.

import { type Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { parseSeed } from './options.js';
import { textTable } from './table.js';
import { runDemo, type DemoReport } from '../sim/demo.js';
import { demoMemoryVerdict, formatDemoMemoryRefusal } from '../sim/demo-memory.js';
import { recordDemo, writeRecord } from '../sim/record/index.js';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('a positive integer is required');
  return n;
}

/** What each fault kind of the summary means (mm/memory.c's handlers, as events.ts names them). */
export const FAULT_KIND_HELP: Record<string, string> = {
  anon: 'first touch of anonymous memory by a write: a new zeroed page',
  zero: 'first touch by a read: the shared zero page, mapped read-only',
  thp: 'first touch that got a transparent huge page',
  'huge-zero': 'read of an untouched huge-page-sized area: the huge zero page',
  hugetlb: 'hugetlbfs page fault',
  cow: 'write to a page shared copy-on-write (after fork, or the zero page): the writer gets its own copy',
  reuse: 'write to a write-protected page nobody else maps: made writable in place, no copy',
  file: 'page-cache page of a file mapped',
  'file-cow': 'write to a private file mapping: a private copy of the file page',
  swapin: 'page read back from swap',
  'migration-wait': 'the page was being migrated: the fault waited for the migration and retried',
  'device-private': 'the page was in device memory: migrate_to_ram brought it back',
  'device-exclusive': 'the page was held exclusively by a device for atomics: the device gave it back',
  numa: 'NUMA hinting fault (PROT_NONE for balancing), restored',
  spurious: 'the entry already allowed the access (no change but the accessed/dirty bits): hmm_range_fault faults every page from the first one that needs it to the end of its page-table chunk, so the pages after it that were already mapped count here',
};

function printReport(r: DemoReport): void {
  const out = (s = '') => process.stdout.write(s + '\n');
  out(`hmmsim demo: ${r.sizeBytes / 2 ** 20} MiB (${r.pages} pages), seed ${r.seed}`);
  out();
  out('steps:');
  out(textTable(['step', 'pages the device maps', ''], r.steps.map((s) => [
    s.name, s.deviceMapped, s.mirrorViolations ? `MIRROR BROKEN (${s.mirrorViolations})` : '',
  ]), { align: ['left', 'right', 'left'], prefix: '  ' }));
  out();
  const kinds = (title: string, faults: Record<string, number>) => {
    out(title);
    const entries = Object.entries(faults);
    if (entries.length === 0) out('  (none)');
    else out(textTable(['kind', 'faults', 'what it is'], entries.map(([k, n]) => [k, n, FAULT_KIND_HELP[k] ?? '']), { prefix: '  ' }));
  };
  kinds('CPU faults by kind (taken by the process\'s own accesses):', r.metrics.cpuFaults);
  kinds('device-initiated faults by kind (taken by hmm_range_fault for the device, FAULT_FLAG_REMOTE):', r.metrics.deviceFaults);
  out('invalidations by event:');
  out(textTable(['event', 'count'], Object.entries(r.metrics.invalidations), { prefix: '  ' }));
  out('device:');
  out(`  device faults ${r.device.faults}, hmm_range_fault calls ${r.device.rangeFaults}, retries ${r.device.retries}`);
  out(`  ranges created ${r.device.rangesInserted}, removed ${r.device.rangesRemoved}; entries invalidated ${r.device.entriesInvalidated}`);
  out('migrations (pages):');
  out(`  to device ${r.metrics.migrations.toDevice}, to system ${r.metrics.migrations.toSystem}`);
  out('frames:');
  out(`  system in use at the end ${r.frames.systemInUse} of ${r.frames.systemTotal}, device ${r.frames.deviceInUse} of ${r.frames.deviceTotal}, swap slots ${r.frames.swapSlotsInUse}`);
  out(`  freed: system ${r.metrics.framesFreed.system}, device ${r.metrics.framesFreed.device}; leaked after exit ${r.framesLeakedAfterExit}`);
  out();
  out(`data: ${r.dataChecked} bytes checked, ${r.dataMismatches} mismatches; mirror violations: ${r.mirrorViolations}`);
  out(`time: ${(r.ms / 1000).toFixed(2)} s`);
  out(r.ok ? 'result: OK (data intact, the device never mapped what the CPU did not)' : 'result: FAILED');
}

/** Progress for a terminal: a bar; otherwise a line every few seconds (a log, CI, a pipe). */
function progress(enabled: boolean, json: boolean): { onStep: (done: number, total: number, name: string) => void; stop: () => void } {
  if (!enabled) return { onStep: () => {}, stop: () => {} };
  if (process.stderr.isTTY && !json) {
    const bar = new cliProgress.SingleBar({ format: '{bar} {value}/{total} {step}', stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic);
    let started = false;
    return {
      onStep: (done, total, name) => {
        if (!started) {
          bar.start(total, 0, { step: '' });
          started = true;
        }
        bar.update(done, { step: name });
      },
      stop: () => bar.stop(),
    };
  }
  const t0 = Date.now();
  let last = t0;
  const env = Number(process.env.HMMSIM_PROGRESS_MS ?? NaN);
  const every = Number.isFinite(env) && env >= 0 ? env : DEMO_PROGRESS_INTERVAL_MS;
  return {
    onStep: (done, total, name) => {
      // A line once a few seconds have passed since the last one: a short run prints none.
      const now = Date.now();
      if (now - last < every) return;
      last = now;
      process.stderr.write(`hmmsim demo: step ${done}/${total} done (${name}), ${((now - t0) / 1000).toFixed(1)} s\n`);
    },
    stop: () => {},
  };
}

/** How often a line of progress is printed when stderr is not a terminal (HMMSIM_PROGRESS_MS overrides it). */
export const DEMO_PROGRESS_INTERVAL_MS = 3000;

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the built-in walk-through: a process and a GPU-SVM device sharing memory through HMM, with a summary and a data check')
    .option('--size <MiB>', 'memory the process maps, in MiB', positiveInt, 64)
    .option('--seed <n>', 'seed for the walk-through\'s random choices: an integer from 0 to 2^53-1', parseSeed, 1)
    .option('--json', 'print the report as JSON (with the time of each step)')
    .option('--no-progress', 'no progress bar or progress lines')
    .option('--record <file>', 'record the run (events, page tables) for the visualizer: hmmsim view <file> (gzip-compressed if it ends in .gz)')
    .action((o: { size: number; seed: number; json?: boolean; progress: boolean; record?: string }) => {
      const sizeBytes = o.size * 2 ** 20;
      const verdict = demoMemoryVerdict(sizeBytes);
      if (!verdict.fits) {
        process.stderr.write(formatDemoMemoryRefusal(o.size, verdict) + '\n');
        process.exitCode = 2;
        return;
      }
      const p = progress(o.progress, !!o.json);
      const rec = o.record ? recordDemo({ command: 'demo', title: `hmmsim demo: ${o.size} MiB, seed ${o.seed}`, meta: { size: o.size, seed: o.seed } }) : null;
      const report = runDemo({ sizeBytes, seed: o.seed, onStep: p.onStep, ...rec?.hooks });
      p.stop();
      if (rec && o.record) {
        const doc = rec.finish();
        const bytes = writeRecord(o.record, doc);
        process.stderr.write(`hmmsim demo: recorded ${doc.events.count} events (${(bytes / 2 ** 20).toFixed(1)} MiB) to ${o.record}; see them with: hmmsim view ${o.record}\n`);
      }
      if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else printReport(report);
      process.exitCode = report.ok ? 0 : 1;
    });
}
