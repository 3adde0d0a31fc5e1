// Every ```ts snippet of docs/gpusvm.md runs as written (its 'hmmsim' imports pointed at the
// sources), and prints what its `// ...` comments say.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const doc = readFileSync(join(root, 'docs/gpusvm.md'), 'utf8');
const snippets = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** The values a snippet's console.log lines promise in their trailing comments (up to a colon: the rest explains). */
function expected(code: string): string[] {
  return code.split('\n').filter((l) => /console\.log\(/.test(l) && /\/\/ /.test(l)).map((l) => l.slice(l.lastIndexOf('// ') + 3).split(':')[0]!.trim());
}

describe('docs/gpusvm.md snippets', () => {
  it('has snippets', () => expect(snippets.length).toBeGreaterThanOrEqual(3));
  snippets.forEach((code, i) => {
    it(`snippet ${i + 1} runs and prints what it says`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'gpusvm-doc-'));
      const file = join(dir, `snippet${i + 1}.mts`);
      writeFileSync(file, code.replaceAll("from 'hmmsim'", `from '${join(root, 'src/index.ts')}'`));
      const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 60_000 }).trimEnd().split('\n');
      expect(out).toEqual(expected(code));
    });
  });
});
