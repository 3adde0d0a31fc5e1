// `npm run bench:demo`: `hmmsim demo` against the sum of its parts.
//
// The demo is timed step by step (runDemo's own per-step times). The parts are the same mm
// operations and HMM calls made directly, step by step, on a fresh machine with the same size
// and seed: the CPU accesses, mprotect, fork, madvise, munmap and exit; hmm_range_fault over
// the same 2 MiB windows under one interval notifier per 512 MiB, with the read_begin /
// read_retry protocol; migrate_vma_setup / pages / finalize with a page copy into device
// frames and back on a CPU fault (the whole 2 MiB window, as drm_pagemap); device reads and
// writes of the same bytes through a flat array of pfns. What the parts leave out is what the
// demo adds: gpusvm's ranges, notifiers and locks, svmdev's page table, the data check and
// the mirror check after every step.
//
// Both sides run `--repeats` times in this process, interleaved, after one unmeasured run
// of each (the host's first touch of fresh memory is not the model's cost: on a VM it can be
// ~100 us per 4 KiB); the medians of CPU time (process.cpuUsage) are reported, which a loaded
// machine inflates less than wall time.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_WRITE, HmmRange, hmmRangeFault, KernelError, Machine, MADV_NOHUGEPAGE, MADV_PAGEOUT,
  MAP_ANONYMOUS, MAP_PRIVATE, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM,
  MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq, migratePfn,
  migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, DevPagemap, memremapPages,
  PAGE_SIZE, PROT_READ, PROT_WRITE, VM_FAULT_SIGBUS, type VmFault,
} from '../src/index.js';
import { accessVm } from '../src/mm/access.js';
import { SeededRandom } from '../src/sched/random.js';
import { cpuNowMs, demoRamBytes, runDemo } from '../src/sim/demo.js';
import type { BenchCase } from './model.js';
import type { Sample } from './row.js';
import { textTable } from '../src/cli/table.js';

const WIN = 2 << 20;
const WIN_PAGES = WIN / PAGE_SIZE;
const NOTIFIER = 512 << 20;

