// Replayable fault servicing (uvm_gpu_replayable_faults.c), the bottom half of the fault
// interrupt:
//
//   fetch_fault_buffer_entries   read up to uvm_perf_fault_batch_count (256) entries from GET,
//                                coalescing an entry into the last fault of its uTLB, or into
//                                the last fault of the batch when it is no more intrusive; the
//                                most intrusive access (atomic > write > read > prefetch) wins
//   preprocess_fault_batch       sort by (address space, address, access type, most intrusive first)
//   service_fault_batch          per VA block (2 MiB, and within one VMA and policy range):
//                                permissions, thrashing hint, residency, then the block service
//   replay policy                BLOCK, BATCH, BATCH_FLUSH (default: flush with an updated PUT
//                                when duplicates exceed 50% of the batch), ONCE
//   uvm_parent_gpu_service_replayable_faults: up to 20 batches or 5 throttled batches per run;
//                                at least one replay per run.

import { accessAllowed } from '../../../mm/access.js';
import { VM_WRITE, type Vma } from '../../../mm/vma.js';
import type { GpuPtLeaf } from '../page_table.js';
import { RANK_PREFETCH, RANK_READ, RANK_WRITE } from './hmm.js';
import { blockFindCreate } from './hmm_block.js';
import { THRASHING_HINT_THROTTLE, UVM_ID_CPU, UVM_ID_GPU, UVM_ID_INVALID, type ProcessorId, type ResidencyInput, type ThrashingHint } from './policy_types.js';
import { blockService, commitPlan } from './service.js';
import type { PendingMaps, UvmVaBlock, UvmVaSpace } from './va_space.js';
import type { UvmDriver } from './uvm.js';
import type { KThreadBody } from '../kthread.js';

/** Access type (access.ts ACCESS_*) to UVM's intrusiveness rank (UVM_FAULT_ACCESS_TYPE_*). */
export const ACCESS_RANK = [RANK_READ, RANK_WRITE, 3, RANK_PREFETCH] as const;
/** The PTE permission bits a rank needs. */
const RANK_PROT = [1, 1, 3, 7];

/** uvm_fault_service_batch_context_t: the cached entries of one batch, as parallel arrays. */
export class FaultBatch {
  readonly addr: Float64Array;
  readonly rank: Uint8Array;
  readonly asid: Uint16Array;
  readonly utlb: Uint16Array;
  readonly warp: Int32Array;
  readonly timestamp: Float64Array;
  /** Representative entries: instances merged into them, and the mask of their access ranks. */
  readonly instances: Uint16Array;
  readonly mask: Uint8Array;
  readonly filtered: Uint8Array;
  readonly fatal: Uint8Array;
  readonly throttled: Uint8Array;
  readonly invalidPrefetch: Uint8Array;
  /** ordered_fault_cache: the representatives, sorted. */
  readonly order: Int32Array;
  private readonly orderScratch: Int32Array;
  numCached = 0;
  numCoalesced = 0;
  isSingleInstance = true;
  private readonly utlbLast: Int32Array;
  private readonly utlbPending: Uint32Array;
  private maxUtlb = 0;
  private last = -1;
  numDuplicates = 0;
  numInvalidPrefetch = 0;
  numThrottled = 0;
  numFatal = 0;
  batchId = 0;
  /** PUT as read by the fetch (cached_put). */
  cachedPut = 0;

  constructor(readonly capacity: number, utlbs: number) {
    this.addr = new Float64Array(capacity);
    this.rank = new Uint8Array(capacity);
    this.asid = new Uint16Array(capacity);
    this.utlb = new Uint16Array(capacity);
    this.warp = new Int32Array(capacity);
    this.timestamp = new Float64Array(capacity);
    this.instances = new Uint16Array(capacity);
    this.mask = new Uint8Array(capacity);
    this.filtered = new Uint8Array(capacity);
    this.fatal = new Uint8Array(capacity);
    this.throttled = new Uint8Array(capacity);
    this.invalidPrefetch = new Uint8Array(capacity);
    this.order = new Int32Array(capacity);
    this.orderScratch = new Int32Array(capacity);
    this.utlbLast = new Int32Array(utlbs).fill(-1);
    this.utlbPending = new Uint32Array(utlbs);
  }

