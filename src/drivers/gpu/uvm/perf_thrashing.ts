// Thrashing detection and prevention (uvm_perf_thrashing.c), for one GPU and the CPU.
//
// An event is a migration of a page (caused by a fault, a prefetch or an access counter; never
// by eviction: thrashing_event_cb returns early for UVM_MAKE_RESIDENT_CAUSE_EVICTION) or a
// revocation of a processor's permission. Per-page tracking is created for a block only when
// it sees an event from a different processor within `lapse` of the last one. Two events on a
// page closer than `lapse` are a thrashing event; `threshold` (3) consecutive ones mark the
// page thrashing. A fault on a thrashing page then gets a hint: THROTTLE (one processor is
// served per `nap`, the others wait), and after `pinThreshold` (10) throttling periods PIN
// (the page stays where every thrashing processor can reach it, the others map it remotely,
// for `pin` lapses). A block quiet for `epoch` lapses forgets its history (up to `maxResets`
// times). The lapse adapts by votes (adjust_thrashing_lapse) unless it was set explicitly.

import {
  THRASHING_HINT_NONE, THRASHING_HINT_PIN, THRASHING_HINT_THROTTLE, UVM_ID_CPU, UVM_ID_GPU, UVM_ID_INVALID, type MakeResidentCause,
  type ProcessorId, type ThrashingBlock, type ThrashingHint, type ThrashingPolicy,
} from './policy_types.js';

export interface ThrashingParams {
  /** uvm_perf_thrashing_enable */
  enable: boolean;
  /** uvm_perf_thrashing_threshold: consecutive thrashing events before prevention (max 7: a 3-bit counter). */
  threshold: number;
  /** uvm_perf_thrashing_pin_threshold: throttling periods before pinning (max 255). */
  pinThreshold: number;
  /** uvm_perf_thrashing_lapse_usec, in ns. */
  lapseNs: number;
  /** Whether the lapse was set explicitly (then it is not adjusted). */
  lapseFixed: boolean;
  /** uvm_perf_thrashing_nap, uvm_perf_thrashing_epoch, uvm_perf_thrashing_pin: in lapses (pin 0 = forever). */
  nap: number;
  epoch: number;
  pin: number;
  /** uvm_perf_thrashing_max_resets */
  maxResets: number;
  /** uvm_perf_lapse_vote_threshold */
  lapseVoteThreshold: number;
  /** The CPU can access VRAM (device-coherent memory): both processors reach each other's memory. */
  coherent: boolean;
}

export const UVM_PERF_THRASHING_LAPSE_USEC_DEFAULT = 500;
const LAPSE_USEC_MAX = UVM_PERF_THRASHING_LAPSE_USEC_DEFAULT * 1000;
const LAPSE_USEC_MIN = UVM_PERF_THRASHING_LAPSE_USEC_DEFAULT / 100;

export const DEFAULT_THRASHING_PARAMS: ThrashingParams = {
  enable: true, threshold: 3, pinThreshold: 10, lapseNs: UVM_PERF_THRASHING_LAPSE_USEC_DEFAULT * 1000, lapseFixed: false, nap: 1,
  epoch: 2000, pin: 300, maxResets: 4, lapseVoteThreshold: 32, coherent: false,
};

const NUM_EVENTS_MAX = 7; // PAGE_THRASHING_NUM_EVENTS_BITS 3
const THROTTLING_COUNT_MAX = 255;
const bit = (id: ProcessorId): number => 1 << id;

/** page_thrashing_info_t for the 512 pages of a block, as parallel arrays. Times are ns + 1 (0 = never). */
class PageThrashing {
  readonly lastTs = new Float64Array(512);
  readonly numEvents = new Uint8Array(512);
  readonly hasMigration = new Uint8Array(512);
  readonly hasRevocation = new Uint8Array(512);
  readonly pinned = new Uint8Array(512);
  readonly throttleEnd = new Float64Array(512);
  readonly throttlingCount = new Uint8Array(512);
  readonly processors = new Uint8Array(512);
  readonly throttled = new Uint8Array(512);
  readonly pinnedResidency = new Int8Array(512).fill(UVM_ID_INVALID);
  readonly doNotThrottle = new Int8Array(512).fill(UVM_ID_INVALID);
  readonly pinDeadline = new Float64Array(512);
}

