// The recorder (src/sim/record): replaying a record to any position gives exactly the page
// tables the machine had there, read independently (pagemap for the CPU, the device's own
// table), for the demo scenario and for random operation sequences; the columns round-trip.
//
// Reproduce a property failure with the seed fast-check prints:
//   REC_PROP_SEED=<seed> REC_PROP_PATH=<path> npx vitest run test/sim/record.test.ts
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Machine, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, pagemap, PROT_READ, PROT_WRITE,
  type Mm, type Process,
} from '../../src/index.js';
import { SvmDevice } from '../../src/drivers/svmdev/index.js';
import { DPTE_WRITE } from '../../src/drivers/gpusvm/index.js';
import { runDemo } from '../../src/sim/demo.js';
import {
  BLOCK_SLOTS, NONE, PageSpace, Recorder, Replay, ST_DEVICE_PRIVATE, ST_NONE, ST_READ, ST_SWAP, ST_WRITE, STATE_KINDS, columnBytes, columnValues,
  decodeRecordNode, fromBase64, gzipColumns, svmDeviceSource, stateKind, stateMem, stateOf, toBase64, type RecordDoc,
} from '../../src/sim/record/index.js';

const P = PAGE_SIZE;

/** The state byte the recorder should have recorded for a CPU page, read through pagemap (not the recorder's reader). */
function cpuTruth(mm: Mm, vpn: number): number {
  if (mm.dead) return ST_NONE;
  const e = pagemap(mm, vpn * P);
  const mem = e.pfn >= mm.machine.phys.ramFrames ? 1 : 0;
  switch (e.kind) {
    case 'none': return ST_NONE;
    case 'zero': return stateOf(1, 0);
    case 'anon': case 'file': case 'special': return stateOf(e.write ? ST_WRITE : ST_READ, mem);
    case 'swap': return ST_SWAP;
    case 'migration': return stateOf(5, mem);
    case 'device-private': return stateOf(ST_DEVICE_PRIVATE, mem);
    case 'device-exclusive': return stateOf(7, mem);
    default: return stateOf(8, 0);
  }
}

function devTruth(dev: SvmDevice, vpn: number): number {
  const pfn = dev.pt.lookup(vpn);
  if (pfn < 0) return ST_NONE;
  return stateOf(dev.pt.flagsOf(vpn) & DPTE_WRITE ? ST_WRITE : ST_READ, pfn >= dev.mm.machine.phys.ramFrames ? 1 : 0);
}

interface Truth { position: number; tables: Map<number, Map<number, number>> }

/** Every page of the given vpn ranges, per table, as it is now. */
function capture(rec: Recorder, cpus: Array<{ table: number; mm: Mm }>, devs: Array<{ table: number; dev: SvmDevice }>, vpns: number[]): Truth {
  const tables = new Map<number, Map<number, number>>();
  for (const { table, mm } of cpus) tables.set(table, new Map(vpns.map((v) => [v, cpuTruth(mm, v)])));
  for (const { table, dev } of devs) tables.set(table, new Map(vpns.map((v) => [v, devTruth(dev, v)])));
  return { position: rec.position, tables };
}

function expectReplayMatches(replay: Replay, truths: Truth[], order: number[]): void {
  for (const k of order) {
    const t = truths[k]!;
    replay.seek(t.position);
    for (const [table, pages] of t.tables) {
      for (const [vpn, want] of pages) {
        const got = replay.stateAt(table, vpn);
        if (got !== want) {
          throw new Error(`position ${t.position}, table ${table}, vpn 0x${vpn.toString(16)}: replay has ${STATE_KINDS[stateKind(got)]}/${stateMem(got)}, the machine had ${STATE_KINDS[stateKind(want)]}/${stateMem(want)}`);
        }
      }
    }
  }
}

describe('columns', () => {
  it('round-trip every type, with and without delta encoding, and base64 of every length', () => {
    const vals = [0, 1, 5, 3, 0xfffffffe, 7, 0];
    for (const type of ['u8', 'u16', 'u32', 'i32', 'f64'] as const) {
      const mask = { u8: 0xff, u16: 0xffff, u32: 0xffffffff, i32: -1, f64: -1 }[type];
      const want = vals.map((v) => (type === 'f64' ? v : type === 'i32' ? v | 0 : (v & mask) >>> 0));
      for (const delta of [false, true]) {
        const bytes = columnBytes(type, want, want.length, delta);
        const back = columnValues({ type, length: want.length, delta }, fromBase64(toBase64(bytes)));
        expect([...back]).toEqual(want);
      }
    }
    const f = [2 ** 40, -1, 2 ** 35 + 17, 3];
    expect([...columnValues({ type: 'f64', length: 4, delta: true }, columnBytes('f64', f, 4, true))]).toEqual(f);
    for (let n = 0; n < 7; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 89 + 7) & 255);
      expect(fromBase64(toBase64(b))).toEqual(b);
      expect(toBase64(b)).toBe(Buffer.from(b).toString('base64'));
    }
  });

  it('refuse a column whose byte count does not match its length', () => {
    expect(() => columnValues({ type: 'u32', length: 3 }, new Uint8Array(8))).toThrow(/3 u32 has 8 bytes/);
    expect(() => fromBase64('ab$d')).toThrow(/bad base64/);
  });
});