  /** fetch_fault_buffer_entries in FAULT_FETCH_MODE_BATCH_READY. */
  fetch(uvm: UvmDriver, maxBatchSize: number, coalesce: boolean): void {
    const fb = uvm.gpu.faultBuffer;
    let get = fb.readGet();
    const put = (this.cachedPut = fb.readPut());
    for (let u = 0; u <= this.maxUtlb; u++) this.utlbPending[u] = 0;
    this.maxUtlb = 0;
    this.isSingleInstance = true;
    this.last = -1;
    let n = 0;
    let coalesced = 0;
    while (get !== put && n < maxBatchSize) {
      if (!fb.entryIsValid(get)) break; // entries land in order here; a hole would end the batch
      this.addr[n] = fb.addr[get]!; // the GPU aligns to 4 KiB; PAGE_SIZE is 4 KiB here
      this.rank[n] = ACCESS_RANK[fb.access[get]!]!;
      this.asid[n] = fb.asid[get]!;
      const u = (this.utlb[n] = fb.utlb[get]!);
      this.warp[n] = fb.warp[get]!;
      this.timestamp[n] = fb.timestamp[get]!;
      this.filtered[n] = 0;
      this.fatal[n] = 0;
      this.throttled[n] = 0;
      this.invalidPrefetch[n] = 0;
      fb.entryClearValid(get);
      if (u > this.maxUtlb) this.maxUtlb = u;
      get = get + 1 === fb.maxFaults ? 0 : get + 1;
      let same = true;
      if (n > 0) {
        same = this.asid[n] === this.asid[this.last];
        if (coalesce && this.tryMerge(n, u, same)) {
          n++;
          continue;
        }
      }
      if (!same) this.isSingleInstance = false;
      this.instances[n] = 1;
      this.mask[n] = 1 << this.rank[n]!;
      this.utlbPending[u]!++;
      this.utlbLast[u] = n;
      this.last = n;
      coalesced++;
      n++;
    }
    fb.writeGet(get);
    this.numCached = n;
    this.numCoalesced = coalesced;
  }

  /** fetch_fault_buffer_try_merge_entry */
  private tryMerge(cur: number, u: number, sameInstance: boolean): boolean {
    const lastTlb = this.utlbLast[u]!;
    const isLastTlb = this.utlbPending[u]! > 0 && this.asid[cur] === this.asid[lastTlb] && this.addr[cur] === this.addr[lastTlb];
    const last = this.last;
    const isLast = sameInstance && this.addr[cur] === this.addr[last] && this.rank[cur]! <= this.rank[last]!;
    if (isLastTlb) {
      const up = this.rank[cur]! > this.rank[lastTlb]!;
      this.merge(cur, lastTlb);
      if (up) this.utlbLast[u] = cur;
      return true;
    }
    if (isLast) {
      this.merge(cur, last);
      return true;
    }
    return false;
  }

  /** fetch_fault_buffer_merge_entry: the more intrusive of the two represents both. */
  private merge(cur: number, into: number): void {
    this.instances[into]!++;
    this.mask[into]! |= 1 << this.rank[cur]!;
    if (this.rank[cur]! > this.rank[into]!) {
      this.mask[cur] = this.mask[into]!;
      this.instances[cur] = this.instances[into]!;
      this.filtered[into] = 1;
    } else {
      this.filtered[cur] = 1;
    }
  }

  /** Whether entry a sorts before entry b: address space, address, then the more intrusive access first. */
  private before(a: number, b: number): boolean {
    if (this.asid[a] !== this.asid[b]) return this.asid[a]! < this.asid[b]!;
    if (this.addr[a] !== this.addr[b]) return this.addr[a]! < this.addr[b]!;
    return this.rank[a]! > this.rank[b]!;
  }

