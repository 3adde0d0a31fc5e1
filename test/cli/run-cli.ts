// Run the hmmsim command from the sources (as `npx hmmsim` runs it from dist), for the CLI tests.

import { spawnSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
const main = ['--import', 'tsx', 'src/cli/main.ts'];

/** Run `hmmsim ...args` to completion. */
export function hmmsim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...main, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start `hmmsim ...args` with its output piped to us. */
export function hmmsimSpawn(...args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [...main, ...args], { cwd: root });
}
