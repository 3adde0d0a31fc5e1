import { describe, expect, it } from 'vitest';
import { KERNEL_OPS, isUnavailable, runKernelBench } from '../../bench/kernel.js';

const REPEATS = 1;
const SIZE = 16 * 2 ** 20;
const FORK_SIZE = 8 * 2 ** 20;

// Run once at collection time: it.skipIf needs to know up front whether `cc` is usable.
const result = await runKernelBench({ sizeBytes: SIZE, forkBytes: FORK_SIZE, repeats: REPEATS });
const unavailable = isUnavailable(result) ? result.unavailable : undefined;

describe('bench/kernel (real Linux mm timings)', () => {
  it.skipIf(unavailable !== undefined)(
    `reports every op with sane figures${unavailable ? ` (skipped: ${unavailable})` : ''}`,
    () => {
      if (isUnavailable(result)) return;
      expect(result.machine.uname).toMatch(/\S/);
      expect(result.machine.cpus).toBeGreaterThan(0);
      expect(result.machine.pageSize).toBeGreaterThan(0);
      const pageSize = result.machine.pageSize;
      expect(Object.keys(result.ops).sort()).toEqual([...KERNEL_OPS].sort());
      for (const op of KERNEL_OPS) {
        const r = result.ops[op];
        const bytes = op === 'fork' || op === 'cow_fault' ? FORK_SIZE : SIZE;
        expect(r.pages, op).toBe(bytes / pageSize);
        expect(r.median_pages_per_s, op).toBeGreaterThan(0);
        expect(r.samples, op).toHaveLength(REPEATS);
        for (const s of r.samples) expect(Number.isFinite(s) && s > 0, op).toBe(true);
      }
    },
  );
});
