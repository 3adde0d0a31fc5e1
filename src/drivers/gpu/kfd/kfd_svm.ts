// amdkfd's shared virtual memory (drivers/gpu/drm/amd/amdkfd/kfd_svm.c, kfd_migrate.c) on the
// GPU hardware model, on mainline HMM calls: ranges with their own interval notifiers, GPU
// retry faults (XNACK on) handled one at a time (svm_range_restore_pages) with the interrupt's
// duplicate filter (amdgpu_gmc_filter_faults) and the 2 ms already-restored filter, migration of
// the granularity window (2 MiB by default) to VRAM on the first GPU touch with the fall-back to
// system memory, the window back on a CPU fault (svm_migrate_to_ram), whole-BO eviction under
// VRAM pressure (svm_range_evict_svm_bo_worker), and with XNACK off the queue eviction on every
// CPU invalidation and the restore worker 1 ms later. kfd does not use drm_gpusvm
// (src/drivers/gpusvm): it keeps its own ranges, as here.

import { fail } from '../../../mm/errno.js';
import type { Machine } from '../../../mm/machine.js';
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalSetSeq, type MmuNotifierRange } from '../../../mm/notifier.js';
import type { Process } from '../../../mm/process.js';
import { VM_WRITE, type Vma } from '../../../mm/vma.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE } from '../../../hmm/range.js';
import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_WRITE } from '../access.js';
import { evictDeviceRange, gpuMapPage, hmmRangeFaultRetry } from '../devmem.js';
import type { HmmGpuDriver } from '../driver.js';
import type { Gpu, GpuDriver } from '../gpu.js';
import { KThread, type KThreadBody } from '../kthread.js';
import { PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC, PTE_SYSMEM } from '../page_table.js';
import { SeededRandom } from '../../../sched/random.js';
import { GmcFaultFilter } from './gmc_filter.js';
import { KfdMigrate } from './kfd_migrate.js';
import { kfdOptions, type KfdOptions } from './kfd_options.js';
import { chooseKfdEviction, SvmVram, type KfdEvictionPolicy, type SvmBo } from './svm_bo.js';
import { SvmRange, SvmRangeList, svmRangeMaxPages, type SvmAttrs, type SvmLocation } from './svm_range.js';

export interface KfdStats {
  /** Fault entries read from the IH ring, and those amdgpu_gmc_filter_faults dropped. */
  faults: number;
  faultsFiltered: number;
  /** Faults on a range validated less than retryFaultPendingMs ago ("already restored"). */
  faultsAlreadyRestored: number;
  faultsServiced: number;
  fatalFaults: number;
  rangesCreated: number;
  rangesRemoved: number;
  /** Window migrations and the pages they moved, each way. */
  migrationsToDevice: number;
  migrationsToSystem: number;
  pagesMigratedToDevice: number;
  pagesMigratedToSystem: number;
  /** Migrations to VRAM that found no VRAM and left the window in system memory. */
  vramFallbacks: number;
  pagesMapped: number;
  remotePagesMapped: number;
  cpuFaults: number;
  /** BOs TTM evicted and the pages that went back with them. */
  bosEvicted: number;
  pagesEvicted: number;
  /** XNACK off: queue evictions (kgd2kfd_quiesce_mm), restores, restores that had to try again. */
  queueEvictions: number;
  restores: number;
  restoreRetries: number;
  tlbInvalidateNs: number;
}

/** The dev_pagemap owner of kfd's VRAM pages (SVM_ADEV_PGMAP_OWNER). */
export class KfdOwner {
  constructor(readonly gpuId: number) {}
}

