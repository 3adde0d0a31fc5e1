// Ranges and notifiers (drm_gpusvm_range_find_or_insert, drm_gpusvm_range_chunk_size,
// drm_gpusvm_notifier_alloc/insert/remove, drm_gpusvm_range_remove, drm_gpusvm_fini).
import { describe, expect, it } from 'vitest';
import {
  drmGpusvmFindVmaStart, drmGpusvmFini, drmGpusvmHasMapping, drmGpusvmInit, drmGpusvmRangeFindOrInsert, drmGpusvmRangeRemove,
  gpusvmInvalidateRanges, SZ_4K, SZ_64K, SZ_2M,
} from '../../../src/drivers/gpusvm/index.js';
import { KernelError, PROT_READ } from '../../../src/index.js';
import { MiB, P, makeDriver, setup, touch } from './helpers.js';

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof KernelError) return e.errno;
    throw e;
  }
  throw new Error('no error');
}

describe('gpusvm ranges: chunk sizes inside the VMA', () => {
  it('picks 2 MiB inside a large VMA, 64 KiB and 4 KiB where 2 MiB does not fit', () => {
    const { p } = setup(8 * MiB);
    // A VMA of 2 MiB + 64 KiB + 4 KiB starting 2 MiB-aligned: each chunk size in turn.
    const a = p.mmap(0x80000000, 2 * MiB + 64 * 1024 + P, 3, 0x22 | 0x10);
    const d = makeDriver(p.mm);
    const r1 = drmGpusvmRangeFindOrInsert(d.gpusvm, a + 5 * P, 0, p.mm.taskSize, {});
    expect([r1.start, r1.size]).toEqual([a, SZ_2M]);
    const r2 = drmGpusvmRangeFindOrInsert(d.gpusvm, a + SZ_2M + 3 * P, 0, p.mm.taskSize, {});
    expect([r2.start, r2.size]).toEqual([a + SZ_2M, SZ_64K]);
    const r3 = drmGpusvmRangeFindOrInsert(d.gpusvm, a + SZ_2M + SZ_64K, 0, p.mm.taskSize, {});
    expect([r3.start, r3.size]).toEqual([a + SZ_2M + SZ_64K, SZ_4K]);
    // The same address finds the same range.
    expect(drmGpusvmRangeFindOrInsert(d.gpusvm, a + 100 * P, 0, p.mm.taskSize, {})).toBe(r1);
    expect(d.gpusvm.stats.rangesInserted).toBe(3);
  });

  it('a chunk that would overlap an existing range is skipped for a smaller one', () => {
    const { p, a } = setup(4 * MiB);
    const d = makeDriver(p.mm, { chunkSizes: [SZ_2M, SZ_64K, SZ_4K] });
    // Force a 4 KiB range at a + 2 MiB - 4 KiB by limiting the GPU VA window, then fault next to it.
    const small = drmGpusvmRangeFindOrInsert(d.gpusvm, a + SZ_2M - P, a + SZ_2M - P, a + SZ_2M, {});
    expect(small.size).toBe(SZ_4K);
    const r = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, {});
    // 2 MiB at a would overlap the small range: 64 KiB.
    expect([r.start, r.size]).toEqual([a, SZ_64K]);
  });

  it('check_pages_threshold keeps small ranges where the CPU has pages', () => {
    const { p, a } = setup(4 * MiB);
    const d = makeDriver(p.mm, { chunkSizes: [SZ_64K, SZ_4K] });
    // Nothing faulted in: a 64 KiB chunk (<= threshold) is refused, 4 KiB remains.
    const r = drmGpusvmRangeFindOrInsert(d.gpusvm, a, 0, p.mm.taskSize, { checkPagesThreshold: SZ_64K });
    expect(r.size).toBe(SZ_4K);
    touch(p, a + SZ_64K, 16);
    const r2 = drmGpusvmRangeFindOrInsert(d.gpusvm, a + SZ_64K, 0, p.mm.taskSize, { checkPagesThreshold: SZ_64K });
    expect(r2.size).toBe(SZ_64K);
  });

  it('errors: outside the GPU SVM, no VMA, write to a read-only VMA, exited mm; nothing left behind', () => {
    const { p, a } = setup(4 * MiB);
    const ro = p.mmap(0x90000000, 4 * P, PROT_READ, 0x22 | 0x10);
    const d = makeDriver(p.mm);
    const g = d.gpusvm;
    expect(errnoOf(() => drmGpusvmRangeFindOrInsert(g, p.mm.taskSize + 5 * P, 0, p.mm.taskSize, {}))).toBe('EINVAL');
    expect(errnoOf(() => drmGpusvmRangeFindOrInsert(g, 0x70000000, 0, p.mm.taskSize, {}))).toBe('ENOENT');
    expect(errnoOf(() => drmGpusvmRangeFindOrInsert(g, ro, 0, p.mm.taskSize, {}))).toBe('EPERM');
    expect(drmGpusvmRangeFindOrInsert(g, ro, 0, p.mm.taskSize, { readOnly: true }).size).toBe(SZ_4K);
    expect(g.notifiers.length).toBe(1); // the failed inserts took their notifiers out again
    expect(p.mm.notifiers.intervalCount).toBe(1);
    void a;
    p.exit();
    expect(errnoOf(() => drmGpusvmRangeFindOrInsert(g, a, 0, 2 ** 47, {}))).toBe('EFAULT');
  });

  it('drm_gpusvm_init checks its arguments', () => {
    const { p } = setup();
    const ops = { invalidate: () => {} };
    expect(errnoOf(() => drmGpusvmInit('x', p.mm, 0, p.mm.taskSize, 512 * MiB, {} as never, [SZ_4K]))).toBe('EINVAL');
    expect(errnoOf(() => drmGpusvmInit('x', p.mm, 0, p.mm.taskSize, 512 * MiB, ops, []))).toBe('EINVAL');
    expect(errnoOf(() => drmGpusvmInit('x', p.mm, 0, p.mm.taskSize, 512 * MiB, ops, [SZ_4K, SZ_64K]))).toBe('EINVAL');
    expect(errnoOf(() => drmGpusvmInit('x', p.mm, 0, p.mm.taskSize, 512 * MiB, ops, [SZ_2M, 3 * SZ_4K, SZ_4K]))).toBe('EINVAL');
    expect(errnoOf(() => drmGpusvmInit('x', p.mm, 0, p.mm.taskSize, 512 * MiB, ops, [SZ_2M, SZ_64K]))).toBe('EINVAL');
    expect(errnoOf(() => drmGpusvmInit('x', p.mm, 0, p.mm.taskSize, SZ_64K, ops, [SZ_2M, SZ_4K]))).toBe('EINVAL');
    expect(errnoOf(() => drmGpusvmInit('x', p.mm, 1, p.mm.taskSize, 512 * MiB, ops, [SZ_4K]))).toBe('EINVAL');
  });
});

