// The streaming multiprocessors: they run the warps of launched kernels. Each warp executes
// its access stream in order; an access goes through the warp's uTLB (the SMs share one per
// group), and on a miss through the MMU (L2 TLB, page walk). An access that cannot be
// translated raises a replayable fault and the warp stalls on it ("fault and stall") until a
// replay lets it retry; the other warps go on. A prefetch access that misses raises a fault
// but never stalls.
//
// Time: a warp advances its own clock access by access (compute, memory, TLB costs) and runs
// ahead of the event queue by at most one quantum before it yields, so a resident access costs
// a few typed-array reads, not an event.

import type { EventQueue } from '../clock.js';
import { ACCESS_PREFETCH, AccessChunk, type AccessType, type GpuKernel, type WarpProgram } from './access.js';
import type { Gpu } from './gpu.js';
import { ACCESS_REQUIRED, XLATE_HIT } from './mmu.js';
import { PTE_SYSMEM, SIZE_PAGES } from './page_table.js';
import { META_ASID_SHIFT, META_SIZE_SHIFT, type Tlb } from './tlb.js';

// Imported constants copied once: an import binding read in a hot loop costs a getter call under the test and bench loaders.
const L_ACCESS_PREFETCH = ACCESS_PREFETCH;
const L_ACCESS_REQUIRED = ACCESS_REQUIRED;
const L_XLATE_HIT = XLATE_HIT;
const L_PTE_SYSMEM = PTE_SYSMEM;
const L_SIZE_PAGES = SIZE_PAGES;
const L_ASID_SHIFT = META_ASID_SHIFT;
const L_SIZE_SHIFT = META_SIZE_SHIFT;

export const WARP_WAITING = 0; // not yet on an SM
export const WARP_RUNNING = 1;
export const WARP_STALLED = 2;
export const WARP_DONE = 3;
export const WARP_CANCELLED = 4;
/** Stopped with its queue (kgd2kfd_quiesce_mm) until the queue resumes. */
export const WARP_SUSPENDED = 5;

/** Called for every access that completes, with the frame it reached (data-carrying tests, tracing). */
export type GpuAccessObserver = (warp: Warp, addr: number, type: AccessType, pfn: number) => void;

// A field that will hold fractions, or integers past 2^31, starts as a double (-0 and NaN are
// not small integers). V8 gives a field first stored as a small integer an integer
// representation; the first fraction then changes the hidden class of every object of the
// class, and the compiled SmArray.step that used the old one is thrown away mid-run.
const F64 = -0;

export class Warp {
  state = WARP_WAITING;
  /** The warp's own clock (ns). */
  time = F64;
  /** Its access buffer while it holds an SM slot (the SMs' pool: none is allocated per warp). */
  chunk: AccessChunk | null = null;
  idx = 0;
  len = 0;
  sm = -1;
  utlbId = 0;
  utlb: Tlb | null = null;
  // The uTLB slot of the last translation, checked against the slot's tag on every use (NaN: no tag equals it).
  slot = -1;
  slotKey = NaN;
  slotBase = F64;
  slotEnd = F64;
  /** When the current stall began. */
  stallSince = F64;
  accesses = 0;
  readonly step: () => void;

  constructor(readonly id: number, readonly run: KernelRun, readonly program: WarpProgram, sms: SmArray) {
    this.step = () => sms.step(this);
  }
}

/** A launched kernel: its warps, and how it ended. */
export class KernelRun {
  readonly warps: Warp[] = [];
  remaining = 0;
  /** The SM the kernel's next warp tries first (SmArray.dispatch). */
  nextSm = 0;
  readonly startNs: number = F64;
  /** -1 until the kernel ends. */
  endNs = F64;
  error: string | null = null;
  private readonly waiters: Array<(run: KernelRun) => void> = [];
  constructor(readonly name: string, readonly asid: number, startNs: number) {
    this.startNs = startNs;
    this.endNs = -1;
  }

  get done(): boolean {
    return this.endNs >= 0;
  }
  /** Call fn when the kernel ends (at once if it has). */
  onDone(fn: (run: KernelRun) => void): void {
    if (this.done) fn(this);
    else this.waiters.push(fn);
  }
  /** @internal */
  finish(t: number): void {
    this.endNs = t;
    for (const fn of this.waiters.splice(0)) fn(this);
  }
}

