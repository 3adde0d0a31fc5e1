// Seeded pseudo-random numbers for the scheduler, the selftests and the simulator: pure-rand's
// xoroshiro128+ generator and its unbiased distributions. A seed is any integer from 0 to
// 2^53 - 1 (Number.MAX_SAFE_INTEGER); anything else is refused, never wrapped, so two
// different seeds always give two different streams.

import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

/** The largest seed: 2^53 - 1. Seeds are the integers 0..SEED_MAX. */
export const SEED_MAX = Number.MAX_SAFE_INTEGER;

/** A seed hmmsim accepts: an integer from 0 to SEED_MAX. */
export function isSeed(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Throw a RangeError naming the accepted range unless `seed` is one. */
export function checkSeed(seed: unknown): asserts seed is number {
  if (!isSeed(seed)) throw new RangeError(`a seed is an integer from 0 to 2^53-1 (${SEED_MAX}); got ${String(seed)}`);
}

/** A seeded stream of random numbers. The same seed gives the same stream on every platform. */
export class SeededRandom {
  private constructor(private readonly rng: JumpableRandomGenerator) {}

  /** The stream of `seed` (0..SEED_MAX). */
  static of(seed: number): SeededRandom {
    checkSeed(seed);
    const lo = seed % 2 ** 32;
    const hi = (seed - lo) / 2 ** 32;
    // The generator's state holds both halves of the seed, so no two seeds share a state (for
    // seeds below 2^32 it is pure-rand's own xoroshiro128plus(seed) state). One jump (2^64
    // steps) then mixes it: right after seeding, xoroshiro's first outputs follow the seed
    // closely, and `explore` tries consecutive seeds.
    const rng = xoroshiro128plusFromState([~hi, ~lo, lo | 0, hi]);
    rng.jump();
    return new SeededRandom(rng);
  }

  /** A uniform integer in [0, n) (n >= 1). */
  below(n: number): number {
    return uniformInt(this.rng, 0, n - 1);
  }

  /** A uniform number in [0, 1), 53 bits of randomness. */
  float(): number {
    return uniformFloat64(this.rng);
  }

  /** A second stream, independent of this one (2^64 steps ahead); this stream is unchanged. */
  split(): SeededRandom {
    const rng = this.rng.clone();
    rng.jump();
    return new SeededRandom(rng);
  }
}
