import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenario.js';

describe('hmmsim run: the built-in scenario', () => {
  it('keeps data intact and the mirror exact, and its counts agree with what the steps did', () => {
    const r = runScenario({ sizeBytes: 4 << 20, seed: 3 });
    const pages = 1024;
    expect(r.ok).toBe(true);
    expect(r.dataMismatches).toBe(0);
    expect(r.mirrorViolations).toBe(0);
    expect(r.framesLeakedAfterExit).toBe(0);
    // The CPU filled every page once: one anonymous write fault per page.
    expect(r.metrics.faults.anon).toBe(pages);
    // MADV_PAGEOUT of pages/8 exclusive pages, all read back by the device: one swap-in each.
    expect(r.metrics.faults.swapin).toBe(pages / 8);
    // One PROTECTION_PAGE for fork's one COW VMA; two mprotects; munmap + 2 exits (child, parent).
    expect(r.metrics.invalidations.PROTECTION_PAGE).toBe(1);
    expect(r.metrics.invalidations.PROTECTION_VMA).toBe(2);
    expect(r.metrics.invalidations.UNMAP).toBe(3);
    // The device's entries after the unmap are exactly the remaining three quarters.
    expect(r.steps.find((s) => s.name.startsWith('CPU unmaps'))!.deviceMapped).toBe((3 * pages) / 4);
    expect(r.frames.systemInUse).toBe((3 * pages) / 4);
    // The third quarter went to device memory; every page of it came back one way or another,
    // and each event was counted once: migrations to system = device-private faults.
    expect(r.metrics.migrations.toDevice).toBe(pages / 4);
    expect(r.metrics.migrations.toSystem).toBe(r.metrics.faults['device-private']);
    expect(r.metrics.framesFreed.device).toBe(pages / 4);
    expect(r.metrics.invalidations.MIGRATE).toBeGreaterThanOrEqual(r.metrics.migrations.toSystem);
  });

  it('the same seed gives the same report', () => {
    const a = runScenario({ sizeBytes: 1 << 20, seed: 9 });
    const b = runScenario({ sizeBytes: 1 << 20, seed: 9 });
    expect(b).toEqual(a);
  });

  it('`hmmsim run --json` prints the report and exits 0; bad options are refused', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--size', '2', '--json'], { encoding: 'utf8' });
    const r = JSON.parse(out);
    expect(r.ok).toBe(true);
    expect(r.pages).toBe(512);
    expect(() => execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--size', '-1'], { stdio: 'pipe' })).toThrow();
  });
});
