// The NVIDIA UVM driver on HMM (kernel-open/nvidia-uvm, uvm_hmm.c and what it drives): it
// binds to a GPU, registers the GPU's VRAM as device-private memory owned by UVM
// (&g_uvm_global), attaches processes (a UVM VA space and its GPU address space), services
// replayable faults in batches on a kernel thread, migrates pages between system memory and
// VRAM, evicts VRAM in 2 MiB root chunks, and serves CPU faults on its pages. Every policy is
// an object chosen once (policy_types.ts).

import { fail } from '../../../mm/errno.js';
import type { VmFault } from '../../../mm/fault.js';
import type { Machine } from '../../../mm/machine.js';
import { mmuIntervalNotifierRemove } from '../../../mm/notifier.js';
import type { Process } from '../../../mm/process.js';
import { isSeed, SeededRandom } from '../../../sched/random.js';
import type { Gpu, GpuDriver } from '../gpu.js';
import { KThread } from '../kthread.js';
import type { GpuVaSpace } from '../mmu.js';
import { devmemFault, migrateToCpu } from './hmm.js';
import { blockFindCreate, gpuUnmapBlock, mustUseSysmem } from './hmm_block.js';
import { evictRootChunk } from './hmm_eviction.js';
import { serviceAccessCounters } from './access_counters.js';
import { UvmThrashing, type ThrashingParams } from './perf_thrashing.js';
import { chooseEviction, choosePrefetch, chooseReplay, chooseResidency, chooseThrashing } from './policies.js';
import {
  PAGES_PER_UVM_VA_BLOCK, UVM_ID_CPU, UVM_ID_GPU, UVM_ID_INVALID, type EvictionPolicy, type PrefetchInput, type PrefetchPolicy, type ProcessorId,
  type ReplayPolicy, type ResidencyPolicy, type ThrashingPolicy,
} from './policy_types.js';
import { FRAME_ALLOCATED, FRAME_PINNED, UvmPmm } from './pmm.js';
import { FaultBatch, serviceReplayableFaults } from './replayable_faults.js';
import { blockService, commitPlan } from './service.js';
import { UvmVaSpace, UVM_VA_BLOCK_SIZE, type UvmVaBlock } from './va_space.js';
import type { Vma } from '../../../mm/vma.js';

export interface UvmOptions {
  /** Prefetcher: 'tree' (default), 'none', 'seq64k', 'random4k', or your own. */
  prefetch: string | PrefetchPolicy;
  /** Eviction order: 'uvm' (default), 'lru', 'lfu', 'fifo', 'random', or your own. */
  evict: string | EvictionPolicy;
  /** uvm_perf_fault_replay_policy: 'block', 'batch', 'batch_flush' (default), 'once', or your own. */
  replay: string | ReplayPolicy;
  /** Thrashing detector: 'uvm' (default), 'none', or your own. */
  thrashing: string | ThrashingPolicy;
  /** Residency decision: 'uvm' (default), 'sysmem', or your own. */
  residency: string | ResidencyPolicy;
  /** uvm_perf_fault_batch_count (UVM_PERF_FAULT_BATCH_COUNT_DEFAULT 256; 1 .. fault buffer entries). */
  faultBatchCount: number;
  /** uvm_perf_fault_replay_update_put_ratio (50, percent). */
  replayUpdatePutRatio: number;
  /** uvm_perf_fault_max_batches_per_service (20). */
  maxBatchesPerService: number;
  /** uvm_perf_fault_max_throttle_per_service (5). */
  maxThrottlePerService: number;
  /** uvm_perf_fault_coalesce (1). */
  faultCoalesce: boolean;
  /** uvm_perf_prefetch_threshold (51, percent, 1-100). */
  prefetchThreshold: number;
  /** uvm_perf_prefetch_min_faults (1, 1-20). */
  prefetchMinFaults: number;
  /** uvm_perf_reenable_prefetch_faults_lapse_msec (1000). */
  reenablePrefetchFaultsLapseMs: number;
  /** uvm_perf_thrashing_* (threshold 3, pin threshold 10, lapse 500 us, nap 1, epoch 2000, pin 300, max resets 4). */
  thrashingParams: Partial<ThrashingParams>;
  /** uvm_perf_map_remote_on_eviction (1); effective only with access-counter migrations, as in UVM. */
  mapRemoteOnEviction: boolean;
  /** uvm_perf_access_counter_migration_enable: -1 (default) means on only with ATS; here: false. */
  accessCounterMigrations: boolean;
  /**
   * Map resident VRAM with 2 MiB and 64 KiB leaves and give each VA block a whole root chunk,
   * as UVM does for managed memory (block_gpu_compute_new_pte_state). Off by default, as UVM
   * on HMM with 4 KiB kernel pages: it allocates and maps PAGE_SIZE only (Bug 3368756).
   */
  largePages: boolean;
  /** Seed of the policies' random numbers. */
  seed: number;
}

