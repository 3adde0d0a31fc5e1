// Docs and comments stand on their own: every edge-case citation ("4.17 #11b", "mainline #26")
// names a row of docs/edge-cases-4.17.md or docs/edge-cases-mainline.md, every row is covered
// by a test, nothing cites a file that is not in this repository, every repository path the
// docs name in backquotes exists, and the docs hold no notes addressed to the team.

import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const self = fileURLToPath(import.meta.url);

function walk(dir: string, keep: (f: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p, keep) : keep(p) ? [p] : [];
  });
}

const text = (f: string): string => readFileSync(f, 'utf8');
const code = (f: string): boolean => /\.(ts|md|c|js)$/.test(f) && f !== self;
const files = [
  ...['src', 'test', 'docs', 'examples', 'bench'].flatMap((d) => walk(join(root, d), code)),
  join(root, 'README.md'), join(root, 'CHANGELOG.md'),
];
const docs = [join(root, 'README.md'), join(root, 'CHANGELOG.md'), ...walk(join(root, 'docs'), (f) => f.endsWith('.md'))];

/** The first column of every table row of an edge-case file: '1', '5b', ... */
function rowsOf(file: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of text(join(root, file)).split('\n')) {
    const m = /^\| (\d+[a-z]?) \|(.*)$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

const tables = { '4.17': rowsOf('docs/edge-cases-4.17.md'), mainline: rowsOf('docs/edge-cases-mainline.md') };
const citations = files.flatMap((f) =>
  [...text(f).matchAll(/\b(4\.17|mainline) #(\d+[a-z]?)\b/g)].map((m) => ({ file: relative(root, f), table: m[1] as '4.17' | 'mainline', row: m[2]! })));

describe('edge-case citations', () => {
  it('the tables have their rows: 4.17 #1-#50 (with 5b, 7b, 10b, 11b, 13b, 15b, 16b, 46b-46d), mainline #1-#36', () => {
    expect(tables['4.17'].size).toBe(50 + 10);
    expect(tables.mainline.size).toBe(36);
    for (let i = 1; i <= 50; i++) expect(tables['4.17'].has(String(i)), `4.17 #${i}`).toBe(true);
    for (let i = 1; i <= 36; i++) expect(tables.mainline.has(String(i)), `mainline #${i}`).toBe(true);
  });

  it('every "4.17 #n" and "mainline #n" in src, test, docs, examples and bench names a row', () => {
    expect(citations.length).toBeGreaterThan(89);
    const missing = citations.filter((c) => !tables[c.table].has(c.row)).map((c) => `${c.file}: ${c.table} #${c.row}`);
    expect(missing).toEqual([]);
  });

  it('every row is cited by a test, except the 4.17 cases hmmsim cannot reach', () => {
    for (const [table, rows] of Object.entries(tables)) {
      for (const [row, cells] of rows) {
        if (/cannot happen/.test(cells)) continue;
        expect(citations.some((c) => c.table === table && c.row === row && c.file.startsWith('test/')), `${table} #${row}`).toBe(true);
      }
    }
  });
});

describe('decision citations', () => {
  it('every "docs/architecture.md decision n" names a decision of that page', () => {
    const arch = text(join(root, 'docs/architecture.md'));
    const section = arch.slice(arch.indexOf('## Decisions'), arch.indexOf('\n## ', arch.indexOf('## Decisions') + 1));
    const decisions = new Set([...section.matchAll(/^(\d+)\. \*\*/gm)].map((m) => m[1]!));
    expect(decisions.size).toBeGreaterThanOrEqual(9);
    const cited = files.flatMap((f) => [...text(f).matchAll(/architecture\.md,? decision (\d+)/g)].map((m) => ({ f: relative(root, f), n: m[1]! })));
    expect(cited.length).toBeGreaterThan(0);
    expect(cited.filter((c) => !decisions.has(c.n))).toEqual([]);
  });
});

describe('docs stand on their own', () => {
  it('nothing cites a file outside the repository (the team\'s design notes and specs)', () => {
    const outside = /DESIGN\.md|hmm-4\.17\.md|hmm-mainline\.md|\bspec\/(gpu|selftests)\.md|\.\.\/shared\/|\bshared\/spec\/|\/work\/(shared|main|wt|helpers)\b/;
    const hits = files.filter((f) => outside.test(text(f))).map((f) => relative(root, f));
    expect(hits).toEqual([]);
  });

  // Files that docs already name and that work in progress is writing. Each entry must still be
  // missing: once the file lands, this test fails until the entry is removed.
  const notYetWritten: string[] = [];

  it('every repository file the docs name in backquotes exists', () => {
    const missing: string[] = [];
    for (const f of docs) {
      for (const m of text(f).matchAll(/`((?:src|test|docs|examples|bench)\/[\w./-]+\.(?:ts|md|c|json))`/g)) {
        if (!existsSync(join(root, m[1]!)) && !notYetWritten.includes(m[1]!)) missing.push(`${relative(root, f)}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
    for (const f of notYetWritten) expect(existsSync(join(root, f)), `${f} exists now: remove it from notYetWritten`).toBe(false);
  });

  it('the docs hold no notes addressed to the team', () => {
    const notes = docs.flatMap((f) => [...text(f).matchAll(/^.*(\b(the engineer|other engineers|the lead|FIXME|XXX)\b|^\s*(- )?TODO\b).*$/gim)].map((m) => `${relative(root, f)}: ${m[0].trim()}`));
    expect(notes).toEqual([]);
  });
});
