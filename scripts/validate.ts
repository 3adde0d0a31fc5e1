// Validation against published figures (docs/validation.md): `npx tsx scripts/validate.ts`
// prints the tables the doc shows. Options: --quick (two workloads, fewer points),
// --json (the numbers as JSON).
//
// 1. The PCIe transfer curve against the measured cudaMemcpy table (UVMSmart transferBandwidth.cu).
// 2. Calibration: each workload's compute per access is fitted so that its no-oversubscription
//    run (tree prefetch, VRAM >= footprint) takes UVMSmart's simulated time for it.
// 3. Predictions with that compute, against UVMSmart's results: on-demand (no prefetch) against
//    tree prefetch, and 110% / 125% / 150% oversubscription with tree prefetch and UVM eviction.
// 4. Batch mechanics: batch sizes and service times against the UVM defaults they come from.

import { transferTimeNs } from '../src/sim/cost-model.js';
import { gtx1080tiPcie3 } from '../src/sim/presets/index.js';
import { runSimulation, type RunOptions, type RunRecord } from '../src/sim/simulate.js';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const KiB = 1024;
const MHZ = 1481;

// UVMSmart micro-benchmarks/transferBandwidth.cu (nvprof), host to device, pageable.
const MEASURED: Array<[number, number]> = [
  [4 * KiB, 1.184], [8 * KiB, 1.568], [16 * KiB, 2.368], [32 * KiB, 3.969], [64 * KiB, 7.2],
  [128 * KiB, 12.673], [256 * KiB, 23.233], [512 * KiB, 44.418], [1024 * KiB, 87.011],
];

// spec section 2c: UVMSmart (GTX 1080 Ti model), cycles at NoOversub and slowdowns.
interface Published { noOversubCycles: number; onDemand: number; tbn: Record<string, number | null>; footprintMiB: number }
const PUBLISHED: Record<string, Published> = {
  // footprints: UVMSmart's benchmarks run on working sets of about 6-30 MB (spec section 3); the
  // exact ones are not in our sources, these are estimates (bfs: 7.8 MB of GDDR at 125% = 9.75 MB).
  backprop: { noOversubCycles: 5_800_938, onDemand: 3.35, tbn: { '1.1': 1.01, '1.25': 1.04, '1.5': 1.03 }, footprintMiB: 9 },
  bfs: { noOversubCycles: 7_103_257, onDemand: 1.71, tbn: { '1.1': 1.81, '1.25': 1.66, '1.5': 1.96 }, footprintMiB: 10 },
  fdtd: { noOversubCycles: 6_699_498, onDemand: 2.28, tbn: { '1.1': 2.28, '1.25': 2.77, '1.5': 3.49 }, footprintMiB: 12 },
  hotspot: { noOversubCycles: 3_521_897, onDemand: 2.77, tbn: { '1.1': 1.65, '1.25': 1.88, '1.5': 2.01 }, footprintMiB: 12 },
};

function run(o: Partial<RunOptions>): RunRecord {
  return runSimulation({ preset: 'gtx1080ti-pcie3', driver: 'uvm', evict: 'uvm', seed: 1, ...o }).record;
}

/** Fit computeNs so that the no-oversubscription run takes `targetUs` (time is increasing in compute). */
function calibrate(workload: string, footprintMiB: number, targetUs: number): { computeNs: number; us: number; runs: number } {
  const at = (c: number) => run({ workload, footprintMiB, oversub: 1, prefetch: 'tree', computeNs: c }).simulatedTimeUs;
  let lo = 0;
  let tLo = at(0);
  let runs = 1;
  if (tLo >= targetUs) return { computeNs: 0, us: tLo, runs };
  let hi = 1000;
  let tHi = at(hi);
  runs++;
  while (tHi < targetUs && hi < 1e7) { lo = hi; tLo = tHi; hi *= 8; tHi = at(hi); runs++; }
  let c = hi;
  let t = tHi;
  for (let i = 0; i < (quick ? 3 : 6); i++) {
    c = lo + ((hi - lo) * (targetUs - tLo)) / (tHi - tLo); // secant: time is close to linear in compute
    t = at(c);
    runs++;
    if (Math.abs(t - targetUs) / targetUs < 0.01) break;
    if (t < targetUs) { lo = c; tLo = t; } else { hi = c; tHi = t; }
  }
  return { computeNs: c, us: t, runs };
}

