// examples/device-memory.ts, a driver written only against the public API (issue 11): it
// migrates pages into its device-private memory, writes them there, and the CPU faults them
// back; every page it took is freed once at exit.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('examples/device-memory.ts', () => {
  it('imports nothing but the public entry point, as a user would', () => {
    const src = readFileSync(`${root}/examples/device-memory.ts`, 'utf8');
    const from = [...src.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
    expect(from).toEqual(['hmmsim']);
    // No machine.phys internals: the script only reads the RAM accounting to print it.
    expect(src.replace(/machine\.phys\.usedRamFrames/g, '')).not.toMatch(/\.phys\b/);
  });

  it('migrates 8 pages (empties included), the device writes three, the CPU faults back what it reads, exit frees every page once', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/device-memory.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('8-page buffer; the CPU wrote pages 0-5; 6 system pages in use');
    expect(lines[1]).toBe(`migrated 8 pages to the device; the CPU's entries: ${Array(8).fill('device-private').join(' ')}`);
    expect(lines[2]).toBe('system pages in use: 0; device pages in use: 8');
    expect(lines[3]).toBe('the device reads page 3: "cpu wrote page 3"');
    expect(lines).toContain('the CPU reads page 3: "device wrote 3" (migrate_to_ram calls: 1)');
    expect(lines).toContain('the CPU reads page 7: "device wrote 7" (migrate_to_ram calls: 2)');
    expect(lines).toContain('the CPU reads page 0: "cpu wrote page 0" (migrate_to_ram calls: 3)');
    expect(lines).toContain('page 3 is now anon; page 2 is still device-private');
    expect(lines).toContain('page_free calls so far: 3');
    expect(lines.at(-2)).toBe('after exit: page_free calls 8, device pages in use 0, system pages in use 0');
    expect(lines.at(-1)).toBe('done');
  });
});
