// `hmmsim run` today (to become `hmmsim demo` once the GPU simulator takes `run`): the built-in
// HMM walk-through scenario, its summary and data check.

import { type Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { parseSeed } from './options.js';
import { runScenario, type ScenarioReport } from '../sim/scenario.js';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('a positive integer is required');
  return n;
}

function printReport(r: ScenarioReport): void {
  const out = (s = '') => process.stdout.write(s + '\n');
  out(`hmmsim run: ${r.sizeBytes / 2 ** 20} MiB (${r.pages} pages), seed ${r.seed}`);
  out();
  out('steps:');
  for (const s of r.steps) out(`  ${s.name.padEnd(52)} device maps ${String(s.deviceMapped).padStart(8)} pages${s.mirrorViolations ? `  MIRROR BROKEN (${s.mirrorViolations})` : ''}`);
  out();
  out('CPU faults by kind:');
  for (const [k, n] of Object.entries(r.metrics.faults)) out(`  ${k.padEnd(20)} ${n}`);
  out('invalidations by event:');
  for (const [k, n] of Object.entries(r.metrics.invalidations)) out(`  ${k.padEnd(20)} ${n}`);
  out('device:');
  out(`  hmm_range_fault calls ${r.device.rangeFaults}, retries ${r.device.retries}, entries invalidated ${r.device.entriesInvalidated}`);
  out('migrations (pages):');
  out(`  to device ${r.metrics.migrations.toDevice}, to system ${r.metrics.migrations.toSystem}`);
  out('frames:');
  out(`  system in use at the end ${r.frames.systemInUse} of ${r.frames.systemTotal}, device ${r.frames.deviceInUse} of ${r.frames.deviceTotal}, swap slots ${r.frames.swapSlotsInUse}`);
  out(`  freed: system ${r.metrics.framesFreed.system}, device ${r.metrics.framesFreed.device}; leaked after exit ${r.framesLeakedAfterExit}`);
  out();
  out(`data: ${r.dataChecked} bytes checked, ${r.dataMismatches} mismatches; mirror violations: ${r.mirrorViolations}`);
  out(r.ok ? 'result: OK (data intact, the device never mapped what the CPU did not)' : 'result: FAILED');
}

export function registerDemo(program: Command): void {
  program
    .command('run', { isDefault: true })
    .description('run the built-in scenario: a process and a device sharing memory through HMM, with a summary and a data check')
    .option('--size <MiB>', 'memory the process maps, in MiB', positiveInt, 64)
    .option('--seed <n>', 'seed for the scenario\'s random choices: an integer from 0 to 2^53-1', parseSeed, 1)
    .option('--json', 'print the report as JSON')
    .option('--no-progress', 'no progress bar')
    .action((o: { size: number; seed: number; json?: boolean; progress: boolean }) => {
      const bar = o.progress && !o.json && process.stderr.isTTY
        ? new cliProgress.SingleBar({ format: '{bar} {value}/{total} {step}', stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic)
        : null;
      let started = false;
      const report = runScenario({
        sizeBytes: o.size * 2 ** 20,
        seed: o.seed,
        onStep: (done, total, name) => {
          if (!bar) return;
          if (!started) { bar.start(total, 0, { step: '' }); started = true; }
          bar.update(done, { step: name });
        },
      });
      bar?.stop();
      if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else printReport(report);
      process.exitCode = report.ok ? 0 : 1;
    });
}
