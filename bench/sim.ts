// The GPU simulator's rows of `npm run bench` (issue 15, measured as issue 13 asks): each
// figure is taken inside a real run (`setupRun` + `executeRun`, the code `hmmsim run` runs),
// cold (the first run in a fresh process: JIT and host memory cold) and steady (after three
// warm-up runs of the same case and size in this process), in CPU time with wall time beside it.
//
//   resident GPU page accesses   stream at 100% (everything fits): the accesses of kernels 2..n,
//                                timed from the launch of the second kernel to the end of the
//                                last, when every page is resident and mapped (TLB misses and
//                                walks included; the window must see no fault); again with
//                                --large-pages on (2 MiB and 64 KiB leaves), reported only
//   GPU faults serviced          ra at 100%, no prefetch: the whole executeRun (warps raising
//                                faults, fault buffer, batches, HMM calls, migrate_vma, copies'
//                                bookkeeping, replays); and the default run's hotspot at 125%,
//                                where eviction joins in
//   bfs at 150%                  a whole run (setup included) in a fresh process; by default
//                                256 MiB and its time projected linearly to 10 GiB, a lower
//                                bound (the row gives the time per access at 64 and 256 MiB);
//                                HMMSIM_BENCH_BFS_MIB=10240 runs the real thing
//   host memory per page         peak RSS growth of that run over its pages (accesses carry no
//                                bytes: this is all metadata), and the marginal cost: the growth
//                                between that run and one at a quarter of its size, per page
//                                added (what a larger run pays per page beyond fixed costs)
//   hmmsim run, no arguments     the whole command in a fresh process (node --import tsx; and
//                                dist/cli/main.js, what npx hmmsim runs, rebuilt first if
//                                older than src/), wall
//
// HMMSIM_BENCH_SIM=0 skips these rows. `node --import tsx bench/sim.ts CASE ARG` runs one case
// once and prints its sample (the cold samples).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { estimateRunMemory, executeRun, setupRun, type RunOptions, type RunRecord } from '../src/sim/simulate.js';
import { figureOf, type Row, type Sample } from './row.js';

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 2 ** 20;

/** A sample and what the run was (for the row's note). */
interface SimSample extends Sample {
  info: Record<string, number | string>;
}