/** The parts of the demo, step by step; returns each step's CPU milliseconds. */
export function runDemoParts(sizeBytes: number, seed: number): number[] {
  const pages = sizeBytes / PAGE_SIZE;
  // The demo's machine: RAM, swap, and room in the frame table for the device's memory.
  const machine = new Machine({ ramBytes: demoRamBytes(sizeBytes), swapBytes: sizeBytes, deviceBytes: sizeBytes });
  const phys = machine.phys;
  const rand = SeededRandom.of(seed);
  const proc = machine.spawn();
  const base = proc.mmap(0, sizeBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  proc.madvise(base, sizeBytes, MADV_NOHUGEPAGE);
  const addr = (pg: number) => base + pg * PAGE_SIZE;
  const buf = new Uint8Array(32);
  const unmapped = new Uint8Array(pages);
  // The device: a pfn per page (-1: not mapped) and a write bit, kept by the invalidations.
  const pfn = new Int32Array(pages).fill(-1);
  const wr = new Uint8Array(pages);
  const owner = { device: 'parts' };
  let own: { start: number; end: number } | null = null;
  const winOf = (a: number) => Math.floor(a / WIN) * WIN;
  const drop = (start: number, end: number) => {
    // Whole 2 MiB windows, as gpusvm invalidates whole ranges.
    const s = Math.max(0, (winOf(start) - base) / PAGE_SIZE);
    const e = Math.min(pages, Math.ceil((Math.min(end, base + sizeBytes) - base) / PAGE_SIZE / WIN_PAGES) * WIN_PAGES);
    if (e > s) pfn.fill(-1, s, e);
  };
  const notifiers: MmuIntervalNotifier[] = [];
  for (let n = Math.floor(base / NOTIFIER) * NOTIFIER; n < base + sizeBytes; n += NOTIFIER) {
    const sub = new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        mmuIntervalSetSeq(s, seq);
        if (!(r.event === 'MIGRATE' && own && r.start >= own.start && r.end <= own.end)) drop(r.start, r.end);
        return true;
      },
    });
    mmuIntervalNotifierInsert(sub, proc.mm, n, NOTIFIER);
    notifiers.push(sub);
  }
  const subOf = (a: number) => notifiers[Math.floor(a / NOTIFIER) - Math.floor(base / NOTIFIER)]!;
  const range = new HmmRange({ notifier: notifiers[0]!, start: 0, end: 0, hmmPfns: new Uint32Array(WIN_PAGES), hmmFlags: new Uint8Array(WIN_PAGES), devPrivateOwner: owner });
  const faultWindow = (a: number, write: boolean) => {
    const w = winOf(a);
    const start = Math.max(w, base);
    const end = Math.min(w + WIN, base + sizeBytes);
    range.notifier = subOf(start);
    range.start = start;
    range.end = end;
    range.defaultFlags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    for (;;) {
      range.notifierSeq = mmuIntervalReadBegin(range.notifier);
      try {
        hmmRangeFault(range);
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue;
        throw e;
      }
      if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) continue;
      const first = (start - base) / PAGE_SIZE;
      for (let i = 0; i < (end - start) / PAGE_SIZE; i++) {
        pfn[first + i] = range.hmmPfns[i]!;
        wr[first + i] = range.hmmFlags[i]! & HMM_PFN_WRITE ? 1 : 0;
      }
      return;
    }
  };
  const devRead = (pg: number) => {
    if (pfn[pg]! < 0) faultWindow(addr(pg), false);
    phys.readPage(pfn[pg]!, 0, buf, 0, 32);
  };
  const devWrite = (pg: number) => {
    if (pfn[pg]! < 0 || !wr[pg]) faultWindow(addr(pg), true);
    phys.writePage(pfn[pg]!, 0, buf, 0, 32);
  };
  // Device memory: a free stack of frames, migrate_to_ram of the whole window.
  const free: number[] = [];
  const pgmap = new DevPagemap('private', owner, {
    pageFree: (p) => void free.push(p),
    migrateToRam: (vmf: VmFault) => {
      const w = winOf(vmf.address);
      const args = newMigrateVma(vmf.vma, Math.max(w, vmf.vma.start), Math.min(w + WIN, vmf.vma.end), MIGRATE_VMA_SELECT_DEVICE_PRIVATE, owner, vmf.page);
      migrateVmaSetup(args);
      for (let i = 0; i < args.npages; i++) {
        const s = args.src[i]!;
        const sp = migratePfnToPage(s);
        if (sp < 0 || !migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
        const d = phys.tryAllocPages(0);
        if (d < 0) return VM_FAULT_SIGBUS;
        phys.trylockPage(d);
        phys.copyPage(d, sp);
        args.dst[i] = migratePfn(d) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
      }
      migrateVmaPages(args);
      migrateVmaFinalize(args);
      return 0;
    },
  });
  const firstDev = memremapPages(machine, pgmap, pages);
  for (let i = pages - 1; i >= 0; i--) free.push(firstDev + i);
  const migrateWindow = (w: number) => {
    const start = Math.max(w, base);
    const end = Math.min(w + WIN, base + sizeBytes);
    const vma = proc.mm.findVma(start)!;
    const args = newMigrateVma(vma, start, end, MIGRATE_VMA_SELECT_SYSTEM, owner);
    own = { start, end };
    migrateVmaSetup(args);
    for (let i = 0; i < args.npages; i++) {
      const s = args.src[i]!;
      if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
      const d = free.pop()!;
      phys.deviceFrameInit(d);
      phys.trylockPage(d);
      const sp = migratePfnToPage(s);
      if (sp >= 0) phys.copyPage(d, sp);
      else phys.clearPage(d);
      args.dst[i] = migratePfn(d) + MIGRATE_PFN_WRITE;
    }
    migrateVmaPages(args);
    const first = (start - base) / PAGE_SIZE;
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      pfn[first + i] = migratePfnToPage(args.dst[i]!);
      wr[first + i] = 1;
    }
    migrateVmaFinalize(args);
    own = null;
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
  const readAll = () => {
    for (let pg = 0; pg < pages; pg++) if (!unmapped[pg]) devRead(pg);
  };
  const faultAll = (from: number, to: number, write: boolean) => {
    for (let a = from; a < to; a = winOf(a) + WIN) faultWindow(a, write);
  };
  const q3 = [pages / 2, (3 * pages) / 4];
  let child: ReturnType<typeof proc.fork> | null = null;
  const steps: Array<() => void> = [
    () => { for (let pg = 0; pg < pages; pg++) accessVm(proc.mm, addr(pg), buf, true); },
    () => { faultAll(base, base + sizeBytes, false); readAll(); },
    () => { faultAll(base, base + sizeBytes / 2, true); },
    () => { proc.mprotect(addr(pages / 4), sizeBytes / 4, PROT_READ); },
    readAll,
    () => { proc.mprotect(addr(pages / 4), sizeBytes / 4, PROT_READ | PROT_WRITE); },
    () => { for (let a = winOf(addr(q3[0]!)); a < addr(q3[1]!); a += WIN) migrateWindow(a); },
    () => { for (let pg = q3[0]!; pg < q3[1]!; pg++) devWrite(pg); },
    readAll,
    () => { for (let pg = q3[0]!; pg < q3[1]!; pg += 4) accessVm(proc.mm, addr(pg), buf, false); },
    () => { child = proc.fork(); },
    () => { for (const pg of pick(pages / 8)) accessVm(proc.mm, addr(pg), buf, true); },
    () => { faultAll(base, base + sizeBytes, true); readAll(); },
    () => { for (const pg of pick(pages / 8)) proc.madvise(addr(pg), PAGE_SIZE, MADV_PAGEOUT); },
    readAll,
    () => { proc.munmap(addr((3 * pages) / 4), sizeBytes / 4); unmapped.fill(1, (3 * pages) / 4); drop(addr((3 * pages) / 4), base + sizeBytes); },
    () => { (child as ReturnType<typeof proc.fork> | null)?.exit(); child = null; },
    () => { for (let pg = 0; pg < pages; pg++) if (!unmapped[pg]) accessVm(proc.mm, addr(pg), buf, false); },
  ];
  const ms: number[] = [];
  for (const step of steps) {
    const t = cpuNowMs();
    step();
    ms.push(cpuNowMs() - t);
  }
  proc.exit();
  machine.dispose();
  return ms;
}