export interface SmStats {
  accesses: number;
  remoteAccesses: number;
  faultsRaised: number;
  prefetchFaultsRaised: number;
  /** Warp-nanoseconds spent stalled on faults. */
  stallNs: number;
  stalls: number;
}

export class SmArray {
  private nextWarpId = 0;
  /** Warps waiting for an SM slot, in launch order. */
  private waiting: Warp[] = [];
  private waitHead = 0;
  /** Free warp slots per SM, and in all. */
  private readonly freeSlots: Int32Array;
  private freeTotal: number;
  /** Access buffers of warps that finished, for the next warps to get a slot. */
  private readonly chunkPool: AccessChunk[] = [];
  /** Warps stalled on a fault, woken by the next replay. */
  stalled: Warp[] = [];
  /** Kernels not yet ended, in launch order (an ended kernel is dropped: its warps are garbage once its launcher lets go). */
  readonly runs: KernelRun[] = [];
  /** Kernels launched. */
  launched = 0;
  observer: GpuAccessObserver | null = null;
  /** Per VRAM root chunk (2 MiB): last access time and access count, when tracking is on. */
  chunkLastNs: Float64Array | null = null;
  chunkCount: Float64Array | null = null;
  readonly stats: SmStats = { accesses: 0, remoteAccesses: 0, faultsRaised: 0, prefetchFaultsRaised: 0, stallNs: 0, stalls: 0 };

  constructor(private readonly gpu: Gpu, private readonly queue: EventQueue, readonly sms: number, readonly warpsPerSm: number, readonly smsPerUtlb: number) {
    this.freeSlots = new Int32Array(sms).fill(warpsPerSm);
    this.freeTotal = sms * warpsPerSm;
  }

  launch(kernel: GpuKernel, asid: number): KernelRun {
    const run = new KernelRun(kernel.name, asid, this.queue.now());
    this.runs.push(run);
    this.launched++;
    for (const p of kernel.warps) {
      const w = new Warp(this.nextWarpId++, run, p, this);
      run.warps.push(w);
      this.waiting.push(w);
    }
    run.remaining = run.warps.length;
    if (run.remaining === 0) this.endRun(run, this.queue.now());
    this.dispatch();
    return run;
  }

  /**
   * Put waiting warps on free SM slots, in launch order. A kernel's warps go round-robin over
   * the SMs from SM 0, skipping SMs with no free slot: on an idle GPU warp i lands on SM
   * i mod sms, launch after launch (the block scheduler's fixed issue order; GPGPU-Sim's
   * issue_block2core visits the cores round-robin); while slots are busy a waiting warp takes
   * whichever SM frees one.
   */
  private dispatch(): void {
    const free = this.freeSlots;
    const sms = this.sms;
    while (this.waitHead < this.waiting.length && this.freeTotal > 0) {
      const w = this.waiting[this.waitHead++]!;
      if (this.waitHead === this.waiting.length) {
        this.waiting = [];
        this.waitHead = 0;
      } else if (this.waitHead >= 4096 && this.waitHead * 2 >= this.waiting.length) {
        this.waiting = this.waiting.slice(this.waitHead);
        this.waitHead = 0;
      }
      if (w.state !== WARP_WAITING) continue;
      const run = w.run;
      let sm = run.nextSm;
      while (free[sm] === 0) sm = sm + 1 === sms ? 0 : sm + 1;
      run.nextSm = sm + 1 === sms ? 0 : sm + 1;
      free[sm]!--;
      this.freeTotal--;
      w.sm = sm;
      w.utlbId = Math.floor(w.sm / this.smsPerUtlb);
      w.utlb = this.gpu.mmu.utlbs[w.utlbId]!;
      if (this.chunkPool.length === 0) this.chunkPool.push(...AccessChunk.many(64));
      w.chunk = this.chunkPool.pop()!;
      w.state = WARP_RUNNING;
      w.time = this.queue.now();
      this.queue.at(w.time, w.step);
    }
  }

