import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runDemo, type DemoReport } from '../../src/sim/demo.js';

/** A report without its wall times (they differ run to run). */
function untimed(r: DemoReport): unknown {
  return { ...r, ms: 0, cpuMs: 0, steps: r.steps.map((s) => ({ ...s, ms: 0, checkMs: 0, cpuMs: 0, checkCpuMs: 0 })) };
}

describe('hmmsim demo: the built-in walk-through', () => {
  it('keeps data intact and the mirror exact, and its counts agree with what the steps did', () => {
    const r = runDemo({ sizeBytes: 4 << 20, seed: 3 });
    const pages = 1024;
    expect(r.ok).toBe(true);
    expect(r.dataMismatches).toBe(0);
    expect(r.mirrorViolations).toBe(0);
    expect(r.framesLeakedAfterExit).toBe(0);
    // The CPU filled every page once: one anonymous write fault per page, all CPU-initiated.
    expect(r.metrics.cpuFaults.anon).toBe(pages);
    expect(r.metrics.deviceFaults.anon).toBeUndefined();
    // MADV_PAGEOUT of pages/8 exclusive pages, all read back by the device: one swap-in each, device-initiated.
    expect(r.metrics.deviceFaults.swapin).toBe(pages / 8);
    expect(r.metrics.cpuFaults.swapin).toBeUndefined();
    // After fork every page is COW-shared: the CPU breaks pages/8 of them, the device's write faults the rest.
    expect(r.metrics.cpuFaults.cow).toBe(pages / 8);
    expect(r.metrics.deviceFaults.cow).toBe(pages - pages / 8);
    // The split adds up.
    for (const [k, n] of Object.entries(r.metrics.faults)) expect((r.metrics.cpuFaults[k] ?? 0) + (r.metrics.deviceFaults[k] ?? 0)).toBe(n);
    // One PROTECTION_PAGE for fork's one COW VMA; two mprotects; munmap + 2 exits (child, parent).
    expect(r.metrics.invalidations.PROTECTION_PAGE).toBe(1);
    expect(r.metrics.invalidations.PROTECTION_VMA).toBe(2);
    expect(r.metrics.invalidations.UNMAP).toBe(3);
    // The unmap of the last quarter hit the second 2 MiB range partially: gpusvm drops the
    // whole range (ranges are never split), so the device keeps only the first.
    expect(r.steps.find((s) => s.name.startsWith('CPU unmaps'))!.deviceMapped).toBe(pages / 2);
    expect(r.frames.systemInUse).toBe((3 * pages) / 4);
    // The device migrates whole ranges: the 2 MiB range holding the third quarter (it holds the
    // fourth too) went to device memory, and came back whole on the CPU's first read in it
    // (drm_pagemap migrates the allocation, not the page): one device-private fault.
    expect(r.metrics.migrations.toDevice).toBe(512);
    expect(r.metrics.migrations.toSystem).toBe(512);
    expect(r.metrics.cpuFaults['device-private']).toBe(1);
    expect(r.metrics.framesFreed.device).toBe(512);
    // The migration to device memory was the device's own: skipped by the owner filter.
    expect(r.device.ownMigrationsSkipped).toBe(1);
    // One hmm_range_fault per 2 MiB range fault, not per page: 1024 pages are 2 ranges.
    expect(r.device.rangesInserted).toBe(2);
    expect(r.device.rangeFaults).toBeLessThan(100);
  });

  it("the metrics' counts (the bus's tally) are what listeners to the fault, invalidate and free events count", () => {
    // The reference: the events themselves, counted as a listener does. Listening turns
    // release_pages' batch off (frees go page by page), so a run without listeners (batched)
    // must count the same frees as one with them.
    const listened = { faults: {} as Record<string, number>, invalidations: {} as Record<string, number>, system: 0, device: 0 };
    const add = (m: Record<string, number>, k: string) => void (m[k] = (m[k] ?? 0) + 1);
    const withListeners = runDemo({
      sizeBytes: 4 << 20, seed: 5,
      onSetup: (machine) => {
        machine.events.subscribe('fault', (e) => add(listened.faults, `${e.remote ? 'device' : 'cpu'} ${e.kind}`));
        machine.events.subscribe('invalidate', (e) => void (e.phase === 'start' && add(listened.invalidations, e.range.event)));
        machine.events.subscribe('free', (e) => void (e.device ? (listened.device += 1 << e.order) : (listened.system += 1 << e.order)));
      },
    });
    const alone = runDemo({ sizeBytes: 4 << 20, seed: 5 });
    for (const r of [withListeners, alone]) {
      const faults: Record<string, number> = {};
      for (const [k, n] of Object.entries(r.metrics.cpuFaults)) faults[`cpu ${k}`] = n;
      for (const [k, n] of Object.entries(r.metrics.deviceFaults)) faults[`device ${k}`] = n;
      expect(faults).toEqual(listened.faults);
      expect(r.metrics.invalidations).toEqual(listened.invalidations);
      expect(r.metrics.framesFreed).toEqual({ system: listened.system, device: listened.device });
    }
    expect(listened.system).toBeGreaterThan(0);
    expect(listened.device).toBeGreaterThan(0);
  });

  it('the same seed gives the same report', () => {
    const a = runDemo({ sizeBytes: 1 << 20, seed: 9 });
    const b = runDemo({ sizeBytes: 1 << 20, seed: 9 });
    expect(untimed(b)).toEqual(untimed(a));
  });

  it('runs at the smallest size (64 KiB: 64 KiB and 4 KiB ranges)', () => {
    const r = runDemo({ sizeBytes: 64 << 10, seed: 1 });
    expect(r.ok).toBe(true);
    expect(r.device.rangesInserted).toBeGreaterThan(0);
  });

  it('`hmmsim demo --json` prints the report with per-step times and exits 0; bad options are refused', () => {
    for (const cmd of ['demo']) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', cmd, '--size', '2', '--json', '--no-progress'], { encoding: 'utf8' });
      const r = JSON.parse(out);
      expect(r.ok).toBe(true);
      expect(r.pages).toBe(512);
      expect(r.steps.every((s: { ms: number }) => typeof s.ms === 'number' && s.ms >= 0)).toBe(true);
    }
    expect(() => execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--size', '-1'], { stdio: 'pipe' })).toThrow();
  });

  it('shows CPU and device-initiated faults apart, and explains each kind', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--size', '2', '--no-progress'], { encoding: 'utf8' });
    const cpu = out.indexOf('CPU faults by kind');
    const device = out.indexOf('device-initiated faults by kind');
    expect(cpu).toBeGreaterThan(0);
    expect(device).toBeGreaterThan(cpu);
    // The CPU's section has the fill's anonymous faults; swap-ins happen only in the device's section.
    const cpuPart = out.slice(cpu, device);
    const devicePart = out.slice(device, out.indexOf('invalidations by event'));
    expect(cpuPart).toMatch(/anon\s+512\s+first touch/);
    expect(cpuPart).not.toContain('swapin');
    expect(devicePart).toMatch(/swapin\s+64\s+page read back from swap/);
    expect(devicePart).toMatch(/spurious\s+\d+\s+the entry already allowed the access/);
  });
});