  /**
   * Sort order[0, n) by `before`, stably (equal entries keep their fetch order): a bottom-up
   * merge sort with the comparison inline. It orders entries as the typed array's sort with a
   * comparator did (also a stable sort), without a call per comparison.
   */
  private sortOrder(n: number): void {
    let src = this.order;
    let dst = this.orderScratch;
    for (let width = 1; width < n; width *= 2) {
      for (let lo = 0; lo < n; lo += 2 * width) {
        const mid = Math.min(lo + width, n);
        const hi = Math.min(lo + 2 * width, n);
        let i = lo;
        let j = mid;
        let k = lo;
        while (i < mid && j < hi) dst[k++] = this.before(src[j]!, src[i]!) ? src[j++]! : src[i++]!;
        while (i < mid) dst[k++] = src[i++]!;
        while (j < hi) dst[k++] = src[j++]!;
      }
      const t = src;
      src = dst;
      dst = t;
    }
    // back into order[] whichever array the last pass wrote, a copy onto itself included (a
    // branch taken only after an odd number of passes would deoptimize the compiled sort)
    const out = this.order;
    for (let i = 0; i < n; i++) out[i] = src[i]!;
  }

  /** preprocess_fault_batch: the representatives sorted by (address space, address, most intrusive access first). */
  preprocess(): void {
    let j = 0;
    for (let i = 0; i < this.numCached; i++) if (!this.filtered[i]) this.order[j++] = i;
    this.sortOrder(j);
    this.numCoalesced = j;
    this.numDuplicates = 0;
    this.numInvalidPrefetch = 0;
    this.numThrottled = 0;
    this.numFatal = 0;
  }
}

const hint: ThrashingHint = { type: 0, residency: UVM_ID_INVALID, endNs: 0 };
const leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
/** The residency policy's input, filled per fault (a policy reads it during select only). */
const residencyInput: { -readonly [K in keyof ResidencyInput]: ResidencyInput[K] } = {
  requester: UVM_ID_GPU, accessMask: 0, preferred: UVM_ID_INVALID, accessedBy: false, closestResident: UVM_ID_INVALID, mustUseSysmem: false,
  thrashing: hint,
};

/** What serviceFaultBatchBlock did: the index after the block's faults, when its copies end, its plan. Read at once (reused). */
interface BlockOutcome { next: number; doneAt: number; plan: PendingMaps | null }
const blockOutcome: BlockOutcome = { next: 0, doneAt: 0, plan: null };

function markFatal(batch: FaultBatch, e: number): void {
  if (!batch.fatal[e]) {
    batch.fatal[e] = 1;
    batch.numFatal++;
  }
}

/**
 * service_fault_batch_block_locked: decide, fault by fault, what the pages of one block need,
 * then service them (blockService). Returns the index after the block's faults and the result.
 */