/** block_thrashing_info_t */
class BlockThrashing {
  pages: PageThrashing | null = null;
  readonly thrashingPages = new Uint8Array(512);
  numThrashingPages = 0;
  resetCount = 0;
  lastProcessor: ProcessorId = UVM_ID_INVALID;
  lastTs = 0;
  lastThrashingTs = 0;
  pinnedCount = 0;
}

export class UvmThrashing implements ThrashingPolicy {
  readonly name = 'uvm';
  readonly params: ThrashingParams;
  private lapseStat = 0;
  readonly stats = { detected: 0, throttled: 0, pinned: 0 };
  /** Reports detections, throttles and pins (the driver turns them into GPU events). */
  onEvent: ((block: ThrashingBlock, page: number, kind: 'detected' | 'throttle' | 'pin' | 'unpin') => void) | null = null;

  constructor(params: Partial<ThrashingParams> = {}) {
    const p = { ...DEFAULT_THRASHING_PARAMS, ...params };
    if (!Number.isInteger(p.threshold) || p.threshold < 1 || p.threshold > NUM_EVENTS_MAX) throw new RangeError('thrashing threshold must be 1..7');
    if (!Number.isInteger(p.pinThreshold) || p.pinThreshold < 1 || p.pinThreshold > THROTTLING_COUNT_MAX) throw new RangeError('pin threshold must be 1..255');
    if (!(p.lapseNs > 0)) throw new RangeError('thrashing lapse must be positive');
    this.params = p;
  }

  private get napNs(): number {
    return this.params.lapseNs * this.params.nap;
  }

  private info(block: ThrashingBlock): BlockThrashing {
    let b = block.thrashing as BlockThrashing | null;
    if (!b) block.thrashing = b = new BlockThrashing();
    return b;
  }

  /** Processors (bit mask) that can access memory of `to` (va_space->accessible_from). */
  private accessibleFrom(to: ProcessorId): number {
    if (to === UVM_ID_CPU) return bit(UVM_ID_CPU) | bit(UVM_ID_GPU);
    if (to === UVM_ID_GPU) return bit(UVM_ID_GPU) | (this.params.coherent ? bit(UVM_ID_CPU) : 0);
    return 0;
  }

  /** Memories (bit mask) processor `id` can access (va_space->can_access). */
  private canAccess(id: ProcessorId): number {
    if (id === UVM_ID_GPU) return bit(UVM_ID_CPU) | bit(UVM_ID_GPU);
    return bit(UVM_ID_CPU) | (this.params.coherent ? bit(UVM_ID_GPU) : 0);
  }

  /** Processors with a fast link and native atomics to `to` (NVLink-C2C), including itself. */
  private fastAccessTo(to: ProcessorId): number {
    return this.params.coherent ? bit(UVM_ID_CPU) | bit(UVM_ID_GPU) : bit(to);
  }

  // ---- thrashing_event_cb ----

  onMigration(block: ThrashingBlock, first: number, n: number, dest: ProcessorId, cause: MakeResidentCause, nowNs: number): void {
    if (!this.params.enable) return;
    // Skip the detection on eviction: capacity thrashing is not what this detects.
    if (cause === 'eviction') return;
    if (cause !== 'fault' && cause !== 'cpu-fault' && cause !== 'prefetch' && cause !== 'access-counter') {
      // User commands take precedence over the heuristics: forget the pages.
      this.reset(block, first, n);
      return;
    }
    const b = this.info(block);
    // is_migration_pinned_pages_update: a fault migration of pages all pinned there.
    if (b.pages && (cause === 'fault' || cause === 'cpu-fault' || cause === 'access-counter')) {
      let all = true;
      for (let p = first; p < first + n && all; p++) all = b.pages.pinned[p] === 1;
      if (all) return;
    }
    this.event(block, b, first, n, dest, false, nowNs);
  }

