// The zoo drivers, their mistakes, and the invariants that catch them (for the tests and the bench).

import type { Invariant } from '../../src/check/index.js';

export interface ZooEntry {
  file: string;
  mistake: string;
  /** Invariants a schedule that shows the mistake may break first. */
  invariant: readonly Invariant[];
}

const STALE: readonly Invariant[] = ['device-maps-freed-frame', 'device-map-beyond-cpu', 'device-read-stale'];

export const ZOO: readonly ZooEntry[] = [
  { file: 'skips-read-retry.ts', mistake: 'skips read_retry', invariant: STALE },
  { file: 'retry-outside-lock.ts', mistake: 'calls read_retry outside the driver lock', invariant: STALE },
  { file: 'callback-without-lock.ts', mistake: 'invalidate callback does not take the driver lock', invariant: STALE },
  { file: 'forgets-set-seq.ts', mistake: 'forgets set_seq', invariant: STALE },
  { file: 'stale-pfns-after-retry.ts', mistake: 'programs the device with pfns fetched before a retry', invariant: STALE },
  { file: 'owner-filter-fork.ts', mistake: 'owner filter hides a migration another mirror of the same device started', invariant: STALE },
  { file: 'writable-from-vma.ts', mistake: 'maps writable after a read-only fault', invariant: ['device-map-beyond-cpu'] },
  { file: 'uses-range-after-remove.ts', mistake: 'keeps using a range after removing its notifier', invariant: STALE },
];
