// The interfaces of UVM's policies (docs/architecture.md decision 9): each is an object chosen once when
// the driver is created, by name or as a researcher's own implementation. The driver calls
// them at the points where the real driver consults its heuristics.

/** uvm_processor_id_t in a one-GPU world. */
export const UVM_ID_INVALID = -1;
export const UVM_ID_CPU = 0;
export const UVM_ID_GPU = 1;
export type ProcessorId = typeof UVM_ID_INVALID | typeof UVM_ID_CPU | typeof UVM_ID_GPU;

/** Pages per VA block (2 MiB / 4 KiB, PAGES_PER_UVM_VA_BLOCK). */
export const PAGES_PER_UVM_VA_BLOCK = 512;
/** Pages per big page (UVM_BIG_PAGE_SIZE 64 KiB). */
export const BIG_PAGE_PAGES = 16;

// ---- prefetch (uvm_perf_prefetch.c) ----

export interface PrefetchInput {
  /** The max prefetch region of the block, in page indices [first, outer): the block clipped to the VMA and policy range. */
  readonly first: number;
  readonly outer: number;
  /** 1 for each page whose fault is being serviced to `dest`. */
  readonly faulted: Uint8Array;
  /** 1 for each page already resident at `dest` (the block's own mask: read it, never write it). The input is valid during compute only. */
  readonly resident: Uint8Array;
  /** 1 for each page the thrashing detector reports, or null. */
  readonly thrashing: Uint8Array | null;
  /** First touch: nothing of the block is resident anywhere and `dest` is its preferred location. */
  readonly firstTouchAtPreferred: boolean;
  readonly dest: ProcessorId;
  /** uvm_perf_prefetch_threshold (percent). */
  readonly threshold: number;
  /** A uniform random number in [0, 1), from the run's seed. */
  random(): number;
}

export interface PrefetchPolicy {
  readonly name: string;
  /**
   * Mark pages to bring along with the faulted ones in `out` (512 entries, zeroed by the
   * caller). The driver then removes faulted and thrashing pages and applies
   * uvm_perf_prefetch_min_faults, as uvm_perf_prefetch_get_hint_va_block does.
   */
  compute(input: PrefetchInput, out: Uint8Array): void;
}

// ---- thrashing (uvm_perf_thrashing.c) ----

export const THRASHING_HINT_NONE = 0;
export const THRASHING_HINT_THROTTLE = 1;
export const THRASHING_HINT_PIN = 2;

export interface ThrashingHint {
  type: typeof THRASHING_HINT_NONE | typeof THRASHING_HINT_THROTTLE | typeof THRASHING_HINT_PIN;
  /** PIN: where the page stays. */
  residency: ProcessorId;
  /** THROTTLE: when the throttled processor may be serviced again. */
  endNs: number;
}

/** Why pages moved (uvm_make_resident_cause_t). */
export type MakeResidentCause = 'fault' | 'prefetch' | 'access-counter' | 'eviction' | 'api' | 'cpu-fault';

/** The per-block state a thrashing detector keeps is its own; the driver hands it a slot. */
export interface ThrashingBlock {
  thrashing: unknown;
  readonly start: number;
}

export interface ThrashingPolicy {
  readonly name: string;
  /** thrashing_event_cb for a migration of pages [first, first + n) of the block to `dest`. */
  onMigration(block: ThrashingBlock, first: number, n: number, dest: ProcessorId, cause: MakeResidentCause, nowNs: number): void;
  /** thrashing_event_cb for a revocation of `processor`'s permission on a page. */
  onRevocation(block: ThrashingBlock, page: number, processor: ProcessorId, nowNs: number): void;
  /**
   * uvm_perf_thrashing_get_hint for a fault by `requester` on a page whose closest resident
   * copy is at `closest` (UVM_ID_INVALID if UVM has not seen it resident); fills `out`.
   */
  hint(block: ThrashingBlock, page: number, requester: ProcessorId, preferred: ProcessorId, closest: ProcessorId, nowNs: number, out: ThrashingHint): void;
  /** uvm_perf_thrashing_get_thrashing_pages: 1 per thrashing page, or null when none. */
  thrashingPages(block: ThrashingBlock): Uint8Array | null;
  /** The block's pages [first, first + n) were unmapped (munmap): forget them. */
  reset(block: ThrashingBlock, first: number, n: number): void;
  /** Counters for reports. */
  readonly stats: { detected: number; throttled: number; pinned: number };
}

// ---- eviction (uvm_pmm_gpu.c) ----

/** What an eviction policy sees of the GPU memory manager: root chunks by index. */
export interface EvictionView {
  readonly chunks: number;
  /** A chunk holds allocated pages and none is pinned by an operation in flight. */
  evictable(chunk: number): boolean;
  /** Allocated pages of the chunk. */
  used(chunk: number): number;
  /** Access registers (per chunk last access time and count), when the policy asked for them. */
  readonly lastAccessNs: Float64Array | null;
  readonly accessCount: Float64Array | null;
  random(): number;
}

export interface EvictionPolicy {
  readonly name: string;
  /** Ask the GPU to keep per-chunk access times and counts (costs a store per VRAM access). */
  readonly needsAccessTracking: boolean;
  /** Called once by the memory manager before anything is allocated. */
  init?(view: EvictionView): void;
  /** A page of the chunk was allocated (unpinned into a VA block) at nowNs. */
  onAlloc(chunk: number, nowNs: number): void;
  /** The chunk became entirely free. */
  onFree(chunk: number): void;
  /** The root chunk to evict next, or -1. */
  pick(view: EvictionView): number;
}

// ---- replay (uvm_gpu_replayable_faults.h, uvm_perf_fault_replay_policy) ----

export type BatchReplayAction = 'none' | 'replay' | 'flush-cached' | 'flush-update';

export interface ReplayPolicy {
  readonly name: string;
  /** Replay after each VA block is serviced (UVM_PERF_FAULT_REPLAY_POLICY_BLOCK). */
  readonly perBlock: boolean;
  /** What to do once a batch is serviced. */
  afterBatch(cachedFaults: number, duplicateFaults: number, updatePutRatio: number): BatchReplayAction;
  /** Replay at the end of a service run whatever was replayed before (UVM_PERF_FAULT_REPLAY_POLICY_ONCE). */
  readonly atEnd: boolean;
}

// ---- residency (uvm_va_block_select_residency) ----

export interface ResidencyInput {
  readonly requester: ProcessorId;
  /** Bit per access type (read 1, write 2, atomic 4, prefetch 8) of the faults on the page. */
  readonly accessMask: number;
  readonly preferred: ProcessorId;
  /** The requester is in the range's accessed-by set. */
  readonly accessedBy: boolean;
  /** Where the page is now (UVM_ID_INVALID if UVM has not seen it resident anywhere). */
  readonly closestResident: ProcessorId;
  /** uvm_hmm_must_use_sysmem: the VMA cannot migrate (not anonymous, special, hugetlb). */
  readonly mustUseSysmem: boolean;
  readonly thrashing: ThrashingHint;
}

export interface ResidencyPolicy {
  readonly name: string;
  select(input: ResidencyInput): ProcessorId;
}