export const DEFAULT_UVM_OPTIONS: UvmOptions = {
  prefetch: 'tree', evict: 'uvm', replay: 'batch_flush', thrashing: 'uvm', residency: 'uvm', faultBatchCount: 256,
  replayUpdatePutRatio: 50, maxBatchesPerService: 20, maxThrottlePerService: 5, faultCoalesce: true, prefetchThreshold: 51,
  prefetchMinFaults: 1, reenablePrefetchFaultsLapseMs: 1000, thrashingParams: {}, mapRemoteOnEviction: true, accessCounterMigrations: false,
  largePages: false, seed: 1,
};

/** UVM's counters. */
export interface UvmStats {
  /** Fault buffer entries fetched, after coalescing, duplicates (num_duplicate_faults), throttled, fatal, flushed. */
  faults: number;
  coalescedFaults: number;
  duplicateFaults: number;
  throttledFaults: number;
  fatalFaults: number;
  flushedFaults: number;
  flushesUpdatePut: number;
  batches: number;
  /** Time spent in batches (fetch to replay). */
  batchNs: number;
  serviceRuns: number;
  replays: number;
  pagesMigratedToDevice: number;
  pagesMigratedToSystem: number;
  pagesPopulated: number;
  pagesPrefetched: number;
  pagesEvicted: number;
  chunksEvicted: number;
  remoteMaps: number;
  deviceExclusive: number;
  mapsDropped: number;
  cpuFaults: number;
  accessCounterNotifications: number;
  accessCounterMigrations: number;
  tlbInvalidateNs: number;
}

/** The dev_pagemap owner of UVM's pages (&g_uvm_global). */
export class UvmOwner {
  constructor(readonly gpuId: number) {}
}

export class UvmDriver implements GpuDriver {
  readonly name = 'uvm';
  readonly machine: Machine;
  readonly options: UvmOptions;
  readonly owner: UvmOwner;
  readonly prefetcher: PrefetchPolicy;
  readonly eviction: EvictionPolicy;
  readonly replayPolicy: ReplayPolicy;
  readonly thrashing: ThrashingPolicy;
  readonly residency: ResidencyPolicy;
  readonly pmm: UvmPmm;
  readonly random: () => number;
  readonly stats: UvmStats = {
    faults: 0, coalescedFaults: 0, duplicateFaults: 0, throttledFaults: 0, fatalFaults: 0, flushedFaults: 0, flushesUpdatePut: 0, batches: 0,
    batchNs: 0, serviceRuns: 0, replays: 0, pagesMigratedToDevice: 0, pagesMigratedToSystem: 0, pagesPopulated: 0, pagesPrefetched: 0,
    pagesEvicted: 0, chunksEvicted: 0, remoteMaps: 0, deviceExclusive: 0, mapsDropped: 0, cpuFaults: 0, accessCounterNotifications: 0,
    accessCounterMigrations: 0, tlbInvalidateNs: 0,
  };
  /** Every VA block ever created, by id. */
  readonly blocks: UvmVaBlock[] = [];
  private readonly spaces = new Map<number, UvmVaSpace>();
  private readonly byProcess = new Map<Process, UvmVaSpace>();
  readonly batch: FaultBatch;
  batchIds = 0;
  private readonly faultThread: KThread;
  private readonly counterThread: KThread;
  /** uvm_thread_context()->ignore_hmm_invalidate_va_block */
  ignoreInvalidate: UvmVaBlock | null = null;
  /** When the copies of the last eviction complete, and of the last migration to system memory. */
  evictionDoneAt = 0;
  lastCopyDoneAt = 0;
  lastHmmError: string | null = null;
  prefetchFaultsDisabledAt = 0;
  readonly mapRemoteOnEviction: boolean;
  readonly largePages: boolean;
  private shutDown = false;
  // Scratch masks of one block service (the kernel's service context).
  readonly scratchDest = new Int8Array(PAGES_PER_UVM_VA_BLOCK);
  /** scratchDest four pages a word (blockService skips words of UVM_ID_INVALID, -1 in every byte). */
  readonly scratchDest32 = new Int32Array(this.scratchDest.buffer);
  readonly scratchRank = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  readonly scratchFaulted = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  readonly scratchRequest = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  readonly scratchUsed = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  readonly scratchWant = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  private readonly prefetchOut = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  private readonly prefetchOut32 = new Uint32Array(this.prefetchOut.buffer);
  /** computePrefetch's input and result, reused from call to call (valid until the next call). */
  private readonly prefetchInput: { -readonly [K in keyof PrefetchInput]: PrefetchInput[K] };
  private readonly prefetchPages: number[] = [];