describe('hmmsim demo: memory guard and progress', () => {
  it('refuses a size that cannot fit, saying what it needs and what the machine has, before allocating', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--size', '99999999', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--size 99999999 needs about \d+ MiB of memory/);
    expect(r.stderr).toMatch(/this machine has \d+ MiB available of \d+ MiB, and a V8 heap limit of \d+ MiB/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('prints a progress line every few seconds when stderr is not a terminal (none for a short run)', () => {
    const short = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--size', '1', '--json'], { encoding: 'utf8' });
    expect(short.status).toBe(0);
    expect(short.stderr).toBe('');
    // HMMSIM_PROGRESS_MS=0: a line after every step.
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--size', '1', '--json'], {
      encoding: 'utf8', env: { ...process.env, HMMSIM_PROGRESS_MS: '0' },
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^hmmsim demo: step 1\/18 done \(CPU fills the buffer\), \d+\.\d s$/m);
    expect(r.stderr).toMatch(/^hmmsim demo: step 18\/18 done \(CPU reads everything\), \d+\.\d s$/m);
    const quiet = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--size', '1', '--json', '--no-progress'], {
      encoding: 'utf8', env: { ...process.env, HMMSIM_PROGRESS_MS: '0' },
    });
    expect(quiet.stderr).toBe('');
  });
});
