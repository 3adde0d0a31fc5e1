// uvm_gpu_replayable_faults.c, the batch: fetch_fault_buffer_entries (uvm_perf_fault_batch_count
// 256, coalescing per uTLB and against the batch's last fault, the most intrusive access
// winning), preprocess_fault_batch's sort, and the service loop's limits and replay policies.

import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../../src/mm/constants.js';
import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_READ, ACCESS_WRITE, type AccessType } from '../../../../src/drivers/gpu/access.js';
import { UvmDriver, type UvmOptions } from '../../../../src/drivers/gpu/uvm/uvm.js';
import { FaultBatch } from '../../../../src/drivers/gpu/uvm/replayable_faults.js';
import { RANK_ATOMIC, RANK_READ, RANK_WRITE } from '../../../../src/drivers/gpu/uvm/hmm.js';
import {
  THRASHING_HINT_NONE, THRASHING_HINT_THROTTLE, UVM_ID_INVALID, type ThrashingPolicy,
} from '../../../../src/drivers/gpu/uvm/policy_types.js';
import type { GpuBatchEvent, GpuReplayEvent } from '../../../../src/drivers/gpu/events.js';
import { expectConsistent, listProgram, makeRig, seqProgram, type Rig } from '../helpers.js';

function driver(opts: Partial<UvmOptions> = {}, config = {}): { rig: Rig; uvm: UvmDriver } {
  const rig = makeRig(config);
  const uvm = new UvmDriver(rig.gpu, opts);
  return { rig, uvm };
}

/** Write fault entries straight into the buffer: [page, type, utlb, asid]. */
function put(rig: Rig, entries: Array<[number, AccessType, number, number?]>): void {
  for (const [page, type, utlb, asid] of entries) rig.gpu.faultBuffer.write(page * 4096, type, 1, utlb, asid ?? 0, 0, 0);
}

describe('fetch_fault_buffer_entries', () => {
  it('fetches at most uvm_perf_fault_batch_count = 256 entries and advances GET past them', () => {
    const { rig, uvm } = driver();
    expect(uvm.options.faultBatchCount).toBe(256);
    put(rig, Array.from({ length: 300 }, (_, i) => [i, ACCESS_READ, i % 4] as [number, AccessType, number]));
    const b = new FaultBatch(256, 4);
    b.fetch(uvm, 256, true);
    expect(b.numCached).toBe(256);
    expect(rig.gpu.faultBuffer.readGet()).toBe(256);
    expect(rig.gpu.faultBuffer.entryIsValid(0)).toBe(false);
    expect(rig.gpu.faultBuffer.pending).toBe(44);
  });

  it('coalesces a fault into the last fault of its uTLB; the most intrusive access becomes the representative', () => {
    const { rig, uvm } = driver();
    put(rig, [[5, ACCESS_READ, 0], [9, ACCESS_READ, 1], [5, ACCESS_WRITE, 0], [5, ACCESS_READ, 0]]);
    const b = new FaultBatch(256, 4);
    b.fetch(uvm, 256, true);
    expect(b.numCached).toBe(4);
    expect(b.numCoalesced).toBe(2);
    expect(Array.from(b.filtered.subarray(0, 4))).toEqual([1, 0, 0, 1]);
    // Entry 2 (the write) represents page 5: three instances, read and write.
    expect(b.instances[2]).toBe(3);
    expect(b.mask[2]).toBe((1 << RANK_READ) | (1 << RANK_WRITE));
  });

  it('coalesces across uTLBs against the batch\'s last fault only when no more intrusive', () => {
    const { rig, uvm } = driver();
    put(rig, [[5, ACCESS_WRITE, 0], [5, ACCESS_READ, 1], [7, ACCESS_READ, 0], [7, ACCESS_ATOMIC, 1]]);
    const b = new FaultBatch(256, 4);
    b.fetch(uvm, 256, true);
    // (5, read, uTLB 1) merges into (5, write); (7, atomic, uTLB 1) is more intrusive than (7, read): kept apart.
    expect(Array.from(b.filtered.subarray(0, 4))).toEqual([0, 1, 0, 0]);
    expect(b.numCoalesced).toBe(3);
  });

  it('uvm_perf_fault_coalesce = 0 keeps every entry', () => {
    const { rig, uvm } = driver({ faultCoalesce: false });
    put(rig, [[5, ACCESS_READ, 0], [5, ACCESS_READ, 0]]);
    const b = new FaultBatch(256, 4);
    b.fetch(uvm, 256, uvm.options.faultCoalesce);
    expect(b.numCoalesced).toBe(2);
  });

  it('preprocess_fault_batch sorts by (address space, address, most intrusive access first)', () => {
    const { rig, uvm } = driver();
    put(rig, [[9, ACCESS_READ, 0, 1], [3, ACCESS_READ, 1, 1], [3, ACCESS_ATOMIC, 2, 1], [8, ACCESS_READ, 3, 0], [3, ACCESS_PREFETCH, 0, 0]]);
    const b = new FaultBatch(256, 4);
    b.fetch(uvm, 256, true);
    b.preprocess();
    const order = Array.from(b.order.subarray(0, b.numCoalesced)).map((e) => [b.asid[e], b.addr[e]! / 4096, b.rank[e]]);
    expect(order).toEqual([[0, 3, 0], [0, 8, RANK_READ], [1, 3, RANK_ATOMIC], [1, 3, RANK_READ], [1, 9, RANK_READ]]);
  });
});