  onRevocation(block: ThrashingBlock, page: number, processor: ProcessorId, nowNs: number): void {
    if (!this.params.enable) return;
    this.event(block, this.info(block), page, 1, processor, true, nowNs);
  }

  private event(block: ThrashingBlock, b: BlockThrashing, first: number, n: number, processor: ProcessorId, revocation: boolean, nowNs: number): void {
    const ts = nowNs + 1;
    const lapse = this.params.lapseNs;
    if (!b.pages) {
      // Only track pages once the block sees another processor within a lapse.
      if (b.lastTs === 0 || b.lastProcessor === processor || ts - b.lastTs > lapse) {
        b.lastTs = ts;
        b.lastProcessor = processor;
        return;
      }
      b.pages = new PageThrashing();
    }
    const pt = b.pages;
    for (let p = first; p < first + n; p++) {
      const last = pt.lastTs[p]!;
      pt.processors[p]! |= bit(processor);
      pt.lastTs[p] = ts;
      if (last === 0) continue;
      if (ts - last <= lapse) {
        if (pt.numEvents[p]! < NUM_EVENTS_MAX) pt.numEvents[p]!++;
        if (pt.numEvents[p] === this.params.threshold) this.detected(block, b, p);
        if (pt.numEvents[p]! >= this.params.threshold) b.lastThrashingTs = ts;
        if (revocation) pt.hasRevocation[p] = 1;
        else pt.hasMigration[p] = 1;
      } else if (pt.numEvents[p]! >= this.params.threshold && !pt.pinned[p]) {
        this.resetPage(b, p);
      }
    }
    b.lastTs = ts;
    b.lastProcessor = processor;
  }

  private detected(block: ThrashingBlock, b: BlockThrashing, p: number): void {
    if (!b.thrashingPages[p]) {
      b.thrashingPages[p] = 1;
      b.numThrashingPages++;
    }
    this.stats.detected++;
    this.onEvent?.(block, p, 'detected');
  }

  /** thrashing_reset_page */
  private resetPage(b: BlockThrashing, p: number): void {
    const pt = b.pages!;
    pt.throttled[p] = 0;
    pt.throttleEnd[p] = 0;
    if (pt.pinned[p]) this.unpin(b, p);
    pt.lastTs[p] = 0;
    pt.hasMigration[p] = 0;
    pt.hasRevocation[p] = 0;
    pt.numEvents[p] = 0;
    pt.processors[p] = 0;
    if (b.thrashingPages[p]) {
      b.thrashingPages[p] = 0;
      b.numThrashingPages--;
    }
  }

  private unpin(b: BlockThrashing, p: number): void {
    const pt = b.pages!;
    pt.pinned[p] = 0;
    pt.pinnedResidency[p] = UVM_ID_INVALID;
    pt.pinDeadline[p] = 0;
    b.pinnedCount--;
  }

  reset(block: ThrashingBlock, first: number, n: number): void {
    const b = block.thrashing as BlockThrashing | null;
    if (!b?.pages) return;
    for (let p = first; p < first + n; p++) if (b.thrashingPages[p]) this.resetPage(b, p);
  }

  thrashingPages(block: ThrashingBlock): Uint8Array | null {
    const b = block.thrashing as BlockThrashing | null;
    return b && b.numThrashingPages > 0 ? b.thrashingPages : null;
  }

  // ---- uvm_perf_thrashing_get_hint ----