  /** Run warp w from its clock for up to one quantum. */
  step(w: Warp): void {
    if (w.state !== WARP_RUNNING) return;
    const gpu = this.gpu;
    const mmu = gpu.mmu;
    const mmuStats = mmu.stats;
    const costs = gpu.costs;
    const vramNs = costs.vramAccessNs;
    const remoteNs = costs.remoteAccessNs;
    const observer = this.observer;
    const counters = gpu.accessCounters;
    const chunkLast = this.chunkLastNs;
    const stats = this.stats;
    const asid = w.run.asid;
    const utlbId = w.utlbId;
    const u = w.utlb!;
    const keys = u.key;
    const meta = u.meta;
    const chunk = w.chunk!;
    const addrs = chunk.addr;
    const types = chunk.type;
    const computeNs = chunk.computeNs;
    let t = Math.max(w.time, this.queue.now());
    const horizon = t + gpu.quantumNs;
    let idx = w.idx;
    let len = w.len;
    // the warp's last translation: its uTLB slot, valid while the slot's tag is still slotKey
    let slot = w.slot;
    let slotKey = w.slotKey;
    let slotBase = w.slotBase;
    let slotEnd = w.slotEnd;
    for (;;) {
      if (idx >= len) {
        len = w.len = w.program.next(chunk);
        idx = 0;
        if (len === 0) break;
      }
      const addr = addrs[idx]!;
      const type = types[idx]!;
      t += computeNs[idx]!;
      const vpn = Math.floor(addr * (1 / 4096));
      const need = L_ACCESS_REQUIRED[type]!;
      let s = slot;
      // word 0 (an empty slot, or not the last translation) never satisfies need
      let word = vpn >= slotBase && vpn < slotEnd && keys[s] === slotKey ? meta[2 * s + 1]! : 0;
      if (word >>> L_ASID_SHIFT === asid && (word & need) === need) {
        u.touch(s);
        mmuStats.utlbHits++;
      } else {
        s = u.lookup(asid, vpn);
        if (s >= 0 && ((word = meta[2 * s + 1]!) & need) === need) {
          mmuStats.utlbHits++;
        } else {
          const r = s >= 0 ? mmu.protectionFault(utlbId, s, asid, vpn) : mmu.translateMiss(asid, vpn, type as AccessType, utlbId);
          if (r !== L_XLATE_HIT) {
            if (type !== L_ACCESS_PREFETCH) {
              this.stall(w, idx, t, slot, slotKey, slotBase, slotEnd);
              gpu.raiseFault(w, addr, type as AccessType, r, t);
              return;
            }
            w.idx = idx;
            if (gpu.prefetchFaultsEnabled) {
              stats.prefetchFaultsRaised++;
              gpu.raiseFault(w, addr, type as AccessType, r, t);
            }
            idx++;
            continue;
          }
          s = mmu.slot;
          t += mmu.extraNs;
          word = meta[2 * s + 1]!;
        }
        slot = s;
        slotKey = keys[s]!;
        slotBase = Math.floor(slotKey * 0.25);
        slotEnd = slotBase + L_SIZE_PAGES[(word >>> L_SIZE_SHIFT) & 3]!;
      }
      idx++;
      w.accesses++;
      if (type === L_ACCESS_PREFETCH) continue;
      stats.accesses++;
      t += vramNs;
      const pfn = meta[2 * s]! + (vpn - slotBase);
      if (word & L_PTE_SYSMEM) {
        t += remoteNs;
        stats.remoteAccesses++;
        if (counters) counters.record(asid, vpn);
      } else if (chunkLast) {
        const c = (pfn - gpu.vramFirstPfn) >> 9;
        chunkLast[c] = t;
        this.chunkCount![c]!++;
      }
      if (observer) {
        w.idx = idx;
        observer(w, addr, type as AccessType, pfn);
      }
      if (t >= horizon) {
        w.slot = slot;
        w.slotKey = slotKey;
        w.slotBase = slotBase;
        w.slotEnd = slotEnd;
        w.idx = idx;
        w.time = t;
        this.queue.at(t, w.step);
        return;
      }
    }
    w.idx = idx;
    this.finishWarp(w, t, WARP_DONE);
  }

