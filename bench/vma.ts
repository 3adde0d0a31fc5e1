// VMA teardown at scale (issue 10, item 8): a process with 100,000 VMAs exits, or unmaps them
// all in one munmap. The rate is VMAs per second; the target is 100,000 in well under a second.
// As bench cases (bench/model.ts): prepare builds the VMAs, run() is the teardown alone.

import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process } from '../src/index.js';
import type { BenchCase } from './model.js';

/** VMAs in the full-size rows. */
export const VMAS = 100_000;
const TOP = 2 ** 46; // well below the mmap base: the hints are always free

/** `n` one-page VMAs below TOP, alternately read-only and read-write so that none merge, placed by hint. */
function manyVmas(n: number): { m: Machine; p: Process } {
  const m = new Machine({ ramBytes: 16 << 20, swapBytes: 0 });
  const p = m.spawn();
  for (let i = 0; i < n; i++) p.mmap(TOP - (i + 1) * PAGE_SIZE, PAGE_SIZE, i % 2 ? PROT_READ | PROT_WRITE : PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
  if (p.mm.vmas.size !== n) throw new Error(`vma bench: ${p.mm.vmas.size} VMAs, not ${n}`);
  return { m, p };
}

export const VMA_TARGET = `${VMAS.toLocaleString('en')} in < 0.5 s`;
/** The target as a rate: VMAs per second of CPU time. */
export const VMA_TARGET_RATE = 2 * VMAS;

export const VMA_CASES = {
  exit_vmas: {
    prepare(n) {
      const { m, p } = manyVmas(n);
      return { run: () => (p.exit(), n), done: () => m.dispose() };
    },
  },
  munmap_vmas: {
    prepare(n) {
      const { m, p } = manyVmas(n);
      return {
        run: () => (p.munmap(TOP - n * PAGE_SIZE, n * PAGE_SIZE), n),
        done() {
          if (p.mm.vmas.size !== 0) throw new Error('vma bench: munmap left VMAs behind');
          m.dispose();
        },
      };
    },
  },
} satisfies Record<string, BenchCase>;
