// UVM's replay policies and residency decision, and the registries that choose every policy
// by the name used on the command line.

import { fail } from '../../../mm/errno.js';
import { EVICTION_POLICIES } from './pmm_eviction.js';
import { PREFETCH_POLICIES } from './perf_prefetch.js';
import { NoThrashing, UvmThrashing, type ThrashingParams } from './perf_thrashing.js';
import {
  THRASHING_HINT_PIN, UVM_ID_CPU, UVM_ID_INVALID, type BatchReplayAction, type EvictionPolicy, type PrefetchPolicy, type ProcessorId,
  type ReplayPolicy, type ResidencyInput, type ResidencyPolicy, type ThrashingPolicy,
} from './policy_types.js';

// ---- replay (uvm_perf_fault_replay_policy) ----

/** UVM_PERF_FAULT_REPLAY_POLICY_BLOCK: replay after each VA block. */
export const REPLAY_BLOCK: ReplayPolicy = { name: 'block', perBlock: true, atEnd: false, afterBatch: () => 'none' };
/** UVM_PERF_FAULT_REPLAY_POLICY_BATCH: replay after each batch. */
export const REPLAY_BATCH: ReplayPolicy = { name: 'batch', perBlock: false, atEnd: false, afterBatch: () => 'replay' };
/**
 * UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH (the default): after each batch flush the buffer
 * (discard what is left up to PUT, re-reading PUT when duplicates exceed
 * uvm_perf_fault_replay_update_put_ratio percent of the batch) and replay.
 */
export const REPLAY_BATCH_FLUSH: ReplayPolicy = {
  name: 'batch_flush',
  perBlock: false,
  atEnd: false,
  afterBatch: (cached: number, duplicates: number, ratio: number): BatchReplayAction => (duplicates * 100 > cached * ratio ? 'flush-update' : 'flush-cached'),
};
/** UVM_PERF_FAULT_REPLAY_POLICY_ONCE: one replay once the whole buffer is serviced. */
export const REPLAY_ONCE: ReplayPolicy = { name: 'once', perBlock: false, atEnd: true, afterBatch: () => 'none' };

export const REPLAY_POLICIES: Record<string, () => ReplayPolicy> = {
  block: () => REPLAY_BLOCK,
  batch: () => REPLAY_BATCH,
  batch_flush: () => REPLAY_BATCH_FLUSH,
  once: () => REPLAY_ONCE,
};

// ---- residency (block_select_processor_residency for an HMM block, one GPU) ----

/**
 * UVM's decision for a GPU fault on HMM memory: system memory if the VMA cannot migrate;
 * the requester if it is the preferred location; the pinned location of a thrashing page;
 * a page resident nowhere goes to the preferred location if accessible, else to the
 * requester; an accessed-by requester maps the current residency; else the preferred
 * location if set; else the requester (migrate to VRAM).
 */
export const RESIDENCY_UVM: ResidencyPolicy = {
  name: 'uvm',
  select(i: ResidencyInput): ProcessorId {
    if (i.mustUseSysmem) return UVM_ID_CPU;
    if (i.requester === i.preferred) return i.requester;
    if (i.requester === UVM_ID_CPU) return UVM_ID_CPU; // HMM migrates CPU faults to system memory
    if (i.thrashing.type === THRASHING_HINT_PIN) return i.thrashing.residency;
    if (i.closestResident === UVM_ID_INVALID) return i.preferred !== UVM_ID_INVALID ? i.preferred : i.requester;
    if (i.accessedBy) return i.closestResident;
    if (i.closestResident !== i.requester && i.preferred !== UVM_ID_INVALID) return i.preferred;
    return i.requester;
  },
};

/** Never migrate on a GPU fault: map system memory remotely (zero-copy), as nouveau does. */
export const RESIDENCY_SYSMEM: ResidencyPolicy = {
  name: 'sysmem',
  select(i: ResidencyInput): ProcessorId {
    return i.requester === UVM_ID_CPU ? UVM_ID_CPU : i.closestResident === UVM_ID_INVALID ? UVM_ID_CPU : i.closestResident;
  },
};

export const RESIDENCY_POLICIES: Record<string, () => ResidencyPolicy> = {
  uvm: () => RESIDENCY_UVM,
  sysmem: () => RESIDENCY_SYSMEM,
};

export const THRASHING_POLICIES: Record<string, (params: Partial<ThrashingParams>) => ThrashingPolicy> = {
  uvm: (p) => new UvmThrashing(p),
  none: () => new NoThrashing(),
};

function choose<T extends { name: string }>(kind: string, table: Record<string, () => T>, v: string | T): T {
  if (typeof v !== 'string') {
    if (!v || typeof v.name !== 'string') fail('EINVAL', `a ${kind} policy must be a name or an object with a name`);
    return v;
  }
  const make = table[v];
  if (!make) fail('EINVAL', `unknown ${kind} policy '${v}' (known: ${Object.keys(table).join(', ')})`);
  return make();
}

export const choosePrefetch = (v: string | PrefetchPolicy): PrefetchPolicy => choose('prefetch', PREFETCH_POLICIES, v);
export const chooseEviction = (v: string | EvictionPolicy): EvictionPolicy => choose('eviction', EVICTION_POLICIES, v);
export const chooseReplay = (v: string | ReplayPolicy): ReplayPolicy => choose('replay', REPLAY_POLICIES, v);
export const chooseResidency = (v: string | ResidencyPolicy): ResidencyPolicy => choose('residency', RESIDENCY_POLICIES, v);
export function chooseThrashing(v: string | ThrashingPolicy, params: Partial<ThrashingParams>): ThrashingPolicy {
  if (typeof v !== 'string') return choose('thrashing', {}, v);
  const make = THRASHING_POLICIES[v];
  if (!make) fail('EINVAL', `unknown thrashing policy '${v}' (known: ${Object.keys(THRASHING_POLICIES).join(', ')})`);
  return make(params);
}

export { EVICTION_POLICIES, PREFETCH_POLICIES };
