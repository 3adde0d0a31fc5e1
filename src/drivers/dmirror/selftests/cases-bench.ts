// hmm-tests.c, part 5: benchmark_thp_migration. Migrates buffers of several sizes to the
// device and back, with and without THP, and prints the kernel test's table. The test asserts
// only that every migration succeeds; the times are the model's, not a machine's.

import { MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../../mm/constants.js';
import type { Process } from '../../../mm/process.js';
import type { DmirrorFile } from '../file.js';
import { ASSERT_EQ, TEST_F, type SelftestDef } from './harness.js';
import { fillInts, hmmBufferAlloc, hmmBufferFree, hmmMigrateDevToSys, hmmMigrateSysToDev, madvise, MAP_FAILED, mmap, readPmdPagesize, TWOMEG } from './lib.js';

interface BenchmarkResults {
  sysToDevTime: number;
  devToSysTime: number;
  throughputS2d: number;
  throughputD2s: number;
}

const INT_MAX = 2 ** 31 - 1;
const TEST_NAMES = ['Small Buffer', 'Half THP Size', 'Single THP Size', 'Two THP Size', 'Four THP Size', 'Eight THP Size', 'One twenty eight THP Size'];

/** run_migration_benchmark: 0, or the failing call's return value. */
async function runMigrationBenchmark(p: Process, fd: DmirrorFile, useThp: boolean, bufferSize: number, iterations: number, results: BenchmarkResults): Promise<number> {
  const npages = bufferSize / PAGE_SIZE;
  const buffer = hmmBufferAlloc(p, bufferSize);
  p.write(buffer.mirror, new Uint8Array(bufferSize).fill(0xff));
  buffer.ptr = mmap(p, 0, bufferSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (buffer.ptr === MAP_FAILED) return -1;
  let ret = madvise(p, buffer.ptr, bufferSize, useThp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  if (ret) return ret;
  // Initialize the memory so that the pages are allocated.
  fillInts(p, buffer.ptr, bufferSize / 4, (i) => i & 0xff);
  // Warmup.
  ret = await hmmMigrateSysToDev(fd, buffer, npages);
  if (ret) return ret;
  ret = await hmmMigrateDevToSys(fd, buffer, npages);
  if (ret) return ret;
  let s2dTotal = 0;
  let d2sTotal = 0;
  for (let i = 0; i < iterations; i++) {
    let start = performance.now();
    ret = await hmmMigrateSysToDev(fd, buffer, npages);
    if (ret) return ret;
    s2dTotal += performance.now() - start;
    start = performance.now();
    ret = await hmmMigrateDevToSys(fd, buffer, npages);
    if (ret) return ret;
    d2sTotal += performance.now() - start;
  }
  results.sysToDevTime = s2dTotal / iterations;
  results.devToSysTime = d2sTotal / iterations;
  results.throughputS2d = bufferSize / 2 ** 30 / (results.sysToDevTime / 1000);
  results.throughputD2s = bufferSize / 2 ** 30 / (results.devToSysTime / 1000);
  hmmBufferFree(p, buffer);
  return 0;
}

function printBenchmarkResults(log: (line: string) => void, name: string, bufferSize: number, thp: BenchmarkResults, regular: BenchmarkResults): void {
  const pct = (a: number, b: number): string => (((a - b) / b) * 100).toFixed(1);
  log('');
  log(`=== ${name} (${(bufferSize / 2 ** 20).toFixed(1)} MB) ===`);
  log('                     | With THP        | Without THP     | Improvement');
  log('---------------------------------------------------------------------');
  log(`Sys->Dev Migration   | ${thp.sysToDevTime.toFixed(3)} ms        | ${regular.sysToDevTime.toFixed(3)} ms        | ${pct(regular.sysToDevTime, thp.sysToDevTime)}%`);
  log(`Dev->Sys Migration   | ${thp.devToSysTime.toFixed(3)} ms        | ${regular.devToSysTime.toFixed(3)} ms        | ${pct(regular.devToSysTime, thp.devToSysTime)}%`);
  log(`S->D Throughput      | ${thp.throughputS2d.toFixed(2)} GB/s      | ${regular.throughputS2d.toFixed(2)} GB/s      | ${pct(thp.throughputS2d, regular.throughputS2d)}%`);
  log(`D->S Throughput      | ${thp.throughputD2s.toFixed(2)} GB/s      | ${regular.throughputD2s.toFixed(2)} GB/s      | ${pct(thp.throughputD2s, regular.throughputD2s)}%`);
}

export const benchTests: SelftestDef[] = [
  // Benchmark THP migration with several buffer sizes (TEST_F_TIMEOUT 120 s in the kernel).
  TEST_F('hmm', 'benchmark_thp_migration', async (t) => {
    const thpSize = readPmdPagesize() || TWOMEG;
    const iterations = 5;
    t.log('');
    t.log('HMM THP Migration Benchmark');
    t.log('---------------------------');
    t.log(`System page size: ${t.pageSize} bytes`);
    const kernelSizes = [thpSize / 4, thpSize / 2, thpSize, thpSize * 2, thpSize * 4, thpSize * 8, thpSize * 128];
    const sizes = t.opts.benchmarkSizes ?? (t.opts.quick ? kernelSizes.slice(0, 3) : kernelSizes);
    for (let i = 0; i < sizes.length; i++) {
      const size = sizes[i]!;
      // Skip sizes above INT_MAX, as the kernel's test does.
      if (size > INT_MAX) break;
      const thp: BenchmarkResults = { sysToDevTime: 0, devToSysTime: 0, throughputS2d: 0, throughputD2s: 0 };
      const regular: BenchmarkResults = { ...thp };
      ASSERT_EQ(await runMigrationBenchmark(t.proc, t.self.fd, true, size, iterations, thp), 0, `${size} bytes with THP`);
      ASSERT_EQ(await runMigrationBenchmark(t.proc, t.self.fd, false, size, iterations, regular), 0, `${size} bytes without THP`);
      printBenchmarkResults((l) => t.log(l), TEST_NAMES[kernelSizes.indexOf(size)] ?? `${size / 2 ** 20} MB`, size, thp, regular);
    }
  }),
];