  constructor(readonly gpu: Gpu, options: Partial<UvmOptions> = {}) {
    for (const k of Object.keys(options)) if (!(k in DEFAULT_UVM_OPTIONS)) fail('EINVAL', `unknown UVM option ${k}`);
    const o: UvmOptions = { ...DEFAULT_UVM_OPTIONS, ...options };
    const int = (k: keyof UvmOptions, lo: number, hi: number): void => {
      const v = o[k] as number;
      if (!Number.isInteger(v) || v < lo || v > hi) fail('EINVAL', `UVM option ${k} must be an integer in ${lo}..${hi}, got ${String(v)}`);
    };
    int('faultBatchCount', 1, gpu.faultBuffer.maxFaults);
    int('replayUpdatePutRatio', 0, 100);
    int('maxBatchesPerService', 1, 1 << 20);
    int('maxThrottlePerService', 1, 1 << 20);
    int('prefetchThreshold', 1, 100);
    int('prefetchMinFaults', 1, 20);
    if (!(o.reenablePrefetchFaultsLapseMs >= 0)) fail('EINVAL', 'reenablePrefetchFaultsLapseMs must be >= 0');
    if (!isSeed(o.seed)) fail('EINVAL', `UVM option seed must be an integer from 0 to 2^53-1, got ${String(o.seed)}`);
    this.options = o;
    this.machine = gpu.machine;
    // the project's seeded stream (sched/random.ts), as kfd's: every seed its own stream, none wrapped
    const random = SeededRandom.of(o.seed);
    this.random = () => random.float();
    this.prefetchInput = {
      first: 0, outer: 0, faulted: this.scratchFaulted, resident: this.scratchFaulted, thrashing: null, firstTouchAtPreferred: false,
      dest: UVM_ID_GPU, threshold: o.prefetchThreshold, random: this.random,
    };
    this.prefetcher = choosePrefetch(o.prefetch);
    this.eviction = chooseEviction(o.evict);
    this.replayPolicy = chooseReplay(o.replay);
    this.residency = chooseResidency(o.residency);
    this.thrashing = chooseThrashing(o.thrashing, { coherent: gpu.config.vramType === 'coherent', ...o.thrashingParams });
    if (this.thrashing instanceof UvmThrashing) {
      this.thrashing.onEvent = (block, page, kind) => {
        if (gpu.events.on.thrashing) gpu.events.emit({ type: 'thrashing', gpu: gpu.id, addr: block.start + page * 4096, kind, timeNs: gpu.queue.now() });
      };
    }
    this.mapRemoteOnEviction = o.mapRemoteOnEviction && o.accessCounterMigrations;
    this.largePages = !!o.largePages;
    this.owner = new UvmOwner(gpu.id);
    gpu.bindDriver(this);
    if (this.eviction.needsAccessTracking) gpu.enableAccessTracking();
    const first = gpu.vram.register(this.owner, {
      pageFree: (pfn) => this.pageFree(pfn),
      migrateToRam: (vmf) => this.migrateToRam(vmf),
    });
    const sms = gpu.sms;
    this.pmm = new UvmPmm(first, gpu.vram.frames, this.eviction, this.random, {
      get lastNs() {
        return sms.chunkLastNs;
      },
      get count() {
        return sms.chunkCount;
      },
    }, this.largePages);
    this.batch = new FaultBatch(o.faultBatchCount, gpu.mmu.utlbs.length);
    this.faultThread = new KThread(gpu.queue, `uvm-faults-${gpu.id}`);
    this.counterThread = new KThread(gpu.queue, `uvm-access-counters-${gpu.id}`);
  }

