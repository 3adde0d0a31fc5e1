// The demo's memory estimate and the verdict on a given machine (issue 17, item 3).
import { describe, expect, it } from 'vitest';
import { demoMemoryVerdict, estimateDemoMemory, formatDemoMemoryRefusal } from '../../src/sim/demo-memory.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('demo memory estimate', () => {
  it('grows with the size: page data about 1.25x the size plus the frame tables, over a fixed baseline', () => {
    const small = estimateDemoMemory(64 * MiB).totalBytes;
    const big = estimateDemoMemory(4096 * MiB).totalBytes;
    // Measured on this project's machine: 130 MiB maximum RSS at 16 MiB, 413 MiB at 256 MiB, 5000 MiB at 4096 MiB.
    expect(estimateDemoMemory(16 * MiB).totalBytes).toBeGreaterThanOrEqual(130 * MiB);
    expect(estimateDemoMemory(256 * MiB).totalBytes).toBeGreaterThanOrEqual(413 * MiB);
    expect(big).toBeGreaterThanOrEqual(5000 * MiB);
    expect(big).toBeLessThan(1.25 * 5000 * MiB);
    expect(big).toBeGreaterThan(small);
  });

  it('refuses what does not fit the memory available or the V8 heap, and says what fits', () => {
    const machine = { totalmem: 8 * GiB, freemem: 2 * GiB, heapLimit: 4 * GiB };
    expect(demoMemoryVerdict(1024 * MiB, machine).fits).toBe(true);
    const v = demoMemoryVerdict(4096 * MiB, machine);
    expect(v.fits).toBe(false);
    const msg = formatDemoMemoryRefusal(4096, v);
    expect(msg).toContain('--size 4096 needs about');
    expect(msg).toContain('this machine has 2048 MiB available of 8192 MiB, and a V8 heap limit of 4096 MiB');
    const fitting = Number(/A run of --size (\d+) or less fits now/.exec(msg)![1]);
    expect(demoMemoryVerdict(fitting * MiB, machine).fits).toBe(true);
    expect(demoMemoryVerdict((fitting + 1) * MiB, machine).fits).toBe(false);
    // A tiny heap limit refuses too, and says how to raise it.
    const heapless = demoMemoryVerdict(64 * MiB, { totalmem: 8 * GiB, freemem: 8 * GiB, heapLimit: 16 * MiB });
    expect(heapless.fits).toBe(false);
    expect(formatDemoMemoryRefusal(64, heapless)).toContain('--max-old-space-size');
  });
});
