/**
 * Real-Linux side of the model-vs-kernel benchmark: compiles bench/kernel.c with the
 * machine's `cc` once, then runs one operation per call and returns its samples (CPU and
 * wall seconds each), so that the caller can interleave kernel and model samples.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sample } from './row.js';

const here = dirname(fileURLToPath(import.meta.url));
const SOURCE = join(here, 'kernel.c');
const OUT_DIR = join(here, 'out');
const BINARY = join(OUT_DIR, 'kernel');

export const KERNEL_OPS = [
  'anon_write_fault',
  'zero_read_fault',
  'mprotect',
  'madvise_dontneed',
  'munmap',
  'fork',
  'cow_fault',
  'mprotect_page',
] as const;
export type KernelOpName = (typeof KERNEL_OPS)[number];

export interface KernelMachine {
  uname: string;
  cpus: number;
  pageSize: number;
}

export interface KernelRun {
  machine: KernelMachine;
  op: KernelOpName;
  samples: Sample[];
}

export interface KernelBenchUnavailable {
  unavailable: string;
}

function errorText(e: unknown): string {
  const err = e as { code?: string; stderr?: Buffer | string; message?: string };
  const stderr = err.stderr?.toString().trim();
  return stderr || err.message || String(e);
}

let compiled: string | undefined | null = null; // null: not tried yet; string: why it failed

/** Builds the C program (once per process); returns a reason string when it cannot be built here. */
export function compileKernelBench(): string | undefined {
  if (compiled !== null) return compiled;
  mkdirSync(OUT_DIR, { recursive: true });
  // Build to a private name then rename, so concurrent runs never exec a half-written binary.
  const tmp = `${BINARY}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-std=c11', '-O2', '-Wall', '-Wextra', '-o', tmp, SOURCE], { stdio: 'pipe' });
    renameSync(tmp, BINARY);
    compiled = undefined;
  } catch (e) {
    rmSync(tmp, { force: true });
    compiled = (e as { code?: string }).code === 'ENOENT' ? 'no C compiler: `cc` not found on PATH' : `compiling bench/kernel.c failed: ${errorText(e)}`;
  }
  return compiled;
}

function positiveInt(name: string, v: number): string {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return String(v);
}

/** Runs `op` on `bytes` (mprotect_page ignores it) `repeats` times in one process of the C program. */
export function runKernelOp(op: KernelOpName, bytes: number, repeats = 1): KernelRun | KernelBenchUnavailable {
  const args = [op, positiveInt('bytes', bytes), positiveInt('repeats', repeats)];
  const reason = compileKernelBench();
  if (reason !== undefined) return { unavailable: reason };
  let stdout: string;
  try {
    stdout = execFileSync(BINARY, args, {
      encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    // A runtime failure (mmap/fork refused, ...) is a real error, not "no toolchain".
    throw new Error(`bench/kernel ${op} failed: ${errorText(e)}`, { cause: e });
  }
  return JSON.parse(stdout) as KernelRun;
}

/** True when the real-kernel side could not be built here. */
export function isUnavailable<T extends object>(r: T | KernelBenchUnavailable): r is KernelBenchUnavailable {
  return 'unavailable' in r;
}
