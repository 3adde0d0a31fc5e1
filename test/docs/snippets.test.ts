// Every TypeScript snippet in README.md and docs/**/*.md runs as written (imports from 'hmmsim'
// included), and so does every program in examples/. New files are picked up by themselves.
// Each runs in this process, as a fresh module (vitest resolves 'hmmsim' to the sources, as
// tsx does through tsconfig.json's paths); what it prints is captured, and it must neither
// throw nor reject nor call process.exit. A snippet line ending in `// → text` promises that
// `text` is one of the lines it prints, and the test holds it to that.

import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function walk(dir: string, keep: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out.sort();
}

/** The ```ts / ```typescript fenced blocks of a markdown file, with the line each starts on. */
export function tsSnippets(markdown: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+|~~~+)\s*(ts|typescript)\b/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.trimStart().startsWith(fence); j++) body.push(lines[j]!.slice(open[1]!.length));
    out.push({ line: i + 1, code: body.join('\n') + '\n' });
    i = j;
  }
  return out;
}

const docs = [join(root, 'README.md'), ...walk(join(root, 'docs'), (f) => f.endsWith('.md'))];
const snippets = docs.flatMap((file) => tsSnippets(readFileSync(file, 'utf8')).map((s) => ({ file: relative(root, file), ...s })));
const examples = walk(join(root, 'examples'), (f) => f.endsWith('.ts')).map((f) => relative(root, f));

const scratch = mkdtempSync(join(tmpdir(), 'hmmsim-snippets-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Import a module with console output captured and process.exit refused; return what it printed. */
async function runModule(path: string): Promise<string> {
  const printed: string[] = [];
  const capture = (...args: unknown[]): void => void printed.push(args.map(String).join(' '));
  const spies = [vi.spyOn(console, 'log').mockImplementation(capture), vi.spyOn(console, 'error').mockImplementation(capture)];
  const exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
    throw new Error(`process.exit(${code}) called`);
  }) as typeof process.exit);
  try {
    await import(pathToFileURL(path).href);
  } finally {
    for (const s of spies) s.mockRestore();
    exit.mockRestore();
  }
  return printed.join('\n');
}

describe('documentation snippets', () => {
  it('finds the snippets of README.md and docs/', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(4);
    expect(snippets.some((s) => s.file === 'README.md')).toBe(true);
  });

  for (const s of snippets) {
    it(`${s.file}:${s.line} runs as written`, async () => {
      const dir = join(scratch, s.file.replace(/[/.]/g, '_'));
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `line-${s.line}.ts`);
      writeFileSync(file, s.code);
      expect(s.code, 'a snippet imports what it uses from hmmsim').toMatch(/from 'hmmsim(\/[a-z0-9]+)?'/);
      const printed = (await runModule(file)).split('\n');
      for (const m of s.code.matchAll(/\/\/ → (.*)$/gm)) expect(printed, `what ${s.file}:${s.line} says it prints`).toContain(m[1]!.trimEnd());
    });
  }
});

describe('examples', () => {
  for (const f of examples) {
    it(`${f} runs`, async () => {
      expect(readFileSync(join(root, f), 'utf8'), 'an example imports hmmsim as a user would').not.toMatch(/from '\.\.?\/.*src\//);
      await runModule(join(root, f));
    });
  }
});
