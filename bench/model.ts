// The model side of the benchmark: the same operations as bench/kernel.c, on hmmsim's mm,
// timed with performance.now(). Each function builds what it needs, times only the
// operation, and tears down; the caller takes medians.

import {
  Machine, MADV_DONTNEED, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process,
} from '../src/index.js';

export interface ModelSample {
  pages: number;
  seconds: number;
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

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

export const MODEL_OPS = {
  anon_write_fault(bytes: number): ModelSample {
    const m = machineFor(bytes);
    const p = m.spawn();
    const pages = bytes / PAGE_SIZE;
    const a = mapNoHuge(p, bytes);
    const seconds = time(() => touchAll(p, a, pages));
    m.dispose();
    return { pages, seconds };
  },
  zero_read_fault(bytes: number): ModelSample {
    const m = machineFor(bytes);
    const p = m.spawn();
    const pages = bytes / PAGE_SIZE;
    const a = mapNoHuge(p, bytes);
    const seconds = time(() => {
      for (let i = 0; i < pages; i++) p.read(a + i * PAGE_SIZE, 1);
    });
    m.dispose();
    return { pages, seconds };
  },
  mprotect(bytes: number): ModelSample {
    const m = machineFor(bytes);
    const p = m.spawn();
    const pages = bytes / PAGE_SIZE;
    const a = mapNoHuge(p, bytes);
    touchAll(p, a, pages);
    const seconds = time(() => p.mprotect(a, bytes, PROT_READ));
    m.dispose();
    return { pages, seconds };
  },
  madvise_dontneed(bytes: number): ModelSample {
    const m = machineFor(bytes);
    const p = m.spawn();
    const pages = bytes / PAGE_SIZE;
    const a = mapNoHuge(p, bytes);
    touchAll(p, a, pages);
    const seconds = time(() => p.madvise(a, bytes, MADV_DONTNEED));
    m.dispose();
    return { pages, seconds };
  },
  munmap(bytes: number): ModelSample {
    const m = machineFor(bytes);
    const p = m.spawn();
    const pages = bytes / PAGE_SIZE;
    const a = mapNoHuge(p, bytes);
    touchAll(p, a, pages);
    const seconds = time(() => p.munmap(a, bytes));
    m.dispose();
    return { pages, seconds };
  },
  fork(_bytes: number, forkBytes: number): ModelSample {
    const m = machineFor(forkBytes);
    const p = m.spawn();
    const pages = forkBytes / PAGE_SIZE;
    const a = mapNoHuge(p, forkBytes);
    touchAll(p, a, pages);
    let c: Process | undefined;
    const seconds = time(() => {
      c = p.fork();
    });
    c!.exit();
    m.dispose();
    return { pages, seconds };
  },
  cow_fault(_bytes: number, forkBytes: number): ModelSample {
    const m = machineFor(forkBytes);
    const p = m.spawn();
    const pages = forkBytes / PAGE_SIZE;
    const a = mapNoHuge(p, forkBytes);
    touchAll(p, a, pages);
    const c = p.fork();
    const seconds = time(() => touchAll(p, a, pages));
    c.exit();
    m.dispose();
    return { pages, seconds };
  },
} satisfies Record<string, (bytes: number, forkBytes: number) => ModelSample>;
