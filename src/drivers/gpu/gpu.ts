// A GPU: SMs running warps, the MMU with its TLBs and per-address-space page tables, the
// replayable fault buffer and its interrupt, copy engines, VRAM and optional access counters,
// on one Machine and one event queue. A driver (uvm/, kfd/, nouveau/) binds to it and
// services its faults; the hardware knows nothing of HMM.

import { fail } from '../../mm/errno.js';
import type { Machine } from '../../mm/machine.js';
import type { MemoryType } from '../../mm/memremap.js';
import type { EventQueue } from '../clock.js';
import type { AccessType, GpuKernel } from './access.js';
import { AccessCounters, DEFAULT_ACCESS_COUNTER_CONFIG, type AccessCounterConfig } from './access_counters.js';
import { CopyEngine } from './copy_engine.js';
import { DEFAULT_GPU_COSTS, type GpuCosts, type TransferDirection } from './costs.js';
import { GpuEventBus, type GpuReplayKind } from './events.js';
import { FaultBuffer } from './fault_buffer.js';
import { GpuMmu, type GpuVaSpace } from './mmu.js';
import { KernelRun, SmArray, type GpuAccessObserver, type Warp } from './sm.js';
import { Vram, VRAM_CHUNK_FRAMES } from './vram.js';

export interface GpuConfig {
  /** Identifies the GPU in events. */
  id: number;
  /** Streaming multiprocessors, and warps resident on each at once. */
  sms: number;
  warpsPerSm: number;
  /** SMs sharing one uTLB (a TPC on Pascal..Hopper). */
  smsPerUtlb: number;
  utlbEntries: number;
  utlbWays: number;
  l2TlbEntries: number;
  l2TlbWays: number;
  /** Replayable fault buffer entries (the chip's default buffer size / 32 bytes). */
  faultBufferEntries: number;
  vramBytes: number;
  /** 'private' over PCIe; 'coherent' for NVLink-C2C-like links where the CPU maps VRAM. */
  vramType: MemoryType;
  copyEngines: number;
  /** Access counters (null: off). */
  accessCounters: Partial<AccessCounterConfig> | null;
  /** How far a warp may run ahead of the event queue before it yields (ns). */
  quantumNs: number;
  /** The interconnect carries atomics to system memory (NVLink-C2C); PCIe does not. */
  nativeSysmemAtomics: boolean;
  /** Page-table levels (4: 48-bit VA, as the CPU's; 5 with 5-level paging). Default: the machine's. */
  levels: 4 | 5 | null;
}

/**
 * Round figures for tests: a small Pascal/Volta-like GPU. The fault buffer size is the
 * chip's reset default on real parts (kgmmuSetAndGetDefaultFaultBufferSize); 8192 entries
 * (256 KiB) stands in for it here.
 */
export const DEFAULT_GPU_CONFIG: GpuConfig = {
  id: 0,
  sms: 8,
  warpsPerSm: 32,
  smsPerUtlb: 2,
  utlbEntries: 64,
  utlbWays: 8,
  l2TlbEntries: 2048,
  l2TlbWays: 16,
  faultBufferEntries: 8192,
  vramBytes: 64 << 20,
  vramType: 'private',
  copyEngines: 2,
  accessCounters: null,
  quantumNs: 2000,
  nativeSysmemAtomics: false,
  levels: null,
};

/** What the hardware calls in its driver (the interrupt handlers' top halves). */
export interface GpuDriver {
  readonly name: string;
  /** The replayable fault interrupt: the buffer has entries. Not called again until enableFaultInterrupt. */
  replayableFaultInterrupt(): void;
  /** The access counter buffer has notifications. */
  accessCounterInterrupt?(): void;
}

export interface GpuStats {
  accesses: number;
  remoteAccesses: number;
  faultsRaised: number;
  prefetchFaultsRaised: number;
  faultsDropped: number;
  stallNs: number;
  replays: number;
  cancels: number;
  utlbHits: number;
  utlbMisses: number;
  l2TlbHits: number;
  pageWalks: number;
  tlbInvalidates: number;
  htodBytes: number;
  dtohBytes: number;
  copies: number;
  copyBusyNs: number;
  kernels: number;
}

export class Gpu {
  readonly config: GpuConfig;
  readonly costs: GpuCosts;
  readonly events = new GpuEventBus();
  readonly mmu: GpuMmu;
  readonly faultBuffer: FaultBuffer;
  readonly sms: SmArray;
  readonly copyEngines: CopyEngine[];
  readonly vram: Vram;
  readonly accessCounters: AccessCounters | null;
  readonly quantumNs: number;
  driver: GpuDriver | null = null;
  /** uvm_parent_gpu_enable/disable_prefetch_faults: whether prefetch accesses report faults. */
  prefetchFaultsEnabled = true;
  private faultIntrEnabled = true;
  replays = 0;
  cancels = 0;
  private nextCe = 0;

