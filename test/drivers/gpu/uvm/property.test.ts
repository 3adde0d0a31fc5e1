// The property: random GPU kernels (many warps, reads, writes, atomics, prefetches) on a VRAM
// smaller than the footprint, interleaved with CPU reads and writes, munmap, mprotect, fork,
// explicit migration and exit; after every event the GPU maps only what the CPU maps with no
// more permission and no TLB holds a stale translation, every byte a warp or the CPU reads is
// what the reference says, and after teardown no frame is left. For UVM's defaults and for
// each policy alternative. HMMSIM_SOAK=<runs> runs longer.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../../src/mm/constants.js';
import { checkInvariants } from '../../../../src/mm/check.js';
import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_READ, ACCESS_WRITE, type AccessType } from '../../../../src/drivers/gpu/access.js';
import { checkGpuInvariants } from '../../../../src/drivers/gpu/check.js';
import { UvmDriver, type UvmOptions } from '../../../../src/drivers/gpu/uvm/uvm.js';
import type { Process } from '../../../../src/mm/process.js';
import { DataCheck, listProgram, makeRig } from '../helpers.js';

const PAGES = 1536; // 6 MiB footprint, three VA blocks
const runs = Number(process.env.HMMSIM_SOAK ?? 3);

type Op =
  | { k: 'launch'; warps: Array<Array<[number, number]>> }
  | { k: 'advance'; us: number }
  | { k: 'cpuRead'; page: number }
  | { k: 'cpuWrite'; page: number }
  | { k: 'munmap'; page: number; n: number }
  | { k: 'mprotect'; page: number; n: number; write: boolean }
  | { k: 'fork'; childWrites: number[] }
  | { k: 'migrate'; page: number; n: number; to: 'gpu' | 'cpu' };

const page = fc.integer({ min: 0, max: PAGES - 1 });
const access = fc.tuple(page, fc.constantFrom(ACCESS_READ, ACCESS_READ, ACCESS_WRITE, ACCESS_ATOMIC, ACCESS_PREFETCH));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('launch' as const), warps: fc.array(fc.array(access, { minLength: 1, maxLength: 24 }), { minLength: 1, maxLength: 12 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('advance' as const), us: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cpuRead' as const), page }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cpuWrite' as const), page }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('munmap' as const), page, n: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('mprotect' as const), page, n: fc.integer({ min: 1, max: 64 }), write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fork' as const), childWrites: fc.array(page, { maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('migrate' as const), page, n: fc.integer({ min: 1, max: 128 }), to: fc.constantFrom('gpu' as const, 'cpu' as const) }) },
);

