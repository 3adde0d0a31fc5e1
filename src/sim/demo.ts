// The built-in walk-through of `hmmsim demo`: a process fills memory on the CPU; a device
// (svmdev, a GPU-SVM driver on gpusvm) mirrors it and reads it, migrates part of it into its
// own memory and writes it there, the CPU touches some of that again (migrating it back);
// the CPU changes its page tables under the device (write-protects part, forks and writes
// (COW), swaps part out, unmaps part), the device keeps reading; and at the end every byte
// the CPU and the device read is checked against a reference, and the device's page table
// against the CPU page tables after every step.

import { accessVm } from '../mm/access.js';
import { Machine } from '../mm/machine.js';
import { MADV_NOHUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.js';
import { SeededRandom } from '../sched/random.js';
import { SvmDevice, type SvmDeviceStats } from '../drivers/svmdev/index.js';
import { Metrics, type MetricsSnapshot } from './metrics.js';

export interface DemoOptions {
  /** Bytes of memory the process maps (a multiple of 16 KiB, at least 64 KiB). */
  sizeBytes: number;
  seed: number;
  /** Called after each step with (step index, step count, name). */
  onStep?: (done: number, total: number, name: string) => void;
  /** Called once the machine and the device exist, before the first step (a recorder attaches here). */
  onSetup?: (machine: Machine, device: SvmDevice) => void;
  /** Called before each step with its index and name. */
  onStepStart?: (index: number, name: string) => void;
}

export interface DemoStep {
  name: string;
  /** Pages the device maps after the step. */
  deviceMapped: number;
  mirrorViolations: number;
  /** Wall time of the step, and of the mirror check after it, in milliseconds. */
  ms: number;
  checkMs: number;
  /** The same in CPU time (user + system of the process): what a loaded machine does not inflate. */
  cpuMs: number;
  checkCpuMs: number;
}

export interface DemoReport {
  sizeBytes: number;
  pages: number;
  seed: number;
  steps: DemoStep[];
  metrics: MetricsSnapshot;
  device: SvmDeviceStats;
  frames: { systemInUse: number; systemTotal: number; swapSlotsInUse: number; deviceInUse: number; deviceTotal: number };
  /** Bytes compared against the reference, and mismatches found (CPU and device reads). */
  dataChecked: number;
  dataMismatches: number;
  mirrorViolations: number;
  framesLeakedAfterExit: number;
  /** Wall and CPU time of the whole run, in milliseconds. */
  ms: number;
  cpuMs: number;
  ok: boolean;
}

/**
 * RAM the demo gives its machine for a process of sizeBytes: three times as much (the fill, and a
 * COW copy of every page after fork, with no reclaim), at least 256 MiB, whole 2 MiB.
 */
export function demoRamBytes(sizeBytes: number): number {
  return Math.max(256 << 20, Math.ceil((3 * sizeBytes) / (2 << 20)) * (2 << 20));
}

/** CPU time of this process so far, in milliseconds (0 where there is no process.cpuUsage). */
export function cpuNowMs(): number {
  const u = globalThis.process?.cpuUsage?.();
  return u ? (u.user + u.system) / 1000 : 0;
}

/** Bytes each page carries: a stamp of (page, version, seed); the rest of the page is zero. */
export const STAMP = 32;

export function runDemo(opts: DemoOptions): DemoReport {
  const { sizeBytes, seed } = opts;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 16 * PAGE_SIZE || sizeBytes % (4 * PAGE_SIZE)) {
    throw new RangeError('size must be a multiple of 16 KiB, at least 64 KiB');
  }
  const t0 = performance.now();
  const c0 = cpuNowMs();
  const pages = sizeBytes / PAGE_SIZE;
  // The frame table has room for the device's memory from the start: adding it then copies nothing.
  const machine = new Machine({ ramBytes: demoRamBytes(sizeBytes), swapBytes: sizeBytes, deviceBytes: sizeBytes });
  const metrics = new Metrics(machine);
  const rand = SeededRandom.of(seed);
  const proc = machine.spawn();
  const base = proc.mmap(0, sizeBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  proc.madvise(base, sizeBytes, MADV_NOHUGEPAGE);
  // Reference contents: the version of each page's stamp (0: never written, reads as zeros).
  const version = new Uint32Array(pages);
  const unmapped = new Uint8Array(pages);
  // One stamp buffer and one read buffer for the whole run: nothing is allocated per page. The
  // stamp is three 32-bit words and zeros; the compare reads both buffers a word at a time.
  const want = new Uint8Array(STAMP);
  const want32 = new Uint32Array(want.buffer);
  const got = new Uint8Array(STAMP);
  const got32 = new Uint32Array(got.buffer);
  const stamp = (pg: number, v: number): Uint8Array => {
    want32[0] = pg;
    want32[1] = v;
    want32[2] = (seed * 2654435761 + pg * 40503 + v) >>> 0;
    return want;
  };
  const addr = (pg: number) => base + pg * PAGE_SIZE;
  const writeCpu = (pg: number) => accessVm(proc.mm, addr(pg), stamp(pg, ++version[pg]!), true);
  let dataChecked = 0;
  let dataMismatches = 0;
  const compare = (pg: number) => {
    stamp(pg, version[pg]!);
    dataChecked += STAMP;
    let diff = 0;
    for (let i = 0; i < STAMP / 4; i++) diff |= got32[i]! ^ want32[i]!;
    if (diff !== 0) dataMismatches++;
  };
  const cpuCompare = (pg: number) => {
    accessVm(proc.mm, addr(pg), got, false);
    compare(pg);
  };
  const deviceCompare = (pg: number) => {
    dev.readInto(addr(pg), got, 0, STAMP);
    compare(pg);
  };
  const pick = (n: number): Uint32Array => {
    const chosen = new Uint8Array(pages);
    const out = new Uint32Array(n);
    for (let k = 0; k < n; ) {
      const pg = rand.below(pages);
      if (unmapped[pg] || chosen[pg]) continue;
      chosen[pg] = 1;
      out[k++] = pg;
    }
    return out;
  };

  const dev = new SvmDevice(proc.mm, { device: 'dev0' });
  const vram = dev.attachMemory(pages);
  const q3 = [pages / 2, (3 * pages) / 4];
  let child: ReturnType<typeof proc.fork> | null = null;
  const deviceReadAll = () => {
    for (let pg = 0; pg < pages; pg++) if (!unmapped[pg] && version[pg]) deviceCompare(pg);
  };
  const steps: Array<[string, () => void]> = [
    ['CPU fills the buffer', () => { for (let pg = 0; pg < pages; pg++) writeCpu(pg); }],
    ['device mirrors it (read faults) and reads it', () => { dev.fault(base, base + sizeBytes, false); deviceReadAll(); }],
    ['device write-faults the first half', () => { dev.fault(base, base + sizeBytes / 2, true); }],
    ['CPU write-protects a quarter (mprotect)', () => { proc.mprotect(addr(pages / 4), sizeBytes / 4, PROT_READ); }],
    ['device reads everything again', deviceReadAll],
    ['CPU restores write access', () => { proc.mprotect(addr(pages / 4), sizeBytes / 4, PROT_READ | PROT_WRITE); }],
    ['device migrates the third quarter into its memory', () => { dev.migrateToDevice(addr(q3[0]!), addr(q3[1]!)); }],
    ['device writes the pages it migrated', () => {
      for (let pg = q3[0]!; pg < q3[1]!; pg++) dev.write(addr(pg), stamp(pg, ++version[pg]!));
    }],
    ['device reads everything (its own memory in place)', deviceReadAll],
    ['CPU reads a quarter of them (migrate_to_ram brings each range back)', () => {
      for (let pg = q3[0]!; pg < q3[1]!; pg += 4) cpuCompare(pg);
    }],
    ['process forks; the child stays alive', () => { child = proc.fork(); }],
    ['CPU writes an eighth of the pages (COW breaks)', () => { for (const pg of pick(pages / 8)) writeCpu(pg); }],
    ['device write-faults everything and reads it', () => { dev.fault(base, base + sizeBytes, true); deviceReadAll(); }],
    ['CPU pages out an eighth (MADV_PAGEOUT)', () => {
      for (const pg of pick(pages / 8)) proc.madvise(addr(pg), PAGE_SIZE, MADV_PAGEOUT);
    }],
    ['device reads everything (swap-in faults)', deviceReadAll],
    ['CPU unmaps the last quarter', () => {
      proc.munmap(addr((3 * pages) / 4), sizeBytes / 4);
      for (let pg = (3 * pages) / 4; pg < pages; pg++) unmapped[pg] = 1;
    }],
    ['child exits', () => { child?.exit(); child = null; }],
    ['CPU reads everything', () => {
      for (let pg = 0; pg < pages; pg++) if (!unmapped[pg]) cpuCompare(pg);
    }],
  ];
  let violations = 0;
  const reports: DemoStep[] = [];
  opts.onSetup?.(machine, dev);
  steps.forEach(([name, fn], i) => {
    opts.onStepStart?.(i, name);
    const s0 = performance.now();
    const c0 = cpuNowMs();
    fn();
    const s1 = performance.now();
    const c1 = cpuNowMs();
    const check = dev.check();
    const s2 = performance.now();
    const c2 = cpuNowMs();
    violations += check.violations;
    reports.push({ name, deviceMapped: dev.pt.size, mirrorViolations: check.violations, ms: s1 - s0, checkMs: s2 - s1, cpuMs: c1 - c0, checkCpuMs: c2 - c1 });
    opts.onStep?.(i + 1, steps.length, name);
  });
  const frames = {
    systemInUse: machine.phys.usedRamFrames, systemTotal: machine.phys.ramFrames, swapSlotsInUse: machine.swap.used,
    deviceInUse: vram.usedPages, deviceTotal: vram.totalPages,
  };
  const device = dev.stats;
  dev.close();
  proc.exit();
  const snapshot = metrics.snapshot();
  metrics.detach();
  const leaked = machine.phys.usedRamFrames + vram.usedPages;
  machine.dispose();
  return {
    sizeBytes, pages, seed, steps: reports, metrics: snapshot, device, frames, dataChecked, dataMismatches,
    mirrorViolations: violations, framesLeakedAfterExit: leaked, ms: performance.now() - t0, cpuMs: cpuNowMs() - c0,
    ok: dataMismatches === 0 && violations === 0 && leaked === 0,
  };
}
