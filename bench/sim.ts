// The GPU simulator's speed rows of `npm run bench` (issue 15): resident GPU page accesses per
// second, GPU faults serviced per second end to end, a 10 GiB-footprint bfs at 150%
// oversubscription, and host memory per simulated page. Rates are per second of CPU time
// (process.cpuUsage), which a loaded machine disturbs less than wall time; wall time is shown
// beside it. HMMSIM_BENCH_SIM=0 skips these rows, HMMSIM_BENCH_BIG=0 skips the 10 GiB run;
// `--quick` runs a 1 GiB bfs instead of 10 GiB. In --json mode these rows are not printed (yet).

import { runSimulation, setupRun, executeRun, type RunOptions, type RunRecord } from '../src/sim/simulate.js';
import { textTable } from '../src/cli/table.js';

interface SimRow { name: string; value: number; unit: string; target: string; met: boolean; note: string }

function run(o: Partial<RunOptions>): RunRecord {
  return runSimulation({ preset: 'gtx1080ti-pcie3', driver: 'uvm', seed: 1, ...o }).record;
}

export async function simBench(): Promise<void> {
  if (process.env.HMMSIM_BENCH_SIM === '0' || process.argv.includes('--json')) return;
  const quick = process.argv.includes('--quick');
  const rows: SimRow[] = [];
  const log = (s: string) => process.stderr.write(s + '\n');

  // 1. resident accesses: stream with everything resident; the difference between 6 and 2
  //    iterations is 4 iterations of pure translation hits.
  log('sim: resident accesses ...');
  const fp = quick ? 64 : 256;
  run({ workload: 'stream', footprintMiB: 16, oversub: 1, iterations: 2 }); // warm the JIT
  const a = run({ workload: 'stream', footprintMiB: fp, oversub: 1, iterations: 2, computeNs: 0 });
  const b = run({ workload: 'stream', footprintMiB: fp, oversub: 1, iterations: 6, computeNs: 0 });
  const resident = (b.gpu.accesses - a.gpu.accesses) / ((b.cpuMs - a.cpuMs) / 1000);
  rows.push({ name: 'resident GPU page accesses', value: resident, unit: '/s', target: '>= 20 M/s', met: resident >= 20e6, note: `stream ${fp} MiB, iterations 6 minus 2` });

  // 2. faults end to end: random access, no prefetch, everything fits (each page faults once,
  //    plus the accesses that find it in flight): batching, HMM calls, migration bookkeeping.
  log('sim: faults serviced ...');
  const f = run({ workload: 'ra', footprintMiB: quick ? 64 : 256, oversub: 1, prefetch: 'none', iterations: 1, computeNs: 0 });
  const faults = f.gpu.faults / (f.cpuMs / 1000);
  rows.push({ name: 'GPU faults serviced end to end', value: faults, unit: '/s', target: '>= 0.5 M/s', met: faults >= 0.5e6, note: `ra ${quick ? 64 : 256} MiB, ${f.gpu.faults} faults in ${f.gpu.batches} batches` });

  // 3. a 10 GiB bfs at 150% oversubscription, on one core
  if (process.env.HMMSIM_BENCH_BIG !== '0') {
    const gib = quick ? 1 : 10;
    log(`sim: ${gib} GiB bfs at 150% ...`);
    const before = process.memoryUsage();
    const s = setupRun({ workload: 'bfs', footprintMiB: gib * 1024, oversub: 1.5, preset: 'gtx1080ti-pcie3', driver: 'uvm', seed: 1 });
    const r = executeRun(s).record;
    const after = process.memoryUsage();
    const pages = (gib * 2 ** 30) / 4096;
    rows.push({ name: `${gib} GiB bfs at 150% oversubscription`, value: r.wallMs / 1000, unit: 's', target: '< 120 s', met: r.wallMs < 120_000, note: `CPU ${(r.cpuMs / 1000).toFixed(1)} s, ${r.gpu.faults} faults, ${r.gpu.accesses} accesses` });
    const perPage = (after.rss - before.rss) / pages;
    rows.push({ name: 'host memory per simulated page (RSS growth)', value: perPage, unit: 'B', target: 'reported', met: true, note: `${gib} GiB footprint, ${pages} pages; no page data (accesses carry no bytes)` });
  }

  const fmt = (r: SimRow) => (r.unit === '/s' ? (r.value >= 1e6 ? `${(r.value / 1e6).toFixed(2)} M/s` : `${(r.value / 1e3).toFixed(1)} K/s`) : r.unit === 's' ? `${r.value.toFixed(1)} s` : `${r.value.toFixed(0)} B`);
  console.log('GPU simulator (rates per CPU second):');
  console.log(textTable(['figure', 'hmmsim', 'target', 'met', 'note'], rows.map((r) => [r.name, fmt(r), r.target, r.met ? 'yes' : 'NO', r.note])));
}
