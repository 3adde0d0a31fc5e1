// bench/memory.ts's measured figures against its accounted ones, at the size `npm run bench`
// uses (256 MiB): each measured part must see its own machine's growth, not a collection of
// the machine an earlier part built (which once made the touched pages' figure -180 bytes).

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { MemoryFigures } from '../../bench/memory.js';

describe('bench/memory.ts measureMemory', () => {
  it('measures per touched page near what it accounts for (256 MiB, in a process with gc exposed)', { timeout: 120_000 }, () => {
    // A child process: the figures need global.gc, which vitest's workers do not expose.
    const script = "const { measureMemory } = await import('./bench/memory.ts'); console.log(JSON.stringify(measureMemory(256 << 20)));";
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const mem = JSON.parse(out) as MemoryFigures;
    const t = mem.perTouchedPage;
    expect(t.total).toBeGreaterThan(64);
    expect(t.measured).toBeGreaterThan(0.5 * t.total);
    expect(t.measured).toBeLessThan(2 * t.total);
    expect(mem.perFrame.measured).toBeGreaterThan(0.9 * mem.perFrame.accounted);
    expect(mem.perFrame.measured).toBeLessThan(1.1 * mem.perFrame.accounted);
  });
});