/**
 * The demo and its parts as `npm run bench` cases (bench/model.ts): one run each, its CPU time
 * the sum of its steps' (the demo's with its checks), its wall time the whole call's.
 */
export const DEMO_CASES = {
  demo: {
    prepare(sizeBytes) {
      return {
        run(): Sample {
          const w = performance.now();
          const d = runDemo({ sizeBytes, seed: 1 });
          const wall = (performance.now() - w) / 1000;
          if (!d.ok) throw new Error('the demo failed');
          let cpuMs = 0;
          for (const s of d.steps) cpuMs += s.cpuMs + s.checkCpuMs;
          return { work: 1, cpu: cpuMs / 1000, wall };
        },
        done() {},
      };
    },
  },
  demo_parts: {
    prepare(sizeBytes) {
      return {
        run(): Sample {
          const w = performance.now();
          const ms = runDemoParts(sizeBytes, 1);
          const wall = (performance.now() - w) / 1000;
          return { work: 1, cpu: ms.reduce((a, b) => a + b, 0) / 1000, wall };
        },
        done() {},
      };
    },
  },
} satisfies Record<string, BenchCase>;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The whole command, `hmmsim demo --size <MiB>`, in a fresh process: what a user waits for
 * (module loading, the machine's setup and teardown, the host's first touch of the memory the
 * run uses, code not yet optimized). dist/ (as built by npm run build) when it exists, else tsx;
 * CPU time (user + system) from /usr/bin/time where present.
 */