function serviceFaultBatchBlock(uvm: UvmDriver, vs: UvmVaSpace, block: UvmVaBlock, vma: Vma, end: number, batch: FaultBatch, i: number): BlockOutcome {
  const dest = uvm.scratchDest;
  const rank = uvm.scratchRank;
  dest.fill(UVM_ID_INVALID);
  rank.fill(0);
  const asid = batch.asid[batch.order[i]!]!;
  const first = block.pageIndex(batch.addr[batch.order[i]!]!);
  let outer = first + 1;
  const readOk = accessAllowed(vma, false);
  const writeOk = (vma.flags & VM_WRITE) !== 0;
  const now = uvm.gpu.queue.now();
  const gpuVs = vs.gpuVaSpace;
  const sysmemOnly = uvm.mustUseSysmem(vma);
  let k = i;
  let any = false;
  for (; k < batch.numCoalesced; k++) {
    const e = batch.order[k]!;
    if (batch.asid[e] !== asid || batch.addr[e]! >= end) break;
    const page = block.pageIndex(batch.addr[e]!);
    const prev = k > i ? batch.order[k - 1]! : -1;
    const isDup = prev >= 0 && batch.addr[prev] === batch.addr[e];
    // update_batch_and_notify_fault
    batch.numDuplicates += isDup ? batch.instances[e]! : batch.instances[e]! - 1;
    if (isDup) {
      if (batch.invalidPrefetch[prev]) batch.invalidPrefetch[e] = 1;
      if (batch.throttled[prev]) batch.throttled[e] = 1;
      if (!batch.fatal[prev]) continue; // the page was serviced by the previous, more intrusive fault
    }
    outer = page + 1;
    // check_fault_access_permissions
    const r = batch.rank[e]!;
    let sr = r;
    if (r === RANK_PREFETCH) {
      if (!readOk) {
        batch.invalidPrefetch[e] = 1;
        batch.numInvalidPrefetch += batch.instances[e]!;
        continue;
      }
    } else if (r >= RANK_WRITE && !writeOk) {
      markFatal(batch, e); // cancel the write and atomic instances
      if (batch.mask[e]! & (1 << RANK_READ) && readOk) sr = RANK_READ;
      else continue;
    } else if (!readOk) {
      markFatal(batch, e);
      continue;
    }
    // uvm_va_block_page_is_gpu_authorized: a stale fault on a page fixed meanwhile.
    gpuVs.pt.walk(block.start / 4096 + page, leaf);
    const need = RANK_PROT[sr]!;
    if ((leaf.flags & need) === need) continue;
    const closest: ProcessorId = block.vramPfn[page]! >= 0 ? UVM_ID_GPU : block.cpuResident[page] ? UVM_ID_CPU : UVM_ID_INVALID;
    const pol = vs.policyAt(block.pageAddr(page));
    const preferred = pol ? pol.preferredLocation : UVM_ID_INVALID;
    uvm.thrashing.hint(block, page, UVM_ID_GPU, preferred, closest, now, hint);
    if (hint.type === THRASHING_HINT_THROTTLE) {
      // Throttled: left unserviced; the warp faults again after the replay.
      batch.throttled[e] = 1;
      batch.numThrottled++;
      continue;
    }
    const sel = residencyInput;
    sel.accessMask = batch.mask[e]!;
    sel.preferred = preferred;
    sel.accessedBy = pol?.accessedBy ?? false;
    sel.closestResident = closest;
    sel.mustUseSysmem = sysmemOnly;
    const res = uvm.residency.select(sel);
    dest[page] = res;
    if (sr > rank[page]!) rank[page] = sr;
    any = true;
  }
  const out = blockOutcome;
  out.next = k;
  out.doneAt = now;
  out.plan = null;
  if (!any) return out;
  const result = blockService(uvm, block, vma, dest, rank, first, outer, 'fault');
  if (result.fatal.length > 0) {
    const bad = new Set(result.fatal);
    for (let x = i; x < k; x++) {
      const e = batch.order[x]!;
      if (bad.has(block.pageIndex(batch.addr[e]!))) markFatal(batch, e);
    }
  }
  out.doneAt = result.doneAt;
  out.plan = result.plan;
  return out;
}

/**
 * uvm_parent_gpu_service_replayable_faults, as a kernel thread body: batches until the
 * buffer is empty or the per-run limits are reached, replays per policy, then re-arms the
 * interrupt.
 */
