/**
 * Real-Linux side of the model-vs-kernel benchmark: compiles bench/kernel.c
 * with the machine's `cc`, runs it and returns its JSON report.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
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
] as const;
export type KernelOpName = (typeof KERNEL_OPS)[number];

export interface KernelOpResult {
  /** Pages touched/covered by one sample. */
  pages: number;
  median_pages_per_s: number;
  /** One rate per repeat, in run order. */
  samples: number[];
}

export interface KernelBenchResult {
  machine: { uname: string; cpus: number; pageSize: number };
  ops: Record<KernelOpName, KernelOpResult>;
}

export interface KernelBenchOptions {
  /** Mapping size for the fault/mprotect/madvise/munmap ops (default 1 GiB). */
  sizeBytes?: number;
  /** Populated size for fork and cow_fault (default 256 MiB). */
  forkBytes?: number;
  /** Samples per op; the median is reported (default 5). */
  repeats?: number;
}

export interface KernelBenchUnavailable {
  unavailable: string;
}

function errorText(e: unknown): string {
  const err = e as { code?: string; stderr?: Buffer | string; message?: string };
  const stderr = err.stderr?.toString().trim();
  return stderr || err.message || String(e);
}

/** Returns a reason string when the C program cannot be built here. */
function compile(): string | undefined {
  mkdirSync(OUT_DIR, { recursive: true });
  // Build to a private name then rename, so concurrent runs never exec a half-written binary.
  const tmp = `${BINARY}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-std=c11', '-O2', '-Wall', '-Wextra', '-o', tmp, SOURCE], { stdio: 'pipe' });
    renameSync(tmp, BINARY);
    return undefined;
  } catch (e) {
    rmSync(tmp, { force: true });
    if ((e as { code?: string }).code === 'ENOENT') return 'no C compiler: `cc` not found on PATH';
    return `compiling bench/kernel.c failed: ${errorText(e)}`;
  }
}

function positiveInt(name: string, v: number): string {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return String(v);
}

export async function runKernelBench(
  opts: KernelBenchOptions = {},
): Promise<KernelBenchResult | KernelBenchUnavailable> {
  const args = [
    positiveInt('sizeBytes', opts.sizeBytes ?? 2 ** 30),
    positiveInt('forkBytes', opts.forkBytes ?? 256 * 2 ** 20),
    positiveInt('repeats', opts.repeats ?? 5),
  ];
  const reason = compile();
  if (reason !== undefined) return { unavailable: reason };

  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(BINARY, args, { encoding: 'utf8', maxBuffer: 16 * 2 ** 20 }));
  } catch (e) {
    // A runtime failure (mmap/fork refused, ...) is a real error, not "no toolchain".
    throw new Error(`bench/kernel failed: ${errorText(e)}`, { cause: e });
  }
  const result = JSON.parse(stdout) as KernelBenchResult;
  const missing = KERNEL_OPS.filter((op) => !(op in (result.ops ?? {})));
  if (missing.length > 0) throw new Error(`bench/kernel output lacks ops: ${missing.join(', ')}`);
  return result;
}

/** True when runKernelBench could not build/run the real-kernel side. */
export function isUnavailable(r: KernelBenchResult | KernelBenchUnavailable): r is KernelBenchUnavailable {
  return 'unavailable' in r;
}
