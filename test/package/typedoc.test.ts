// `npm run docs` stays clean: TypeDoc reads every entry point and finds no warning (typedoc.json
// treats warnings as errors; an exported signature naming a type that is not exported is one).
// Run here without writing the HTML, and without source links: they need the checkout's git
// remote, which a worktree or a copy may not have, and no page content depends on them.

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('API reference', () => {
  it('TypeDoc builds it from the entry points with 0 warnings', () => {
    const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none', '--disableSources'], { cwd: root, encoding: 'utf8' });
    const out = r.stdout + r.stderr;
    expect(out).not.toMatch(/\[warning\]|\[error\]/);
    expect(r.status).toBe(0);
  }, 300_000);
});
