// Text tables for every command's summaries (selftest, run, bench), drawn by cli-table3 in one
// plain style: no borders, no colours, two spaces between columns, numbers right-aligned.

import Table from 'cli-table3';

export type Align = 'left' | 'right';
export type CellValue = string | number | bigint | boolean | null | undefined;

export interface TextTableOptions {
  /** Alignment per column; by default numbers are right-aligned and everything else left. */
  align?: readonly Align[];
  /** Put before every line (`'# '` makes the table a block of TAP comments). */
  prefix?: string;
}

const NO_BORDER = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
  'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
};

/** A table with a header row, as text lines without trailing spaces. */
export function textTable(head: readonly string[], rows: readonly (readonly CellValue[])[], opts: TextTableOptions = {}): string {
  const align = head.map((_, i) => opts.align?.[i] ?? (rows.length > 0 && rows.every((r) => typeof r[i] === 'number') ? 'right' : 'left'));
  const table = new Table({
    head: [...head],
    chars: NO_BORDER,
    colAligns: align,
    style: { 'padding-left': 0, 'padding-right': 0, head: [], border: [], compact: true },
  });
  for (const r of rows) table.push(r.map((c) => (c === null || c === undefined ? '' : String(c))));
  return table.toString().split('\n').map((l) => (opts.prefix ?? '') + l.trimEnd()).join('\n');
}
