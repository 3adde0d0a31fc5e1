// drm_gpusvm_get_pages: the read_begin / hmm_range_fault / lock / read_retry protocol, its
// timeout (a Clock, or passes), the page checks of map_pages, and its async form's
// preemption point between the snapshot and the lock.
import { describe, expect, it } from 'vitest';
import {
  drmGpusvmRangeFindOrInsert, drmGpusvmRangeGetPages, drmGpusvmRangeGetPagesAsync, drmGpusvmRangeUnmapPages, drmPagemapMigrateToDevmem,
  GPUSVM_TIMEOUT_PASSES, Vram, type DrmGpusvmRange,
} from '../../../src/drivers/gpusvm/index.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE } from '../../../src/hmm/range.js';
import {
  KernelError, MIGRATE_VMA_SELECT_SYSTEM, migrateVmaFinalize, migrateVmaSetup, newMigrateVma, pagemap, PROT_READ, WouldBlock,
} from '../../../src/index.js';
import { MiB, P, makeDriver, RW, setup, touch } from './helpers.js';

async function errnoOfAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KernelError) return e.errno;
    throw e;
  }
  throw new Error('no error');
}
function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof KernelError) return e.errno;
    throw e;
  }
  throw new Error('no error');
}

/** The CPU's pfn at addr (present pages only), -1 otherwise. */
function cpuPfn(p: Parameters<typeof pagemap>[0] extends infer M ? { mm: M } : never, addr: number): number {
  const e = pagemap(p.mm, addr);
  return e.present ? e.pfn : -1;
}