  constructor(readonly machine: Machine, readonly queue: EventQueue, config: Partial<GpuConfig> = {}, costs: Partial<GpuCosts> = {}) {
    for (const k of Object.keys(config)) if (!(k in DEFAULT_GPU_CONFIG)) fail('EINVAL', `unknown GPU option ${k}`);
    for (const k of Object.keys(costs)) if (!(k in DEFAULT_GPU_COSTS)) fail('EINVAL', `unknown GPU cost ${k}`);
    const c = { ...DEFAULT_GPU_CONFIG, ...config };
    const positive = ['sms', 'warpsPerSm', 'smsPerUtlb', 'utlbEntries', 'utlbWays', 'l2TlbEntries', 'l2TlbWays', 'faultBufferEntries', 'copyEngines'] as const;
    for (const k of positive) if (!Number.isInteger(c[k]) || c[k] <= 0) fail('EINVAL', `GPU option ${k} must be a positive integer, got ${c[k]}`);
    if (c.utlbEntries % c.utlbWays || c.l2TlbEntries % c.l2TlbWays) fail('EINVAL', 'TLB entries must be a multiple of its ways');
    if (c.faultBufferEntries < 2) fail('EINVAL', 'the fault buffer needs at least 2 entries');
    if (!(c.quantumNs > 0)) fail('EINVAL', `quantumNs must be positive, got ${c.quantumNs}`);
    const levels = c.levels ?? machine.config.levels;
    if (levels !== 4 && levels !== 5) fail('EINVAL', `levels must be 4 or 5, got ${String(levels)}`);
    this.config = c;
    this.costs = { ...DEFAULT_GPU_COSTS, ...costs };
    this.quantumNs = c.quantumNs;
    this.vram = new Vram(machine, c.vramBytes, c.vramType);
    this.mmu = new GpuMmu(c.id, levels, Math.ceil(c.sms / c.smsPerUtlb), c.utlbEntries, c.utlbWays, c.l2TlbEntries, c.l2TlbWays, this.events, this.costs);
    this.faultBuffer = new FaultBuffer(c.faultBufferEntries);
    this.sms = new SmArray(this, queue, c.sms, c.warpsPerSm, c.smsPerUtlb);
    this.copyEngines = Array.from({ length: c.copyEngines }, (_, i) => new CopyEngine(i, queue, this.costs));
    this.accessCounters = c.accessCounters ? new AccessCounters({ ...DEFAULT_ACCESS_COUNTER_CONFIG, ...c.accessCounters }) : null;
    if (this.accessCounters) {
      this.accessCounters.onNotify = () => {
        const d = this.driver;
        if (d?.accessCounterInterrupt) this.queue.after(this.costs.faultInterruptNs, () => d.accessCounterInterrupt!());
      };
    }
  }

  get id(): number {
    return this.config.id;
  }

  /** First VRAM frame (once a driver registered VRAM), else -1. */
  get vramFirstPfn(): number {
    return this.vram.pgmap ? this.vram.pgmap.firstPfn : -1;
  }

  /** The driver that services this GPU's interrupts. */
  bindDriver(driver: GpuDriver): void {
    if (this.driver && this.driver !== driver) fail('EBUSY', `GPU ${this.id} is driven by ${this.driver.name}`);
    this.driver = driver;
  }

  unbindDriver(driver: GpuDriver): void {
    if (this.driver === driver) this.driver = null;
  }

  // ---- kernels ----

  /** Launch a kernel in a GPU address space; its warps start now. */
  launch(kernel: GpuKernel, vs: GpuVaSpace): KernelRun {
    if (!kernel || !Array.isArray(kernel.warps)) fail('EINVAL', 'not a GpuKernel');
    if (this.mmu.vaSpace(vs.asid) !== vs) fail('EINVAL', 'the GPU address space is not live');
    if (this.events.on.kernel) this.events.emit({ type: 'kernel', gpu: this.id, name: kernel.name, phase: 'launch', timeNs: this.queue.now(), error: null });
    return this.sms.launch(kernel, vs.asid);
  }

  /** @internal the SMs report a kernel's end. */
  kernelEnded(run: KernelRun): void {
    if (this.events.on.kernel) this.events.emit({ type: 'kernel', gpu: this.id, name: run.name, phase: 'end', timeNs: run.endNs, error: run.error });
  }

  /** Watch every completed access (data-carrying tests, traces). Returns the unsubscribe. */
  observeAccesses(fn: GpuAccessObserver): () => void {
    const prev = this.sms.observer;
    const composed: GpuAccessObserver = prev ? (w, a, t, p) => { prev(w, a, t, p); fn(w, a, t, p); } : fn;
    this.sms.observer = composed;
    return () => {
      if (this.sms.observer === composed) this.sms.observer = prev;
    };
  }

  /** Track the last access time and count of each 2 MiB VRAM chunk (the access registers LRU/LFU eviction reads). */
  enableAccessTracking(): void {
    if (this.sms.chunkLastNs) return;
    const n = Math.ceil(this.vram.frames / VRAM_CHUNK_FRAMES);
    this.sms.chunkLastNs = new Float64Array(n);
    this.sms.chunkCount = new Float64Array(n);
  }

