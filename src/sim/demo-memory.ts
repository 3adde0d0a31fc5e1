// How much memory a `hmmsim demo` run needs, estimated before it starts, and whether this
// machine has it: a run that cannot fit is refused with what it needs and what there is,
// instead of dying part way (a RangeError from an ArrayBuffer allocation, or the OOM killer).
//
// The estimate follows what the run allocates: per-frame metadata for all of RAM and the
// device's memory, allocated up front (BYTES_PER_FRAME each; the demo's machine makes room for
// the device's frames from the start: MachineConfig.deviceBytes), and RAM's free lists; page
// data for every page written (the fill, the copies COW and the device's writes make: about
// 1.1 times the pages), each page a 64-byte head slot since the demo's stamp fits in one (a
// page written past HEAD_BYTES would take 4 KiB); small per-page arrays of the demo and the
// drivers; a margin for what the V8 heap and the host add; and the process's own baseline.
// Measured maximum RSS (seed 1, frame fields written when the machine is made, as memmap_init
// does): 72 MiB at --size 16, 100 MiB at 256, 184 MiB at 1024, 509 MiB at 4096; the estimate is
// 10-35% above each. Page data and frame tables are ArrayBuffers,
// outside the V8 heap: they are checked against the machine's memory; the JS objects (ranges,
// VMAs) against the V8 heap limit.

import os from 'node:os';
import v8 from 'node:v8';
import { PAGE_SIZE } from '../mm/constants.js';
import { BYTES_PER_FRAME } from '../mm/page.js';
import { HEAD_BYTES } from '../mm/physmem.js';
import { SLAB_BYTES } from '../mm/slot-arena.js';
import { STAMP, demoRamBytes } from './demo.js';

/** Node, tsx and the loaded modules, measured on an empty run, with a margin. */
const BASELINE_BYTES = 80 << 20;
/** Distinct pages of data at the peak of a run, relative to its pages: the fill, then the COW copies of an eighth, with some margin. */
const DATA_FACTOR = 1.25;
/** Per-page arrays beyond the frame table: the demo's reference, the device table, gpusvm's range pages, rmap and swap maps. */
const BYTES_PER_PAGE_OTHER = 40;
/** What the V8 heap and the host add to the typed arrays above, as a share of them, with room for a swing of the RSS. */
const MARGIN = 1.35;
/** JS heap per 2 MiB of the run (range, notifier and VMA objects) and the heap baseline. */
const HEAP_PER_2M = 4096;
const HEAP_BASELINE = 64 << 20;
/** Bytes of page data a written page holds: a head slot while nothing is written past it (physmem.ts). */
const DATA_PER_PAGE = STAMP <= HEAD_BYTES ? HEAD_BYTES : PAGE_SIZE;
/** Per RAM frame: the buddy free lists' next and prev links. */
const FREE_LIST_BYTES = 8;
/** Device memory starts at the 2 MiB subsection boundary above RAM (PhysMem). */
const SUBSECTION_FRAMES = 512;

export interface DemoMemoryEstimate {
  /** Bytes outside the V8 heap (typed arrays: frames, page data) plus the baseline. */
  totalBytes: number;
  /** Bytes of V8 heap. */
  heapBytes: number;
}

export function estimateDemoMemory(sizeBytes: number): DemoMemoryEstimate {
  const pages = sizeBytes / PAGE_SIZE;
  const ramFrames = demoRamBytes(sizeBytes) / PAGE_SIZE;
  const tableFrames = Math.ceil(ramFrames / SUBSECTION_FRAMES) * SUBSECTION_FRAMES + pages;
  const frames = tableFrames * BYTES_PER_FRAME + ramFrames * FREE_LIST_BYTES;
  const data = Math.ceil((DATA_FACTOR * pages * DATA_PER_PAGE) / SLAB_BYTES) * SLAB_BYTES;
  const other = pages * BYTES_PER_PAGE_OTHER;
  return {
    totalBytes: BASELINE_BYTES + Math.ceil(MARGIN * (frames + data + other)),
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
