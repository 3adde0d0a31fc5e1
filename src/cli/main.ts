#!/usr/bin/env node
// The `hmmsim` command.

import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { runScenario, type ScenarioReport } from '../sim/scenario.js';
import { runSelftests, formatSelftestTable } from '../drivers/dmirror/selftests.js';

function positiveInt(v: string): number {
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

const program = new Command()
  .name('hmmsim')
  .description('Linux HMM (Heterogeneous Memory Management), executable')
  .version('0.1.0');

program
  .command('run', { isDefault: true })
  .description('run the built-in scenario: a process and a device sharing memory through HMM, with a summary and a data check')
  .option('--size <MiB>', 'memory the process maps, in MiB', positiveInt, 64)
  .option('--seed <n>', 'seed for the scenario\'s random choices', positiveInt, 1)
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

program
  .command('selftest')
  .description('run the kernel\'s HMM selftests (hmm-tests.c), ported, against the dmirror test driver, and print the pass/fail table')
  .option('--filter <text>', 'only the tests whose name contains text')
  .option('--full-benchmark', 'run benchmark_thp_migration at the kernel\'s sizes (slow)')
  .option('--json', 'print the results as JSON')
  .action(async (o: { filter?: string; fullBenchmark?: boolean; json?: boolean }) => {
    const { results } = await runSelftests({
      quick: !o.fullBenchmark,
      filter: o.filter ? (c) => c.name.includes(o.filter!) : undefined,
      log: o.json ? undefined : (line) => process.stderr.write(line + '\n'),
    });
    if (o.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    else {
      // The table ends with the summary line (formatSelftestSummary).
      process.stdout.write(formatSelftestTable(results) + '\n');
    }
    process.exitCode = results.some((r) => r.status === 'fail') ? 1 : 0;
  });

await program.parseAsync();