export class KfdDriver implements GpuDriver, HmmGpuDriver {
  readonly name = 'kfd';
  readonly machine: Machine;
  readonly options: KfdOptions;
  readonly owner: KfdOwner;
  readonly vram: SvmVram;
  readonly eviction: KfdEvictionPolicy;
  readonly maxSvmRangePages: number;
  readonly stats: KfdStats = {
    faults: 0, faultsFiltered: 0, faultsAlreadyRestored: 0, faultsServiced: 0, fatalFaults: 0, rangesCreated: 0, rangesRemoved: 0,
    migrationsToDevice: 0, migrationsToSystem: 0, pagesMigratedToDevice: 0, pagesMigratedToSystem: 0, vramFallbacks: 0, pagesMapped: 0,
    remotePagesMapped: 0, cpuFaults: 0, bosEvicted: 0, pagesEvicted: 0, queueEvictions: 0, restores: 0, restoreRetries: 0, tlbInvalidateNs: 0,
  };
  private readonly migration: KfdMigrate;
  private readonly byProcess = new Map<Process, SvmRangeList>();
  private readonly byAsid = new Map<number, SvmRangeList>();
  private readonly faultThread: KThread;
  private readonly filter: GmcFaultFilter;
  /** The soft IH ring: (key, access) pairs the interrupt side let through. */
  private readonly pending: number[] = [];
  private readonly random: () => number;
  private nextRangeId = 0;
  private batchIds = 0;
  private shutDown = false;

  constructor(readonly gpu: Gpu, options: Partial<KfdOptions> = {}) {
    const o = kfdOptions(options);
    if (gpu.config.vramType !== 'private') fail('EINVAL', 'kfd: device-coherent VRAM (MEMORY_DEVICE_COHERENT) is not modelled');
    this.options = o;
    this.machine = gpu.machine;
    this.eviction = chooseKfdEviction(o.evict);
    const random = SeededRandom.of(o.seed);
    this.random = () => random.float();
    this.owner = new KfdOwner(gpu.id);
    this.maxSvmRangePages = svmRangeMaxPages(gpu.config.vramBytes);
    gpu.bindDriver(this);
    const first = gpu.vram.register(this.owner, { pageFree: (pfn) => this.migration.pageFree(pfn), migrateToRam: (vmf) => this.migration.migrateToRam(vmf) });
    this.vram = new SvmVram(first, gpu.vram.frames);
    this.migration = new KfdMigrate(gpu, this.owner, this.vram, this.stats, (n, keep) => this.evictFor(n, keep));
    this.filter = new GmcFaultFilter(o.faultFilterNs);
    this.faultThread = new KThread(gpu.queue, `kfd-faults-${gpu.id}`);
  }

  // ---- processes ----

  /** kfd_create_process + the process's GPU VM: its svm_range_list. */
  attach(process: Process): SvmRangeList {
    if (this.shutDown) fail('ENODEV', 'the kfd driver has been shut down');
    if (!process.alive) fail('ESRCH', `process ${process.pid} has exited`);
    if (this.byProcess.has(process)) fail('EEXIST', `process ${process.pid} is already attached`);
    const gvs = this.gpu.mmu.createVaSpace();
    gvs.mm = process.mm;
    const svms = new SvmRangeList(process, gvs);
    this.byProcess.set(process, svms);
    this.byAsid.set(gvs.asid, svms);
    return svms;
  }

  /**
   * svm_range_list_fini: the process closes the device. Its VRAM pages go back to system
   * memory first (while its mm lives: the CPU must never find a device page no range holds),
   * then its ranges, notifiers and GPU mappings go.
   */
  detach(process: Process): void {
    const svms = this.byProcess.get(process);
    if (!svms) fail('EINVAL', `process ${process.pid} is not attached`);
    if (svms.quiesced) this.gpu.resumeQueues(svms.asid);
    for (const r of [...svms.ranges]) {
      if (r.vramPages > 0 && !svms.mm.dead) this.migration.toRam(r, r.start, r.end, 'teardown');
      this.removeRange(r);
    }
    svms.dead = true;
    this.gpu.mmu.destroyVaSpace(svms.gpuVaSpace);
    this.byProcess.delete(process);
    this.byAsid.delete(svms.asid);
  }

  svmsOf(process: Process): SvmRangeList | undefined {
    return this.byProcess.get(process);
  }

  // ---- ranges ----

  private defaultAttrs(): SvmAttrs {
    // svm_range_set_default_attributes: locations undefined, the default granularity; with
    // XNACK on every GPU may access the range.
    return { preferredLoc: 'undefined', prefetchLoc: 'undefined', access: this.options.xnack, granularity: this.options.granularity, gpuAlwaysMapped: false };
  }