describe('the page space and the replay\'s counters', () => {
  it('lays regions out in address order, widening only large ones to 2 MiB blocks', () => {
    const sp = new PageSpace([[1000, 10], [5000, 3000], [100000, 5]]);
    // [1000, 1010) as it is; [5000, 8000) widened to [4608, 8192); [100000, 100005) as it is.
    expect(sp.total).toBe(10 + (8192 - 4608) + 5);
    expect(sp.indexOf(1000)).toBe(0);
    expect(sp.indexOf(1010)).toBe(-1);
    expect(sp.indexOf(4608)).toBe(10);
    expect(sp.indexOf(5000)).toBe(10 + 392);
    expect(sp.indexOf(100004)).toBe(sp.total - 1);
    expect(sp.indexOf(999)).toBe(-1);
    for (let i = 0; i < sp.total; i += 37) expect(sp.indexOf(sp.vpnOf(i))).toBe(i);
    const parts: number[][] = [];
    sp.forEachPart(0, 2 ** 40, (i, n, v) => void parts.push([i, n, v]));
    expect(parts).toEqual([[0, 10, 1000], [10, 8192 - 4608, 4608], [10 + 8192 - 4608, 5, 100000]]);
  });

  it('keeps per-block counts equal to a recount of the pages, wherever it seeks', async () => {
    const replay = new Replay(await decodeRecordNode(demoDoc(2)));
    const positions = [replay.count, 0, Math.floor(replay.count / 3), replay.count - 1, Math.floor(replay.count / 2), 7];
    for (const p of positions) {
      replay.seek(p);
      replay.states.forEach((st, t) => {
        const want = new Uint32Array(replay.space.blocks * BLOCK_SLOTS);
        st.forEach((x, i) => {
          const b = Math.floor(i / 512) * BLOCK_SLOTS;
          want[b + stateKind(x)]!++;
          if (stateKind(x) !== ST_NONE) want[b + 16 + stateMem(x)]!++;
        });
        expect(replay.blockCounts[t]).toEqual(want);
      });
    }
  });
});

function demoDoc(sizeMiB: number): RecordDoc {
  let rec!: Recorder;
  runDemo({
    sizeBytes: sizeMiB << 20, seed: 2,
    onSetup: (m, d) => {
      rec = new Recorder({ snapshotEvery: 100 }).attach(m);
      rec.addDevice(svmDeviceSource(d, 'dev0'));
    },
  });
  return rec.finish();
}