export function demoCliSample(sizeMiB: number, seed: number): { cpu: number; wall: number; load: number; compiled: boolean } {
  const compiled = existsSync(join(root, 'dist', 'cli', 'main.js'));
  const args = ['demo', '--size', String(sizeMiB), '--seed', String(seed), '--json', '--no-progress'];
  const cmd = compiled ? [process.execPath, 'dist/cli/main.js', ...args] : [process.execPath, '--import', 'tsx', 'src/cli/main.ts', ...args];
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const load = loadavg()[0]!;
  const w0 = performance.now();
  const res = timeBin
    ? spawnSync(timeBin, ['-f', 'CPU %U %S', ...cmd], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 })
    : spawnSync(cmd[0]!, cmd.slice(1), { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = (performance.now() - w0) / 1000;
  if (res.status !== 0) throw new Error(`hmmsim demo failed: ${res.stderr}`);
  const m = /CPU ([\d.]+) ([\d.]+)/.exec(res.stderr);
  return { cpu: m ? Number(m[1]) + Number(m[2]) : NaN, wall, load: (load + loadavg()[0]!) / 2, compiled };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const o = new Command()
    .name('npm run bench:demo --')
    .description('hmmsim demo against the sum of its parts (the mm operations and HMM calls it makes)')
    .option('--size <MiB>', 'demo size', '64')
    .option('--seed <n>', 'seed', '1')
    .option('--repeats <n>', 'measured runs of each side (medians reported)', '3')
    .option('--cli <n>', 'also run the whole command (hmmsim demo --size <MiB>) n times, each in a fresh process', '1')
    .option('--json', 'print JSON')
    .parse()
    .opts<{ size: string; seed: string; repeats: string; cli: string; json?: boolean }>();
  const size = Number(o.size) * 2 ** 20;
  const seed = Number(o.seed);
  const repeats = Number(o.repeats);
  const demoSteps: number[][] = [];
  const checkSteps: number[][] = [];
  const partSteps: number[][] = [];
  let names: string[] = [];
  for (let r = 0; r <= repeats; r++) {
    // No forced collection between runs: a full GC drops V8's feedback and the next run
    // would start unoptimized (bench/README.md, notes on method).
    const d = runDemo({ sizeBytes: size, seed });
    if (!d.ok) throw new Error('the demo failed');
    const p = runDemoParts(size, seed);
    if (r === 0) continue; // warm-up
    names = d.steps.map((s) => s.name);
    demoSteps.push(d.steps.map((s) => s.cpuMs));
    checkSteps.push(d.steps.map((s) => s.checkCpuMs));
    partSteps.push(p);
  }
  const rows = names.map((name, i) => {
    const demo = median(demoSteps.map((s) => s[i]!));
    const check = median(checkSteps.map((s) => s[i]!));
    const parts = median(partSteps.map((s) => s[i]!));
    return { name, demo, check, parts };
  });
  const total = { demo: 0, check: 0, parts: 0 };
  for (const r of rows) {
    total.demo += r.demo;
    total.check += r.check;
    total.parts += r.parts;
  }
  const ratio = (total.demo + total.check) / total.parts;
  const cli = Array.from({ length: Number(o.cli) }, () => demoCliSample(Number(o.size), seed));
  if (o.json) {
    process.stdout.write(JSON.stringify({ sizeMiB: Number(o.size), seed, repeats, rows, total, ratio, target: 1.5, met: ratio <= 1.5, cli }, null, 2) + '\n');
    return;
  }
  const f = (x: number) => x.toFixed(1);
  process.stdout.write(`hmmsim demo --size ${o.size} against its parts (CPU ms, median of ${repeats})\n`);
  const body = [...rows, { name: 'total', ...total }].map((r) => [r.name, f(r.demo), f(r.check), f(r.parts)]);
  process.stdout.write(textTable(['step', 'demo', 'check', 'parts'], body, { align: ['left', 'right', 'right', 'right'] }) + '\n');
  process.stdout.write(`demo with its checks / parts: ${ratio.toFixed(2)} (target <= 1.5: ${ratio <= 1.5 ? 'met' : 'missed'})\n`);
  for (const c of cli) {
    process.stdout.write(`whole command (${c.compiled ? 'dist/' : 'tsx'}, fresh process): ${c.cpu.toFixed(2)} s CPU, ${c.wall.toFixed(2)} s wall, load ${c.load.toFixed(1)}\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