describe('gpusvm notifiers: fixed size, created on demand, removed with their last range', () => {
  it('one notifier per notifier_size window the device touches, aligned', () => {
    const { p } = setup(4 * MiB);
    const b = p.mmap(0x80000000 - 2 * MiB, 4 * MiB, 3, 0x22 | 0x10); // straddles a 512 MiB boundary at 0x80000000
    const d = makeDriver(p.mm);
    const r1 = drmGpusvmRangeFindOrInsert(d.gpusvm, b, 0, p.mm.taskSize, {});
    const r2 = drmGpusvmRangeFindOrInsert(d.gpusvm, b + 2 * MiB, 0, p.mm.taskSize, {});
    expect(d.gpusvm.notifiers.map((n) => [n.start, n.end])).toEqual([[0x60000000, 0x80000000], [0x80000000, 0xa0000000]]);
    expect(r1.notifier).not.toBe(r2.notifier);
    expect(p.mm.notifiers.intervalCount).toBe(2);
    expect(drmGpusvmHasMapping(d.gpusvm, b, b + 1)).toBe(true);
    drmGpusvmRangeRemove(d.gpusvm, r1);
    expect(d.gpusvm.notifiers.length).toBe(1);
    expect(p.mm.notifiers.intervalCount).toBe(1);
    expect(drmGpusvmHasMapping(d.gpusvm, b, b + 2 * MiB)).toBe(false);
    drmGpusvmFini(d.gpusvm);
    expect(d.gpusvm.notifiers.length).toBe(0);
    expect(p.mm.notifiers.intervalCount).toBe(0);
  });

  it('a range never spans two notifiers: at a notifier edge the chunk shrinks', () => {
    const { p } = setup();
    const b = p.mmap(0x80000000 - SZ_64K, 4 * MiB, 3, 0x22 | 0x10);
    const d = makeDriver(p.mm, { notifierSize: 2 * MiB });
    const r = drmGpusvmRangeFindOrInsert(d.gpusvm, b, 0, p.mm.taskSize, {});
    expect(r.end).toBeLessThanOrEqual(r.notifier.end);
    expect(r.size).toBe(SZ_64K);
  });

  it('drm_gpusvm_find_vma_start', () => {
    const { p, a } = setup(4 * MiB);
    const d = makeDriver(p.mm);
    expect(drmGpusvmFindVmaStart(d.gpusvm, a - 8 * P, a + P)).toBe(a);
    expect(drmGpusvmFindVmaStart(d.gpusvm, a - 8 * P, a)).toBe(Infinity);
  });

  it('the invalidate body unbinds and unmaps every overlapped range, and queues UNMAPped ones', () => {
    const { p, a } = setup(4 * MiB);
    const d = makeDriver(p.mm);
    const g = d.gpusvm;
    const r1 = drmGpusvmRangeFindOrInsert(g, a, 0, p.mm.taskSize, {});
    const r2 = drmGpusvmRangeFindOrInsert(g, a + SZ_2M, 0, p.mm.taskSize, {});
    g.notifierLockWrite();
    const n = gpusvmInvalidateRanges(g, r1.notifier, { mm: p.mm, start: a + SZ_2M - P, end: a + SZ_2M + P, event: 'UNMAP', flags: 1, owner: null });
    g.notifierUnlockWrite();
    expect(n).toBe(2);
    expect(g.garbage).toEqual([r1, r2]);
    expect(r1.flags.partialUnmap && r2.flags.partialUnmap).toBe(true);
  });
});