  private newRange(svms: SvmRangeList, start: number, end: number, attrs: SvmAttrs): SvmRange {
    const r = new SvmRange(this.nextRangeId++, svms, start, end, attrs, (range) => {
      const n = new MmuIntervalNotifier({ invalidate: (_s, mr, seq) => this.cpuInvalidatePagetables(range, mr, seq) });
      mmuIntervalNotifierInsert(n, svms.mm, start, end - start);
      return n;
    });
    svms.insert(r);
    this.stats.rangesCreated++;
    return r;
  }

  /** The range goes: its notifier, its GPU mappings, its hold on the BO (its VRAM pages keep theirs). */
  private removeRange(r: SvmRange): void {
    if (r.removed) return;
    this.unmapFromGpu(r, r.start, r.end, 'range removed');
    mmuIntervalNotifierRemove(r.notifier);
    r.svms.remove(r);
    if (r.bo) {
      const bo = r.bo;
      r.bo = null;
      this.vram.unrefRange(bo);
    }
    this.stats.rangesRemoved++;
  }

  /**
   * svm_range_create_unregistered_range: a GPU fault where no range is. The range is the 2 MiB
   * window around addr clipped to the VMA and to the neighbouring ranges
   * (svm_range_get_range_boundaries).
   */
  private createUnregisteredRange(svms: SvmRangeList, addr: number, vma: Vma): SvmRange {
    const size = 2 << 20;
    const [prev, next] = svms.neighbours(addr);
    const start = Math.max(Math.floor(addr / size) * size, vma.start, prev);
    const end = Math.min(Math.floor(addr / size) * size + size, vma.end, next);
    return this.newRange(svms, start, end, this.defaultAttrs());
  }

