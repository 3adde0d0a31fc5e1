// nouveau's SVM (drivers/gpu/drm/nouveau/nouveau_svm.c) on the GPU model, on mainline HMM calls:
// the fault work drains the whole replayable fault buffer, sorts it by (instance, address,
// access priority), and maps each fault's page through hmm_range_fault under a temporary
// interval notifier (nouveau_range_fault), never migrating on a GPU fault; atomics take the
// page with make_device_exclusive (nouveau_atomic_range_fault); a failed fault cancels the
// channel; one replay covers the whole drain. Each process is an SVMM with a whole-mm
// mmu_notifier that clears GPU PTEs (ignoring the driver's own migrations). VRAM comes from
// nouveau_dmem.ts; migration to VRAM is explicit (NOUVEAU_SVM_BIND_COMMAND__MIGRATE), back one
// page per CPU fault, and nothing is ever evicted. nouveau does not use drm_gpusvm.

import { fail, KernelError, WouldBlock } from '../../../mm/errno.js';
import { makeDeviceExclusive } from '../../../mm/exclusive.js';
import { VM_FAULT_SIGBUS, type VmFault } from '../../../mm/fault.js';
import type { Machine } from '../../../mm/machine.js';
import {
  MmuIntervalNotifier, MmuNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalSetSeq, mmuNotifierRegister,
  mmuNotifierUnregister, type MmuNotifierRange,
} from '../../../mm/notifier.js';
import type { Mm } from '../../../mm/mm.js';
import type { Process } from '../../../mm/process.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnToMapOrder } from '../../../hmm/range.js';
import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_READ, ACCESS_WRITE } from '../access.js';
import { copyPages, evictDeviceRange, gpuMapPage, hmmRangeFaultRetry, migrateVmaToRam, migrateVmaToVram } from '../devmem.js';
import type { HmmGpuDriver } from '../driver.js';
import type { Gpu, GpuDriver } from '../gpu.js';
import { KThread, type KThreadBody } from '../kthread.js';
import type { GpuVaSpace } from '../mmu.js';
import { PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC, PTE_ATOMIC, PTE_SYSMEM, PTE_VALID, PTE_WRITE, type GpuPtLeaf } from '../page_table.js';
import { NouveauDmem, SG_MAX_SINGLE_ALLOC } from './nouveau_dmem.js';

export interface NouveauOptions {
  /**
   * The window one fault maps: 'page' (mainline: one PAGE_SIZE, args->p.size = PAGE_SIZE, grown
   * to the folio the CPU maps) or '64k' (the 2019 driver: 16 pages from the fault address, the
   * faults inside it handled by one hmm_range_fault, the pages between them not faulted in).
   */
  window: 'page' | '64k';
}

export const DEFAULT_NOUVEAU_OPTIONS: NouveauOptions = { window: 'page' };

export interface NouveauStats {
  /** Entries drained from the fault buffer, drains (one replay each at most), faults handled. */
  faults: number;
  drains: number;
  faultsHandled: number;
  /** Faults skipped: a fault already handled in the sorted list covered them. */
  faultsSkipped: number;
  /** Faults cancelled (nouveau_svm_fault_cancel_fault: the channel is killed). */
  faultsCancelled: number;
  replays: number;
  pagesMapped: number;
  remotePagesMapped: number;
  deviceExclusive: number;
  /** Explicit migrations (SVM_BIND MIGRATE) and the pages they moved; pages that found no VRAM. */
  migrations: number;
  pagesMigratedToDevice: number;
  migrateShort: number;
  /** CPU faults on VRAM pages, each one page back (nouveau_dmem_migrate_to_ram). */
  cpuFaults: number;
  pagesMigratedToSystem: number;
  tlbInvalidateNs: number;
}

/** The dev_pagemap owner of nouveau's pages (drm->dev). */
export class NouveauOwner {
  constructor(readonly gpuId: number) {}
}

/** struct nouveau_svmm: one process's GPU address space and its whole-mm notifier. */
export class NouveauSvmm {
  readonly mm: Mm;
  readonly notifier: MmuNotifier;
  dead = false;
  constructor(readonly id: number, readonly process: Process, readonly gpuVaSpace: GpuVaSpace, ops: (svmm: NouveauSvmm) => MmuNotifier) {
    this.mm = process.mm;
    this.notifier = ops(this);
  }
  get asid(): number {
    return this.gpuVaSpace.asid;
  }
}

