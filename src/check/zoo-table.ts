// The table docs/check.md shows: for each driver, how many schedules each strategy ran before
// it found the first violation (and in which scenario, with how many preemptions once
// minimised). scripts/check-zoo.ts prints it; a test keeps the docs' copy equal to it.

import { checkDriver, type StrategyName } from './check.js';
import type { CheckDriver } from './driver.js';

export interface ZooRow {
  driver: string;
  /** Per strategy: the schedule that found it (1-based), or null if none did within the budget. */
  found: Record<StrategyName, { at: number; scenario: string; invariant: string } | null>;
}

/** Run each strategy alone on `driver` (default options: PCT depth 3, <= 2 preemptions, seed 1). */
export async function zooRow(name: string, driver: CheckDriver, budget = 1000): Promise<ZooRow> {
  const found = {} as ZooRow['found'];
  for (const strategy of ['pct', 'bounded', 'random'] as const) {
    const r = await checkDriver(driver, { strategies: [strategy], schedules: budget, minimise: false });
    const v = r.violation;
    found[strategy] = v ? { at: v.foundAt, scenario: v.scenario, invariant: v.invariant } : null;
  }
  return { driver: name, found };
}

/** The rows as a markdown table. */
export function zooTable(rows: readonly ZooRow[], budget = 1000): string {
  const cell = (f: ZooRow['found'][StrategyName]): string => (f ? `${f.at} (${f.scenario})` : `none in ${budget}`);
  const out = [
    '| driver | PCT, depth 3 | bounded, <= 2 preemptions | random walk | invariant |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const inv = r.found.pct?.invariant ?? r.found.bounded?.invariant ?? r.found.random?.invariant ?? '-';
    out.push(`| ${r.driver} | ${cell(r.found.pct)} | ${cell(r.found.bounded)} | ${cell(r.found.random)} | ${inv} |`);
  }
  return out.join('\n');
}
