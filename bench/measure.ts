// Timing: one sample of a case in this process (steady, after warm-up runs) or in a fresh
// child process (cold: the first run of that code in a process, JIT and host memory cold).
// Both measure the process's CPU time (process.cpuUsage: user + system, every thread of the
// process, as CLOCK_PROCESS_CPUTIME_ID on the kernel side) and the wall time of run() alone.

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchCase } from './model.js';
import type { Sample } from './row.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Prepare, time run() alone, tear down. */
export async function timeCase(c: BenchCase, arg: number): Promise<Sample> {
  const prepared = await c.prepare(arg);
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  let r = prepared.run();
  if (r instanceof Promise) r = await r;
  const wall = (performance.now() - w0) / 1000;
  const cu = process.cpuUsage(c0);
  prepared.done();
  if (typeof r !== 'number') return r;
  return { work: r, cpu: (cu.user + cu.system) / 1e6, wall };
}

export interface ColdOptions {
  /** Slab pool limit in bytes for the child (default: the model's). */
  poolBytes?: number;
}

/** One sample of a case in a fresh Node process (bench/cold.ts). */
export function coldSample(name: string, arg: number, opts: ColdOptions = {}): Sample {
  const args = ['--expose-gc', '--import', 'tsx', join(here, 'cold.ts'), name, String(arg)];
  if (opts.poolBytes !== undefined) args.push(String(opts.poolBytes));
  const out = execFileSync(process.execPath, args, { cwd: join(here, '..'), encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out) as Sample;
}