describe('gpusvm get_pages', () => {
  it('gets every page of the range with one hmm_range_fault, as the CPU maps it; valid pages are not got again', () => {
    const { p, a } = setup(4 * MiB);
    touch(p, a, 512);
    const d = makeDriver(p.mm);
    const r = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, {});
    drmGpusvmRangeGetPages(d.gpusvm, r, {});
    expect(d.gpusvm.stats.hmmRangeFaults).toBe(1);
    for (let i = 0; i < 512; i++) {
      expect(r.pages.pfns![i]).toBe(cpuPfn(p, a + i * P));
      expect(r.pages.hmmFlags![i]! & (HMM_PFN_VALID | HMM_PFN_WRITE)).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    }
    expect(r.pages.flags).toMatchObject({ hasDmaMapping: true, hasDevmemPages: false, writable: true });
    drmGpusvmRangeGetPages(d.gpusvm, r, {});
    expect(d.gpusvm.stats.hmmRangeFaults).toBe(1);
    expect(d.gpusvm.stats.getPagesValid).toBe(1);
    // Unmapped pages are got anew.
    drmGpusvmRangeUnmapPages(d.gpusvm, r);
    drmGpusvmRangeGetPages(d.gpusvm, r, {});
    expect(d.gpusvm.stats.hmmRangeFaults).toBe(2);
  });

  it('a read (ctx.readOnly) maps the zero page read-only and does not break COW; a later write gets the pages again', () => {
    const { p, a } = setup(2 * MiB);
    const d = makeDriver(p.mm);
    const r = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, { readOnly: true });
    drmGpusvmRangeGetPages(d.gpusvm, r, { readOnly: true });
    expect(r.pages.pfns![0]).toBe(p.mm.machine.phys.zeroPfn);
    expect(r.pages.flags.writable).toBe(false);
    drmGpusvmRangeGetPages(d.gpusvm, r, {});
    expect(r.pages.flags.writable).toBe(true);
    expect(r.pages.pfns![0]).not.toBe(p.mm.machine.phys.zeroPfn);
    expect(r.pages.pfns![0]).toBe(cpuPfn(p, a));
    // The write's own COW breaks invalidate the range while hmm_range_fault runs: EBUSY, again.
    expect(d.gpusvm.stats.hmmRangeFaults).toBe(2 + d.gpusvm.stats.retries);
  });

  it('async: a CPU change between the snapshot and the lock makes read_retry start over, and the pages committed are the new ones', async () => {
    const { p, a } = setup(2 * MiB);
    touch(p, a, 512);
    const d = makeDriver(p.mm);
    const r = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, {});
    const before = cpuPfn(p, a);
    let raced = 0;
    await drmGpusvmRangeGetPagesAsync(d.gpusvm, r, { readOnly: true }, {
      yield: async (label) => {
        if (label === 'gpusvm: get_pages, before the notifier lock' && raced++ === 0) {
          // The CPU remaps page 0 (fork + write breaks COW on it: a new frame).
          const child = p.fork();
          p.writeU8(a, 9);
          child.exit();
        }
      },
    });
    expect(raced).toBe(2);
    expect(d.gpusvm.stats.retries).toBe(1);
    expect(cpuPfn(p, a)).not.toBe(before);
    expect(r.pages.pfns![0]).toBe(cpuPfn(p, a));
  });

  it('without a clock the timeout is GPUSVM_TIMEOUT_PASSES passes; with one, HMM_RANGE_DEFAULT_TIMEOUT of simulated time', async () => {
    for (const clocked of [false, true]) {
      const { p, a } = setup(2 * MiB);
      touch(p, a, 512);
      let now = 0;
      const d = makeDriver(p.mm, { options: clocked ? { clock: { now: () => now } } : {} });
      const r = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, {});
      let passes = 0;
      const err = await errnoOfAsync(drmGpusvmRangeGetPagesAsync(d.gpusvm, r, { readOnly: true }, {
        yield: async () => {
          passes++;
          now += 100e6; // 100 ms of simulated time per pass
          p.mprotect(a, P, passes % 2 ? PROT_READ : RW); // an invalidation every pass
        },
      }));
      expect(err).toBe('EBUSY');
      // 100 ms a pass: passes start until time_after(now, start + 1000 ms), i.e. 11 of them;
      // without a clock, the pass budget.
      expect(passes).toBe(clocked ? 11 : GPUSVM_TIMEOUT_PASSES);
    }
  });

  it('a range the CPU unmapped fails with EFAULT; mixed device and system pages with EOPNOTSUPP (allowMixed: device first only); devmemOnly refuses system pages', () => {
    const { p, a } = setup(4 * MiB);
    touch(p, a, 1024);
    const d = makeDriver(p.mm);
    const vram = new Vram(p.mm.machine, 'dev', 1024);
    const ctx = { devicePrivatePageOwner: 'dev' };
    const r1 = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, ctx);
    const r2 = drmGpusvmRangeFindOrInsert(d.gpusvm, a + 2 * MiB, 0, p.mm.taskSize, ctx);
    // First half of r1 and second half of r2 in device memory.
    const al1 = vram.alloc(p.mm, 256)!;
    drmPagemapMigrateToDevmem(al1, p.mm, a, a + MiB, 0, 'dev');
    const al2 = vram.alloc(p.mm, 256)!;
    drmPagemapMigrateToDevmem(al2, p.mm, a + 3 * MiB, a + 4 * MiB, 0, 'dev');
    expect(errnoOf(() => drmGpusvmRangeGetPages(d.gpusvm, r1, ctx))).toBe('EOPNOTSUPP');
    expect(r1.pages.flags.hasDmaMapping).toBe(false);
    drmGpusvmRangeGetPages(d.gpusvm, r1, { ...ctx, allowMixed: true });
    expect(r1.pages.flags).toMatchObject({ hasDevmemPages: true, hasDmaMapping: true });
    expect(errnoOf(() => drmGpusvmRangeGetPages(d.gpusvm, r2, { ...ctx, allowMixed: true }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => drmGpusvmRangeGetPages(d.gpusvm, r2, { ...ctx, devmemOnly: true }))).toBe('EFAULT');
    // UNMAP marks the range; get_pages then refuses it.
    p.munmap(a, P);
    expect(r1.flags.unmapped).toBe(true);
    expect(errnoOf(() => drmGpusvmRangeGetPages(d.gpusvm, r1, ctx))).toBe('EFAULT');
  });

  it('sleeps where the kernel sleeps: a page under migration is WouldBlock to the sync form, a wait to the async form', async () => {
    const { p, a } = setup(2 * MiB);
    touch(p, a, 512);
    const d = makeDriver(p.mm);
    const r: DrmGpusvmRange = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, {});
    const vma = p.mm.findVma(a)!;
    const args = newMigrateVma(vma, a + 4 * P, a + 5 * P, MIGRATE_VMA_SELECT_SYSTEM, 'someone');
    migrateVmaSetup(args); // page 4 is now a migration entry, its page locked
    expect(() => drmGpusvmRangeGetPages(d.gpusvm, r, {})).toThrow(WouldBlock);
    expect(r.pages.flags.hasDmaMapping).toBe(false);
    let slept = 0;
    const done = drmGpusvmRangeGetPagesAsync(d.gpusvm, r, {}, { sleep: async (w) => { slept++; await w; } });
    setTimeout(() => migrateVmaFinalize(args), 5); // the migration gives up: the page comes back
    await done;
    expect(slept).toBeGreaterThan(0);
    expect(r.pages.pfns![4]).toBe(cpuPfn(p, a + 4 * P));
  });
});
