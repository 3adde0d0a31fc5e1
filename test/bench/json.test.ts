// `npm run bench -- --json` on a tiny run: the shape other tools read (rows with cold and
// steady figures, the kernel's figure and the ratio where there is a peer, targets with
// met/missed, the memory figures and the machine), from two rows: one with a kernel peer and
// a cold sample, one without a peer.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileKernelBench } from '../../bench/kernel.js';
import type { Figure, Row } from '../../bench/row.js';

const kernel = compileKernelBench() === undefined;

function expectFigure(f: Figure | null | undefined, what: string): void {
  expect(f, what).toBeTruthy();
  const { median, min, max, wall, samples } = f!;
  expect(samples, what).toBeGreaterThanOrEqual(1);
  for (const x of [median, min, max, wall]) expect(Number.isFinite(x) && x > 0, what).toBe(true);
  expect(min <= median && median <= max, what).toBe(true);
}

describe('npm run bench -- --json', () => {
  it('prints the machine, rows with cold/steady/kernel/ratio/target/met, and the memory figures; --save keeps it, --print tabulates it', { timeout: 300_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmmsim-bench-'));
    const saved = join(dir, 'last.json');
    const node = (args: string[]) => execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/run.ts', ...args], { encoding: 'utf8', maxBuffer: 16 << 20 });
    let out: string;
    let table: string;
    try {
      out = node(['--tiny', '--json', '--save', saved, '--only', '^anon write fault, 4 MiB$|snapshot', ...(kernel ? [] : ['--no-kernel'])]);
      expect(JSON.parse(readFileSync(saved, 'utf8'))).toEqual(JSON.parse(out));
      table = node(['--print', saved]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const head = table.split('\n').find((l) => l.startsWith('operation'));
    expect(head).toMatch(/hmmsim cold +hmmsim steady +kernel +ratio cold +ratio steady +target +met +load/);
    expect(table).toMatch(/^hmm_range_fault snapshot, 4 MiB .* (met|MISSED) +\d+\.\d$/m);
    const doc = JSON.parse(out) as { machine: Record<string, unknown>; rows: Row[]; memory: Record<string, Record<string, number>> };
    expect(doc.machine.node).toBe(process.version);
    expect(doc.machine.cpus).toMatch(/^\d+ x /);
    expect(doc.machine.loadAverage).toBeTruthy();
    expect(doc.rows.map((r) => r.name)).toEqual(['anon write fault, 4 MiB', 'hmm_range_fault snapshot, 4 MiB']);
    const [fault, snap] = doc.rows as [Row, Row];
    expect(fault.unit).toBe('pages/s');
    expectFigure(fault.hmmsim.cold, 'fault cold');
    expectFigure(fault.hmmsim.steady, 'fault steady');
    if (kernel) {
      expectFigure(fault.kernel?.steady, 'fault kernel');
      expect(fault.ratio!.steady).toBeCloseTo(fault.hmmsim.steady.median / fault.kernel!.steady.median, 6);
      expect(fault.ratio!.cold).toBeCloseTo(fault.hmmsim.cold!.median / fault.kernel!.steady.median, 6);
      expect(fault.target).toMatch(/ratio >= 1/);
      expect(fault.met).toBe(fault.ratio!.steady >= 1 && fault.ratio!.cold! >= 1);
    }
    expect(snap.kernel).toBeUndefined();
    expect(snap.ratio).toBeUndefined();
    expectFigure(snap.hmmsim.cold, 'snapshot cold');
    expect(snap.target).toMatch(/20 M/);
    expect(snap.met).toBe(snap.hmmsim.cold!.median >= 20e6 && snap.hmmsim.steady.median >= 20e6);
    expect(doc.memory.perFrame!.accounted).toBeGreaterThan(0);
    // One byte written per page: a 64-byte head slot each (src/mm/slot-arena.ts); a whole page beyond.
    expect(doc.memory.perTouchedPage!.data).toBe(64);
    expect(doc.memory.perTouchedPage!.wholePageTotal).toBeGreaterThan(4096);
    expect(doc.memory.sparse!.touchedPages).toBe(1000);
  });
});