  /** Warp w stalls on the fault of its access idx at time t (it retries that access after a replay). */
  private stall(w: Warp, idx: number, t: number, slot: number, slotKey: number, slotBase: number, slotEnd: number): void {
    w.slot = slot;
    w.slotKey = slotKey;
    w.slotBase = slotBase;
    w.slotEnd = slotEnd;
    w.idx = idx;
    this.stats.faultsRaised++;
    this.stats.stalls++;
    w.state = WARP_STALLED;
    w.time = t;
    w.stallSince = t;
    this.stalled.push(w);
  }

  private finishWarp(w: Warp, t: number, state: number): void {
    w.state = state;
    w.time = t;
    if (w.sm >= 0) {
      this.freeSlots[w.sm]!++;
      this.freeTotal++;
      w.sm = -1;
    }
    if (w.chunk) {
      this.chunkPool.push(w.chunk);
      w.chunk = null;
    }
    const run = w.run;
    if (--run.remaining === 0) {
      let end = t;
      for (const x of run.warps) if (x.time > end) end = x.time;
      this.endRun(run, end);
      this.gpu.kernelEnded(run);
    }
    this.dispatch();
  }

  private endRun(run: KernelRun, t: number): void {
    const i = this.runs.indexOf(run);
    if (i >= 0) this.runs.splice(i, 1);
    run.finish(t);
  }

  /** A replay took effect: every stalled warp retries its access now. */
  replay(): number {
    const list = this.stalled;
    if (list.length === 0) return 0;
    this.stalled = [];
    const now = this.queue.now();
    let n = 0;
    for (const w of list) {
      if (w.state !== WARP_STALLED) continue;
      this.stats.stallNs += now - w.stallSince;
      w.state = WARP_RUNNING;
      w.time = now;
      this.queue.at(now, w.step);
      n++;
    }
    return n;
  }

  /** Kill every warp of the kernels of address space asid (a fatal fault: the channel is reset). Returns the warps killed. */
  cancel(asid: number, reason: string): number {
    const now = this.queue.now();
    let n = 0;
    // a copy: a run whose last warp is killed leaves this.runs
    for (const run of this.runs.slice()) {
      if (run.asid !== asid || run.done) continue;
      if (run.error === null) run.error = reason;
      for (const w of run.warps) {
        if (w.state === WARP_DONE || w.state === WARP_CANCELLED) continue;
        if (w.state === WARP_STALLED) this.stats.stallNs += now - w.stallSince;
        n++;
        this.finishWarp(w, Math.max(now, w.time), WARP_CANCELLED);
      }
    }
    this.stalled = this.stalled.filter((w) => w.state === WARP_STALLED);
    return n;
  }

  /**
   * Stop every running or stalled warp of address space asid where it is (the process's queues
   * are quiesced); a stalled warp retries its access when resumed. Returns the warps stopped.
   */
  suspend(asid: number): number {
    const now = this.queue.now();
    let n = 0;
    for (const run of this.runs) {
      if (run.asid !== asid || run.done) continue;
      for (const w of run.warps) {
        if (w.state === WARP_STALLED) this.stats.stallNs += now - w.stallSince;
        else if (w.state !== WARP_RUNNING) continue;
        w.state = WARP_SUSPENDED;
        n++;
      }
    }
    return n;
  }

  /** Let the warps suspend() stopped run again (the queues are resumed). Returns the warps resumed. */
  resume(asid: number): number {
    const now = this.queue.now();
    let n = 0;
    for (const run of this.runs) {
      if (run.asid !== asid || run.done) continue;
      for (const w of run.warps) {
        if (w.state !== WARP_SUSPENDED) continue;
        w.state = WARP_RUNNING;
        w.time = Math.max(now, w.time);
        this.queue.at(w.time, w.step);
        n++;
      }
    }
    return n;
  }

  /** Warps stalled now. */
  get stalledCount(): number {
    let n = 0;
    for (const w of this.stalled) if (w.state === WARP_STALLED) n++;
    return n;
  }

  /** Kernels still running. */
  get active(): number {
    let n = 0;
    for (const r of this.runs) if (!r.done) n++; // all of them: an ended run leaves the list
    return n;
  }
}