  /**
   * svm_range_set_attr (AMDKFD_IOC_SVM with KFD_IOCTL_SVM_OP_SET_ATTR): register [addr, addr +
   * len) as SVM ranges (split to maxSvmRangePages) and apply `attrs`; with a prefetch location
   * the ranges migrate there (svm_range_trigger_migration); ranges the GPU may access are
   * validated and mapped. Returns when the copies complete.
   */
  setAttr(process: Process, addr: number, len: number, attrs: Partial<SvmAttrs>): number {
    const svms = this.byProcess.get(process);
    if (!svms) fail('EINVAL', `process ${process.pid} is not attached`);
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len <= 0 || addr % 4096 || len % 4096) {
      fail('EINVAL', 'address and length must be positive multiples of 4 KiB');
    }
    for (const k of Object.keys(attrs)) if (!(k in this.defaultAttrs())) fail('EINVAL', `unknown SVM attribute ${k}`);
    const locs: SvmLocation[] = ['undefined', 'sysmem', 'gpu'];
    if (attrs.preferredLoc !== undefined && !locs.includes(attrs.preferredLoc)) fail('EINVAL', `bad preferred location ${String(attrs.preferredLoc)}`);
    if (attrs.prefetchLoc !== undefined && !locs.includes(attrs.prefetchLoc)) fail('EINVAL', `bad prefetch location ${String(attrs.prefetchLoc)}`);
    if (attrs.granularity !== undefined && (!Number.isInteger(attrs.granularity) || attrs.granularity < 0 || attrs.granularity > 0x1b)) fail('EINVAL', 'granularity must be in 0..27');
    const end = addr + len;
    // svm_range_check_vm / the VMA check: the whole range must be mapped.
    if (!svms.mm.fullyMapped(addr, end)) fail('EFAULT', 'the range is not fully mapped');
    // Fill the gaps with new ranges of at most maxSvmRangePages (svm_range_add).
    const maxBytes = this.maxSvmRangePages * 4096;
    let at = addr;
    for (const r of [...svms.overlapping(addr, end), null]) {
      const gapEnd = r ? Math.max(at, r.start) : end;
      while (at < gapEnd) {
        const e = Math.min(gapEnd, (Math.floor(at / maxBytes) + 1) * maxBytes);
        this.newRange(svms, at, e, this.defaultAttrs());
        at = e;
      }
      if (r) at = Math.max(at, r.end);
    }
    let done = this.gpu.queue.now();
    for (const r of svms.overlapping(addr, end)) {
      // Attributes apply to whole ranges here (the kernel splits ranges at the request's edges).
      Object.assign(r.attrs, attrs);
      if (r.attrs.prefetchLoc === 'gpu') done = Math.max(done, this.migration.toVram(r, r.start, r.end, 'explicit'));
      else if (r.attrs.prefetchLoc === 'sysmem' && r.vramPages > 0) done = Math.max(done, this.migration.toRam(r, r.start, r.end, 'explicit'));
      if (r.attrs.access) this.validateAndMap(r, r.start, r.end);
    }
    return done;
  }

  /** hipMallocManaged on kfd: register the range with GPU access (what XNACK off needs before a kernel runs). */
  register(process: Process, addr: number, len: number): void {
    this.setAttr(process, addr, len, { access: true });
  }

  /** KFD_IOCTL_SVM_ATTR_PREFETCH_LOC over the range (hipMemPrefetchAsync). */
  migrate(process: Process, addr: number, len: number, to: 'gpu' | 'cpu'): number {
    if (to !== 'gpu' && to !== 'cpu') fail('EINVAL', `destination must be 'gpu' or 'cpu'`);
    return this.setAttr(process, addr, len, { prefetchLoc: to === 'gpu' ? 'gpu' : 'sysmem' });
  }

  // ---- the GPU side: mapping ----

  /** svm_range_unmap_from_gpus over [start, end) of the range, with the TLB flush. */
  private unmapFromGpu(r: SvmRange, start: number, end: number, reason: string): void {
    const vs = r.svms.gpuVaSpace;
    const s = Math.max(start, r.start) / 4096;
    const e = Math.min(end, r.end) / 4096;
    if (s >= e) return;
    if (this.gpu.mmu.unmap(vs, s, e, reason) > 0) {
      this.gpu.mmu.tlbInvalidate(vs, s, e, this.gpu.queue.now());
      this.stats.tlbInvalidateNs += this.gpu.costs.tlbInvalidateNs;
    }
  }

  /**
   * svm_range_validate_and_map over [start, end) of the range: hmm_range_fault every page of
   * each VMA in it (writable where the VMA is: amdgpu_hmm_range_get_pages asks for write
   * unless the VMA is read-only) and map what it returns. False when a part could not be
   * validated now (the caller retries) or failed.
   */
  private validateAndMap(r: SvmRange, start: number, end: number): boolean {
    const svms = r.svms;
    const mm = svms.mm;
    if (mm.dead || svms.dead) return false;
    let ok = true;
    for (let a = Math.max(start, r.start); a < Math.min(end, r.end); ) {
      const vma = mm.vmas.findVma(a);
      if (!vma || vma.start >= end) break;
      const s = Math.max(a, vma.start);
      const e = Math.min(end, r.end, vma.end);
      a = e;
      const flags = HMM_PFN_REQ_FAULT | (vma.flags & VM_WRITE ? HMM_PFN_REQ_WRITE : 0);
      const res = hmmRangeFaultRetry(r.notifier, this.owner, s, e, flags, null);
      if (!res.range) {
        ok = false;
        continue;
      }
      this.mapPages(r, s, res.range.hmmPfns, res.range.hmmFlags, (e - s) / 4096);
    }
    if (ok) {
      r.validateTimestamp = this.gpu.queue.now();
      r.mappedToGpu = true;
      if (r.bo) r.bo.lastUseNs = r.validateTimestamp;
    }
    return ok;
  }

  /** svm_range_map_to_gpu: write the PTEs of n pages from `start` (VRAM pages with the VRAM aperture). */
  private mapPages(r: SvmRange, start: number, pfns: Uint32Array, flags: Uint8Array, n: number): void {
    const gpu = this.gpu;
    const vs = r.svms.gpuVaSpace;
    const phys = this.machine.phys;
    const atomics = gpu.config.nativeSysmemAtomics;
    const vpn0 = start / 4096;
    for (let i = 0; i < n; i++) {
      const f = flags[i]!;
      if (!(f & HMM_PFN_VALID)) continue;
      const pfn = pfns[i]!;
      const vpn = vpn0 + i;
      const inVram = gpu.vram.contains(pfn);
      let prot = f & HMM_PFN_WRITE ? (inVram || atomics ? PROT_READ_WRITE_ATOMIC : PROT_READ_WRITE) : PROT_READ;
      if (!inVram && phys.isZeroPfn(pfn)) prot = PROT_READ;
      if (gpuMapPage(gpu, vs, vpn, pfn, prot | (inVram ? 0 : PTE_SYSMEM))) this.stats.tlbInvalidateNs += gpu.costs.tlbInvalidateNs;
      this.stats.pagesMapped++;
      if (!inVram) this.stats.remotePagesMapped++;
    }
  }

  // ---- migration ----

  /** Make room for n frames: TTM evicts BOs (not `keep`) in the eviction order until they fit. */
  private evictFor(n: number, keep: SvmBo | null): void {
    while (this.vram.freeFrames < n) {
      const candidates = [...this.vram.bos.values()].filter((b) => b !== keep && !b.released && b.rangeRefs > 0);
      if (candidates.length === 0) return;
      const victim = this.eviction.pick(candidates, this.random);
      const before = this.vram.freeFrames;
      this.evictSvmBo(victim);
      if (this.vram.freeFrames === before && !this.vram.bos.has(victim.id)) continue;
      if (this.vram.freeFrames === before) return; // nothing could move (pages held elsewhere): give up
    }
  }

  /**
   * svm_range_evict_svm_bo_worker: every VRAM page of every range on the BO goes back to system
   * memory (KFD_MIGRATE_TRIGGER_TTM_EVICTION), and the ranges let go of it.
   */
  private evictSvmBo(bo: SvmBo): void {
    this.stats.bosEvicted++;
    for (const svms of this.byProcess.values()) {
      for (const r of [...svms.ranges]) {
        if (r.bo !== bo) continue;
        const before = r.vramPages;
        if (r.vramPages > 0) this.migration.toRam(r, r.start, r.end, 'eviction');
        this.stats.pagesEvicted += before - r.vramPages;
        if (r.bo === bo) {
          r.bo = null;
          this.vram.unrefRange(bo);
        }
        if (r.vramPages === 0) r.actualLoc = 'sysmem';
      }
    }
    const ev = this.gpu.events;
    if (ev.on.evict) ev.emit({ type: 'evict', gpu: this.gpu.id, chunk: bo.id, pages: bo.size, timeNs: this.gpu.queue.now() });
  }

  // ---- CPU invalidations ----

  /** svm_range_cpu_invalidate_pagetables: kfd filters no event by owner; its own migrations unmap the GPU too. */
  private cpuInvalidatePagetables(r: SvmRange, range: MmuNotifierRange, curSeq: number): boolean {
    if (range.event === 'RELEASE') return true;
    if (!(range.flags & 1)) return false;
    mmuIntervalSetSeq(r.notifier, curSeq);
    const s = Math.max(range.start, r.start);
    const e = Math.min(range.end, r.end);
    if (s >= e) return true;
    if (range.event === 'UNMAP') this.unmapFromCpu(r, s, e);
    else this.evict(r, s, e);
    return true;
  }

  /**
   * svm_range_unmap_from_cpu: unmap the GPU; the range is removed by the deferred work
   * (svm_range_deferred_list_work) once the CPU unmapped all of it. hmmsim does not split a
   * partly unmapped range: the unmapped part stays in it with no pages.
   */
  private unmapFromCpu(r: SvmRange, s: number, e: number): void {
    this.unmapFromGpu(r, s, e, 'invalidate UNMAP');
    if (s <= r.start && e >= r.end) this.gpu.queue.after(0, () => this.removeRange(r));
  }

  /**
   * svm_range_evict. XNACK on: unmap [s, e) from the GPU; the next access faults. XNACK off (or
   * GPU_ALWAYS_MAPPED): the range turns invalid and the first such eviction quiesces the
   * process's queues; the restore worker revalidates 1 ms later. (The kernel leaves the PTEs
   * in place while the queues are stopped; hmmsim clears them too, so no PTE ever maps a page
   * the CPU no longer does, which no stopped queue could tell apart.)
   */
  private evict(r: SvmRange, s: number, e: number): void {
    if (this.options.xnack && !r.attrs.gpuAlwaysMapped) {
      this.unmapFromGpu(r, s, e, 'invalidate');
      return;
    }
    if (!r.mappedToGpu) return;
    this.unmapFromGpu(r, s, e, 'invalidate (queues evicted)');
    r.invalid = true;
    const svms = r.svms;
    if (++svms.evictedRanges !== 1) return;
    svms.quiesced = true;
    this.stats.queueEvictions++;
    this.gpu.suspendQueues(svms.asid);
    this.scheduleRestore(svms);
  }

  private scheduleRestore(svms: SvmRangeList): void {
    if (svms.restorePending) return;
    svms.restorePending = true;
    this.gpu.queue.after(this.options.restoreDelayMs * 1e6, () => this.restoreWork(svms));
  }

  /**
   * svm_range_restore_work: revalidate and map every invalid range, then resume the queues;
   * if a range could not be validated, or more evictions came meanwhile, try again later.
   */
  private restoreWork(svms: SvmRangeList): void {
    svms.restorePending = false;
    if (svms.dead || this.shutDown) return;
    const evicted = svms.evictedRanges;
    let ok = true;
    for (const r of svms.ranges) {
      if (!r.invalid) continue;
      if (this.validateAndMap(r, r.start, r.end)) r.invalid = false;
      else ok = false;
    }
    if (!ok || svms.evictedRanges !== evicted) {
      this.stats.restoreRetries++;
      this.scheduleRestore(svms);
      return;
    }
    svms.evictedRanges = 0;
    svms.quiesced = false;
    this.stats.restores++;
    this.gpu.resumeQueues(svms.asid);
    this.gpu.replay();
  }

  // ---- GPU faults ----

  /** The IH interrupt: schedule the fault work (amdgpu_ih_process -> amdgpu_vm_handle_fault). */
  replayableFaultInterrupt(): void {
    if (this.shutDown || this.faultThread.running) return;
    this.faultThread.start(this.serviceFaults(), () => this.gpu.enableFaultInterrupt());
  }

  /** The IH ring's entries, one at a time, each through the filter and svm_range_restore_pages. */
  private *serviceFaults(): KThreadBody {
    const fb = this.gpu.faultBuffer;
    const costs = this.gpu.costs;
    const pending = this.pending;
    for (;;) {
      // The interrupt side: move what the IH ring holds to the soft ring, dropping faults on
      // a page already pending (amdgpu_gmc_filter_faults).
      pending.length = 0;
      const now = this.gpu.queue.now();
      let get = fb.readGet();
      while (get !== fb.readPut() && fb.entryIsValid(get)) {
        const addr = fb.addr[get]!;
        const access = fb.access[get]!;
        const asid = fb.asid[get]!;
        fb.entryClearValid(get);
        get = get + 1 === fb.maxFaults ? 0 : get + 1;
        this.stats.faults++;
        if (access === ACCESS_PREFETCH) continue; // a prefetch never stalls a warp: nothing waits on it
        const key = GmcFaultFilter.key(asid, addr);
        if (!this.filter.pass(key, now)) {
          this.stats.faultsFiltered++;
          continue;
        }
        pending.push(key);
        pending.push(access);
      }
      fb.writeGet(get);
      if (pending.length === 0) return;
      // The fault work: one at a time (svm_range_restore_pages).
      const work = pending.splice(0);
      for (let i = 0; i < work.length; i += 2) {
        const key = work[i]!;
        const access = work[i + 1]!;
        const asid = GmcFaultFilter.asidOf(key);
        const addr = GmcFaultFilter.addrOf(key);
        const t0 = this.gpu.queue.now();
        const fatal = this.stats.fatalFaults;
        yield costs.perFaultNs;
        yield* this.restorePages(asid, addr, access === ACCESS_WRITE || access === ACCESS_ATOMIC, access === ACCESS_ATOMIC);
        this.filter.remove(key);
        // A "batch" of one: kfd services faults one at a time.
        const ev = this.gpu.events;
        if (ev.on.batch) {
          ev.emit({
            type: 'batch', gpu: this.gpu.id, driver: this.name, batchId: this.batchIds++, fetched: 1, coalesced: 1, duplicates: 0, throttled: 0,
            fatal: this.stats.fatalFaults - fatal, startNs: t0, endNs: this.gpu.queue.now(),
          });
        }
      }
    }
  }

  /** svm_range_restore_pages for one retry fault. */
  private *restorePages(asid: number, addr: number, write: boolean, atomic: boolean): KThreadBody {
    const svms = this.byAsid.get(asid);
    const gpu = this.gpu;
    if (!svms || svms.dead || svms.mm.dead) return;
    let r = svms.find(addr);
    if (!this.options.xnack) {
      // No retry faults: a fault is fatal, unless the range waits for the restore worker.
      if (r && (r.invalid || svms.quiesced)) return;
      this.fatal(svms, addr);
      return;
    }
    const vma = svms.mm.vmas.lookup(addr);
    if (!r) {
      if (!vma) {
        this.fatal(svms, addr);
        return;
      }
      r = this.createUnregisteredRange(svms, addr, vma);
    }
    const now = gpu.queue.now();
    const pendingNs = this.options.retryFaultPendingMs * 1e6;
    if (now < r.validateTimestamp + pendingNs) {
      // Already restored: the retries come back once the window has passed.
      this.stats.faultsAlreadyRestored++;
      gpu.queue.at(r.validateTimestamp + pendingNs, () => gpu.replay());
      return;
    }
    // svm_fault_allowed, and the range's access attribute (svm_range_best_restore_location: -EACCES).
    if (!vma || (write && !(vma.flags & VM_WRITE)) || !r.attrs.access) {
      this.fatal(svms, addr);
      return;
    }
    const best = r.attrs.preferredLoc === 'sysmem' ? 'sysmem' : 'gpu';
    const [ws, we] = r.window(addr);
    if (r.actualLoc !== best) {
      let done = best === 'gpu' ? this.migration.toVram(r, ws, we, 'fault') : this.migration.toRam(r, ws, we, 'fault');
      if (done < 0) {
        this.stats.vramFallbacks++;
        done = gpu.queue.now();
      }
      if (done > gpu.queue.now()) yield done - gpu.queue.now();
      if (r.removed) return;
    }
    // A write to a VRAM page the CPU holds read-only (copy-on-write after fork) needs the page in
    // system memory, where hmm_range_fault breaks the COW; kfd_svm.c would map it read-only and
    // take the fault again, forever.
    const p = r.pageIndex(addr);
    if (write && r.vramPfn[p]! >= 0 && !this.cpuWritable(svms, addr)) {
      const done = this.migration.toRam(r, addr, addr + 4096, 'fault');
      if (done > gpu.queue.now()) yield done - gpu.queue.now();
      if (r.removed) return;
    }
    if (!this.validateAndMap(r, ws, we)) {
      gpu.queue.after(gpu.costs.replayNs, () => gpu.replay()); // -EAGAIN: the hardware retries
      return;
    }
    // Atomics on system memory need the interconnect to carry them (PCIe AtomicOps).
    if (atomic && r.vramPfn[p]! < 0 && !gpu.config.nativeSysmemAtomics) {
      this.fatal(svms, addr);
      return;
    }
    this.stats.faultsServiced++;
    gpu.replay();
  }

  /** Whether the CPU page table maps addr writable (a device-private entry included). */
  private cpuWritable(svms: SvmRangeList, addr: number): boolean {
    const res = hmmRangeFaultRetry(svms.find(addr)!.notifier, this.owner, addr, addr + 4096, 0, null);
    return !!res.range && (res.range.hmmFlags[0]! & HMM_PFN_WRITE) !== 0;
  }

  /** A fault the driver cannot service: the VM fault kills the process's queues (GPU SIGSEGV). */
  private fatal(svms: SvmRangeList, addr: number): void {
    this.stats.fatalFaults++;
    this.gpu.cancel(svms.asid, addr);
  }

  // ---- teardown ----

  /** Detach every process, evict what is left in VRAM (forked children's pages), unregister VRAM. */
  shutdown(): void {
    if (this.shutDown) return;
    for (const svms of [...this.byProcess.values()]) this.detach(svms.process);
    this.evictAll();
    this.shutDown = true;
    this.gpu.unbindDriver(this);
    this.gpu.vram.unregister();
  }

  /** svm_migrate_fini: migrate_device_range over VRAM; pages still in use go to system memory wherever they are mapped. */
  private evictAll(): void {
    if (this.vram.bos.size > 0) evictDeviceRange(this.gpu, this.vram.firstPfn, this.vram.frames, 'teardown');
  }

  counters(): Record<string, number> {
    return { ...this.stats, vramPagesUsed: this.vram.usedFrames, vramPages: this.vram.frames, bos: this.vram.bos.size, ranges: this.rangeCount };
  }

  get rangeCount(): number {
    let n = 0;
    for (const s of this.byProcess.values()) n += s.ranges.length;
    return n;
  }
}
