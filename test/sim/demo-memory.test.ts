// The demo's memory estimate and the verdict on a given machine (issue 17, item 3).
import { describe, expect, it } from 'vitest';
import { demoMemoryVerdict, estimateDemoMemory, formatDemoMemoryRefusal } from '../../src/sim/demo-memory.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('demo memory estimate', () => {
  it('is at least what a run takes, and not far above it: frame tables, a head slot per written page, a fixed baseline', () => {
    // Maximum RSS measured on this project's machine (seed 1, 64-byte head slots, the frame
    // table sized for the device from the start and written when the machine is made): an estimate below these lets a run die part
    // way; one far above refuses runs that fit (it was 5.4 GB for 4096 MiB, 13x the 422 MiB used).
    const measured: Array<[number, number]> = [[16, 72], [256, 100], [1024, 184], [4096, 509]];
    for (const [size, rss] of measured) {
      const est = estimateDemoMemory(size * MiB).totalBytes;
      expect(est, `--size ${size}`).toBeGreaterThanOrEqual(rss * MiB);
      expect(est, `--size ${size}`).toBeLessThan(1.5 * rss * MiB);
    }
    expect(estimateDemoMemory(16384 * MiB).totalBytes).toBeGreaterThan(estimateDemoMemory(4096 * MiB).totalBytes);
  });

  it('refuses what does not fit the memory available or the V8 heap, and says what fits', () => {
    const machine = { totalmem: 8 * GiB, freemem: 400 * MiB, heapLimit: 4 * GiB };
    expect(demoMemoryVerdict(1024 * MiB, machine).fits).toBe(true);
    const v = demoMemoryVerdict(4096 * MiB, machine);
    expect(v.fits).toBe(false);
    const msg = formatDemoMemoryRefusal(4096, v);
    expect(msg).toContain('--size 4096 needs about');
    expect(msg).toContain('this machine has 400 MiB available of 8192 MiB, and a V8 heap limit of 4096 MiB');
    const fitting = Number(/A run of --size (\d+) or less fits now/.exec(msg)![1]);
    expect(demoMemoryVerdict(fitting * MiB, machine).fits).toBe(true);
    expect(demoMemoryVerdict((fitting + 1) * MiB, machine).fits).toBe(false);
    // A tiny heap limit refuses too, and says how to raise it.
    const heapless = demoMemoryVerdict(64 * MiB, { totalmem: 8 * GiB, freemem: 8 * GiB, heapLimit: 16 * MiB });
    expect(heapless.fits).toBe(false);
    expect(formatDemoMemoryRefusal(64, heapless)).toContain('--max-old-space-size');
  });
});
