// `hmmsim <command> | head -1`: when the reader goes away the command exits at once, with
// status 0 and nothing on stderr (src/cli/pipes.ts), instead of an unhandled EPIPE.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { hmmsimSpawn, root } from './run-cli.js';

/** Start the command, close our end of its stdout after `afterBytes` bytes, and wait for it. */
function closeEarly(afterBytes: number, ...args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string; read: number }> {
  return new Promise((resolve) => {
    const child = hmmsimSpawn(...args);
    let stderr = '';
    let read = 0;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const close = (): void => void child.stdout.destroy();
    if (afterBytes === 0) close();
    else child.stdout.on('data', (d: Buffer) => {
      read += d.length;
      if (read >= afterBytes) close();
    });
    child.on('close', (code, signal) => resolve({ code, signal, stderr, read }));
  });
}

describe('a closed pipe', () => {
  it('selftest: the reader leaves after the first line; the command stops quietly with status 0', async () => {
    const r = await closeEarly(1, 'selftest', '-t', 'anon_read', '-t', 'anon_write');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('demo: the reader is gone before the report is written', async () => {
    const r = await closeEarly(0, 'demo', '--size', '1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('through a shell: `hmmsim demo | head -1` with pipefail succeeds and prints one line', () => {
    const out = execFileSync('bash', ['-c', `set -o pipefail; "${process.execPath}" --import tsx src/cli/main.ts demo --size 1 | head -1`], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.trimEnd().split('\n')).toHaveLength(1);
  });
});