function scenario(opts: Partial<UvmOptions>, ops: Op[]): void {
  const rig = makeRig({ vramBytes: 2 << 20, sms: 4, warpsPerSm: 8, faultBufferEntries: 64 }, {}, 32 << 20);
  const uvm = new UvmDriver(rig.gpu, { faultBatchCount: 32, ...opts });
  const p = rig.machine.spawn();
  const base = p.mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const vs = uvm.attach(p);
  const data = new DataCheck(rig);
  const mapped = new Uint8Array(PAGES).fill(1);
  const writable = new Uint8Array(PAGES).fill(1);
  const children: Process[] = [];
  const word = (pg: number): number => base + pg * 4096 + 16;
  const check = (where: string): void => {
    const g = checkGpuInvariants(rig.machine, rig.gpu, { owner: uvm.owner });
    if (g.length) throw new Error(`${where}: ${g.join('; ')}`);
  };
  const checkAll = (where: string): void => {
    check(where);
    const m = checkInvariants(rig.machine);
    if (m.length) throw new Error(`${where}: ${m.join('; ')}`);
    if (data.errors.length) throw new Error(`${where}: ${data.errors.join('; ')}`);
  };
  const advance = (until: number): void => {
    while (rig.engine.pending > 0 && rig.engine.now() <= until) {
      if (!rig.engine.step()) break;
      check(`event ${rig.engine.executed}`);
      // Every kernel here ends within a few thousand events: more is a livelock.
      if (rig.engine.executed > 50_000) throw new Error(`no end after ${rig.engine.executed} events (t=${rig.engine.now()})`);
    }
  };
  for (const op of ops) {
    switch (op.k) {
      case 'launch':
        rig.gpu.launch({ name: 'k', warps: op.warps.map((w) => listProgram(w.map(([pg, t]) => [word(pg), t as AccessType]), 30)) }, vs.gpuVaSpace);
        break;
      case 'advance':
        advance(rig.engine.now() + op.us * 1000);
        break;
      case 'cpuRead':
        if (mapped[op.page]) data.cpuRead(p, word(op.page));
        break;
      case 'cpuWrite':
        if (mapped[op.page] && writable[op.page]) data.cpuWrite(p, word(op.page));
        break;
      case 'munmap': {
        const n = Math.min(op.n, PAGES - op.page);
        p.munmap(base + op.page * 4096, n * 4096);
        mapped.fill(0, op.page, op.page + n);
        data.forget(base + op.page * 4096, base + (op.page + n) * 4096);
        break;
      }
      case 'mprotect': {
        const n = Math.min(op.n, PAGES - op.page);
        let all = true;
        for (let q = op.page; q < op.page + n; q++) all &&= mapped[q] === 1;
        if (!all) break;
        p.mprotect(base + op.page * 4096, n * 4096, PROT_READ | (op.write ? PROT_WRITE : 0));
        writable.fill(op.write ? 1 : 0, op.page, op.page + n);
        break;
      }
      case 'fork': {
        const c = p.fork();
        children.push(c);
        for (const pg of op.childWrites) {
          if (!mapped[pg] || !writable[pg]) continue;
          c.writeU32(word(pg), 0xdead);
        }
        break;
      }
      case 'migrate': {
        const n = Math.min(op.n, PAGES - op.page);
        let all = true;
        for (let q = op.page; q < op.page + n; q++) all &&= mapped[q] === 1;
        if (!all) break;
        uvm.migrate(p, base + op.page * 4096, n * 4096, op.to);
        break;
      }
    }
    checkAll(op.k);
  }
  advance(Infinity);
  checkAll('end');
  // Exit with the GPU attached: the notifiers drop every GPU mapping; then teardown.
  for (const c of children) c.exit();
  p.exit();
  checkAll('exit');
  uvm.detach(p);
  uvm.shutdown();
  expect(checkInvariants(rig.machine)).toEqual([]);
  expect(rig.machine.phys.usedRamFrames).toBe(0);
  expect(uvm.pmm.usedFrames).toBe(0);
  expect(rig.gpu.vram.pgmap).toBeNull();
}

const variants: Array<[string, Partial<UvmOptions>]> = [
  ['defaults (tree, uvm, batch_flush)', {}],
  ['prefetch none', { prefetch: 'none' }],
  ['prefetch seq64k', { prefetch: 'seq64k' }],
  ['prefetch random4k', { prefetch: 'random4k' }],
  ['evict lru', { evict: 'lru' }],
  ['evict lfu', { evict: 'lfu' }],
  ['evict fifo', { evict: 'fifo' }],
  ['evict random', { evict: 'random' }],
  ['replay block', { replay: 'block' }],
  ['replay batch', { replay: 'batch' }],
  ['replay once', { replay: 'once' }],
  ['thrashing none, residency sysmem', { thrashing: 'none', residency: 'sysmem' }],
  ['largePages (2 MiB and 64 KiB leaves, a root chunk per block)', { largePages: true }],
  ['largePages, prefetch none, evict lru', { largePages: true, prefetch: 'none', evict: 'lru' }],
];

describe('uvm property: invariants after every event, data intact, nothing leaked', () => {
  for (const [name, opts] of variants) {
    it(name, () => {
      fc.assert(fc.property(fc.array(opArb, { minLength: 4, maxLength: 24 }), fc.integer({ min: 1, max: 1000 }), (ops, seed) => scenario({ ...opts, seed }, ops)), { numRuns: runs });
    });
  }
});