  hint(block: ThrashingBlock, page: number, requester: ProcessorId, preferred: ProcessorId, closest: ProcessorId, nowNs: number, out: ThrashingHint): void {
    out.type = THRASHING_HINT_NONE;
    out.residency = UVM_ID_INVALID;
    out.endNs = 0;
    if (!this.params.enable) return;
    const b = block.thrashing as BlockThrashing | null;
    if (!b?.pages) return;
    const ts = nowNs + 1;
    const prm = this.params;
    if (b.lastThrashingTs !== 0 && ts - b.lastThrashingTs > prm.lapseNs * prm.epoch && b.pinnedCount === 0 && b.resetCount < prm.maxResets) {
      // A quiet epoch: forget the block's history.
      b.resetCount++;
      b.pages = null;
      b.thrashingPages.fill(0);
      b.numThrashingPages = 0;
      b.lastProcessor = UVM_ID_INVALID;
      b.lastTs = 0;
      b.lastThrashingTs = 0;
      return;
    }
    const pt = b.pages;
    // Pins end after `pin` lapses (thrashing_unpin_pages, a delayed work item in the driver).
    if (pt.pinned[page] && pt.pinDeadline[page]! > 0 && ts >= pt.pinDeadline[page]!) {
      this.resetPage(b, page);
      this.onEvent?.(block, page, 'unpin');
    }
    if (pt.numEvents[page]! < prm.threshold) return;
    if (pt.throttled[page]! & bit(requester)) {
      if (ts < pt.throttleEnd[page]! && requester !== pt.doNotThrottle[page]) {
        this.throttle(block, b, page, requester, out);
        return;
      }
      // thrashing_throttle_end_processor
      pt.throttled[page]! &= ~bit(requester);
      if (pt.throttled[page] === 0) pt.throttleEnd[page] = 0;
    }
    this.adjustLapse(ts - pt.lastTs[page]!);
    if (ts - pt.lastTs[page]! > prm.lapseNs && !pt.pinned[page]) return;
    pt.processors[page]! |= bit(requester);
    // thrashing_throttle_update
    if (ts > pt.throttleEnd[page]!) {
      pt.throttleEnd[page] = ts + this.napNs;
      pt.doNotThrottle[page] = pt.doNotThrottle[page] === requester ? UVM_ID_INVALID : requester;
    } else if (pt.doNotThrottle[page] === UVM_ID_INVALID) {
      pt.doNotThrottle[page] = requester;
    }
    if (pt.pinned[page] && pt.hasRevocation[page] && requester !== pt.doNotThrottle[page]) {
      this.throttle(block, b, page, requester, out);
      return;
    }
    this.migrationHint(b, page, requester, preferred, closest === UVM_ID_INVALID ? UVM_ID_CPU : closest, out);
    const type: number = out.type;
    if (type === THRASHING_HINT_PIN) this.pinPage(block, b, page, out.residency, ts);
    else if (type === THRASHING_HINT_THROTTLE) this.throttle(block, b, page, requester, out);
  }

  /** get_hint_for_migration_thrashing */
  private migrationHint(b: BlockThrashing, page: number, requester: ProcessorId, preferred: ProcessorId, closest: ProcessorId, out: ThrashingHint): void {
    const pt = b.pages!;
    const procs = pt.processors[page]!;
    const doNotThrottle = pt.doNotThrottle[page] as ProcessorId;
    const pinnedResidency = pt.pinnedResidency[page] as ProcessorId;
    const canAccessAll = (to: ProcessorId): boolean => to !== UVM_ID_INVALID && (procs & ~this.accessibleFrom(to)) === 0;
    const pin = (where: ProcessorId): void => {
      out.type = THRASHING_HINT_PIN;
      out.residency = where;
    };
    if (canAccessAll(preferred)) {
      pin(preferred);
    } else if (!(preferred !== UVM_ID_INVALID && procs & bit(preferred)) && (procs & ~this.fastAccessTo(closest)) === 0) {
      if (closest === UVM_ID_CPU && canAccessAll(requester)) {
        if (requester === UVM_ID_GPU) pin(requester);
      } else pin(closest);
    } else if (requester === preferred) {
      if (pt.pinned[page]) {
        if (preferred === pinnedResidency || preferred === doNotThrottle) pin(preferred);
        else out.type = THRASHING_HINT_THROTTLE;
      } else if (preferred !== doNotThrottle) {
        out.type = THRASHING_HINT_THROTTLE;
      } else if (pt.throttlingCount[page]! >= this.params.pinThreshold) {
        pin(preferred);
      }
    } else if (pt.pinned[page]) {
      if (requester === doNotThrottle) {
        if (canAccessAll(requester)) pin(requester);
        else {
          // The common location every thrashing processor can access, closest to the requester.
          let common = bit(UVM_ID_CPU) | bit(UVM_ID_GPU);
          for (const id of [UVM_ID_CPU, UVM_ID_GPU] as const) if (procs & bit(id)) common &= this.canAccess(id);
          pin(common === 0 ? requester : common & bit(requester) ? requester : common & bit(UVM_ID_CPU) ? UVM_ID_CPU : UVM_ID_GPU);
        }
      } else if (this.accessibleFrom(pinnedResidency) & bit(requester)) {
        pin(pinnedResidency);
      } else {
        out.type = THRASHING_HINT_THROTTLE;
      }
    } else if (requester !== doNotThrottle) {
      out.type = THRASHING_HINT_THROTTLE;
    } else if (pt.throttlingCount[page]! >= this.params.pinThreshold) {
      pin(requester);
    }
  }

