// docs/check.md: every ```ts snippet runs as written (its 'hmmsim', 'hmmsim/check' and
// 'hmmsim/sched' imports pointed at the sources) and prints what its `// ...` comments say;
// the zoo table is what the code finds.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadDriver } from '../../src/check/index.js';
import { zooRow, zooTable } from '../../src/check/zoo-table.js';
import { ZOO } from './zoo.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const doc = readFileSync(join(root, 'docs/check.md'), 'utf8');
const snippets = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** What a snippet's console.log lines promise in their trailing comments. */
function expected(code: string): string[] {
  return code.split('\n').filter((l) => /console\.log\(/.test(l) && /\/\/ /.test(l)).map((l) => l.slice(l.lastIndexOf('// ') + 3).trim());
}

function runnable(code: string): string {
  return code
    .replaceAll("from 'hmmsim/check'", `from '${join(root, 'src/check/index.ts')}'`)
    .replaceAll("from 'hmmsim/sched'", `from '${join(root, 'src/sched/index.ts')}'`)
    .replaceAll("from 'hmmsim'", `from '${join(root, 'src/index.ts')}'`);
}

describe('docs/check.md', () => {
  it('has snippets', () => expect(snippets.length).toBeGreaterThanOrEqual(3));
  snippets.forEach((code, i) => {
    it(`snippet ${i + 1} runs and prints what it says`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'check-doc-'));
      const file = join(dir, `snippet${i + 1}.mts`);
      writeFileSync(file, runnable(code));
      const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 120_000 }).trimEnd().split('\n');
      expect(out).toEqual(expected(code));
    }, 180_000);
  });

  it('the zoo table is what each strategy finds', async () => {
    const m = /<!-- zoo-table -->\n([\s\S]*?)<!-- \/zoo-table -->/.exec(doc);
    expect(m).not.toBeNull();
    const rows = [];
    for (const z of ZOO) rows.push(await zooRow(z.file, await loadDriver(`examples/drivers/${z.file}`)));
    expect(m![1]!.trim()).toBe(zooTable(rows));
  }, 300_000);
});
