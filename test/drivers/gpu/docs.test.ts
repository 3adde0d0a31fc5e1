// Every ```ts snippet of docs/gpu.md runs as written, its 'hmmsim', 'hmmsim/gpu' and
// 'hmmsim/sim' imports pointed at the sources.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const doc = readFileSync(join(root, 'docs/gpu.md'), 'utf8');
const snippets = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const sim = existsSync(join(root, 'src/sim/index.ts')) ? 'src/sim/index.ts' : 'src/sim/engine.ts';

describe('docs/gpu.md snippets', () => {
  it('has snippets', () => expect(snippets.length).toBeGreaterThanOrEqual(1));
  snippets.forEach((code, i) => {
    it(`snippet ${i + 1} runs`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'gpu-doc-'));
      const file = join(dir, `snippet${i + 1}.mts`);
      const src = code
        .replaceAll("from 'hmmsim/gpu'", `from '${join(root, 'src/drivers/gpu/index.ts')}'`)
        .replaceAll("from 'hmmsim/sim'", `from '${join(root, sim)}'`)
        .replaceAll("from 'hmmsim'", `from '${join(root, 'src/index.ts')}'`);
      writeFileSync(file, src);
      const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
      expect(out).toMatch(/kernel: \d+ us/);
    });
  });
});
