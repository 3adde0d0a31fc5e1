// The zoo's figures for docs/check.md.
//   npx tsx scripts/check-zoo.ts table   schedules each strategy needed per zoo driver (markdown)
//   npx tsx scripts/check-zoo.ts soak    the correct drivers through 10,000 schedules each

import { checkDriver, loadDriver, SCENARIOS } from '../src/check/index.js';
import { zooRow, zooTable } from '../src/check/zoo-table.js';

export const ZOO_FILES = [
  'skips-read-retry', 'retry-outside-lock', 'callback-without-lock', 'forgets-set-seq', 'stale-pfns-after-retry',
  'owner-filter-fork', 'writable-from-vma', 'uses-range-after-remove',
];

const mode = process.argv[2] ?? 'table';
if (mode === 'table') {
  const rows = [];
  for (const f of ZOO_FILES) rows.push(await zooRow(`${f}.ts`, await loadDriver(`examples/drivers/${f}.ts`)));
  console.log(zooTable(rows));
} else if (mode === 'soak') {
  // Bounded search runs to exhaustion (every schedule with <= 2 preemptions); PCT and the random
  // walk share the rest, so every driver passes at least `total` schedules.
  const total = Number(process.argv[3] ?? 10_000);
  const correct: Array<[string, string[] | undefined]> = [
    ['minimal', undefined],
    ['migrating', undefined],
    ['gpusvm', undefined],
    ['dmirror', SCENARIOS.map((s) => s.name).filter((n) => n !== 'fork-mirror')],
  ];
  console.log('| driver | bounded (<= 2 preemptions) | PCT (depth 3) | random | violations | seconds |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const [name, scenarios] of correct) {
    const driver = await loadDriver(`examples/drivers/${name}.ts`);
    const t0 = performance.now();
    const bounded = await checkDriver(driver, { strategies: ['bounded'], schedules: total, scenarios });
    const rest = Math.max(0, total - bounded.schedules);
    const pct = await checkDriver(driver, { strategies: ['pct'], schedules: Math.ceil(rest / 2), scenarios });
    const random = await checkDriver(driver, { strategies: ['random'], schedules: Math.ceil(rest / 2), scenarios });
    const s = (performance.now() - t0) / 1000;
    const bad = [bounded, pct, random].find((r) => r.violation)?.violation;
    const b = `${bounded.schedules}${bounded.strategies[0]!.complete ? ' (all)' : ''}`;
    console.log(`| ${name}.ts | ${b} | ${pct.schedules} | ${random.schedules} | ${bad ? `${bad.invariant} (${bad.token})` : '0'} | ${s.toFixed(0)} |`);
  }
} else {
  console.error('usage: scripts/check-zoo.ts table | soak [schedules]');
  process.exitCode = 2;
}