function cpuNow(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

function base(o: Partial<RunOptions>): Partial<RunOptions> {
  return { preset: 'gtx1080ti-pcie3', driver: 'uvm', seed: 1, ...o };
}

/** Resident accesses: stream at 100%, the window from the second kernel's launch to the last one's end. */
function residentCase(mib: number, largePages: boolean | null = null): SimSample {
  const s = setupRun(base({ workload: 'stream', footprintMiB: mib, oversub: 1, iterations: 6, computeNs: 0, largePages }));
  const gpu = s.system.gpu;
  let launches = 0;
  let c0 = 0;
  let w0 = 0;
  let a0 = 0;
  let f0 = 0;
  let c1 = 0;
  let w1 = 0;
  let a1 = 0;
  let f1 = 0;
  const mmu = gpu.mmu.stats;
  let h0 = 0;
  let k0 = 0;
  let h1 = 0;
  let k1 = 0;
  const off = gpu.events.subscribe('kernel', (e) => {
    if (e.phase === 'launch' && ++launches === 2) {
      c0 = cpuNow();
      w0 = performance.now();
      a0 = gpu.sms.stats.accesses;
      f0 = gpu.sms.stats.faultsRaised;
      h0 = mmu.utlbHits;
      k0 = mmu.walks;
    } else if (e.phase === 'end' && launches >= 2) {
      c1 = cpuNow();
      w1 = performance.now();
      a1 = gpu.sms.stats.accesses;
      f1 = gpu.sms.stats.faultsRaised;
      h1 = mmu.utlbHits;
      k1 = mmu.walks;
    }
  });
  const r = executeRun(s).record;
  off();
  if (f1 !== f0) throw new Error(`the resident window saw ${f1 - f0} faults`);
  return {
    work: a1 - a0, cpu: c1 - c0, wall: (w1 - w0) / 1000,
    info: { accesses: a1 - a0, utlbHits: h1 - h0, walks: k1 - k0, tlbMisses: r.gpu.tlbMisses },
  };
}

/** Faults serviced end to end: the whole executeRun of a faulting run. */
function faultCase(o: Partial<RunOptions>): SimSample {
  const s = setupRun(base(o));
  const r: RunRecord = executeRun(s).record;
  return {
    work: r.gpu.faults, cpu: r.cpuMs / 1000, wall: r.wallMs / 1000,
    info: { faults: r.gpu.faults, batches: r.gpu.batches, pages: (r.config.footprintMiB * MiB) / 4096, migrated: r.gpu.pagesMigratedToDevice, evicted: r.gpu.pagesEvicted },
  };
}

/** bfs at 150%: a whole run, setup included; memory as peak RSS growth per page. */
function bfsCase(mib: number): SimSample {
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage().rss;
  const c0 = cpuNow();
  const w0 = performance.now();
  const s = setupRun(base({ workload: 'bfs', footprintMiB: mib, oversub: 1.5 }));
  const r = executeRun(s).record;
  const cpu = cpuNow() - c0;
  const wall = (performance.now() - w0) / 1000;
  const peak = process.resourceUsage().maxRSS * 1024;
  const pages = (r.config.footprintMiB * MiB) / 4096;
  return {
    work: 1, cpu, wall,
    info: {
      pages, faults: r.gpu.faults, accesses: r.gpu.accesses, bytesPerPage: (peak - rss0) / pages,
      estimatePerPage: estimateRunMemory(r.config.footprintMiB * MiB, r.config.vramMiB * MiB) / pages,
    },
  };
}

const CASES: Record<string, (arg: number) => SimSample> = {
  resident: (mib) => residentCase(mib),
  resident_large: (mib) => residentCase(mib, true),
  faults: (mib) => faultCase({ workload: 'ra', footprintMiB: mib, oversub: 1, prefetch: 'none', iterations: 1, computeNs: 0 }),
  faults_evict: (mib) => faultCase({ workload: 'hotspot', footprintMiB: mib, oversub: 1.25 }),
  bfs: bfsCase,
};

/** One sample of a case in a fresh process. */
function coldSample(name: string, arg: number): SimSample {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'sim.ts'), name, String(arg)], {
    cwd: join(here, '..'), encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out) as SimSample;
}

/** `hmmsim run` with no arguments, the whole command in a fresh process (wall time; CPU time from /usr/bin/time where there is one). */
function cliSample(compiled = false): Sample {
  const cmd = compiled ? [process.execPath, 'dist/cli/main.js', 'run'] : [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'run'];
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const w0 = performance.now();
  const res = timeBin
    ? spawnSync(timeBin, ['-f', 'CPU %U %S', ...cmd], { cwd: join(here, '..'), encoding: 'utf8' })
    : spawnSync(cmd[0]!, cmd.slice(1), { cwd: join(here, '..'), encoding: 'utf8' });
  const wall = (performance.now() - w0) / 1000;
  if (res.status !== 0) throw new Error(`hmmsim run failed: ${res.stderr}`);
  const m = /CPU ([\d.]+) ([\d.]+)/.exec(res.stderr);
  return { work: 1, cpu: m ? Number(m[1]) + Number(m[2]) : wall, wall };
}

export interface SimBenchOptions {
  quick?: boolean;
  tiny?: boolean;
  only?: RegExp | null;
  log: (m: string) => void;
}