  /** thrashing_throttle_processor */
  private throttle(block: ThrashingBlock, b: BlockThrashing, page: number, requester: ProcessorId, out: ThrashingHint): void {
    const pt = b.pages!;
    out.type = THRASHING_HINT_THROTTLE;
    if (!(pt.throttled[page]! & bit(requester))) {
      pt.throttled[page]! |= bit(requester);
      if (!pt.pinned[page] && pt.throttlingCount[page]! < THROTTLING_COUNT_MAX) pt.throttlingCount[page]!++;
      this.stats.throttled++;
      this.onEvent?.(block, page, 'throttle');
    }
    out.endNs = pt.throttleEnd[page]! - 1;
  }

  /** thrashing_pin_page */
  private pinPage(block: ThrashingBlock, b: BlockThrashing, page: number, residency: ProcessorId, ts: number): void {
    const pt = b.pages!;
    if (!pt.pinned[page]) {
      pt.throttled[page] = 0;
      pt.throttleEnd[page] = 0;
      pt.pinDeadline[page] = this.params.pin > 0 ? ts + this.params.lapseNs * this.params.pin : 0;
      pt.throttlingCount[page] = 0;
      pt.pinned[page] = 1;
      b.pinnedCount++;
      this.stats.pinned++;
      this.onEvent?.(block, page, 'pin');
    }
    pt.pinnedResidency[page] = residency;
  }

  /** adjust_thrashing_lapse: votes move the lapse by an eighth within [5 us, 500 ms]. */
  private adjustLapse(lapse: number): void {
    const p = this.params;
    if (p.lapseFixed) return;
    this.lapseStat += lapse < p.lapseNs ? -1 : 1;
    if (this.lapseStat >= p.lapseVoteThreshold && p.lapseNs < LAPSE_USEC_MAX * 1000) {
      p.lapseNs += Math.min(p.lapseNs / 8, (LAPSE_USEC_MAX / 10) * 1000);
    } else if (-this.lapseStat >= p.lapseVoteThreshold && p.lapseNs > LAPSE_USEC_MIN * 1000) {
      p.lapseNs -= Math.max(p.lapseNs / 8, LAPSE_USEC_MIN * 1000);
    } else return;
    this.lapseStat = Math.trunc(this.lapseStat / 2);
  }

  /** Whether a page is pinned, and where (for tests and reports). */
  pinnedAt(block: ThrashingBlock, page: number): ProcessorId {
    const b = block.thrashing as BlockThrashing | null;
    return b?.pages?.pinned[page] ? (b.pages.pinnedResidency[page] as ProcessorId) : UVM_ID_INVALID;
  }
}

/** No detection: every hint is NONE. */
export class NoThrashing implements ThrashingPolicy {
  readonly name = 'none';
  readonly stats = { detected: 0, throttled: 0, pinned: 0 };
  onMigration(): void {}
  onRevocation(): void {}
  hint(_b: ThrashingBlock, _p: number, _r: ProcessorId, _pref: ProcessorId, _c: ProcessorId, _now: number, out: ThrashingHint): void {
    out.type = THRASHING_HINT_NONE;
    out.residency = UVM_ID_INVALID;
    out.endNs = 0;
  }
  thrashingPages(): Uint8Array | null {
    return null;
  }
  reset(): void {}
}
