// Option parsers shared by every subcommand, so that `--seed` (and the others here) accept and
// refuse the same values everywhere, with the same message.

import { InvalidArgumentError } from 'commander';
import { SEED_MAX } from '../sched/random.js';

/**
 * `--seed <n>`: a decimal integer from 0 to 2^53-1 (9007199254740991), the range of
 * hmmsim's seeds (src/sched/random.ts). Anything else is refused, never wrapped.
 */
export function parseSeed(v: string): number {
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n > SEED_MAX) {
    throw new InvalidArgumentError(`a seed is an integer from 0 to 2^53-1 (${SEED_MAX}).`);
  }
  return n;
}