export function* serviceReplayableFaults(uvm: UvmDriver): KThreadBody {
  const gpu = uvm.gpu;
  const o = uvm.options;
  const batch = uvm.batch;
  const costs = gpu.costs;
  let numReplays = 0;
  let numBatches = 0;
  let numThrottled = 0;
  uvm.stats.serviceRuns++;
  for (;;) {
    if (numThrottled >= o.maxThrottlePerService || numBatches >= o.maxBatchesPerService) break;
    uvm.pmm.releaseHeld(); // the last batch's warps have been replayed
    const start = gpu.queue.now();
    batch.fetch(uvm, o.faultBatchCount, o.faultCoalesce);
    if (batch.numCached === 0) break;
    batch.batchId = ++uvm.batchIds;
    batch.preprocess();
    yield costs.batchOverheadNs;
    // service_fault_batch
    let i = 0;
    while (i < batch.numCoalesced) {
      const e = batch.order[i]!;
      const vs = uvm.vaSpaceByAsid(batch.asid[e]!);
      if (!vs || vs.dead) {
        i++; // no GPU VA space any more: a stale entry
        continue;
      }
      const addr = batch.addr[e]!;
      const vma = vs.mm.dead ? undefined : vs.mm.findVma(addr);
      if (!vma) {
        markFatal(batch, e); // no VMA: an invalid address
        i++;
        continue;
      }
      const block = blockFindCreate(uvm, vs, addr);
      const end = vs.policyEnd(addr, Math.min(block.end, vma.end));
      const r = serviceFaultBatchBlock(uvm, vs, block, vma, end, batch, i);
      const next = r.next;
      const plan = r.plan;
      const cpuNs = costs.perFaultNs * (next - i);
      if (plan && plan.length > 0) block.pending = plan;
      yield cpuNs + Math.max(0, r.doneAt - gpu.queue.now());
      if (plan) commitPlan(uvm, block, plan);
      if (uvm.replayPolicy.perBlock && batch.numFatal === 0) {
        gpu.replay('replay');
        numReplays++;
      }
      i = next;
    }
    uvm.stats.faults += batch.numCached;
    uvm.stats.coalescedFaults += batch.numCoalesced;
    uvm.stats.duplicateFaults += batch.numDuplicates;
    uvm.stats.throttledFaults += batch.numThrottled;
    uvm.stats.batches++;
    enableDisablePrefetchFaults(uvm, batch);
    if (batch.numFatal > 0) {
      // cancel_faults_precise: the faulting contexts are killed; then replay the rest.
      uvm.stats.fatalFaults += batch.numFatal;
      const asids = new Set<number>();
      for (let x = 0; x < batch.numCoalesced; x++) {
        const e = batch.order[x]!;
        if (batch.fatal[e] && !asids.has(batch.asid[e]!)) {
          asids.add(batch.asid[e]!);
          gpu.cancel(batch.asid[e]!, batch.addr[e]!);
        }
      }
      gpu.replay('replay');
      numReplays++;
      numBatches++;
      emitBatch(uvm, batch, start);
      continue;
    }
    const action = uvm.replayPolicy.afterBatch(batch.numCached, batch.numDuplicates, o.replayUpdatePutRatio);
    if (action === 'replay') {
      gpu.replay('replay');
      numReplays++;
    } else if (action === 'flush-cached' || action === 'flush-update') {
      // fault_buffer_flush_locked: discard what is pending up to PUT, then replay and wait for it.
      const fb = gpu.faultBuffer;
      const put = action === 'flush-update' ? fb.readPut() : batch.cachedPut;
      let get = fb.readGet();
      let flushed = 0;
      while (get !== put) {
        fb.entryClearValid(get);
        get = get + 1 === fb.maxFaults ? 0 : get + 1;
        flushed++;
      }
      fb.writeGet(get);
      uvm.stats.flushedFaults += flushed;
      if (action === 'flush-update') uvm.stats.flushesUpdatePut++;
      const at = gpu.replay(action);
      numReplays++;
      yield at - gpu.queue.now();
    }
    if (batch.numThrottled > 0) numThrottled++;
    numBatches++;
    emitBatch(uvm, batch, start);
  }
  if (uvm.replayPolicy.atEnd || numReplays === 0) {
    gpu.replay('replay');
    numReplays++;
  }
  uvm.stats.replays += numReplays;
  uvm.pmm.releaseHeld();
  gpu.enableFaultInterrupt();
}

function emitBatch(uvm: UvmDriver, batch: FaultBatch, start: number): void {
  const ev = uvm.gpu.events;
  uvm.stats.batchNs += uvm.gpu.queue.now() - start;
  if (ev.on.batch) {
    ev.emit({
      type: 'batch', gpu: uvm.gpu.id, driver: 'uvm', batchId: batch.batchId, fetched: batch.numCached, coalesced: batch.numCoalesced,
      duplicates: batch.numDuplicates, throttled: batch.numThrottled, fatal: batch.numFatal, startNs: start, endNs: uvm.gpu.queue.now(),
    });
  }
}

/**
 * enable_disable_prefetch_faults: when invalid prefetch faults exceed 2/3 of the batch size,
 * the GPU stops reporting prefetch faults for uvm_perf_reenable_prefetch_faults_lapse_msec.
 */
function enableDisablePrefetchFaults(uvm: UvmDriver, batch: FaultBatch): void {
  const gpu = uvm.gpu;
  const lapseNs = uvm.options.reenablePrefetchFaultsLapseMs * 1e6;
  if (gpu.prefetchFaultsEnabled && lapseNs > 0 && batch.numInvalidPrefetch * 3 > uvm.options.faultBatchCount * 2) {
    gpu.prefetchFaultsEnabled = false;
    uvm.prefetchFaultsDisabledAt = gpu.queue.now();
  } else if (!gpu.prefetchFaultsEnabled && gpu.queue.now() - uvm.prefetchFaultsDisabledAt > lapseNs) {
    gpu.prefetchFaultsEnabled = true;
  }
}