describe('the recorder on the demo scenario', () => {
  it('replays to the page tables the machine had at the start of every step, in any order', async () => {
    let rec!: Recorder;
    let dev!: SvmDevice;
    let parent!: Mm;
    const truths: Truth[] = [];
    let vpns: number[] = [];
    const report = runDemo({
      sizeBytes: 1 << 20, seed: 5,
      onSetup: (m, d) => {
        rec = new Recorder({ compress: gzipColumns, command: 'demo', snapshotEvery: 64 }).attach(m);
        rec.addDevice(svmDeviceSource(d, 'dev0'));
        dev = d;
        parent = d.mm;
        const v = parent.vmas.all[0]!;
        vpns = Array.from({ length: (v.end - v.start) / P }, (_, i) => v.start / P + i);
      },
      onStepStart: (_i, name) => {
        truths.push(capture(rec, [{ table: 0, mm: parent }], [{ table: 1, dev }], vpns));
        rec.mark(name);
      },
    });
    expect(report.ok).toBe(true);
    const doc = rec.finish();
    expect(doc.marks.map((m) => m.label)).toEqual(report.steps.map((s) => s.name));
    // Several snapshots (snapshotEvery 64), so seeking both ways crosses them; and one where
    // each step starts, so a viewer shows any step's start from a snapshot alone.
    expect(doc.snapshots.length).toBeGreaterThan(3);
    const snapAt = new Set(doc.snapshots.map((s) => s.event));
    for (const m of doc.marks) expect(snapAt.has(m.start)).toBe(true);
    const replay = new Replay(await decodeRecordNode(JSON.parse(JSON.stringify(doc)) as RecordDoc));
    const order = truths.map((_, i) => i);
    expectReplayMatches(replay, truths, order);
    expectReplayMatches(replay, truths, [...order].reverse());
    expectReplayMatches(replay, truths, [3, 12, 0, 17, 7, 8, 1, 16]);

    // What a student sees: after the fill every page is writable in system RAM; after the
    // migration the third quarter is device-private in dev0's memory, mapped by the device.
    const at = (label: string) => doc.marks.find((m) => m.label.startsWith(label))!;
    replay.seek(at('device mirrors').start);
    expect(new Set(vpns.map((v) => replay.stateAt(0, v)))).toEqual(new Set([stateOf(ST_WRITE, 0)]));
    expect(new Set(vpns.map((v) => replay.stateAt(1, v)))).toEqual(new Set([ST_NONE]));
    // After the device wrote them, it maps them writable in its own memory.
    replay.seek(at('device writes the pages').end);
    const q3 = vpns.slice(vpns.length / 2, (3 * vpns.length) / 4);
    expect(new Set(q3.map((v) => replay.stateAt(0, v)))).toEqual(new Set([stateOf(ST_DEVICE_PRIVATE, 1)]));
    expect(new Set(q3.map((v) => replay.stateAt(1, v)))).toEqual(new Set([stateOf(ST_WRITE, 1)]));
    replay.seek(at('child exits').start);
    expect(vpns.slice((3 * vpns.length) / 4).every((v) => replay.stateAt(0, v) === ST_NONE)).toBe(true);
    // Frames in use are replayed too: at the end nothing is left.
    replay.seek(replay.count);
    expect(replay.frames).toEqual([0, 0]);
    // The child's table appears at fork and dies at its exit.
    const child = doc.tables.find((t) => t.kind === 'cpu' && t.id !== 0)!;
    expect(child.born).toBeGreaterThanOrEqual(at('process forks').start);
    expect(child.died).toBeLessThanOrEqual(at('CPU reads everything').start);
  });

  it('costs a few bytes per event', () => {
    let rec!: Recorder;
    runDemo({
      sizeBytes: 2 << 20, seed: 1,
      onSetup: (m, d) => {
        rec = new Recorder({ compress: gzipColumns }).attach(m);
        rec.addDevice(svmDeviceSource(d, 'dev0'));
      },
    });
    const doc = rec.finish();
    const bytes = JSON.stringify(doc).length;
    expect(doc.events.count).toBeGreaterThan(5000);
    expect(bytes / doc.events.count).toBeLessThan(8);
  });
});

// ---- random operation sequences ----

type Op =
  | { k: 'write' | 'read'; page: number }
  | { k: 'mprotect'; page: number; n: number; write: boolean }
  | { k: 'munmap'; page: number; n: number }
  | { k: 'dontneed' | 'pageout'; page: number; n: number }
  | { k: 'fork' }
  | { k: 'childWrite'; page: number }
  | { k: 'childExit' }
  | { k: 'devFault'; page: number; n: number; write: boolean }
  | { k: 'devMigrate'; page: number; n: number }
  | { k: 'thpWrite'; page: number };

const PAGES = 32;
const THP_PAGES = 1024; // two 2 MiB blocks, THP-eligible

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constantFrom('write' as const, 'read' as const), page: fc.nat(PAGES - 1) }) },
  fc.record({ k: fc.constant('mprotect' as const), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 8 }), write: fc.boolean() }),
  fc.record({ k: fc.constant('munmap' as const), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ k: fc.constantFrom('dontneed' as const, 'pageout' as const), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ k: fc.constant('fork' as const) }),
  fc.record({ k: fc.constant('childWrite' as const), page: fc.nat(PAGES - 1) }),
  fc.record({ k: fc.constant('childExit' as const) }),
  { weight: 2, arbitrary: fc.record({ k: fc.constant('devFault' as const), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 8 }), write: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('devMigrate' as const), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 8 }) }) },
  fc.record({ k: fc.constant('thpWrite' as const), page: fc.nat(THP_PAGES - 1) }),
);

