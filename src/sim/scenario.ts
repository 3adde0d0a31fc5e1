// The built-in scenario of `hmmsim run`: a process fills memory on the CPU; a device mirrors
// it and reads it, migrates part of it into its own memory and writes it there, the CPU
// touches some of that again (migrating it back); the CPU changes its page tables under the
// device (write-protects part, forks and writes (COW), swaps part out, unmaps part), the
// device keeps reading; and
// at the end every byte the CPU and the device read is checked against a reference, and the
// mirror against the CPU page tables.

import { Machine } from '../mm/machine.js';
import { MADV_NOHUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.js';
import { SeededRandom } from '../sched/random.js';
import { Metrics, type MetricsSnapshot } from './metrics.js';
import { MirrorDevice, type DeviceStats } from './mirror-device.js';

export interface ScenarioOptions {
  /** Bytes of memory the process maps (a multiple of 4 pages). */
  sizeBytes: number;
  seed: number;
  /** Called after each step with (step index, step count, name). */
  onStep?: (done: number, total: number, name: string) => void;
}

export interface StepReport {
  name: string;
  deviceMapped: number;
  mirrorViolations: number;
}

export interface ScenarioReport {
  sizeBytes: number;
  pages: number;
  seed: number;
  steps: StepReport[];
  metrics: MetricsSnapshot;
  device: DeviceStats;
  frames: { systemInUse: number; systemTotal: number; swapSlotsInUse: number; deviceInUse: number; deviceTotal: number };
  /** Bytes compared against the reference, and mismatches found (CPU and device reads). */
  dataChecked: number;
  dataMismatches: number;
  mirrorViolations: number;
  framesLeakedAfterExit: number;
  ok: boolean;
}

export function runScenario(opts: ScenarioOptions): ScenarioReport {
  const { sizeBytes, seed } = opts;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 16 * PAGE_SIZE || sizeBytes % (4 * PAGE_SIZE)) {
    throw new RangeError('size must be a multiple of 16 KiB, at least 64 KiB');
  }
  const pages = sizeBytes / PAGE_SIZE;
  const machine = new Machine({ ramBytes: Math.max(256 << 20, Math.ceil((3 * sizeBytes) / (2 << 20)) * (2 << 20)), swapBytes: sizeBytes });
  const metrics = new Metrics(machine);
  const rand = SeededRandom.of(seed);
  const proc = machine.spawn();
  const base = proc.mmap(0, sizeBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  proc.madvise(base, sizeBytes, MADV_NOHUGEPAGE);
  // Reference contents: each page holds a 32-byte stamp of (page, version); the rest is zero.
  const version = new Uint32Array(pages);
  const unmapped = new Uint8Array(pages);
  const stamp = (pg: number, v: number): Uint8Array => {
    const b = new Uint8Array(32);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, pg, true);
    dv.setUint32(4, v, true);
    dv.setUint32(8, (seed * 2654435761 + pg * 40503 + v) >>> 0, true);
    return b;
  };
  const addr = (pg: number) => base + pg * PAGE_SIZE;
  const writeCpu = (pg: number) => proc.write(addr(pg), stamp(pg, ++version[pg]!));
  let dataChecked = 0;
  let dataMismatches = 0;
  const compare = (got: Uint8Array, pg: number) => {
    const want = stamp(pg, version[pg]!);
    dataChecked += want.length;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) { dataMismatches++; break; }
  };
  const pick = (n: number): number[] => {
    const out = new Set<number>();
    while (out.size < n) {
      const pg = rand.below(pages);
      if (!unmapped[pg]) out.add(pg);
    }
    return [...out];
  };

  const dev = new MirrorDevice(proc.mm, { device: 'dev0' });
  const devmem = dev.attachMemory(pages);
  const q3 = [pages / 2, (3 * pages) / 4];
  let child: ReturnType<typeof proc.fork> | null = null;
  const reports: StepReport[] = [];
  const deviceReadAll = () => {
    for (let pg = 0; pg < pages; pg++) if (!unmapped[pg] && version[pg]) compare(dev.read(addr(pg), 32), pg);
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
    ['CPU reads a quarter of them (migrate_to_ram)', () => {
      for (let pg = q3[0]!; pg < q3[1]!; pg += 4) compare(proc.read(addr(pg), 32), pg);
    }],
    ['device reads everything (its own memory in place)', deviceReadAll],
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
      for (let pg = 0; pg < pages; pg++) if (!unmapped[pg]) compare(proc.read(addr(pg), 32), pg);
    }],
  ];
  let violations = 0;
  steps.forEach(([name, fn], i) => {
    fn();
    const bad = dev.check();
    violations += bad.length;
    reports.push({ name, deviceMapped: dev.pt.size, mirrorViolations: bad.length });
    opts.onStep?.(i + 1, steps.length, name);
  });
  const frames = {
    systemInUse: machine.phys.usedRamFrames, systemTotal: machine.phys.ramFrames, swapSlotsInUse: machine.swap.used,
    deviceInUse: devmem.usedPages, deviceTotal: devmem.pgmap.nframes,
  };
  const device = { ...dev.stats };
  dev.close();
  proc.exit();
  const snapshot = metrics.snapshot();
  metrics.detach();
  const leaked = machine.phys.usedRamFrames + devmem.usedPages;
  machine.dispose();
  return {
    sizeBytes, pages, seed, steps: reports, metrics: snapshot, device, frames, dataChecked, dataMismatches,
    mirrorViolations: violations, framesLeakedAfterExit: leaked,
    ok: dataMismatches === 0 && violations === 0 && leaked === 0,
  };
}