describe('uvm property: counterexamples found', () => {
  // A read fault on a page UVM held device-exclusive wanted it in VRAM; migrate_vma skipped the
  // entry and the page was neither migrated nor mapped, so the warp faulted on it forever
  // (fixed: a faulted page migrate_vma does not collect is mapped where it is).
  it('replay block, seed 8: no livelock on a device-exclusive page', () => {
    const ops = [{"k":"launch","warps":[[[633,3],[816,2],[275,0],[1212,0],[1350,0],[648,1],[661,1],[655,3],[180,3],[1028,0],[698,0]],[[733,3],[652,0],[701,1],[1466,0],[1009,0],[375,0],[1451,3],[1268,1],[1378,0],[172,3]],[[746,3],[1011,2],[414,0]],[[1372,1]],[[646,3]],[[1433,3],[479,0],[234,1]],[[230,2],[245,0],[541,0],[263,0]],[[670,2],[339,0],[1153,3],[1050,3],[725,0],[576,0],[490,0],[534,3],[1053,0],[679,3],[554,0]],[[567,3]],[[498,0],[646,2],[1434,2],[511,0],[374,1],[1003,3],[641,3],[413,0]],[[1458,0],[663,0],[314,0],[651,3],[76,1],[1084,0],[69,1],[541,2],[1518,0]],[[709,2],[395,0],[591,1],[217,0]]]},{"k":"launch","warps":[[[1504,1],[71,3],[788,2],[1467,2],[1396,0],[84,3],[140,1],[926,3],[442,0],[903,0],[788,0]],[[438,0],[1215,1],[300,2],[29,2],[137,3],[1298,3],[10,2],[1205,2],[1000,2]],[[1138,0],[475,0],[851,0]],[[495,2],[1256,0],[908,0],[1251,0],[86,3]],[[1406,0]],[[1339,0],[1026,1],[526,1],[623,2],[1137,2],[1166,0],[139,1],[784,0],[918,3],[36,2],[127,2]],[[183,0],[1100,0],[110,0],[332,3],[974,1],[743,1],[884,0],[163,2]],[[42,0],[1229,1],[1060,2]],[[1327,1],[504,0],[741,0],[164,2],[1391,2],[492,0],[1328,2],[620,0]],[[1348,3],[249,3],[1251,1],[517,1],[1115,0],[113,1],[1496,3],[1442,1],[1256,0],[876,3],[423,2],[1110,2]]]},{"k":"cpuWrite","page":1532},{"k":"cpuWrite","page":519},{"k":"mprotect","page":1072,"n":19,"write":false},{"k":"advance","us":56},{"k":"mprotect","page":4,"n":48,"write":true}] as Op[];
    scenario({ replay: 'block', seed: 8 }, ops);
  });

  // largePages on one root chunk: each batch serviced block 0 (taking the chunk), then block 1
  // (evicting it), so block 0's warps faulted again after every replay, for ever (fixed: a root
  // chunk a block got in the batch is held until the replay; the next block maps remotely).
  it('largePages, seed 924: blocks of one batch do not evict each other for ever', () => {
    const ops = [{"k":"launch","warps":[[[576,0],[0,0]]]},{"k":"advance","us":21},{"k":"fork","childWrites":[]},{"k":"mprotect","page":0,"n":1,"write":false},{"k":"migrate","page":620,"n":39,"to":"cpu"},{"k":"migrate","page":683,"n":56,"to":"gpu"},{"k":"launch","warps":[[[64,0],[356,1],[495,0],[1098,0]],[[492,1],[1048,3],[872,0],[318,3],[231,0],[818,2],[258,0],[828,1],[171,0]],[[1060,1]],[[819,0],[611,2],[734,2],[1353,0],[281,0],[66,0],[832,1],[460,0],[1025,0]],[[137,2],[483,2],[383,2]],[[1293,3],[1123,1],[185,3],[1262,0],[694,1]],[[893,1],[91,2],[156,1],[1505,1],[1233,0],[300,0],[252,1],[1535,2]],[[1088,3],[580,2],[1289,0],[929,0],[579,1]],[[978,0],[1359,0],[1481,3],[1393,1],[1287,0],[319,3],[660,1]],[[810,1],[15,3],[176,3],[938,0],[1217,2],[671,2],[958,2],[101,2],[450,3]],[[245,0],[1064,2]],[[1393,3],[1118,0],[101,0],[1088,0],[386,2],[532,0],[1336,0]]]}] as Op[];
    scenario({ largePages: true, seed: 924 }, ops);
  });
});