  // ---- faults ----

  /** @internal the MMU writes a fault entry (the address aligned to 4 KiB) and interrupts the driver. */
  raiseFault(w: Warp, addr: number, type: AccessType, faultType: number, t: number): void {
    const page = Math.floor(addr / 4096) * 4096; // not addr % 4096: past 2^31 a double % is a call into C
    const ok = this.faultBuffer.write(page, type, faultType, w.utlbId, w.run.asid, w.id, t);
    const taps = this.events.faultTaps;
    for (let i = 0; i < taps.length; i++) taps[i]!(t, !ok);
    if (this.events.on.fault) {
      this.events.emit({ type: 'fault', gpu: this.id, asid: w.run.asid, addr: page, access: type, utlb: w.utlbId, warp: w.id, timeNs: t, dropped: !ok });
    }
    if (ok && this.faultIntrEnabled && this.driver) {
      this.faultIntrEnabled = false;
      const d = this.driver;
      this.queue.at(Math.max(t, this.queue.now()) + this.costs.faultInterruptNs, () => d.replayableFaultInterrupt());
    }
  }

  /**
   * Re-arm the replayable fault interrupt (the bottom half is done). If entries are waiting,
   * it fires again at once.
   */
  enableFaultInterrupt(): void {
    this.faultIntrEnabled = true;
    if (this.faultBuffer.pending > 0 && this.driver) {
      this.faultIntrEnabled = false;
      const d = this.driver;
      this.queue.after(this.costs.faultInterruptNs, () => d.replayableFaultInterrupt());
    }
  }

  /**
   * A replay command (UVM_FAULT_REPLAY_TYPE_START): `replayNs` from now every stalled warp
   * retries its access; those still untranslatable fault again. Returns when it takes effect.
   */
  replay(kind: GpuReplayKind = 'replay'): number {
    this.replays++;
    const at = this.queue.now() + this.costs.replayNs;
    if (this.events.on.replay) this.events.emit({ type: 'replay', gpu: this.id, timeNs: this.queue.now(), kind, stalledWarps: this.sms.stalledCount });
    this.queue.at(at, () => this.sms.replay());
    return at;
  }

  /**
   * Cancel a fatal fault (GP100_VMM_VN_FAULT_CANCEL, push_cancel_on_gpu): the faulting
   * context is reset, every warp of address space asid's kernels is killed and the kernels
   * end with an error. Returns the warps killed.
   */
  cancel(asid: number, addr: number, reason = `fatal GPU fault at 0x${addr.toString(16)}`): number {
    this.cancels++;
    const n = this.sms.cancel(asid, reason);
    if (this.events.on.cancel) this.events.emit({ type: 'cancel', gpu: this.id, asid, addr, timeNs: this.queue.now(), warps: n });
    return n;
  }

  // ---- queues ----

  /**
   * Quiesce the queues of address space asid (kgd2kfd_quiesce_mm): its warps stop where they
   * are until resumeQueues. Returns the warps stopped.
   */
  suspendQueues(asid: number): number {
    return this.sms.suspend(asid);
  }

  /** Resume the queues of address space asid (kgd2kfd_resume_mm). Returns the warps resumed. */
  resumeQueues(asid: number): number {
    return this.sms.resume(asid);
  }

  // ---- copies ----

  /** Queue a copy on the copy engine that is idle first; returns when it completes. */
  copy(bytes: number, dir: TransferDirection, earliestNs?: number): number {
    let ce = this.copyEngines[this.nextCe]!;
    for (const e of this.copyEngines) if (e.idleAt < ce.idleAt) ce = e;
    this.nextCe = (ce.id + 1) % this.copyEngines.length;
    return ce.copy(bytes, dir, earliestNs);
  }

  // ---- counters ----

  stats(): GpuStats {
    const s = this.sms.stats;
    const m = this.mmu.stats;
    let htod = 0;
    let dtoh = 0;
    let copies = 0;
    let busy = 0;
    for (const ce of this.copyEngines) {
      htod += ce.htodBytes;
      dtoh += ce.dtohBytes;
      copies += ce.copies;
      busy += ce.busyNs;
    }
    return {
      accesses: s.accesses, remoteAccesses: s.remoteAccesses, faultsRaised: s.faultsRaised, prefetchFaultsRaised: s.prefetchFaultsRaised,
      faultsDropped: this.faultBuffer.dropped, stallNs: s.stallNs, replays: this.replays, cancels: this.cancels, utlbHits: m.utlbHits,
      utlbMisses: m.utlbMisses, l2TlbHits: m.l2Hits, pageWalks: m.walks, tlbInvalidates: m.tlbInvalidates, htodBytes: htod, dtohBytes: dtoh,
      copies, copyBusyNs: busy, kernels: this.sms.launched,
    };
  }
}