/** Run one op; errors a real program would get (a fault on an unmapped page, a protection fault) are ignored. */
function apply(op: Op, s: { proc: Process; child: Process | null; dev: SvmDevice; base: number; thp: number }): void {
  const a = (pg: number) => s.base + pg * P;
  const n = (pg: number, k: number) => Math.min(k, PAGES - pg);
  try {
    switch (op.k) {
      case 'write': s.proc.writeU8(a(op.page), 1); break;
      case 'read': s.proc.readU8(a(op.page)); break;
      case 'mprotect': s.proc.mprotect(a(op.page), n(op.page, op.n) * P, PROT_READ | (op.write ? PROT_WRITE : 0)); break;
      case 'munmap': s.proc.munmap(a(op.page), n(op.page, op.n) * P); break;
      case 'dontneed': s.proc.madvise(a(op.page), n(op.page, op.n) * P, MADV_DONTNEED); break;
      case 'pageout': s.proc.madvise(a(op.page), n(op.page, op.n) * P, MADV_PAGEOUT); break;
      case 'fork': if (!s.child) s.child = s.proc.fork(); break;
      case 'childWrite': s.child?.writeU8(a(op.page), 2); break;
      case 'childExit': s.child?.exit(); s.child = null; break;
      case 'devFault': s.dev.fault(a(op.page), a(op.page + n(op.page, op.n)), op.write); break;
      case 'devMigrate': s.dev.migrateToDevice(a(op.page), a(op.page + n(op.page, op.n))); break;
      case 'thpWrite': s.proc.writeU8(s.thp + op.page * P, 3); break;
    }
  } catch {
    // EFAULT, SIGSEGV, EINVAL (a range across VMAs): the machine is unchanged or changed as far as it got.
  }
}

/** Run ops on a machine with a recorder attached; the replay must match the machine after every op, seeking in any order. */
async function checkRecording(ops: Op[], snapshotEvery: number): Promise<void> {
  const m = new Machine({ ramBytes: 32 << 20, swapBytes: 8 << 20, thp: 'madvise' });
  const proc = m.spawn();
  const base = proc.mmap(0, PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const thpRaw = proc.mmap(0, (THP_PAGES + 512) * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const thp = Math.ceil(thpRaw / (512 * P)) * 512 * P;
  proc.madvise(thp, THP_PAGES * P, MADV_HUGEPAGE);
  const dev = new SvmDevice(proc.mm, { device: 'dev0' });
  dev.attachMemory(64);
  const rec = new Recorder({ compress: gzipColumns, snapshotEvery }).attach(m);
  const devTable = rec.addDevice(svmDeviceSource(dev, 'dev0'));
  const vpns = [
    ...Array.from({ length: PAGES }, (_, i) => base / P + i),
    ...Array.from({ length: THP_PAGES }, (_, i) => thp / P + i),
  ];
  const s = { proc, child: null as Process | null, dev, base, thp };
  const truths: Truth[] = [];
  const snap = () => {
    rec.mark(`after ${truths.length}`);
    const cpus = [{ table: 0, mm: proc.mm }];
    if (s.child) cpus.push({ table: rec.cpuTableOf(s.child.mm), mm: s.child.mm });
    truths.push(capture(rec, cpus, [{ table: devTable, dev }], vpns));
  };
  snap();
  for (const op of ops) {
    apply(op, s);
    snap();
  }
  dev.close();
  s.child?.exit();
  proc.exit();
  snap();
  const doc = rec.finish();
  m.dispose();
  const replay = new Replay(await decodeRecordNode(doc));
  const order = truths.map((_, i) => i);
  expectReplayMatches(replay, truths, order);
  expectReplayMatches(replay, truths, order.map((_, i) => (i * 7) % order.length));
  // Every table is empty at the end, and the last frames record says no frame is in use.
  replay.seek(replay.count);
  for (const st of replay.states) expect(st.every((x) => x === ST_NONE)).toBe(true);
  expect(replay.frames[0]).toBe(0);
  // Events name real pages: every event with a page range lies in the address space it names.
  for (let i = 0; i < replay.rec.events.count; i++) {
    const a = replay.rec.events.a[i]!;
    if (doc.eventTypes[replay.rec.events.type[i]!]!.name === 'map') expect(a).not.toBe(NONE);
  }
}

describe('the recorder on random operation sequences', () => {
  it('replays to the machine\'s page tables after every operation, seeking in any order', async () => {
    const runs = Number(process.env.REC_PROP_RUNS ?? 40);
    const seed = process.env.REC_PROP_SEED ? Number(process.env.REC_PROP_SEED) : undefined;
    const path = process.env.REC_PROP_PATH;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 200 }), checkRecording),
      { numRuns: runs, seed, path, endOnFailure: true },
    );
  });

  // do_huge_pmd_wp_page reuses a THP the parent maps alone again (the child exited): the whole
  // PMD becomes writable, and the recorder read only the faulting page (found by the property).
  it('records the reuse of a huge PMD after fork over all its pages', async () => {
    await checkRecording([{ k: 'thpWrite', page: 148 }, { k: 'fork' }, { k: 'childExit' }, { k: 'thpWrite', page: 211 }], 193);
  });
});
