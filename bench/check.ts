// The race explorer's speed: schedules per second of `hmmsim check` over the zoo's scenarios
// (every scenario, every strategy), with the minimal correct driver, of which the zoo drivers
// are copies with one mistake each: a clean driver runs every schedule to its end, so this is
// the rate a passing check runs at. Target: >= 1,000 schedules per second.

import { checkDriver } from '../src/check/index.js';
import minimal from '../examples/drivers/minimal.js';
import type { BenchCase } from './model.js';

/** Schedules per strategy in one sample. */
export const CHECK_SCHEDULES = 300;

export const CHECK_CASES = {
  check: {
    prepare(schedules) {
      return {
        async run() {
          const r = await checkDriver(minimal, { schedules });
          if (!r.ok) throw new Error(`the minimal driver failed: ${r.violation?.invariant}`);
          return r.schedules;
        },
        done() {},
      };
    },
  },
} satisfies Record<string, BenchCase>;
