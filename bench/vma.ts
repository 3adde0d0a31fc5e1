// VMA teardown at scale (issue 10, item 8): a process with 100,000 VMAs exits, or unmaps them
// all in one munmap. The rate is VMAs per second; the target is 100,000 in well under a second.

import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process } from '../src/index.js';
import type { HmmOp } from './hmm.js';

const VMAS = 100_000;
const TOP = 2 ** 46; // well below the mmap base: the hints are always free

/** VMAS one-page VMAs below TOP, alternately read-only and read-write so that none merge, placed by hint. */
function manyVmas(): { m: Machine; p: Process } {
  const m = new Machine({ ramBytes: 16 << 20, swapBytes: 0 });
  const p = m.spawn();
  for (let i = 0; i < VMAS; i++) p.mmap(TOP - (i + 1) * PAGE_SIZE, PAGE_SIZE, i % 2 ? PROT_READ | PROT_WRITE : PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
  if (p.mm.vmas.size !== VMAS) throw new Error(`vma bench: ${p.mm.vmas.size} VMAs, not ${VMAS}`);
  return { m, p };
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

const target = `${VMAS.toLocaleString('en')} in < 0.5 s`;
const met = (rate: number): boolean => rate >= 2 * VMAS;

export const VMA_OPS: Record<string, HmmOp> = {
  exit_100k_vmas: {
    run() {
      const { m, p } = manyVmas();
      const seconds = timed(() => p.exit());
      m.dispose();
      return { pages: VMAS, seconds };
    },
    target,
    met,
  },
  munmap_100k_vmas: {
    run() {
      const { m, p } = manyVmas();
      const seconds = timed(() => p.munmap(TOP - VMAS * PAGE_SIZE, VMAS * PAGE_SIZE));
      if (p.mm.vmas.size !== 0) throw new Error('vma bench: munmap left VMAs behind');
      m.dispose();
      return { pages: VMAS, seconds };
    },
    target,
    met,
  },
};