const fmtM = (x: number): string => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} K`);

/** The simulator's rows. */
export function simRows(o: SimBenchOptions): Row[] {
  if (process.env.HMMSIM_BENCH_SIM === '0') return [];
  const size = o.tiny ? 16 : o.quick ? 64 : 256;
  const steadyN = o.tiny ? 1 : 3;
  const warmups = o.tiny ? 1 : 3;
  const coldN = 1;
  const bfsMiB = Number(process.env.HMMSIM_BENCH_BFS_MIB ?? (o.tiny ? 16 : o.quick ? 64 : 256));
  const rows: Row[] = [];
  const want = (name: string): boolean => !o.only || o.only.test(name);

  const measure = (name: string, unit: string, caseName: string, arg: number, steady: boolean, finish: (row: Row, cold: SimSample[], steady: SimSample[]) => void): void => {
    if (!want(name)) return;
    o.log(`${name} ...`);
    const cold: SimSample[] = [];
    const warm: SimSample[] = [];
    for (let i = 0; i < coldN; i++) cold.push(coldSample(caseName, arg));
    if (steady) {
      // Warm-up runs of the measured size: a smaller run can miss code paths the measured one takes
      // (stream at 32 MiB gives each warp too few accesses to reach the end of a quantum), which
      // were then compiled inside the first steady sample.
      for (let i = 0; i < warmups; i++) CASES[caseName]!(arg);
      for (let i = 0; i < steadyN; i++) warm.push(CASES[caseName]!(arg));
    }
    const row: Row = {
      name, unit,
      hmmsim: { cold: figureOf(cold, unit), steady: figureOf(steady ? warm : cold, unit) },
      met: null, load: +loadavg()[0]!.toFixed(2),
    };
    finish(row, cold, warm);
    rows.push(row);
  };

  measure(`GPU sim: resident page accesses (stream ${size} MiB, 100%)`, 'accesses/s', 'resident', size, true, (row, cold) => {
    row.target = '>= 20 M/s';
    row.met = row.hmmsim.cold!.median >= 20e6 && row.hmmsim.steady.median >= 20e6;
    const i = cold[0]!.info as Record<string, number>;
    const pct = (x: number): string => `${((100 * x) / i.accesses!).toFixed(0)}%`;
    row.note = `kernels 2-6 of stream, all resident: ${i.accesses} accesses per run, ${pct(i.utlbHits!)} uTLB hits, ${pct(i.walks!)} walk the page table`;
  });
  measure(`GPU sim: resident page accesses, --large-pages on (stream ${size} MiB, 100%)`, 'accesses/s', 'resident_large', size, true, (row, cold) => {
    row.target = 'reported';
    const i = cold[0]!.info as Record<string, number>;
    const pct = (x: number): string => `${((100 * x) / i.accesses!).toFixed(0)}%`;
    row.note = `the row above with UVM's managed-memory page sizes (2 MiB and 64 KiB leaves; not UVM's HMM behaviour, docs/gpu.md): ${pct(i.utlbHits!)} uTLB hits, ${pct(i.walks!)} walk the page table`;
  });
  measure(`GPU sim: faults serviced end to end (ra ${size} MiB, 100%, no prefetch)`, 'faults/s', 'faults', size, true, (row, cold) => {
    const i = cold[0]!.info;
    row.target = '>= 0.5 M/s';
    row.met = row.hmmsim.cold!.median >= 0.5e6 && row.hmmsim.steady.median >= 0.5e6;
    row.note = `${i.faults} faults (fault buffer entries, duplicates included) in ${i.batches} batches over ${i.pages} pages, each populated in VRAM on first touch (no copy); ${fmtM((i.pages as number) / (cold[0]!.cpu || 1))} pages/s cold`;
  });
  measure(`GPU sim: faults serviced with eviction (hotspot ${size} MiB, 125%)`, 'faults/s', 'faults_evict', size, true, (row, cold) => {
    const i = cold[0]!.info;
    row.target = '>= 0.5 M/s';
    row.met = row.hmmsim.cold!.median >= 0.5e6 && row.hmmsim.steady.median >= 0.5e6;
    row.note = `the default run's workload and oversubscription: ${i.faults} faults, ${i.migrated} pages copied in, ${i.evicted} evicted (copied out)`;
  });
  const bfsName = bfsMiB >= 10240 ? 'GPU sim: 10 GiB bfs at 150%, whole run' : `GPU sim: bfs at 150% (${bfsMiB} MiB, whole run) projected to 10 GiB`;
  let bfsInfo: Record<string, number | string> | null = null;
  let small: SimSample | null = null;
  measure(bfsName, 's', 'bfs', bfsMiB, false, (row, cold) => {
    bfsInfo = cold[0]!.info;
    // the same run at a quarter of the size: its time per access shows how the cost grows (and
    // its memory, below, what each added page costs)
    small = coldSample('bfs', bfsMiB / 4);
    const scale = 10240 / bfsMiB;
    for (const f of [row.hmmsim.cold!, row.hmmsim.steady]) {
      f.median *= scale;
      f.min *= scale;
      f.max *= scale;
      f.wall *= scale;
    }
    row.target = '< 120 s, one core';
    row.met = row.hmmsim.cold!.median < 120 && row.hmmsim.cold!.wall < 120;
    const nsPerAccess = (x: SimSample) => (x.cpu / Number(x.info.accesses)) * 1e9;
    const [a, b] = [nsPerAccess(small), nsPerAccess(cold[0]!)];
    const perAccess = `${a.toFixed(0)} ns an access at ${bfsMiB / 4} MiB, ${b.toFixed(0)} ns at ${bfsMiB} MiB, setup included`;
    row.note = `one run in a fresh process${scale !== 1 ? `, times x${scale.toFixed(1)}` : ''}: ${bfsInfo.faults} faults, ${bfsInfo.accesses} accesses` +
      (scale === 1 ? '' : b > a
        ? `; a lower bound: the accesses grow linearly with the footprint, but each costs more as the random arrays outgrow the simulated TLBs' reach (${perAccess})`
        : ` (${perAccess})`);
  });
  if (bfsInfo) {
    const i = bfsInfo as Record<string, number>;
    const one = (x: number) => ({ median: x, min: x, max: x, wall: x, samples: 1 });
    const per = i.bytesPerPage!;
    rows.push({
      name: `GPU sim: host memory per simulated page (bfs ${bfsMiB} MiB)`, unit: 'B/page',
      hmmsim: { cold: one(per), steady: one(per) }, target: 'reported', met: null, load: +loadavg()[0]!.toFixed(2),
      note: `peak RSS growth over ${i.pages} pages (no page data: accesses carry no bytes); the run's own estimate ${i.estimatePerPage!.toFixed(0)} B/page`,
    });
    const q = (small as SimSample | null)!.info as Record<string, number>;
    const growth = (x: Record<string, number>) => x.bytesPerPage! * x.pages!;
    const marginal = (growth(i) - growth(q)) / (i.pages! - q.pages!);
    rows.push({
      name: `GPU sim: host memory per added page (bfs ${bfsMiB / 4} -> ${bfsMiB} MiB)`, unit: 'B/page',
      hmmsim: { cold: one(marginal), steady: one(marginal) }, target: 'reported', met: null, load: +loadavg()[0]!.toFixed(2),
      note: `peak RSS growth of the ${bfsMiB} MiB run minus that of a ${bfsMiB / 4} MiB run, over the pages between them: the fixed costs (code, TLBs, heap) cancel`,
    });
  }
  const cli = (compiled: boolean): void => {
    const name = `GPU sim: hmmsim run, no arguments, whole command (${compiled ? 'dist/, as npx hmmsim runs it' : 'tsx'})`;
    if (!want(name)) return;
    o.log(`${name} ...`);
    const samples = [cliSample(compiled)];
    if (!o.tiny) samples.push(cliSample(compiled));
    const f = figureOf(samples, 's');
    rows.push({
      name, unit: 's', hmmsim: { cold: f, steady: f }, target: '< 10 s wall', met: f.wall < 10, load: +loadavg()[0]!.toFixed(2),
      note: `each sample a fresh process, module loading${compiled ? ' (dist/, rebuilt first if older than src/)' : ' and TypeScript transform'} included; CPU from /usr/bin/time where present; cold and steady are the same samples`,
    });
  };
  cli(false);
  if (want('GPU sim: hmmsim run, no arguments, whole command (dist/')) {
    // dist/ is what npx hmmsim runs: built from the src/ being measured, or the row would time older code
    if (distIsStale()) {
      o.log('dist/ is older than src/: npm run build ...');
      execFileSync('npm', ['run', 'build'], { cwd: join(here, '..'), stdio: ['ignore', 'ignore', 'inherit'] });
    }
    cli(true);
  }
  return rows;
}

/** Whether dist/cli/main.js is missing or older than a file of src/. */
function distIsStale(): boolean {
  const main = join(here, '..', 'dist', 'cli', 'main.js');
  if (!existsSync(main)) return true;
  const built = statSync(main).mtimeMs;
  const newer = (dir: string): boolean => readdirSync(dir, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? newer(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs > built);
  return newer(join(here, '..', 'src'));
}

// `node --import tsx bench/sim.ts CASE ARG`: one sample, printed as JSON.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [name, arg] = process.argv.slice(2);
  const c = name ? CASES[name] : undefined;
  if (!c || arg === undefined) {
    process.stderr.write(`usage: bench/sim.ts CASE MIB; cases: ${Object.keys(CASES).join(' ')}\n`);
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(c(Number(arg))) + '\n');
}