/** A process with `mb` MiB mapped, attached to the driver. */
function attach(rig: Rig, uvm: UvmDriver, mb = 8) {
  const p = rig.machine.spawn();
  const base = p.mmap(0, mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const vs = uvm.attach(p);
  return { p, base, vs };
}

function collect(rig: Rig): { batches: GpuBatchEvent[]; replays: GpuReplayEvent[] } {
  const batches: GpuBatchEvent[] = [];
  const replays: GpuReplayEvent[] = [];
  rig.gpu.events.subscribe('batch', (e) => batches.push(e));
  rig.gpu.events.subscribe('replay', (e) => replays.push(e));
  return { batches, replays };
}

describe('service_fault_batch and the replay policies', () => {
  it('services per 2 MiB VA block: one fault in each of three blocks is three block services', () => {
    const { rig, uvm } = driver({ replay: 'block', prefetch: 'none' });
    const { base, vs } = attach(rig, uvm);
    const { replays } = collect(rig);
    const warps = [0, 1, 2].map((b) => listProgram([[base + b * (2 << 20) + 4096, ACCESS_READ]]));
    rig.gpu.launch({ name: 'k', warps }, vs.gpuVaSpace);
    rig.engine.run();
    expect(uvm.stats.batches).toBe(1);
    // UVM_PERF_FAULT_REPLAY_POLICY_BLOCK: a replay after each VA block.
    expect(replays.length).toBe(3);
    expect(uvm.blocks.length).toBe(3);
    expectConsistent(rig);
  });

  it('BATCH replays once per batch, ONCE once per service run, BATCH_FLUSH flushes then replays', () => {
    for (const [policy, kind] of [['batch', 'replay'], ['once', 'replay'], ['batch_flush', 'flush-cached']] as const) {
      const { rig, uvm } = driver({ replay: policy, prefetch: 'none' });
      const { base, vs } = attach(rig, uvm);
      const { replays } = collect(rig);
      const warps = [0, 1, 2].map((b) => listProgram([[base + b * (2 << 20) + 4096, ACCESS_READ]]));
      rig.gpu.launch({ name: 'k', warps }, vs.gpuVaSpace);
      rig.engine.run();
      expect(replays.map((r) => r.kind), policy).toEqual([kind]);
    }
  });

  it('BATCH_FLUSH re-reads PUT when duplicates exceed uvm_perf_fault_replay_update_put_ratio = 50%', () => {
    const { rig, uvm } = driver({ prefetch: 'none' });
    const { base, vs } = attach(rig, uvm);
    const { batches, replays } = collect(rig);
    // 32 warps on 16 uTLBs fault on the same page: one representative, 31 duplicates.
    const warps = Array.from({ length: 32 }, () => listProgram([[base + 64, ACCESS_READ]]));
    rig.gpu.launch({ name: 'k', warps }, vs.gpuVaSpace);
    rig.engine.run();
    expect(batches[0]!.fetched).toBe(32);
    expect(batches[0]!.coalesced).toBe(1);
    expect(batches[0]!.duplicates).toBe(31);
    expect(replays[0]!.kind).toBe('flush-update');
    expect(uvm.stats.flushesUpdatePut).toBe(1);
  });

  it('at most uvm_perf_fault_max_batches_per_service = 20 batches per run', () => {
    // ONCE replays only at the end of a run, so the batches before the first replay are the first run's.
    const { rig, uvm } = driver({ replay: 'once', prefetch: 'none', faultBatchCount: 1 });
    expect(uvm.options.maxBatchesPerService).toBe(20);
    const { base, vs } = attach(rig, uvm);
    const order: string[] = [];
    rig.gpu.events.subscribe('batch', () => order.push('b'));
    rig.gpu.events.subscribe('replay', () => order.push('r'));
    const warps = Array.from({ length: 30 }, (_, i) => listProgram([[base + i * 4096 * 3, ACCESS_READ]]));
    const run = rig.gpu.launch({ name: 'k', warps }, vs.gpuVaSpace);
    rig.engine.run();
    expect(run.error).toBeNull();
    expect(order.indexOf('r')).toBe(20);
    expect(uvm.stats.serviceRuns).toBeGreaterThanOrEqual(2);
    for (const n of order.join('').split('r')) expect(n.length).toBeLessThanOrEqual(20);
  });

  it('at most uvm_perf_fault_max_throttle_per_service = 5 batches with throttled faults per run', () => {
    let throttle = true;
    const custom: ThrashingPolicy = {
      name: 'always-throttle', stats: { detected: 0, throttled: 0, pinned: 0 },
      onMigration() {}, onRevocation() {}, thrashingPages: () => null, reset() {},
      hint(_b, _p, _r, _pref, _c, now, out) {
        out.type = throttle ? THRASHING_HINT_THROTTLE : THRASHING_HINT_NONE;
        out.residency = UVM_ID_INVALID;
        out.endNs = now + 1000;
      },
    };
    const { rig, uvm } = driver({ replay: 'batch', prefetch: 'none', thrashing: custom });
    expect(uvm.options.maxThrottlePerService).toBe(5);
    const { base, vs } = attach(rig, uvm);
    const { batches } = collect(rig);
    rig.gpu.launch({ name: 'k', warps: [listProgram([[base, ACCESS_READ]])] }, vs.gpuVaSpace);
    rig.engine.run(300_000);
    throttle = false;
    rig.engine.run();
    const firstRun = batches.filter((b) => b.throttled > 0);
    expect(firstRun.length).toBeGreaterThanOrEqual(5);
    // Every run ends after its fifth throttled batch.
    expect(uvm.stats.serviceRuns).toBeGreaterThanOrEqual(Math.ceil(firstRun.length / 5));
    expect(uvm.stats.batches - 1).toBeLessThanOrEqual(5 * (uvm.stats.serviceRuns - 1));
    expect(uvm.stats.throttledFaults).toBe(firstRun.length);
  });

  it('a fault on a page with no VMA is fatal: the context is cancelled and the kernel ends with an error', () => {
    const { rig, uvm } = driver();
    const { base, vs } = attach(rig, uvm);
    const run = rig.gpu.launch({ name: 'k', warps: [listProgram([[base - 2 * 4096 * 1024, ACCESS_READ]]), seqProgram(base, 0, 64)] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(run.error).toMatch(/fatal/);
    expect(uvm.stats.fatalFaults).toBe(1);
    expect(rig.gpu.cancels).toBe(1);
    expectConsistent(rig);
  });

  it('a write to a read-only VMA is fatal; a read of it is serviced', () => {
    const { rig, uvm } = driver();
    const { p, base, vs } = attach(rig, uvm);
    p.mprotect(base, 4096, PROT_READ);
    const ok = rig.gpu.launch({ name: 'r', warps: [listProgram([[base, ACCESS_READ]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(ok.error).toBeNull();
    const bad = rig.gpu.launch({ name: 'w', warps: [listProgram([[base, ACCESS_WRITE]])] }, vs.gpuVaSpace);
    rig.engine.run();
    expect(bad.error).toMatch(/fatal/);
    expectConsistent(rig);
  });
});