  // ---- processes ----

  /** Register a process with the GPU (UvmInitialize + UvmRegisterGpuVaSpace): its GPU address space. */
  attach(process: Process): UvmVaSpace {
    if (this.shutDown) fail('ENODEV', 'the UVM driver has been shut down');
    if (!process.alive) fail('ESRCH', `process ${process.pid} has exited`);
    if (this.byProcess.has(process)) fail('EEXIST', `process ${process.pid} is already attached`);
    const gvs = this.gpu.mmu.createVaSpace();
    gvs.mm = process.mm;
    const vs = new UvmVaSpace(process, gvs);
    this.spaces.set(gvs.asid, vs);
    this.byProcess.set(process, vs);
    return vs;
  }

  /** Tear a process's VA space down: its notifiers go, its GPU mappings go; its pages stay where the CPU page table has them. */
  detach(process: Process): void {
    const vs = this.byProcess.get(process);
    if (!vs) fail('EINVAL', `process ${process.pid} is not attached`);
    vs.dead = true;
    for (const block of vs.blocks.values()) {
      gpuUnmapBlock(this, block, 0, PAGES_PER_UVM_VA_BLOCK, 'detach');
      // No invalidation runs now (they are synchronous): the removal never has to wait.
      mmuIntervalNotifierRemove(block.notifier);
    }
    this.gpu.mmu.destroyVaSpace(vs.gpuVaSpace);
    this.spaces.delete(vs.asid);
    this.byProcess.delete(process);
  }

  vaSpaceOf(process: Process): UvmVaSpace | undefined {
    return this.byProcess.get(process);
  }

  vaSpaceByAsid(asid: number): UvmVaSpace | undefined {
    return this.spaces.get(asid);
  }

  get vaSpaces(): UvmVaSpace[] {
    return [...this.spaces.values()];
  }

  /** The GPU address space to launch a process's kernels in. */
  gpuVaSpaceOf(process: Process): GpuVaSpace {
    const vs = this.byProcess.get(process);
    if (!vs) fail('EINVAL', `process ${process.pid} is not attached`);
    return vs.gpuVaSpace;
  }

  // ---- interrupts ----

  /** The replayable fault interrupt's top half: schedule the bottom half. */
  replayableFaultInterrupt(): void {
    if (this.shutDown || this.faultThread.running) return;
    this.faultThread.start(serviceReplayableFaults(this));
  }

  accessCounterInterrupt(): void {
    if (this.shutDown || this.counterThread.running) return;
    this.counterThread.start(serviceAccessCounters(this));
  }

  // ---- dev_pagemap_ops ----

  /** page_free: the last reference to one of UVM's VRAM pages went. */
  pageFree(pfn: number): void {
    const pmm = this.pmm;
    const f = pfn - pmm.firstPfn;
    if (pmm.state[f] === FRAME_ALLOCATED) {
      const block = this.blocks[pmm.owner[f]!]!;
      const p = pmm.page[f]!;
      if (block.vramPfn[p] === pfn) {
        block.clearVram(p);
        block.stalePending(p, p + 1);
      }
    } else if (pmm.state[f] !== FRAME_PINNED) {
      throw new Error(`page_free of VRAM page ${pfn} that UVM does not hold`);
    }
    pmm.free(pfn);
  }

