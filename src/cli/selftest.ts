// `hmmsim selftest`: the kernel's HMM selftests (hmm-tests.c), ported, against dmirror.

import type { Command } from 'commander';
import { runSelftests, formatSelftestTable } from '../drivers/dmirror/selftests.js';

export function registerSelftest(program: Command): void {
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
}
