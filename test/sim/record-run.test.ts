// Recording the GPU simulator (`hmmsim run --record`, src/sim/record/run.ts and gpu.ts): a
// record replayed to the end of each kernel and to the end of the run gives exactly the GPU
// page table the driver left (walked here with GpuPageTable.forEach, not the recorder's reader)
// and the CPU page table (pagemap); the GPU's events are on the timeline in the numbers the
// run's own metrics count; recording changes nothing in the run and leaves no listener behind.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, pagemap, PAGE_SIZE, PROT_READ as MM_PROT_READ, PROT_WRITE as MM_PROT_WRITE, type Mm } from '../../src/index.js';
import {
  PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC, PTE_SYSMEM, PTE_WRITE, SIZE_PAGES, createGpuSystem, type Gpu, type GpuVaSpace, type LeafSize,
} from '../../src/drivers/gpu/index.js';
import { Engine } from '../../src/sim/engine.js';
import { RunError, runSimulation, setupRun, type RunRecord, type RunSetup } from '../../src/sim/simulate.js';
import { recordRun } from '../../src/sim/record/run.js';
import {
  Recorder, Replay, ST_DEVICE_PRIVATE, recordGpu, ST_MIGRATION, ST_NONE, ST_READ, ST_SWAP, ST_WRITE, STATE_KINDS, decodeRecordNode, stateKind, stateMem, stateOf,
  type RecordDoc,
} from '../../src/sim/record/index.js';

/** A small GPU (32 warp slots, small TLBs), as test/sim/simulate.test.ts uses. */
const SMALL = { hardware: { sms: 4, warpsPerSm: 8, utlbEntries: 64, l2TlbEntries: 512 } };
const strip = (r: RunRecord) => ({ ...r, wallMs: 0, cpuMs: 0 });

const CPU = 0;
const GPU = 1;

/** The GPU table as the driver left it: vpn -> state, from a walk of every leaf. */
function gpuTruth(gpu: Gpu, vs: GpuVaSpace): Map<number, number> {
  const out = new Map<number, number>();
  vs.pt.forEach(0, 2 ** 36, (vpn, n, pfn, flags) => {
    const vram = gpu.vram.contains(pfn);
    // The aperture bit agrees with where the frame is (checkGpuInvariants checks it too).
    expect(vram).toBe(!(flags & PTE_SYSMEM));
    for (let i = 0; i < n; i++) out.set(vpn + i, stateOf(flags & PTE_WRITE ? ST_WRITE : ST_READ, vram ? 1 : 0));
  });
  return out;
}

function cpuTruth(mm: Mm, vpn: number): number {
  const e = pagemap(mm, vpn * PAGE_SIZE);
  const mem = e.pfn >= mm.machine.phys.ramFrames ? 1 : 0;
  switch (e.kind) {
    case 'none': return ST_NONE;
    case 'zero': return stateOf(1, 0);
    case 'anon': return stateOf(e.write ? ST_WRITE : ST_READ, mem);
    case 'swap': return ST_SWAP;
    case 'migration': return stateOf(ST_MIGRATION, mem);
    case 'device-private': return stateOf(ST_DEVICE_PRIVATE, mem);
    default: throw new Error(`unexpected entry ${e.kind} at 0x${(vpn * PAGE_SIZE).toString(16)}`);
  }
}

interface Capture { position: number; gpu: Map<number, number>; cpu: Map<number, number>; kernelEnd: boolean }

/** Record a run, capturing both page tables at the end of each kernel and at the end. */
async function recordAndCapture(options: Parameters<typeof runSimulation>[0]) {
  const captures: Capture[] = [];
  let setup: RunSetup | null = null;
  let pages: number[] = [];
  const capture = (ev?: { type: string }): void => {
    const s = setup!;
    const vs = s.system.gpu.mmu.vaSpaces[0]!;
    const cpu = new Map(pages.map((v) => [v, cpuTruth(s.process.mm, v)]));
    captures.push({ position: rec.recorder!.position, gpu: gpuTruth(s.system.gpu, vs), cpu, kernelEnd: ev?.type === 'kernel' });
  };
  const rec = recordRun({}, {
    onSetup: (s) => {
      setup = s;
      const first = s.base / PAGE_SIZE;
      pages = Array.from({ length: Math.ceil(s.workload.mappingBytes / PAGE_SIZE) }, (_, i) => first + i);
      // After the recorder's own listeners: the kernel's mark has ended when this runs. Also
      // after each fault batch and each eviction, where a change the recorder missed would
      // show before later events hide it.
      const bus = s.system.gpu.events;
      bus.subscribe('kernel', (e) => {
        if (e.phase === "end") capture(e);
      });
      bus.subscribe('batch', capture);
      bus.subscribe('evict', capture);
    },
  });
  const result = runSimulation(options, rec.hooks);
  capture({ type: "end" });
  const doc = rec.finish();
  return { doc, result, captures, setup: setup! };
}