  migrateToRam(vmf: VmFault): number {
    return devmemFault(this, vmf);
  }

  // ---- helpers for the service paths ----

  mustUseSysmem(vma: Vma): boolean {
    return mustUseSysmem(vma);
  }

  /**
   * uvm_perf_prefetch_get_hint_va_block: the pages the prefetcher adds to the `faultedCount`
   * faulted ones (moving to `dest`) within the max prefetch region [first, outer), in order.
   * The array is reused by the next call.
   */
  computePrefetch(block: UvmVaBlock, dest: ProcessorId, faulted: Uint8Array, faultedCount: number, first: number, outer: number): number[] {
    if (block.lastMigrationProc !== dest) {
      block.lastMigrationProc = dest;
      block.faultMigrationsToLastProc = 0;
    }
    const pol = block.vaSpace.policyAt(block.pageAddr(first));
    const preferred = pol ? pol.preferredLocation : UVM_ID_INVALID;
    // The block's own residency masks, read-only to the prefetcher (PrefetchInput).
    const resident = dest === UVM_ID_GPU ? block.gpuResident : block.cpuResident;
    const out = this.prefetchOut;
    out.fill(0);
    const thrashing = this.thrashing.thrashingPages(block);
    const firstTouch = dest === preferred && !block.hasResident;
    // should_apply_prefetch_logic: with a preferred location, prefetch only toward it.
    if (firstTouch || preferred === UVM_ID_INVALID || preferred === dest) {
      const input = this.prefetchInput;
      input.first = first;
      input.outer = outer;
      input.faulted = faulted;
      input.resident = resident;
      input.thrashing = thrashing;
      input.firstTouchAtPreferred = firstTouch;
      input.dest = dest;
      this.prefetcher.compute(input, out);
    }
    block.faultMigrationsToLastProc += faultedCount;
    const pages = this.prefetchPages;
    pages.length = 0;
    if (block.faultMigrationsToLastProc < this.options.prefetchMinFaults) return pages;
    // Scan the marks four at a time: most of a block is usually unmarked.
    const out32 = this.prefetchOut32;
    for (let w = first >> 2, wEnd = (outer + 3) >> 2; w < wEnd; w++) {
      if (out32[w] === 0) continue;
      for (let p = Math.max(first, w << 2), e = Math.min(outer, (w << 2) + 4); p < e; p++) {
        if (!out[p] || faulted[p] || (thrashing && thrashing[p]) || resident[p]) continue;
        pages.push(p);
      }
    }
    return pages;
  }

  /** The pages a CPU fault on `page` migrates: the page and the prefetcher's pick toward the CPU, among those in VRAM. */
  prefetchForCpuFault(block: UvmVaBlock, page: number, first: number, outer: number): number[] {
    const faulted = this.scratchFaulted;
    faulted.fill(0);
    faulted[page] = 1;
    const pages = [page];
    for (const p of this.computePrefetch(block, UVM_ID_CPU, faulted, 1, first, outer)) if (block.vramPfn[p]! >= 0) pages.push(p);
    return pages.sort((a, b) => a - b);
  }

  // ---- user API: hints and explicit migration ----

