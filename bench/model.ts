// The model side of the mm operations that bench/kernel.c times on the real kernel: the same
// operations, same sizes, each on a fresh Machine. prepare() builds what the operation needs;
// run() is the timed window and returns the pages it covered; done() tears down.

import {
  Machine, MADV_DONTNEED, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process,
} from '../src/index.js';
import type { Sample } from './row.js';

/**
 * An operation ready to be timed: run() is the timed window and returns its work (or, for a
 * case that times its own parts, the Sample it measured); done() tears down.
 */
export interface Prepared {
  run(): number | Sample | Promise<number | Sample>;
  done(): void;
}

/** A benchmark case: prepare(arg) builds an instance (arg: bytes, or a count the case names). */
export interface BenchCase {
  prepare(arg: number): Prepared | Promise<Prepared>;
}

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

export function machineFor(bytes: number): Machine {
  // RAM for the working set plus headroom, as on the real machine.
  return new Machine({ ramBytes: Math.max(2 * bytes + (64 << 20), 256 << 20), swapBytes: 0, thp: 'never' });
}

function mapNoHuge(p: Process, bytes: number): number {
  const a = p.mmap(0, bytes, RW, ANON);
  p.madvise(a, bytes, MADV_NOHUGEPAGE);
  return a;
}

const ONE = Uint8Array.of(1);

function touchAll(p: Process, a: number, pages: number): void {
  for (let i = 0; i < pages; i++) p.write(a + i * PAGE_SIZE, ONE);
}

/** A mapping of `bytes`, populated or not, and the operation on it. */
function onMapping(populate: boolean, op: (p: Process, a: number, bytes: number, pages: number) => void): BenchCase {
  return {
    prepare(bytes) {
      const m = machineFor(bytes);
      const p = m.spawn();
      const pages = bytes / PAGE_SIZE;
      const a = mapNoHuge(p, bytes);
      if (populate) touchAll(p, a, pages);
      return {
        run: () => (op(p, a, bytes, pages), pages),
        done: () => m.dispose(),
      };
    },
  };
}

export const MODEL_CASES = {
  anon_write_fault: onMapping(false, (p, a, _b, pages) => touchAll(p, a, pages)),
  zero_read_fault: onMapping(false, (p, a, _b, pages) => {
    for (let i = 0; i < pages; i++) p.read(a + i * PAGE_SIZE, 1);
  }),
  mprotect: onMapping(true, (p, a, bytes) => p.mprotect(a, bytes, PROT_READ)),
  madvise_dontneed: onMapping(true, (p, a, bytes) => p.madvise(a, bytes, MADV_DONTNEED)),
  munmap: onMapping(true, (p, a, bytes) => p.munmap(a, bytes)),
  fork: {
    prepare(bytes) {
      const m = machineFor(bytes);
      const p = m.spawn();
      const pages = bytes / PAGE_SIZE;
      touchAll(p, mapNoHuge(p, bytes), pages);
      let c: Process | null = null;
      return {
        run: () => ((c = p.fork()), pages),
        done: () => (c?.exit(), m.dispose()),
      };
    },
  },
  cow_fault: {
    // The child stays alive, so every write of the parent copies its page.
    prepare(bytes) {
      const m = machineFor(bytes);
      const p = m.spawn();
      const pages = bytes / PAGE_SIZE;
      const a = mapNoHuge(p, bytes);
      touchAll(p, a, pages);
      const c = p.fork();
      return {
        run: () => (touchAll(p, a, pages), pages),
        done: () => (c.exit(), m.dispose()),
      };
    },
  },
} satisfies Record<string, BenchCase>;
