// hmmsim as a consumer sees it: `npm run build` emits dist/, and a project outside this
// repository imports the entry points through package.json's "exports", type-checks against
// the emitted declarations (strictly, with no @types/node), and runs. Internals are not
// reachable. Every source map and declaration map of dist/ points at a file the package ships.

import { beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[]; exports: Record<string, unknown> };

const consumer = `
import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, KernelError, type Process } from 'hmmsim';
import { Scheduler, explore, type Task } from 'hmmsim/sched';
import { checkInvariants } from 'hmmsim/testing';
import { HmmRange as HmmRange417, hmmVmaGetPfns } from 'hmmsim/v417';
import { dmirrorInit, hmmDmirrorOpen, HMM_DMIRROR_READ } from 'hmmsim/dmirror';

const machine = new Machine({ ramBytes: 16 << 20 });
const p: Process = machine.spawn();
const a: number = p.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
p.writeU32(a, 42);
const errors: string[] = checkInvariants(machine);
const found = await explore(async (sched: Scheduler) => {
  sched.spawn('t', async (task: Task) => { await task.yield(); });
  await sched.run();
}, 3);
const kinds = [typeof HmmRange417, typeof hmmVmaGetPfns, typeof dmirrorInit, typeof hmmDmirrorOpen, typeof HMM_DMIRROR_READ];
console.log(JSON.stringify({ value: p.readU32(a), errors, found, kinds, kernelError: new KernelError('EINVAL', 'x').code }));
`;

const internals = `
import { handleMmFault, canMerge, fail } from 'hmmsim';
import { PageTable } from 'hmmsim/mm/pagetable';
export { handleMmFault, canMerge, fail, PageTable };
`;

let dir = '';
let checked: { status: number | null; out: string };
let checkedInternals: { status: number | null; out: string };

function tscIn(project: string): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [tsc, '-p', project], { encoding: 'utf8' }, (e, stdout, stderr) => {
      done({ status: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out: stdout + stderr });
    });
  });
}

beforeAll(async () => {
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'hmmsim-consumer-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'hmmsim'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const compilerOptions = { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022', 'DOM'], strict: true, types: [], skipLibCheck: false };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, outDir: 'out' }, files: ['consumer.ts'] }));
  writeFileSync(join(dir, 'tsconfig.internals.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, noEmit: true }, files: ['internals.ts'] }));
  writeFileSync(join(dir, 'consumer.ts'), consumer);
  writeFileSync(join(dir, 'internals.ts'), internals);
  // The two projects are checked at the same time: each reads all of dist's declarations.
  [checked, checkedInternals] = await Promise.all([tscIn(join(dir, 'tsconfig.json')), tscIn(join(dir, 'tsconfig.internals.json'))]);
  return () => rmSync(dir, { recursive: true, force: true });
}, 300_000);

describe('a consumer project', () => {
  it('type-checks against dist/ (hmmsim, hmmsim/sched, hmmsim/testing, hmmsim/v417, hmmsim/dmirror), strictly and without @types/node', () => {
    // (lib DOM only for the console.log of the consumer's own program.)
    const r = checked;
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('cannot reach internals: handleMmFault, canMerge and fail are not exported; hmmsim/mm/... is not a subpath', () => {
    const r = checkedInternals;
    expect(r.status).not.toBe(0);
    for (const name of ['handleMmFault', 'canMerge', 'fail']) expect(r.out).toMatch(new RegExp(`has no exported member '${name}'`));
    expect(r.out).toContain("Cannot find module 'hmmsim/mm/pagetable'");
  });

  it('runs under node from dist/', () => {
    const out = execFileSync(process.execPath, ['out/consumer.js'], { cwd: dir, encoding: 'utf8' });
    const r = JSON.parse(out);
    expect(r.value).toBe(42);
    expect(r.errors).toEqual([]);
    expect(r.found).toBeNull();
    expect(r.kinds).toEqual(['function', 'function', 'function', 'function', 'number']);
    expect(r.kernelError).toBe(-22);
  });

  it('every export of package.json exists in dist/, with its types', () => {
    for (const [key, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string') continue;
      const t = target as { types: string; import: string };
      expect(existsSync(join(root, t.types)), `${key} types`).toBe(true);
      expect(existsSync(join(root, t.import)), `${key} import`).toBe(true);
    }
  });

  it('every source map and declaration map points at a source the package ships ("files")', () => {
    const maps: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name.endsWith('.map')) maps.push(join(d, e.name));
      }
    };
    walk(join(root, 'dist'));
    expect(maps.length).toBeGreaterThan(0);
    for (const m of maps) {
      const map = JSON.parse(readFileSync(m, 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const s of map.sources) {
        const file = resolve(dirname(m), map.sourceRoot ?? '', s);
        const rel = relative(root, file);
        expect(existsSync(file), `${relative(root, m)} -> ${s}`).toBe(true);
        expect(pkg.files.some((f) => rel === f || rel.startsWith(f + '/')), `${rel} is shipped`).toBe(true);
      }
    }
  });
});