async function expectReplayMatches(doc: RecordDoc, captures: Capture[]): Promise<void> {
  const replay = new Replay(await decodeRecordNode(doc));
  // Backwards and forwards: every capture, in an order that restores snapshots both ways.
  const order = captures.map((_, i) => i).reverse().concat(captures.map((_, i) => i).filter((i) => i % 3 === 0));
  for (const k of order) {
    const c = captures[k]!;
    replay.seek(c.position);
    for (const [vpn, want] of c.cpu) {
      const got = replay.stateAt(CPU, vpn);
      if (got !== want) throw new Error(`position ${c.position}: CPU page 0x${vpn.toString(16)} replays as ${STATE_KINDS[stateKind(got)]}/${stateMem(got)}, was ${STATE_KINDS[stateKind(want)]}/${stateMem(want)}`);
      const g = replay.stateAt(GPU, vpn);
      const gw = c.gpu.get(vpn) ?? ST_NONE;
      if (g !== gw) throw new Error(`position ${c.position}: GPU page 0x${vpn.toString(16)} replays as ${STATE_KINDS[stateKind(g)]}/${stateMem(g)}, was ${STATE_KINDS[stateKind(gw)]}/${stateMem(gw)}`);
    }
  }
}

describe('hmmsim run --record', () => {
  it('replays to the GPU page table and the CPU page table the run left, after every kernel and at the end (stream, oversubscribed: evictions)', async () => {
    const options = { workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 2, costs: SMALL };
    const { doc, result, captures } = await recordAndCapture(options);
    const r = result.record;
    expect(r.gpu.pagesEvicted).toBeGreaterThan(0);
    expect(doc.tables.map((t) => [t.kind, t.name, t.memory])).toEqual([['cpu', 'process mm 1', -1], ['device', 'gpu0', 1]]);
    expect(doc.memories[1]).toMatchObject({ name: 'gpu0 VRAM', kind: 'device', frames: r.config.vramMiB * 256 });
    // Residency at the end: some pages in VRAM (local), and the GPU table not empty.
    const end = captures[captures.length - 1]!;
    expect([...end.gpu.values()].some((s) => stateMem(s) === 1)).toBe(true);
    await expectReplayMatches(doc, captures);
    // The GPU's events, counted as the run's metrics count them.
    const typeId = (name: string) => doc.eventTypes.findIndex((t) => t.name === name);
    const dec = await decodeRecordNode(doc);
    const count = (name: string) => {
      const t = typeId(name);
      let n = 0;
      let pages = 0;
      for (let e = 0; e < dec.events.count; e++) if (dec.events.type[e] === t) { n++; pages += dec.events.n[e]!; }
      return { n, pages };
    };
    expect(count('gpu-fault').n).toBe(r.gpu.faults);
    expect(count('fault-batch').n).toBe(r.gpu.batches);
    expect(count('replay').n).toBe(r.gpu.replays);
    let evicted = 0;
    let toVram = 0;
    const evict = typeId('evict');
    const mig = typeId('gpu-migrate');
    for (let e = 0; e < dec.events.count; e++) {
      if (dec.events.type[e] === evict) evicted += dec.events.b[e]!;
      if (dec.events.type[e] === mig && doc.eventTypes[mig]!.subs[dec.events.sub[e]!]!.endsWith('to VRAM')) toVram += dec.events.n[e]!;
    }
    expect(evicted).toBe(r.gpu.pagesEvicted);
    expect(toVram).toBe(r.gpu.pagesMigratedToDevice);
    // A mark per kernel, and simulated time on every event, never decreasing.
    expect(doc.marks.length).toBe(captures.filter((c) => c.kernelEnd).length);
    expect(doc.marks.every((m) => m.label.startsWith('kernel '))).toBe(true);
    const time = dec.events.time!;
    for (let e = 1; e < dec.events.count; e++) expect(time[e]! >= time[e - 1]!).toBe(true);
    // Device-map events name the leaf size and aperture.
    expect(doc.eventTypes[typeId('device-map')]!.subs).toContain('4K vram');
  }, 120_000);

  it('replays a run where the CPU takes pages back (pingpong: device-private entries, migrate_to_ram)', async () => {
    const { doc, captures } = await recordAndCapture({ workload: 'pingpong', footprintMiB: 2, oversub: 1, iterations: 2, costs: SMALL });
    const dec = await decodeRecordNode(doc);
    const toSystem = doc.eventTypes.findIndex((t) => t.name === 'migrate');
    let back = 0;
    for (let e = 0; e < dec.events.count; e++) if (dec.events.type[e] === toSystem && dec.events.sub[e] === 0) back++;
    expect(back).toBeGreaterThan(0);
    await expectReplayMatches(doc, captures);
  }, 120_000);

  // The GPU source reads the hardware's page table, which every driver writes through the
  // GPU's MMU: the same record works under each driver the simulator binds.
  for (const driver of ['kfd', 'nouveau']) {
    const known = (() => {
      try {
        setupRun({ driver, footprintMiB: 2, oversub: 1 });
        return true;
      } catch (e) {
        if (e instanceof RunError) return false;
        throw e;
      }
    })();
    it.skipIf(!known)(`replays a run under ${driver} to its GPU page table and the CPU page table`, async () => {
      const { doc, captures } = await recordAndCapture({ driver, workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 1, costs: SMALL });
      expect(doc.tables.map((t) => t.kind)).toEqual(['cpu', 'device']);
      await expectReplayMatches(doc, captures);
    }, 120_000);
  }

  it('changes nothing in the run and leaves no listener on the GPU bus', () => {
    const options = { workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 1, costs: SMALL };
    const plain = runSimulation(options).record;
    let bus: Gpu['events'] | null = null;
    const rec = recordRun({}, { onSetup: (s) => void (bus = s.system.gpu.events) });
    const recorded = runSimulation(options, rec.hooks).record;
    rec.finish();
    expect(strip(recorded)).toEqual(strip(plain));
    // The run's metrics detach at its end and the recorder at finish: every emitter's test is false again.
    expect(Object.entries(bus!.on).filter(([, v]) => v)).toEqual([]);
  }, 120_000);
});

