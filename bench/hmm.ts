// HMM operations with no user-space peer, as bench cases (see model.ts for the interface):
// a snapshot and write faults through hmm_range_fault, the migration round trip (data copied
// at migration time, and the lazy shared-slot variant), and invalidations under 0 to 1,000,000
// interval notifiers.

import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HmmRange, hmmRangeFault, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE,
  MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalSetSeq, PAGE_SIZE, PROT_READ, PROT_WRITE,
} from '../src/index.js';
import { EAGER_PAGE_COPY, LAZY_PAGE_COPY, Vram, type PageCopy } from '../src/drivers/gpusvm/vram.js';
import { machineFor, type BenchCase } from './model.js';

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

/**
 * migrate_vma of the whole range to device-private memory and back, as gpusvm's Vram does it
 * (drm_pagemap_migrate_to_devmem per 2 MiB, then drm_pagemap_evict_to_ram of each allocation),
 * with the copy engine's page copy given: eager (the bytes move now) or lazy (shared slot).
 */
function migrationRoundTrip(pageCopy: PageCopy): BenchCase {
  return {
    prepare(bytes) {
      const { m, p, a, pages } = mirrorSetup(bytes, true);
      const vram = new Vram(m, 'bench-device', pages);
      vram.pageCopy = pageCopy;
      const win = 2 << 20;
      return {
        run() {
          for (let s = a; s < a + bytes; s += win) vram.populateMm(vram.dpagemap, s, s + win, p.mm, 0);
          vram.evictAll();
          return 2 * pages;
        },
        done() {
          // Untimed: the data made the round trip, and the pages really went to the device and back.
          if (vram.stats.pagesToDevice !== pages || vram.stats.pagesToRam !== pages || vram.usedPages !== 0) {
            throw new Error(`migration bench: ${vram.stats.pagesToRam} of ${pages} device pages came back`);
          }
          for (let i = 0; i < pages; i++) if (p.readU8(a + i * PAGE_SIZE) !== 1) throw new Error(`migration bench: page ${i} lost its data`);
          m.dispose();
        },
      };
    },
  };
}

/** Pairs of one-page mprotects (read-only, then read-write) per sample: 2 invalidations each. */
export const INVALIDATION_PAIRS = 20_000;

/**
 * One populated page made read-only and read-write again, 20,000 times: each mprotect is one
 * invalidation, under `n` interval notifiers on pages of their own, one of them over this page
 * (none when n is 0). The growth with n is the interval tree's lookup.
 */
const invalidations: BenchCase = {
  prepare(n) {
    const m = machineFor(64 << 20);
    const p = m.spawn();
    const slots = Math.max(n, 32);
    const region = p.mmap(0, slots * 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    for (let i = 0; i < n; i++) {
      const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), true) });
      mmuIntervalNotifierInsert(sub, p.mm, region + i * 2 * PAGE_SIZE, PAGE_SIZE);
    }
    const target = region + Math.floor(slots / 2) * 2 * PAGE_SIZE;
    p.write(target, ONE);
    return {
      run() {
        for (let r = 0; r < INVALIDATION_PAIRS; r++) {
          p.mprotect(target, PAGE_SIZE, PROT_READ);
          p.mprotect(target, PAGE_SIZE, PROT_READ | PROT_WRITE);
        }
        return 2 * INVALIDATION_PAIRS;
      },
      done: () => m.dispose(),
    };
  },
};

export const HMM_CASES = {
  migrate_eager: migrationRoundTrip(EAGER_PAGE_COPY),
  migrate_lazy: migrationRoundTrip(LAZY_PAGE_COPY),
  hmm_snapshot: {
    prepare(bytes) {
      const { m, a, pages, sub } = mirrorSetup(bytes, true);
      return { run: () => (faultAll(sub, a, bytes, 0), pages), done: () => m.dispose() };
    },
  },
  hmm_range_fault_write: {
    prepare(bytes) {
      const { m, a, pages, sub } = mirrorSetup(bytes, false);
      return { run: () => (faultAll(sub, a, bytes, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE), pages), done: () => m.dispose() };
    },
  },
  invalidations,
} satisfies Record<string, BenchCase>;
