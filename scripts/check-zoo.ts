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
  const total = Number(process.argv[3] ?? 10_000);
  const per = Math.ceil(total / 3);
  const correct: Array<[string, string[] | undefined]> = [
    ['minimal', undefined],
    ['migrating', undefined],
    ['dmirror', SCENARIOS.map((s) => s.name).filter((n) => n !== 'fork-mirror')],
  ];
  console.log('| driver | schedules | violations | seconds | schedules/s |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [name, scenarios] of correct) {
    const t0 = performance.now();
    const r = await checkDriver(await loadDriver(`examples/drivers/${name}.ts`), { schedules: per, scenarios });
    const s = (performance.now() - t0) / 1000;
    const v = r.violation ? `${r.violation.invariant} (${r.violation.token})` : '0';
    console.log(`| ${name}.ts | ${r.schedules} | ${v} | ${s.toFixed(1)} | ${(r.schedules / s).toFixed(0)} |`);
  }
} else {
  console.error('usage: scripts/check-zoo.ts table | soak [schedules]');
  process.exitCode = 2;
}
