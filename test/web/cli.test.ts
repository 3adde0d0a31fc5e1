// `hmmsim demo --record`, `hmmsim run --record` and `hmmsim view` as a user runs them.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecordFile, type RecordDoc } from '../../src/sim/record/index.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

function run(args: string[]): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('hmmsim demo --record and hmmsim view', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'hmmsim-view-cli-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('records the demo, a mark per step, gzip-compressed when the name ends in .gz', () => {
    const file = join(tmp, 'run.json.gz');
    const r = run(['demo', '--size', '1', '--no-progress', '--json', '--record', file]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(true);
    const bytes = readFileSync(file);
    expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
    const doc = readRecordFile(file) as RecordDoc;
    expect(doc.format).toBe('hmmsim-record');
    expect(doc.marks.length).toBe(JSON.parse(r.stdout).steps.length);
    expect(doc.tables.map((t) => t.kind)).toEqual(['cpu', 'device', 'cpu']);
    expect(doc.events.count).toBeGreaterThan(1000);
  }, 240_000);

  it('records a GPU simulation (hmmsim run --record): the CPU page table and the GPU\'s, GPU events on simulated time; view builds it', () => {
    const file = join(tmp, 'gpu.json');
    const r = run(['run', '--workload', 'stream', '--footprint', '4', '--oversub', '1.25', '--iterations', '1', '--json', '--record', file]);
    expect(r.status).toBe(0);
    const rec = JSON.parse(r.stdout) as { gpu: { faults: number; batches: number } };
    const doc = readRecordFile(file) as RecordDoc;
    expect(doc.meta.command).toBe('run');
    expect(doc.tables.map((t) => [t.kind, t.name])).toEqual([['cpu', 'process mm 1'], ['device', 'gpu0']]);
    expect(doc.memories.map((m) => m.name)).toEqual(['system RAM', 'gpu0 VRAM']);
    expect(doc.events.time).toBeDefined();
    const names = doc.eventTypes.map((t) => t.name);
    for (const n of ['gpu-fault', 'fault-batch', 'gpu-migrate', 'evict', 'device-map']) expect(names).toContain(n);
    expect(doc.events.count).toBeGreaterThan(rec.gpu.faults + rec.gpu.batches);
    const out = join(tmp, 'gpu-site');
    expect(run(['view', file, '--out', out]).status).toBe(0);
    expect(readFileSync(join(out, 'record.js'), 'utf8')).toContain('"command":"run"');
  }, 240_000);

  it('serves on 127.0.0.1 and prints the address; writes static files with --out; refuses what is not a record', async () => {
    const file = join(tmp, 'run.json.gz');
    if (!existsSync(file)) run(['demo', '--size', '1', '--no-progress', '--record', file]);
    // Static files.
    const out = join(tmp, 'site');
    const s = run(['view', file, '--out', out]);
    expect(s.status).toBe(0);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('<script src="./record.js"></script>');
    expect(readFileSync(join(out, 'record.js'), 'utf8').startsWith('window.HMMSIM_RECORD = {"format":"hmmsim-record"')).toBe(true);
    // Serving: the address on stdout, the page and the record there, nothing else.
    const child = spawn(process.execPath, [...CLI, 'view', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(buf);
          if (m) resolve(m[0]);
        });
        child.on('exit', (code) => reject(new Error(`hmmsim view exited with ${code}`)));
      });
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<div id="app">');
      const head = (await (await fetch(`${url}run.json`)).json()) as RecordDoc;
      expect(head.format).toBe('hmmsim-record');
      const ref = head.deltas.state.ref!;
      const [blob, range] = ref.split('#');
      const [off, len] = range!.split(',').map(Number);
      const bytes = new Uint8Array(await (await fetch(`${url}${blob}`)).arrayBuffer());
      expect(bytes.length).toBeGreaterThanOrEqual(off! + len!);
      expect((await fetch(`${url}etc/passwd`)).status).toBe(404);
    } finally {
      child.kill();
    }
    // Bad input: a missing file, a JSON file that is not a record.
    const missing = run(['view', join(tmp, 'nope.json')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/hmmsim view: .*nope\.json/);
    writeFileSync(join(tmp, 'other.json'), '{"format":"something-else"}');
    const other = run(['view', join(tmp, 'other.json')]);
    expect(other.status).toBe(1);
    expect(other.stderr).toContain('is not an hmmsim record');
  }, 300_000);
});
