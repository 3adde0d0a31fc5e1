// The layers of docs/architecture.md, enforced: every import in src/ points down or sideways
// within its own layer, never up. A new folder under src/ must be given a layer here (and in
// docs/architecture.md) before its files can import anything.

import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const src = join(root, 'src');

/** The layer of a file: its folder under src/ (hmm/v417 apart from hmm), or 'entry' for src/index.ts. */
function layerOf(file: string): string {
  const rel = relative(src, file).split('/');
  if (rel.length === 1) return 'entry';
  if (rel[0] === 'hmm' && rel[1] === 'v417') return 'hmm/v417';
  return rel[0]!;
}

const lower = ['mm', 'hmm', 'hmm/v417', 'drivers', 'sched'];
const top = ['check', 'sim', 'report', 'web', 'testing'];
/** What each layer may import (besides itself and npm packages). */
export const MAY_IMPORT: Record<string, readonly string[]> = {
  mm: [],
  hmm: ['mm'], // mainline HMM: never hmm/v417
  'hmm/v417': ['mm', 'hmm'],
  sched: ['mm/errno.ts', 'mm/wait.ts'], // the scheduler knows only the mm's error types and its sleeping machinery
  drivers: ['mm', 'hmm', 'hmm/v417', 'sched'],
  check: [...lower, ...top],
  sim: [...lower, ...top],
  report: [...lower, ...top],
  web: [...lower, ...top],
  testing: [...lower, ...top],
  cli: [...lower, ...top, 'entry'],
  entry: [...lower, ...top, 'entry'],
};

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** The relative module specifiers of a file's static imports, re-exports and dynamic imports. */
export function importsOf(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

const files = walk(src);
const violations: string[] = [];
for (const file of files) {
  const from = layerOf(file);
  const allowed = MAY_IMPORT[from];
  for (const spec of importsOf(readFileSync(file, 'utf8'))) {
    if (spec === 'hmmsim' || spec.startsWith('hmmsim/')) {
      violations.push(`${relative(root, file)} imports '${spec}': src/ imports its own modules by relative path`);
      continue;
    }
    if (!spec.startsWith('.')) continue; // node: and npm packages
    const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    const to = layerOf(target);
    const toFile = relative(src, target);
    if (!allowed) violations.push(`${relative(root, file)}: the folder has no layer in test/repo/layers.test.ts`);
    else if (to !== from && !allowed.includes(to) && !allowed.includes(toFile)) {
      violations.push(`${relative(root, file)} (${from}) imports ${toFile} (${to})`);
    }
  }
}

describe('layers', () => {
  it('reads imports, re-exports and dynamic imports', () => {
    expect(importsOf(`import { a } from './a.js';\nimport type { B } from "../b.js";\nexport { c } from './c.js';\nexport * as d from './d.js';\nimport './e.js';\nconst f = await import('./f.js');`))
      .toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js', './f.js']);
  });

  it('finds the source files', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.some((f) => layerOf(f) === 'mm')).toBe(true);
  });

  it('every import in src/ points down (mm <- hmm <- hmm/v417 <- drivers <- check, sim, report, web <- cli; sched knows only mm/errno.ts and mm/wait.ts)', () => {
    expect(violations).toEqual([]);
  });
});

describe('the browser side', () => {
  // src/web runs in a browser (docs/architecture.md): from src/ it may import only the record
  // format and its replay, and those two may import no Node module and nothing else of src/.
  const web = files.filter((f) => relative(src, f).startsWith('web/'));
  const shared = ['sim/record/format.ts', 'sim/record/replay.ts'];

  it('src/web imports only its own files and sim/record/format.ts, replay.ts', () => {
    expect(web.length).toBeGreaterThan(3);
    const bad = web.flatMap((f) => importsOf(readFileSync(f, 'utf8'))
      .filter((s) => s.startsWith('.'))
      .map((s) => relative(src, resolve(dirname(f), s.replace(/\.js$/, '.ts'))))
      .filter((t) => !t.startsWith('web/') && !shared.includes(t))
      .map((t) => `${relative(root, f)} imports ${t}`));
    expect(bad).toEqual([]);
  });

  it('format.ts and replay.ts import no Node module and nothing outside src/sim/record', () => {
    for (const file of shared) {
      const specs = importsOf(readFileSync(join(src, file), 'utf8'));
      expect(specs.filter((s) => !s.startsWith('./')), file).toEqual([]);
    }
  });
});