/** nouveau_svm_fault_priority: PREFETCH 0, READ 1, WRITE 2, ATOMIC 3 (access.ts: READ 0, WRITE 1, ATOMIC 2, PREFETCH 3). */
const PRIORITY = [1, 2, 3, 0] as const;

const leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };

export class NouveauDriver implements GpuDriver, HmmGpuDriver {
  readonly name = 'nouveau';
  readonly machine: Machine;
  readonly options: NouveauOptions;
  readonly owner: NouveauOwner;
  readonly dmem: NouveauDmem;
  readonly stats: NouveauStats = {
    faults: 0, drains: 0, faultsHandled: 0, faultsSkipped: 0, faultsCancelled: 0, replays: 0, pagesMapped: 0, remotePagesMapped: 0,
    deviceExclusive: 0, migrations: 0, pagesMigratedToDevice: 0, migrateShort: 0, cpuFaults: 0, pagesMigratedToSystem: 0, tlbInvalidateNs: 0,
  };
  private readonly byProcess = new Map<Process, NouveauSvmm>();
  private readonly byAsid = new Map<number, NouveauSvmm>();
  private readonly svmms: (NouveauSvmm | null)[] = [];
  private readonly faultThread: KThread;
  // The drained buffer (nouveau_svm_fault_buffer.fault[]): parallel arrays, sorted through `order`.
  private fAsid = new Uint16Array(0);
  private fAddr = new Float64Array(0);
  private fAccess = new Uint8Array(0);
  private order: number[] = [];
  private shutDown = false;

  constructor(readonly gpu: Gpu, options: Partial<NouveauOptions> = {}) {
    for (const k of Object.keys(options)) if (!(k in DEFAULT_NOUVEAU_OPTIONS)) fail('EINVAL', `unknown nouveau option ${k}`);
    const o: NouveauOptions = { ...DEFAULT_NOUVEAU_OPTIONS, ...options };
    if (o.window !== 'page' && o.window !== '64k') fail('EINVAL', `nouveau window must be 'page' or '64k', got ${String(o.window)}`);
    // nouveau_dmem_init registers device-private memory only.
    if (gpu.config.vramType !== 'private') fail('EINVAL', 'nouveau: VRAM is device-private memory only (nouveau_dmem_init)');
    this.options = o;
    this.machine = gpu.machine;
    this.owner = new NouveauOwner(gpu.id);
    gpu.bindDriver(this);
    const first = gpu.vram.register(this.owner, { pageFree: (pfn) => this.pageFree(pfn), migrateToRam: (vmf) => this.migrateToRam(vmf) });
    this.dmem = new NouveauDmem(first, gpu.vram.frames);
    this.faultThread = new KThread(gpu.queue, `nouveau-svm-${gpu.id}`);
    const n = gpu.faultBuffer.maxFaults;
    this.fAsid = new Uint16Array(n);
    this.fAddr = new Float64Array(n);
    this.fAccess = new Uint8Array(n);
  }

  // ---- processes ----

  /** nouveau_svmm_init: the channel's VMM mirrors the process's mm. */
  attach(process: Process): NouveauSvmm {
    if (this.shutDown) fail('ENODEV', 'the nouveau driver has been shut down');
    if (!process.alive) fail('ESRCH', `process ${process.pid} has exited`);
    if (this.byProcess.has(process)) fail('EEXIST', `process ${process.pid} is already attached`);
    const gvs = this.gpu.mmu.createVaSpace();
    gvs.mm = process.mm;
    const svmm = new NouveauSvmm(this.svmms.length, process, gvs, (s) => {
      const n = new MmuNotifier({ invalidateRangeStart: (_n, r) => this.invalidateRangeStart(s, r), release: () => this.release(s) });
      mmuNotifierRegister(n, process.mm);
      return n;
    });
    this.svmms.push(svmm);
    this.byProcess.set(process, svmm);
    this.byAsid.set(gvs.asid, svmm);
    return svmm;
  }

  /** nouveau_svmm_fini: the notifier goes, and the GPU address space with its mappings. Pages stay where they are. */
  detach(process: Process): void {
    const svmm = this.byProcess.get(process);
    if (!svmm) fail('EINVAL', `process ${process.pid} is not attached`);
    svmm.dead = true;
    if (!svmm.mm.dead) mmuNotifierUnregister(svmm.notifier, svmm.mm);
    this.gpu.mmu.unmap(svmm.gpuVaSpace, 0, 2 ** 45, 'detach');
    this.gpu.mmu.destroyVaSpace(svmm.gpuVaSpace);
    this.byProcess.delete(process);
    this.byAsid.delete(svmm.asid);
  }

