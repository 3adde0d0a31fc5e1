// `hmmsim check` as a user runs it: exit 1 with the invariant, the trace and the replay token
// for a zoo driver; --json, --record and --replay; exit 0 with the coverage for a correct one.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function hmmsim(args: string[]): { code: number; out: string } {
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    return { code: 0, out };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: err.stdout + err.stderr };
  }
}

describe('hmmsim check', () => {
  it('a zoo driver: exit 1, the invariant, the trace, a replay token that replays; --json and --record', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmmsim-check-'));
    const record = join(dir, 'trace.json');
    const r = hmmsim(['check', 'examples/drivers/forgets-set-seq.ts', '--strategy', 'bounded', '--json', '--record', record]);
    expect(r.code).toBe(1);
    const json = JSON.parse(r.out) as { ok: boolean; violation: { invariant: string; token: string; trace: unknown[] } };
    expect(json.ok).toBe(false);
    expect(json.violation.invariant).toBe('device-maps-freed-frame');
    const doc = JSON.parse(readFileSync(record, 'utf8')) as { format: string; token: string; steps: unknown[]; violation: number };
    expect(doc.format).toBe('hmmsim-check-trace');
    expect(doc.token).toBe(json.violation.token);
    expect(doc.steps.length).toBe(json.violation.trace.length);
    // The schedule recorded for the visualizer: a mark for the setup and one per step.
    const rec = (doc as unknown as { record: { format: string; marks: Array<{ label: string }> } }).record;
    expect(rec.format).toBe('hmmsim-record');
    expect(rec.marks.filter((m) => m.label.startsWith('step ')).length).toBe(doc.steps.length);

    const text = hmmsim(['check', 'examples/drivers/forgets-set-seq.ts', '--replay', json.violation.token]);
    expect(text.code).toBe(1);
    expect(text.out).toContain('VIOLATION of device-maps-freed-frame');
    expect(text.out).toContain('invariant: the device maps no frame that has been freed');
    expect(text.out).toMatch(/!! device-maps-freed-frame/);
    expect(text.out).toContain(`replay: hmmsim check examples/drivers/forgets-set-seq.ts --replay ${json.violation.token}`);
  }, 180_000);

  it('a correct driver: exit 0, schedules and coverage per strategy', () => {
    const r = hmmsim(['check', 'examples/drivers/minimal.ts', '--schedules', '40', '--no-progress']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('hmmsim check examples/drivers/minimal.ts: no violation in 120 schedules');
    expect(r.out).toMatch(/skipped: fork-mirror \(the driver has no migrateToDevice\)/);
    expect(r.out).toMatch(/pct \(depth 3\): 40 schedules/);
    expect(r.out).toMatch(/bounded \(<= 2 preemptions\): 40 schedules, \d+ distinct, longest \d+ steps; by preemptions 0: \d+ \(all\)/);
    expect(r.out).toMatch(/random: 40 schedules/);
  }, 120_000);

  it('bad input: an unknown scenario is a message and exit 2', () => {
    const sc = hmmsim(['check', 'examples/drivers/minimal.ts', '--scenario', 'nope']);
    expect(sc.code).toBe(2);
    expect(sc.out).toMatch(/^hmmsim check: no scenario 'nope'/m);
  }, 120_000);
});
