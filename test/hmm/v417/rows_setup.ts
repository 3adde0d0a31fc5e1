// The mirror setup the tests of docs/edge-cases-4.17.md rows 1-37 share (rows.test.ts, mirror-rows.test.ts).
import { expect } from 'vitest';
import { MADV_HUGEPAGE, PMD_SIZE, type Process } from '../../../src/index.js';
import { HmmMirror, hmmMirrorRegister, hmmVmaRangeDone, type HmmMirrorOps, HmmRange as HmmRange417 } from '../../../src/hmm/v417/index.js';
import { anon, newMachine, slotOf, errnoOf } from '../helpers.js';

export function setup(ops: Partial<HmmMirrorOps> = {}) {
  const m = newMachine();
  const p = m.spawn();
  const syncs: Array<[number, number]> = [];
  const mirror = new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s, e) => void syncs.push([s, e]), ...ops });
  hmmMirrorRegister(mirror, p.mm);
  return { m, p, mirror, syncs };
}

export function untracked(r: HmmRange417): boolean {
  return r.tracker === null && errnoOf(() => hmmVmaRangeDone(r)) === 'EINVAL';
}

export const SENTINEL = 0x3f;

/** A THP-backed 2 MiB mapping, written (so one PMD leaf maps it). */
export function thp(p: Process): number {
  const a = anon(p, 512);
  p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
  p.writeU32(a, 7);
  expect(slotOf(p.mm, a).level).toBe(1);
  return a;
}