  svmmOf(process: Process): NouveauSvmm | undefined {
    return this.byProcess.get(process);
  }

  // ---- invalidation ----

  /** nouveau_svmm_invalidate: PFNCLR over [start, end) and the TLB flush. */
  private svmmInvalidate(svmm: NouveauSvmm, start: number, end: number): void {
    const vs = svmm.gpuVaSpace;
    if (svmm.dead || this.gpu.mmu.vaSpace(vs.asid) !== vs) return;
    const s = Math.floor(start / 4096);
    const e = Math.ceil(end / 4096);
    if (this.gpu.mmu.unmap(vs, s, e, 'invalidate') > 0) {
      this.gpu.mmu.tlbInvalidate(vs, s, e, this.gpu.queue.now());
      this.stats.tlbInvalidateNs += this.gpu.costs.tlbInvalidateNs;
    }
  }

  /**
   * nouveau_svmm_release: the mm is going (exit_mmap); no invalidation follows. The SVMM lets
   * go of its VMM, and its GPU mappings go with it.
   */
  private release(svmm: NouveauSvmm): void {
    this.svmmInvalidate(svmm, 0, 2 ** 57);
  }

  /**
   * nouveau_svmm_invalidate_range_start: clear the GPU PTEs of the range, except for the
   * driver's own migrations and exclusive-access requests (it updates those mappings itself).
   */
  private invalidateRangeStart(svmm: NouveauSvmm, range: MmuNotifierRange): boolean {
    if (!(range.flags & 1)) return false;
    if ((range.event === 'MIGRATE' || range.event === 'EXCLUSIVE') && range.owner === this.owner) return true;
    if (range.event === 'RELEASE') return true;
    this.svmmInvalidate(svmm, range.start, range.end);
    return true;
  }

  // ---- GPU faults ----

  /** nouveau_svm_event: the fault buffer's notify schedules the fault work. */
  replayableFaultInterrupt(): void {
    if (this.shutDown || this.faultThread.running) return;
    this.faultThread.start(this.faultWork(), () => this.gpu.enableFaultInterrupt());
  }

  /** nouveau_svm_fault: drain, sort, handle each fault, one replay. */
  private *faultWork(): KThreadBody {
    const gpu = this.gpu;
    const fb = gpu.faultBuffer;
    for (;;) {
      // Drain every pending entry (nouveau_svm_fault_cache), then write GET back.
      let get = fb.readGet();
      const put = fb.readPut();
      let n = 0;
      while (get !== put && fb.entryIsValid(get)) {
        this.fAsid[n] = fb.asid[get]!;
        this.fAddr[n] = fb.addr[get]!;
        this.fAccess[n] = fb.access[get]!;
        fb.entryClearValid(get);
        n++;
        get = get + 1 === fb.maxFaults ? 0 : get + 1;
      }
      fb.writeGet(get);
      if (n === 0) return;
      this.stats.faults += n;
      this.stats.drains++;
      // sort() by (instance, address, priority) (nouveau_svm_fault_cmp).
      const order = this.order;
      order.length = n;
      for (let i = 0; i < n; i++) order[i] = i;
      const a = this.fAsid;
      const ad = this.fAddr;
      const ac = this.fAccess;
      order.sort((x, y) => a[x]! - a[y]! || ad[x]! - ad[y]! || PRIORITY[ac[x]!]! - PRIORITY[ac[y]!]!);
      const t0 = gpu.queue.now();
      const handled0 = this.stats.faultsHandled;
      const skipped0 = this.stats.faultsSkipped;
      const cancelled0 = this.stats.faultsCancelled;
      yield gpu.costs.batchOverheadNs;
      let replay = false;
      for (let fi = 0; fi < n; ) {
        const i = order[fi]!;
        const svmm = this.byAsid.get(a[i]!);
        if (!svmm || svmm.dead || svmm.mm.dead) {
          this.cancel(a[i]!, ad[i]!); // a fault from a channel with no SVMM
          fi++;
          continue;
        }
        yield gpu.costs.perFaultNs;
        if (svmm.dead || svmm.mm.dead) continue;
        const res = this.handleFault(svmm, fi, n);
        this.stats.faultsHandled++;
        // Skip the faults this one covered: same SVMM, below the limit, and the mapping gives
        // what the previous fault in the list needed (the check reads the previous fault's access).
        let fn = fi + 1;
        let prev = i;
        while (fn < n) {
          const j = order[fn]!;
          if (a[j] !== a[i] || ad[j]! >= res.limit || !this.satisfies(res.prot, ac[prev]!)) break;
          prev = j;
          fn++;
          this.stats.faultsSkipped++;
        }
        if (res.failed) {
          this.cancel(a[i]!, ad[i]!);
          this.stats.faultsCancelled += fn - fi - 1; // the others of the group go with the channel
        } else replay = true;
        fi = fn;
      }
      if (gpu.events.on.batch) {
        gpu.events.emit({
          type: 'batch', gpu: gpu.id, driver: this.name, batchId: this.stats.drains - 1, fetched: n, coalesced: this.stats.faultsHandled - handled0,
          duplicates: this.stats.faultsSkipped - skipped0, throttled: 0, fatal: this.stats.faultsCancelled - cancelled0, startNs: t0, endNs: gpu.queue.now(),
        });
      }
      if (replay) {
        this.stats.replays++;
        gpu.replay();
      }
    }
  }

