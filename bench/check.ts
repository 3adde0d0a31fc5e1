// The race explorer's speed: schedules per second of `hmmsim check` over the zoo's scenarios
// (every scenario, every strategy), with the minimal correct driver, of which the zoo drivers
// are copies with one mistake each: a clean driver runs every schedule to its end, so this is
// the rate a passing check runs at. Target: >= 1,000 schedules per second.

import { checkDriver } from '../src/check/index.js';
import minimal from '../examples/drivers/minimal.js';

const PER_STRATEGY = 300;

export interface CheckBenchRow {
  op: string;
  pages: number;
  modelRate: number;
  kernelRate: null;
  ratio: null;
  target: string;
  met: boolean;
  samples: number[];
}

async function once(): Promise<number> {
  const t0 = performance.now();
  const r = await checkDriver(minimal, { schedules: PER_STRATEGY });
  if (!r.ok) throw new Error(`the minimal driver failed: ${r.violation?.invariant}`);
  return r.schedules / ((performance.now() - t0) / 1000);
}

export async function checkBenchRow(repeats: number, log: (s: string) => void): Promise<CheckBenchRow> {
  log('hmmsim: check schedules/s ...');
  await once(); // warm up: V8 optimises the scheduler, the mm and the driver
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) samples.push(await once());
  const s = [...samples].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return {
    op: 'check: schedules/s, zoo scenarios (minimal driver)', pages: 3 * PER_STRATEGY, modelRate: median, kernelRate: null, ratio: null,
    target: '>= 1,000 schedules/s', met: median >= 1000, samples,
  };
}