type GpuOp =
  | { op: 'map'; at: number; size: LeafSize; vram: boolean; frame: number; prot: number }
  | { op: 'unmap'; at: number; n: number }
  | { op: 'protect'; at: number; n: number; prot: number };

describe('the GPU page table as a recorded device table (gpuVaSpaceSource, recordGpu)', () => {
  it('replays to the table after any sequence of 4K / 64K / 2M maps (VRAM or system memory), unmaps and downgrades', async () => {
    const BLOCKS = 4;
    const PAGES = BLOCKS * 512;
    const prot = fc.constantFrom(PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC);
    const op: fc.Arbitrary<GpuOp> = fc.oneof(
      fc.record({ op: fc.constant('map' as const), at: fc.nat(PAGES - 1), size: fc.constantFrom<LeafSize>(0, 1, 2), vram: fc.boolean(), frame: fc.nat(2047), prot }),
      fc.record({ op: fc.constant('unmap' as const), at: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 700 }) }),
      fc.record({ op: fc.constant('protect' as const), at: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 700 }), prot: fc.constantFrom(PROT_READ, PROT_READ_WRITE) }),
    );
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
      const machine = new Machine({ ramBytes: 64 << 20 });
      const { gpu, driver } = createGpuSystem(machine, new Engine(), { config: { vramBytes: 8 << 20 } });
      const proc = machine.spawn();
      const base = proc.mmap(0, (BLOCKS + 1) * 512 * PAGE_SIZE, MM_PROT_READ | MM_PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const first = Math.ceil(base / PAGE_SIZE / 512) * 512;
      const vs = driver.attach(proc).gpuVaSpace;
      const rec = new Recorder().attach(machine);
      const stop = recordGpu(rec, gpu);
      const captures: Capture[] = [];
      for (const o of ops) {
        if (o.op === 'map') {
          const n = SIZE_PAGES[o.size];
          const vpn = first + o.at - (o.at % n);
          const frame = o.frame - (o.frame % n);
          gpu.mmu.map(vs, vpn, o.vram ? gpu.vram.firstPfn + frame : 1024 + frame, o.size, o.prot | (o.vram ? 0 : PTE_SYSMEM));
        } else if (o.op === 'unmap') {
          gpu.mmu.unmap(vs, first + o.at, Math.min(first + PAGES, first + o.at + o.n), 'test');
        } else {
          gpu.mmu.protect(vs, first + o.at, Math.min(first + PAGES, first + o.at + o.n), o.prot, 'test');
        }
        captures.push({ position: rec.position, gpu: gpuTruth(gpu, vs), cpu: new Map(), kernelEnd: false });
      }
      stop();
      const doc = rec.finish();
      const replay = new Replay(await decodeRecordNode(doc));
      const table = doc.tables.find((t) => t.kind === 'device')!.id;
      for (const c of [...captures].reverse()) {
        replay.seek(c.position);
        for (let v = first; v < first + PAGES; v++) {
          const want = c.gpu.get(v) ?? ST_NONE;
          if (replay.stateAt(table, v) !== want) return false;
        }
      }
      // Each update is one event, named by the leaf size and aperture, or by the unmap's reason.
      const subs = new Set(doc.eventTypes.flatMap((t) => (t.name.startsWith('device-') ? t.subs : [])));
      const want = new Set(['']);
      ops.forEach((o, i) => {
        const before = i ? captures[i - 1]!.gpu : new Map<number, number>();
        const after = captures[i]!.gpu;
        const changed = before.size !== after.size || [...after].some(([v, st]) => before.get(v) !== st);
        if (changed) want.add(o.op === 'map' ? `${['4K', '64K', '2M'][o.size]} ${o.vram ? 'vram' : 'sysmem'}` : 'test');
      });
      expect(subs).toEqual(want);
      return true;
    }), { numRuns: 40 });
  }, 120_000);
});
