// How much memory a `hmmsim demo` run needs, estimated before it starts, and whether this
// machine has it: a run that cannot fit is refused with what it needs and what there is,
// instead of dying part way (a RangeError from an ArrayBuffer allocation, or the OOM killer).
//
// The estimate follows what the run allocates: per-frame metadata for all of RAM and device
// memory, allocated up front (BYTES_PER_FRAME each; the demo's machine makes room for the
// device's frames from the start, but the estimate still counts a table grown to take them and
// the old one while it is copied, a margin); page data for every page written
// (the fill, the copies COW and the device's writes make: about 1.1 times the size, in 8 MiB
// slabs); small per-page arrays of the demo and the drivers; and the process's own baseline.
// Page data and frame tables are ArrayBuffers, outside the V8 heap: they are checked against
// the machine's memory; the JS objects (ranges, VMAs) against the V8 heap limit.

import os from 'node:os';
import v8 from 'node:v8';
import { PAGE_SIZE } from '../mm/constants.js';
import { BYTES_PER_FRAME } from '../mm/page.js';
import { demoRamBytes } from './demo.js';

/** Node, tsx and the loaded modules, measured on an empty run. */
const BASELINE_BYTES = 96 << 20;
/**
 * Distinct page data at the peak of a run, relative to its size: the fill, then the COW copies
 * of an eighth (measured: 1.12 at 4096 MiB, maximum RSS 5000 MiB), with some margin.
 */
const DATA_FACTOR = 1.25;
/** Per-page arrays beyond the frame table: the demo's reference, the device table, gpusvm's range pages, rmap and swap maps. */
const BYTES_PER_PAGE_OTHER = 40;
/** JS heap per 2 MiB of the run (range, notifier and VMA objects) and the heap baseline. */
const HEAP_PER_2M = 4096;
const HEAP_BASELINE = 64 << 20;
const SLAB_BYTES = 8 << 20;

export interface DemoMemoryEstimate {
  /** Bytes outside the V8 heap (typed arrays: frames, page data) plus the baseline. */
  totalBytes: number;
  /** Bytes of V8 heap. */
  heapBytes: number;
}

export function estimateDemoMemory(sizeBytes: number): DemoMemoryEstimate {
  const pages = sizeBytes / PAGE_SIZE;
  const ramFrames = demoRamBytes(sizeBytes) / PAGE_SIZE;
  // The frame table grows once, when the device memory is registered above RAM.
  const deviceEnd = Math.ceil(ramFrames / 32768) * 32768 + pages;
  const capacity = Math.max(deviceEnd, 2 * ramFrames);
  const frames = (capacity + ramFrames) * BYTES_PER_FRAME + ramFrames * 8;
  const data = Math.ceil((DATA_FACTOR * sizeBytes) / SLAB_BYTES) * SLAB_BYTES;
  const other = pages * BYTES_PER_PAGE_OTHER;
  return {
    totalBytes: BASELINE_BYTES + frames + data + other,
    heapBytes: HEAP_BASELINE + Math.ceil(sizeBytes / (2 << 20)) * HEAP_PER_2M,
  };
}

export interface DemoMemoryVerdict {
  fits: boolean;
  estimate: DemoMemoryEstimate;
  /** os.totalmem(), os.freemem() (available memory), and the V8 heap limit. */
  totalmem: number;
  freemem: number;
  heapLimit: number;
}

/** Whether a run of sizeBytes fits this machine (memory available now, and the V8 heap limit). */
export function demoMemoryVerdict(
  sizeBytes: number,
  machine: { totalmem: number; freemem: number; heapLimit: number } = { totalmem: os.totalmem(), freemem: os.freemem(), heapLimit: v8.getHeapStatistics().heap_size_limit },
): DemoMemoryVerdict {
  const estimate = estimateDemoMemory(sizeBytes);
  const fits = estimate.totalBytes <= machine.freemem && estimate.heapBytes <= machine.heapLimit;
  return { fits, estimate, totalmem: machine.totalmem, freemem: machine.freemem, heapLimit: machine.heapLimit };
}

/** The largest --size (MiB) that fits the verdict's machine, or 0. */
export function largestFittingMiB(v: Pick<DemoMemoryVerdict, 'freemem' | 'heapLimit' | 'totalmem'>): number {
  const fits = (m: number) => demoMemoryVerdict(m * 2 ** 20, v).fits;
  if (!fits(1)) return 0;
  let lo = 1;
  let hi = 2;
  while (fits(hi)) hi *= 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

const mib = (b: number): string => `${Math.ceil(b / 2 ** 20)} MiB`;

export function formatDemoMemoryRefusal(sizeMiB: number, v: DemoMemoryVerdict): string {
  const lines = [
    `hmmsim demo: --size ${sizeMiB} needs about ${mib(v.estimate.totalBytes)} of memory and ${mib(v.estimate.heapBytes)} of V8 heap;`,
    `this machine has ${mib(v.freemem)} available of ${mib(v.totalmem)}, and a V8 heap limit of ${mib(v.heapLimit)}.`,
  ];
  const maxMiB = largestFittingMiB(v);
  if (maxMiB >= 1) lines.push(`A run of --size ${maxMiB} or less fits now.`);
  if (v.estimate.heapBytes > v.heapLimit) lines.push('Raise the heap limit with NODE_OPTIONS=--max-old-space-size=<MiB>.');
  return lines.join('\n');
}