const out: Record<string, unknown> = {};
const log = (s = '') => { if (!args.has('--json')) console.log(s); };

// 1. transfer curve
log('## 1. Transfer time: the atan curve (gtx1080ti-pcie3) against the measured cudaMemcpy table\n');
log('| size | measured (us) | model (us) | model / measured |\n|---|---|---|---|');
const curve = MEASURED.map(([b, us]) => {
  const m = transferTimeNs(gtx1080tiPcie3.transfer.htod, b) / 1000;
  log(`| ${b / KiB} KiB | ${us.toFixed(3)} | ${m.toFixed(2)} | ${(m / us).toFixed(2)} |`);
  return { bytes: b, measuredUs: us, modelUs: m };
});
out.transfer = curve;

// 2-3. calibration and predictions
const names = quick ? ['backprop', 'hotspot'] : Object.keys(PUBLISHED);
const rows: Array<Record<string, unknown>> = [];
log('\n## 2-3. UVMSmart\'s results: calibrated on the no-oversubscription point, predicted elsewhere\n');
log('| workload | footprint | compute/access (fitted) | NoOversub (UVMSmart / hmmsim) | on-demand / tree (UVMSmart / hmmsim) | 110% | 125% | 150% |');
log('|---|---|---|---|---|---|---|---|');
for (const w of names) {
  const p = PUBLISHED[w]!;
  const targetUs = p.noOversubCycles / MHZ;
  const cal = calibrate(w, p.footprintMiB, targetUs);
  const base = run({ workload: w, footprintMiB: p.footprintMiB, oversub: 1, prefetch: 'tree', computeNs: cal.computeNs });
  const od = run({ workload: w, footprintMiB: p.footprintMiB, oversub: 1, prefetch: 'none', computeNs: cal.computeNs });
  const over: Record<string, number> = {};
  for (const x of quick ? ['1.5'] : ['1.1', '1.25', '1.5']) {
    over[x] = run({ workload: w, footprintMiB: p.footprintMiB, oversub: Number(x), prefetch: 'tree', computeNs: cal.computeNs }).simulatedTimeUs / base.simulatedTimeUs;
  }
  const cell = (x: string) => (over[x] === undefined ? '-' : `${p.tbn[x] ?? 'n/a'} / ${over[x]!.toFixed(2)}`);
  log(`| ${w} | ${p.footprintMiB} MiB | ${cal.computeNs.toFixed(1)} ns | ${targetUs.toFixed(0)} / ${base.simulatedTimeUs.toFixed(0)} us | ${p.onDemand} / ${(od.simulatedTimeUs / base.simulatedTimeUs).toFixed(2)} | ${cell('1.1')} | ${cell('1.25')} | ${cell('1.5')} |`);
  rows.push({
    workload: w, footprintMiB: p.footprintMiB, computeNs: cal.computeNs, calibrationRuns: cal.runs, targetUs, baseUs: base.simulatedTimeUs,
    onDemand: { published: p.onDemand, hmmsim: od.simulatedTimeUs / base.simulatedTimeUs }, oversub: Object.fromEntries(Object.entries(over).map(([k, v]) => [k, { published: p.tbn[k], hmmsim: v }])),
    batches: { count: base.gpu.batches, avgSize: base.gpu.avgBatchSize, avgUs: base.gpu.avgBatchUs },
    breakdownUs: base.breakdownUs,
  });
}
out.uvmsmart = rows;

// 4. batch mechanics
log('\n## 4. Batch mechanics (no-oversubscription runs, tree prefetch)\n');
log('| workload | faults | batches | avg batch size (<= 256) | avg batch time (us) |\n|---|---|---|---|---|');
for (const r of rows) {
  const b = r.batches as { count: number; avgSize: number; avgUs: number };
  const base = run({ workload: String(r.workload), footprintMiB: Number(r.footprintMiB), oversub: 1, prefetch: 'tree', computeNs: Number(r.computeNs) });
  log(`| ${r.workload} | ${base.gpu.faults} | ${b.count} | ${b.avgSize.toFixed(1)} | ${b.avgUs.toFixed(1)} |`);
}
if (args.has('--json')) console.log(JSON.stringify(out, null, 2));
