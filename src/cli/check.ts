// `hmmsim check <driver module>`: the race explorer (src/check) on a user's driver. Prints the
// first violation (the invariant, the minimised schedule as a trace, the replay token) and
// exits 1, or the schedules run and their coverage and exits 0.

import { writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { checkDriver, replayCheck, STRATEGY_NAMES, type CheckResult, type StrategyName } from '../check/check.js';
import { loadDriver } from '../check/load.js';
import { checkTraceDoc, formatCheckResult } from '../check/report.js';
import { SCENARIOS } from '../check/scenarios.js';
import { recordCheckSchedule } from '../sim/record/check.js';

function count(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`an integer >= ${min} is required`);
    return n;
  };
}

interface CheckCliOptions {
  strategy: StrategyName | 'all';
  schedules: number;
  depth: number;
  preemptions: number;
  seed: number;
  scenario?: string;
  replay?: string;
  json?: boolean;
  record?: string;
  minimise: boolean;
  progress: boolean;
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('explore the interleavings of a driver module (examples/drivers/) against adversarial CPU threads; print the first broken invariant with its minimised schedule and replay token (exit 1), or the coverage (exit 0)')
    .argument('<driver>', 'the driver module: a .js or .ts file exporting a CheckDriver (docs/check.md)')
    .addOption(new Option('--strategy <name>', 'exploration strategy').choices([...STRATEGY_NAMES, 'all']).default('all'))
    .option('--schedules <n>', 'schedules per strategy, over all scenarios', count(1), 1000)
    .option('--depth <d>', 'PCT: the bug depth to aim for (d - 1 priority change points)', count(1), 3)
    .option('--preemptions <p>', 'bounded search: the most preemptions per schedule', count(0), 2)
    .option('--seed <n>', 'seed of the random strategies', count(0), 1)
    .option('--scenario <names>', `only these scenarios, comma-separated (${SCENARIOS.map((s) => s.name).join(', ')})`)
    .option('--replay <token>', 'run one schedule, given by its token (scenario:schedule), and report it')
    .option('--json', 'print the result as JSON')
    .option('--record <file>', 'write the failing schedule\'s steps per thread, and its page tables recorded, for `hmmsim view` (docs/check.md)')
    .option('--no-minimise', 'report the failing schedule as found')
    .option('--no-progress', 'no progress bar')
    .action(async (driverPath: string, o: CheckCliOptions) => {
      try {
        await run(driverPath, o);
      } catch (e) {
        // Bad input (no such scenario, a malformed token, a module that is no driver): a message, exit 2.
        process.stderr.write(`hmmsim check: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 2;
      }
    });
}

async function run(driverPath: string, o: CheckCliOptions): Promise<void> {
  const driver = await loadDriver(driverPath);
  let result: CheckResult;
  if (o.replay) result = await replayCheck(driver, o.replay);
  else {
    const strategies = o.strategy === 'all' ? STRATEGY_NAMES : [o.strategy];
    const bar = o.progress && !o.json && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: '{bar} {value}/{total} {strategy}', stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic)
      : null;
    bar?.start(o.schedules * strategies.length, 0, { strategy: '' });
    let base = 0;
    let last = '';
    result = await checkDriver(driver, {
      strategies, schedules: o.schedules, depth: o.depth, preemptions: o.preemptions, seed: o.seed, minimise: o.minimise,
      scenarios: o.scenario ? o.scenario.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      onSchedule: bar ? (strategy, done) => {
        if (strategy !== last) {
          if (last) base += o.schedules;
          last = strategy;
        }
        if (done % 25 === 0) bar.update(base + done, { strategy });
      } : undefined,
    });
    bar?.stop();
  }
  if (o.record) {
    const trace: Record<string, unknown> = { ...checkTraceDoc(result, driverPath) };
    // The failing schedule once more, recorded: the page shows its page tables under the lanes.
    if (result.violation) trace.record = (await recordCheckSchedule(driver, result.violation.token, `hmmsim check ${driverPath}: ${result.violation.invariant}`)).doc;
    writeFileSync(o.record, JSON.stringify(trace) + '\n');
  }
  if (o.json) process.stdout.write(JSON.stringify({ ...result, driverModule: driverPath }, null, 2) + '\n');
  else process.stdout.write(formatCheckResult(result, { driver: driverPath, depth: o.depth, preemptions: o.preemptions }) + '\n');
  process.exitCode = result.ok ? 0 : 1;
}