  private rangeOf(process: Process, addr: number, len: number): UvmVaSpace {
    const vs = this.byProcess.get(process);
    if (!vs) fail('EINVAL', `process ${process.pid} is not attached`);
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len <= 0 || addr % 4096 || len % 4096) {
      fail('EINVAL', 'address and length must be positive multiples of 4 KiB');
    }
    if (!vs.mm.fullyMapped(addr, addr + len)) fail('EINVAL', 'the range is not fully mapped');
    return vs;
  }

  /** UvmSetPreferredLocation / cudaMemAdviseSetPreferredLocation ('gpu', 'cpu', or null to unset). */
  setPreferredLocation(process: Process, addr: number, len: number, where: 'gpu' | 'cpu' | null): void {
    if (where !== 'gpu' && where !== 'cpu' && where !== null) fail('EINVAL', `preferred location must be 'gpu', 'cpu' or null`);
    const vs = this.rangeOf(process, addr, len);
    const id = where === 'gpu' ? UVM_ID_GPU : where === 'cpu' ? UVM_ID_CPU : UVM_ID_INVALID;
    vs.setPolicy(addr, addr + len, (r) => void (r.preferredLocation = id));
  }

  /** UvmSetAccessedBy / cudaMemAdviseSetAccessedBy for this GPU. */
  setAccessedBy(process: Process, addr: number, len: number, on: boolean): void {
    const vs = this.rangeOf(process, addr, len);
    vs.setPolicy(addr, addr + len, (r) => void (r.accessedBy = !!on));
  }

  /**
   * UvmSetReadDuplication / cudaMemAdviseSetReadMostly. Recorded, and without effect, as in
   * UVM for HMM memory (uvm_hmm_set_read_duplication: "TODO: Bug 3660922: need to implement
   * HMM read duplication support"): the CPU page table cannot hold a second, read-only copy.
   */
  setReadMostly(process: Process, addr: number, len: number, on: boolean): void {
    const vs = this.rangeOf(process, addr, len);
    vs.setPolicy(addr, addr + len, (r) => void (r.readMostly = !!on));
  }

  /**
   * UvmMigrate / cudaMemPrefetchAsync: make [addr, addr + len) resident on the GPU (VRAM) or
   * the CPU, map it there for the GPU, and return when the copies complete (simulated ns).
   */
  migrate(process: Process, addr: number, len: number, to: 'gpu' | 'cpu'): number {
    if (to !== 'gpu' && to !== 'cpu') fail('EINVAL', `destination must be 'gpu' or 'cpu'`);
    const vs = this.rangeOf(process, addr, len);
    let done = this.gpu.queue.now();
    const end = addr + len;
    for (let a = addr; a < end; ) {
      const vma = vs.mm.findVma(a)!;
      const block = blockFindCreate(this, vs, a);
      const segEnd = Math.min(end, vma.end, block.end);
      const first = block.pageIndex(a);
      const outer = block.pageIndex(segEnd - 1) + 1;
      if (to === 'gpu') {
        const dest = this.scratchDest;
        const rank = this.scratchRank;
        dest.fill(UVM_ID_INVALID);
        rank.fill(0);
        const target = mustUseSysmem(vma) ? UVM_ID_CPU : UVM_ID_GPU;
        for (let p = first; p < outer; p++) {
          dest[p] = target;
          rank[p] = 1;
        }
        const r = blockService(this, block, vma, dest, rank, first, outer, 'api');
        commitPlan(this, block, r.plan);
        done = Math.max(done, r.doneAt);
      } else {
        const pages: number[] = [];
        for (let p = first; p < outer; p++) if (block.vramPfn[p]! >= 0) pages.push(p);
        migrateToCpu(this, block, vma, pages, -1, 'api');
        done = Math.max(done, this.lastCopyDoneAt);
      }
      a = segEnd;
    }
    return done;
  }

  // ---- teardown ----

  /**
   * Unbind from the GPU: every process is detached, every VRAM page is evicted back to system
   * memory (migrate_device_pfns), and VRAM is unregistered. Afterwards no frame is held.
   */
  shutdown(): void {
    if (this.shutDown) return;
    for (const vs of [...this.byProcess.values()]) this.detach(vs.process);
    for (let c = 0; c < this.pmm.chunks; c++) {
      if (this.pmm.chunkUsed[c]! > 0) evictRootChunk(this, c);
    }
    this.shutDown = true;
    this.gpu.unbindDriver(this);
    this.gpu.vram.unregister();
  }

  /** Counters of the driver and the hardware. */
  counters(): Record<string, number> {
    const t = this.thrashing.stats;
    return {
      ...this.stats, thrashingDetected: t.detected, thrashingThrottled: t.throttled, thrashingPinned: t.pinned, vramPagesUsed: this.pmm.usedFrames,
      vramPages: this.pmm.frames, blocks: this.blocks.length,
    };
  }
}

export { UVM_VA_BLOCK_SIZE };