  /** Whether a mapping's permission satisfies an access (the V/W/A checks of the skip loop). */
  private satisfies(prot: number, access: number): boolean {
    if (!(prot & PTE_VALID)) return access === ACCESS_PREFETCH;
    if (access === ACCESS_WRITE) return (prot & PTE_WRITE) !== 0;
    if (access === ACCESS_ATOMIC) return (prot & PTE_ATOMIC) !== 0;
    return true;
  }

  private cancel(asid: number, addr: number): void {
    this.stats.faultsCancelled++;
    this.gpu.cancel(asid, addr);
  }

  /**
   * One fault (order[fi]): its window through nouveau_range_fault, or nouveau_atomic_range_fault
   * for an atomic. Returns the end of the window mapped, the permission the faulting page got,
   * and whether it failed (the caller cancels).
   */
  private handleFault(svmm: NouveauSvmm, fi: number, n: number): { limit: number; prot: number; failed: boolean } {
    const i = this.order[fi]!;
    const addr = this.fAddr[i]!;
    const access = this.fAccess[i]!;
    const mm = svmm.mm;
    const vma = mm.vmas.lookup(addr);
    if (!vma) return { limit: addr + 4096, prot: 0, failed: true };
    if (access === ACCESS_ATOMIC) return this.atomicRangeFault(svmm, addr);
    let start = addr;
    let end = addr + 4096;
    const request = new Uint8Array(this.options.window === '64k' ? 16 : 1);
    const flagsOf = (acc: number): number => (acc === ACCESS_READ ? HMM_PFN_REQ_FAULT : acc === ACCESS_PREFETCH ? 0 : HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE);
    if (this.options.window === '64k') {
      // The 2019 window: 16 pages from the fault, clipped to the VMA; the faults inside it ask
      // for their pages, the pages between are only looked at.
      end = Math.min(addr + 16 * 4096, vma.end);
      for (let fj = fi; fj < n; fj++) {
        const j = this.order[fj]!;
        if (this.fAsid[j] !== this.fAsid[i] || this.fAddr[j]! >= end) break;
        const k = (this.fAddr[j]! - start) / 4096;
        if (this.fAccess[j] === ACCESS_ATOMIC) continue;
        request[k] = request[k]! | flagsOf(this.fAccess[j]!);
      }
    } else request[0] = flagsOf(access);
    let res = this.rangeFault(svmm, start, end, request);
    if (res.failed) return { limit: end, prot: 0, failed: true };
    // A write to a VRAM page the CPU holds read-only (copy-on-write after fork): hmm_range_fault
    // reports it without HMM_PFN_WRITE and nouveau would map it read-only and fault again
    // forever; hmmsim brings the page back first, so the retry breaks the COW in system memory.
    if (access === ACCESS_WRITE && res.vramReadOnly) {
      this.migrateOneToRam(svmm, vma, addr, -1);
      res = this.rangeFault(svmm, start, end, request);
      if (res.failed) return { limit: end, prot: 0, failed: true };
    }
    start = res.start;
    end = res.end;
    svmm.gpuVaSpace.pt.walk(addr / 4096, leaf);
    return { limit: end, prot: leaf.flags & PTE_VALID ? leaf.flags : 0, failed: false };
  }

