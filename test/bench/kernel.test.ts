import { describe, expect, it } from 'vitest';
import { compileKernelBench, KERNEL_OPS, runKernelOp } from '../../bench/kernel.js';

const SIZE = 4 * 2 ** 20;
const unavailable = compileKernelBench();

describe('bench/kernel (real Linux mm timings)', () => {
  it.skipIf(unavailable !== undefined)(
    `reports every op with its work, CPU and wall time${unavailable ? ` (skipped: ${unavailable})` : ''}`,
    () => {
      for (const op of KERNEL_OPS) {
        if (op === 'mprotect_page') continue; // 40,000 mprotects: slow on a loaded machine; the bench shape test runs it
        const r = runKernelOp(op, SIZE, 2);
        if ('unavailable' in r) throw new Error(r.unavailable);
        expect(r.machine.uname).toMatch(/\S/);
        expect(r.machine.pageSize).toBeGreaterThan(0);
        expect(r.op).toBe(op);
        expect(r.samples, op).toHaveLength(2);
        for (const s of r.samples) {
          expect(s.work, op).toBe(SIZE / r.machine.pageSize);
          expect(s.cpu > 0 && s.wall > 0, op).toBe(true);
          // CPU time of a single-threaded process cannot exceed its wall time (a little slack for clock granularity).
          expect(s.cpu, op).toBeLessThanOrEqual(s.wall * 1.05 + 1e-3);
        }
      }
    },
  );
  it('refuses a bad size', () => {
    expect(() => runKernelOp('munmap', 0)).toThrow(RangeError);
    expect(() => runKernelOp('munmap', 1.5)).toThrow(RangeError);
    expect(() => runKernelOp('munmap', 4096, 0)).toThrow(RangeError);
  });
});
