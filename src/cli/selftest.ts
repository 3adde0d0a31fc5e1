// `hmmsim selftest`: the kernel's HMM selftests (hmm-tests.c), ported, against dmirror. It prints
// what a kselftest_harness.h binary prints (TAP 13, `# Totals:` last) and takes the harness's
// options, so tools that read kselftest output read ours.

import { type Command, Option } from 'commander';
import {
  formatHmmSelftestList, formatKselftestTotals, formatSelftestSummary, runSelftests, runSelftestsKselftest, selftestCases,
  selftestEnabled, selftestFullName, type SelftestFilterOption, type SelftestOptions, type SelftestResult,
} from '../drivers/dmirror/selftests.js';
import { parseSeed } from './options.js';
import { textTable } from './table.js';

interface SelftestCliOptions {
  list?: boolean;
  filter?: string;
  seed?: number;
  fullBenchmark?: boolean;
  json?: boolean;
}

/** Per fixture.variant: passed, failed, skipped, time. As TAP comments. */
export function formatSelftestSummaryTable(results: readonly SelftestResult[]): string {
  const groups = new Map<string, { pass: number; fail: number; skip: number; ms: number }>();
  for (const r of results) {
    const key = `${r.fixture}.${r.variant}`;
    const g = groups.get(key) ?? { pass: 0, fail: 0, skip: 0, ms: 0 };
    g[r.status]++;
    g.ms += r.ms;
    groups.set(key, g);
  }
  const rows = [...groups].map(([k, g]) => [k, g.pass, g.fail, g.skip, Math.round(g.ms)]);
  return textTable(['fixture.variant', 'pass', 'fail', 'skip', 'ms'], rows, { prefix: '# ' });
}

export function registerSelftest(program: Command): void {
  // The harness's filter options keep their order: the first one that matches a case decides.
  const filters: SelftestFilterOption[] = [];
  const filterOption = (flags: string, opt: SelftestFilterOption['opt'], what: string): Option =>
    new Option(flags, what).argParser((name: string) => {
      filters.push({ opt, name });
      return name;
    });
  program
    .command('selftest')
    .description('run the kernel\'s HMM selftests (hmm-tests.c), ported, against the dmirror test driver; prints kselftest\'s TAP output')
    .option('-l, --list', 'list the fixtures, variants and tests')
    .addOption(filterOption('-t, --test <name>', 't', 'include test'))
    .addOption(filterOption('-T, --skip-test <name>', 'T', 'exclude test'))
    .addOption(filterOption('-v, --variant <name>', 'v', 'include variant'))
    .addOption(filterOption('-V, --skip-variant <name>', 'V', 'exclude variant'))
    .addOption(filterOption('-f, --fixture <name>', 'f', 'include fixture'))
    .addOption(filterOption('-F, --skip-fixture <name>', 'F', 'exclude fixture'))
    .addOption(filterOption('-r, --run <fixture.variant.test>', 'r', 'run the test of that full name'))
    .option('--filter <text>', 'only the tests whose full name (fixture.variant.test) contains text')
    .option('--seed <n>', 'first scheduler seed of anon_teardown\'s races (an integer from 0 to 2^53-1)', parseSeed)
    .option('--full-benchmark', 'run benchmark_thp_migration at the kernel\'s sizes (slow)')
    .option('--json', 'print the results as JSON instead of TAP')
    .addHelpText('after', `
Test filter options can be given several times; the first one that matches a test decides.
For example, to run every test of variant 'hmm_device_private' but 'anon_read':
  hmmsim selftest -T anon_read -v hmm_device_private
A selection that matches no test exits with status 2.`)
    .action(async (o: SelftestCliOptions) => {
      const out = (line: string): void => void process.stdout.write(line + '\n');
      if (o.list) {
        out(formatHmmSelftestList());
        return;
      }
      const opts: SelftestOptions = {
        quick: !o.fullBenchmark,
        filter: (c) => selftestEnabled(c, filters) && (o.filter === undefined || selftestFullName(c).includes(o.filter)),
      };
      if (o.seed !== undefined) opts.seed = o.seed;
      if (selftestCases(opts).length === 0) {
        process.stderr.write('hmmsim selftest: no test matches the selection (hmmsim selftest -l lists them)\n');
        process.exitCode = 2;
        return;
      }
      let results: SelftestResult[];
      if (o.json) {
        results = (await runSelftests(opts)).results;
        out(JSON.stringify(results, null, 2));
      } else {
        results = await runSelftestsKselftest(selftestCases(opts), opts, out);
        out(formatSelftestSummaryTable(results));
        out(`# ${formatSelftestSummary(results)}`);
        out(formatKselftestTotals(results));
      }
      process.exitCode = results.some((r) => r.status === 'fail') ? 1 : 0;
    });
}