  /**
   * nouveau_range_fault: a temporary interval notifier over the window, hmm_range_fault with the
   * retry loop, then the PFNMAP of what it returned (VRAM for this device's pages, HOST
   * otherwise, W from HMM_PFN_WRITE; one page grows to the folio the CPU maps).
   */
  private rangeFault(svmm: NouveauSvmm, start: number, end: number, request: Uint8Array): { start: number; end: number; failed: boolean; vramReadOnly: boolean } {
    const notifier = new MmuIntervalNotifier({
      invalidate: (sub, r, seq) => {
        if (r.event === 'EXCLUSIVE' && r.owner === this.owner) return true;
        mmuIntervalSetSeq(sub, seq);
        return true;
      },
    });
    mmuIntervalNotifierInsert(notifier, svmm.mm, start, end - start);
    try {
      const res = hmmRangeFaultRetry(notifier, this.owner, start, end, 0, request);
      if (!res.range) return { start, end, failed: res.errno !== 'again', vramReadOnly: false };
      const r = res.range;
      const gpu = this.gpu;
      const vs = svmm.gpuVaSpace;
      const phys = this.machine.phys;
      let vramReadOnly = false;
      let s = start;
      let e = end;
      const npages = (end - start) / 4096;
      for (let k = 0; k < npages; k++) {
        const f = r.hmmFlags[k]!;
        if (!(f & HMM_PFN_VALID)) continue;
        const pfn = r.hmmPfns[k]!;
        const inVram = gpu.vram.contains(pfn);
        if (inVram && !(f & HMM_PFN_WRITE)) vramReadOnly = true;
        let prot = f & HMM_PFN_WRITE ? (inVram ? PROT_READ_WRITE_ATOMIC : PROT_READ_WRITE) : PROT_READ;
        if (!inVram && phys.isZeroPfn(pfn)) prot = PROT_READ;
        const vpn = start / 4096 + k;
        const order = npages === 1 ? hmmPfnToMapOrder(r, k) : 0;
        if (order > 0) {
          // nouveau_hmm_convert_pfn: map the whole folio the CPU maps.
          const size = 1 << order;
          const base = vpn - (vpn % size);
          for (let q = 0; q < size; q++) this.mapPage(vs, base + q, pfn - (vpn - base) + q, prot, inVram);
          s = base * 4096;
          e = (base + size) * 4096;
        } else this.mapPage(vs, vpn, pfn, prot, inVram);
      }
      return { start: s, end: e, failed: false, vramReadOnly };
    } finally {
      mmuIntervalNotifierRemove(notifier);
    }
  }

  private mapPage(vs: GpuVaSpace, vpn: number, pfn: number, prot: number, inVram: boolean): void {
    if (gpuMapPage(this.gpu, vs, vpn, pfn, prot | (inVram ? 0 : PTE_SYSMEM))) this.stats.tlbInvalidateNs += this.gpu.costs.tlbInvalidateNs;
    this.stats.pagesMapped++;
    if (!inVram) this.stats.remotePagesMapped++;
  }

  /**
   * nouveau_atomic_range_fault: make_device_exclusive takes the page from the CPU (a VRAM page
   * comes back first through migrate_to_ram), and the GPU maps it with atomics, in host memory.
   */
  private atomicRangeFault(svmm: NouveauSvmm, addr: number): { limit: number; prot: number; failed: boolean } {
    const page = addr - (addr % 4096);
    let pfn: number;
    try {
      pfn = makeDeviceExclusive(svmm.mm, page, this.owner);
    } catch (e) {
      if (e instanceof WouldBlock) return { limit: page + 4096, prot: 0, failed: false }; // busy: the replay retries
      if (e instanceof KernelError) return { limit: page + 4096, prot: 0, failed: true };
      throw e;
    }
    this.mapPage(svmm.gpuVaSpace, page / 4096, pfn, PROT_READ_WRITE_ATOMIC, false);
    this.stats.deviceExclusive++;
    return { limit: page + 4096, prot: PROT_READ_WRITE_ATOMIC, failed: false };
  }

  // ---- migration ----

