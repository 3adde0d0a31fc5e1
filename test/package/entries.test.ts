// The package's entry points agree everywhere they are named: package.json "exports" (the
// built files), the entry file under src/ (the export target with dist/ -> src/ and .js ->
// .ts), tsconfig.json "paths" (how tsx and tsc resolve 'hmmsim' to the sources) and
// typedoc.json "entryPoints"; and every entry file is an explicit list of names.

import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const json = (f: string): Record<string, unknown> => JSON.parse(readFileSync(join(root, f), 'utf8'));
type Target = { types: string; import: string };
const pkg = json('package.json') as { exports: Record<string, Target | string> };
const tsconfig = json('tsconfig.json') as { compilerOptions: { paths: Record<string, string[]> } };
const typedoc = json('typedoc.json') as { entryPoints: string[] };

const entries = Object.entries(pkg.exports).filter((e): e is [string, Target] => typeof e[1] === 'object').map(([key, t]) => ({
  name: key === '.' ? 'hmmsim' : `hmmsim/${key.slice(2)}`,
  target: t,
  file: t.import.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'),
}));

describe('entry points', () => {
  it('are the subpaths of docs/architecture.md', () => {
    expect(entries.map((e) => e.name).sort()).toEqual([
      'hmmsim', 'hmmsim/check', 'hmmsim/dmirror', 'hmmsim/gpu', 'hmmsim/sched', 'hmmsim/sim', 'hmmsim/testing', 'hmmsim/v417',
    ]);
    const arch = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
    for (const e of entries) expect(arch, e.name).toContain(`| \`${e.name}\` | \`${e.file}\` |`);
  });

  it('each has its source file, types next to its import target, its tsconfig path, its TypeDoc entry and its @module name', () => {
    for (const e of entries) {
      expect(existsSync(join(root, e.file)), e.file).toBe(true);
      expect(e.target.types, e.name).toBe(e.target.import.replace(/\.js$/, '.d.ts'));
      expect(tsconfig.compilerOptions.paths[e.name], e.name).toEqual([`./${e.file}`]);
      expect(typedoc.entryPoints, e.name).toContain(e.file);
      expect(readFileSync(join(root, e.file), 'utf8'), e.name).toMatch(new RegExp(`@module ${e.name}\\n`));
    }
    expect(typedoc.entryPoints.length).toBe(entries.length);
    expect(Object.keys(tsconfig.compilerOptions.paths).length).toBe(entries.length);
  });

  it('export explicit lists: no `export *`, nothing from the CLI', () => {
    for (const e of entries) {
      const code = readFileSync(join(root, e.file), 'utf8');
      expect(code, e.file).not.toMatch(/export\s*\*/);
      expect(code, e.file).not.toMatch(/from '(\.\.?\/)+cli\//);
    }
  });
});
