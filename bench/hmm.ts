// HMM operations with no user-space peer: measured on the model only, against the targets.

import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HmmRange, hmmRangeFault, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, MmuIntervalNotifier,
  mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalSetSeq, PAGE_SIZE, PROT_READ, PROT_WRITE,
} from '../src/index.js';
import { machineFor } from './model.js';
import { Vram } from '../src/drivers/gpusvm/index.js';

export interface HmmOp {
  run(bytes: number): { pages: number; seconds: number };
  target: string;
  met(rate: number, samples: number[]): boolean;
}

const ONE = Uint8Array.of(1);

function mirrorSetup(bytes: number, populate: boolean) {
  const m = machineFor(bytes);
  const p = m.spawn();
  const a = p.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, bytes, MADV_NOHUGEPAGE);
  const pages = bytes / PAGE_SIZE;
  if (populate) for (let i = 0; i < pages; i++) p.write(a + i * PAGE_SIZE, ONE);
  const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), true) });
  mmuIntervalNotifierInsert(sub, p.mm, a, bytes);
  return { m, p, a, pages, sub };
}

/** hmm_range_fault in 2 MiB windows (as drivers do), retrying on EBUSY. */
function faultAll(sub: MmuIntervalNotifier, a: number, bytes: number, flags: number): void {
  const win = 2 << 20;
  const range = new HmmRange({ notifier: sub, start: a, end: a + win, defaultFlags: flags });
  for (let s = a; s < a + bytes; s += win) {
    range.start = s;
    range.end = s + win;
    for (;;) {
      range.notifierSeq = mmuIntervalReadBegin(sub);
      try {
        hmmRangeFault(range);
        break;
      } catch (e) {
        if ((e as { errno?: string }).errno !== 'EBUSY') throw e;
      }
    }
  }
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

export const HMM_OPS: Record<string, HmmOp> = {
  migrate_to_device_and_back: {
    // migrate_vma of the whole range to device-private memory and back, data copied both ways.
    run(bytes) {
      const { m, p, a, pages } = mirrorSetup(bytes, true);
      const vram = new Vram(m, 'bench-device', pages);
      const win = 2 << 20;
      const seconds = timed(() => {
        // drm_pagemap_migrate_to_devmem per 2 MiB allocation, then drm_pagemap_evict_to_ram of each.
        for (let s = a; s < a + bytes; s += win) vram.populateMm(vram.dpagemap, s, s + win, p.mm, 0);
        vram.evictAll();
      });
      // Untimed: the data made the round trip, and the pages really went to the device and back.
      if (vram.stats.pagesToDevice !== pages || vram.stats.pagesToRam !== pages || vram.usedPages !== 0) {
        throw new Error(`migration bench: ${vram.stats.pagesToRam} of ${pages} device pages came back`);
      }
      for (let i = 0; i < pages; i++) if (p.readU8(a + i * PAGE_SIZE) !== 1) throw new Error(`migration bench: page ${i} lost its data`);
      m.dispose();
      return { pages: 2 * pages, seconds };
    },
    target: '>= 1 M pages/s',
    met: (rate) => rate >= 1e6,
  },
  hmm_snapshot: {
    run(bytes) {
      const { m, a, pages, sub } = mirrorSetup(bytes, true);
      const seconds = timed(() => faultAll(sub, a, bytes, 0));
      m.dispose();
      return { pages, seconds };
    },
    target: '>= 20 M pages/s',
    met: (rate) => rate >= 20e6,
  },
  hmm_range_fault_write: {
    run(bytes) {
      const { m, a, pages, sub } = mirrorSetup(bytes, false);
      const seconds = timed(() => faultAll(sub, a, bytes, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE));
      m.dispose();
      return { pages, seconds };
    },
    target: '>= 2 M pages/s',
    met: (rate) => rate >= 2e6,
  },
  invalidate_10k_notifiers: {
    // One-page munmap+mmap cycles under 10,000 interval notifiers (one overlaps): invalidations per second.
    run() {
      return invalidationRate(10_000);
    },
    target: 'log growth (see next row)',
    met: () => true,
  },
  invalidate_100_notifiers: {
    run() {
      return invalidationRate(100);
    },
    target: 'within 3x of 10k',
    met: (rate) => rate <= 3 * (lastRate.get(10_000) ?? Infinity) && rate > 0,
  },
};

const lastRate = new Map<number, number>();

function invalidationRate(n: number): { pages: number; seconds: number } {
  const m = machineFor(64 << 20);
  const p = m.spawn();
  const region = p.mmap(0, n * PAGE_SIZE * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  for (let i = 0; i < n; i++) {
    const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), true) });
    mmuIntervalNotifierInsert(sub, p.mm, region + i * 2 * PAGE_SIZE, PAGE_SIZE);
  }
  const target = region + Math.floor(n / 2) * 2 * PAGE_SIZE;
  p.write(target, ONE);
  const rounds = 20_000;
  const seconds = timed(() => {
    for (let r = 0; r < rounds; r++) {
      p.mprotect(target, PAGE_SIZE, PROT_READ);
      p.mprotect(target, PAGE_SIZE, PROT_READ | PROT_WRITE);
    }
  });
  m.dispose();
  const rate = rounds / seconds;
  lastRate.set(n, rate);
  return { pages: rounds, seconds };
}