  /**
   * NOUVEAU_SVM_BIND_COMMAND__MIGRATE to NOUVEAU_SVM_BIND_TARGET__GPU_VRAM (nouveau_svmm_bind ->
   * nouveau_dmem_migrate_vma): each VMA of the range in pieces of SG_MAX_SINGLE_ALLOC pages,
   * one copy per page, untouched pages cleared, and the new VRAM pages mapped on the GPU
   * (nouveau_pfns_map). The bind takes no other target: 'cpu' is EINVAL, as in the driver.
   * Returns when the copies complete.
   */
  migrate(process: Process, addr: number, len: number, to: 'gpu' | 'cpu'): number {
    const svmm = this.byProcess.get(process);
    if (!svmm) fail('EINVAL', `process ${process.pid} is not attached`);
    if (to !== 'gpu') fail('EINVAL', 'nouveau_svmm_bind migrates to GPU VRAM only');
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len <= 0 || addr % 4096 || len % 4096) {
      fail('EINVAL', 'address and length must be positive multiples of 4 KiB');
    }
    const mm = svmm.mm;
    const end = addr + len;
    const gpu = this.gpu;
    const now = gpu.queue.now();
    let done = now;
    this.stats.migrations++;
    for (let a = addr; a < end; ) {
      const vma = mm.vmas.findVma(a);
      if (!vma || vma.start >= end) break;
      const s = Math.max(a, vma.start);
      const e = Math.min(end, vma.end);
      a = e;
      if (!vma.isAnonymous()) continue;
      for (let p = s; p < e; p += SG_MAX_SINGLE_ALLOC * 4096) {
        const pe = Math.min(e, p + SG_MAX_SINGLE_ALLOC * 4096);
        const res = migrateVmaToVram(gpu, vma, p, pe, this.owner, () => true, () => this.dmem.alloc(svmm.id));
        this.stats.migrateShort += res.short;
        const copied: number[] = [];
        for (let k = 0; k < res.pages.length; k++) {
          // nouveau_pfns_map: the new VRAM page, writable if the CPU entry is.
          const vpn = p / 4096 + res.pages[k]!;
          this.mapPage(svmm.gpuVaSpace, vpn, res.frames[k]!, res.writable[k] ? PROT_READ_WRITE_ATOMIC : PROT_READ, true);
          if (res.copied[k]) copied.push(res.pages[k]!);
        }
        this.stats.pagesMigratedToDevice += res.pages.length;
        done = Math.max(done, copyPages(gpu, svmm.asid, p, copied, 'htod', 'explicit', 1, now));
      }
    }
    return done;
  }

  /** One page back to system memory in `vma`, the GPU mapping cleared first (nouveau_svmm_invalidate). */
  private migrateOneToRam(svmm: NouveauSvmm | null, vma: VmFault['vma'], addr: number, faultPage: number): number {
    const page = addr - (addr % 4096);
    const moved = migrateVmaToRam(this.gpu, vma, page, page + 4096, this.owner, faultPage, () => true, () => {
      if (svmm) this.svmmInvalidate(svmm, page, page + 4096);
    });
    this.stats.pagesMigratedToSystem += moved.length;
    copyPages(this.gpu, svmm ? svmm.asid : 0, page, moved, 'dtoh', faultPage >= 0 ? 'cpu-fault' : 'fault', 1, this.gpu.queue.now());
    return moved.length;
  }

  // ---- dev_pagemap_ops ----

  pageFree(pfn: number): void {
    this.dmem.free(pfn);
  }

  /** nouveau_dmem_migrate_to_ram: exactly one page comes back ("FIXME ... migrate more than just one page"). */
  migrateToRam(vmf: VmFault): number {
    const f = vmf.page - this.dmem.firstPfn;
    const svmm = f >= 0 && f < this.dmem.frames ? this.svmms[this.dmem.owner[f]!] : undefined;
    if (svmm === undefined) return VM_FAULT_SIGBUS;
    this.stats.cpuFaults++;
    try {
      this.migrateOneToRam(svmm, vmf.vma, vmf.address, vmf.page);
    } catch (e) {
      if (e instanceof KernelError) return VM_FAULT_SIGBUS;
      throw e;
    }
    return 0;
  }

  // ---- teardown ----

  /** nouveau_dmem_fini: detach everything, evict every chunk (migrate_device_range), unregister VRAM. */
  shutdown(): void {
    if (this.shutDown) return;
    for (const svmm of [...this.byProcess.values()]) this.detach(svmm.process);
    if (this.dmem.chunks > 0) evictDeviceRange(this.gpu, this.dmem.firstPfn, this.dmem.chunkFrames, 'teardown');
    this.shutDown = true;
    this.gpu.unbindDriver(this);
    this.gpu.vram.unregister();
  }

  counters(): Record<string, number> {
    return {
      ...this.stats, vramPagesUsed: this.dmem.usedFrames, vramPages: this.dmem.frames, chunks: this.dmem.chunks, dmemAllocFailures: this.dmem.allocFailures,
    };
  }
}
