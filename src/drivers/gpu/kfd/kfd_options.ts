// amdkfd's SVM options: the module parameters and per-process settings a kfd driver is built
// with (amdgpu_svm_default_granularity, HSA_XNACK, the retry and restore delays of kfd_svm.c).

import { fail } from '../../../mm/errno.js';
import { isSeed } from '../../../sched/random.js';
import type { KfdEvictionPolicy } from './svm_bo.js';

export interface KfdOptions {
  /** XNACK (HSA_XNACK=1): the GPU retries faulting accesses and the driver services them. */
  xnack: boolean;
  /** svm_default_granularity: log2 of the migration window in pages (9: 2 MiB; at most 0x1B). */
  granularity: number;
  /** AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING: faults on a range validated this recently are dropped (2 ms). */
  retryFaultPendingMs: number;
  /** AMDGPU_SVM_RANGE_RESTORE_DELAY_MS: the restore worker runs this long after a queue eviction (1 ms). */
  restoreDelayMs: number;
  /**
   * amdgpu_gmc_filter_faults: a fault on a page already pending within this window is dropped.
   * AMDGPU_GMC_FAULT_TIMEOUT is 5000 IH timestamp ticks; 50 us assumes a 100 MHz timestamp.
   */
  faultFilterNs: number;
  /** The order TTM evicts SVM BOs in: 'ttm' (default), 'lru', 'random', or your own. */
  evict: string | KfdEvictionPolicy;
  /** Seed of the random eviction order. */
  seed: number;
}

export const DEFAULT_KFD_OPTIONS: KfdOptions = {
  xnack: true, granularity: 9, retryFaultPendingMs: 2, restoreDelayMs: 1, faultFilterNs: 50_000, evict: 'ttm', seed: 1,
};

/** The options `partial` names over the defaults, or EINVAL naming the bad one. */
export function kfdOptions(partial: Partial<KfdOptions>): KfdOptions {
  for (const k of Object.keys(partial)) if (!(k in DEFAULT_KFD_OPTIONS)) fail('EINVAL', `unknown kfd option ${k}`);
  const o: KfdOptions = { ...DEFAULT_KFD_OPTIONS, ...partial };
  if (typeof o.xnack !== 'boolean') fail('EINVAL', 'kfd option xnack must be a boolean');
  if (!Number.isInteger(o.granularity) || o.granularity < 0 || o.granularity > 0x1b) fail('EINVAL', `kfd granularity must be an integer in 0..27, got ${String(o.granularity)}`);
  for (const k of ['retryFaultPendingMs', 'restoreDelayMs', 'faultFilterNs'] as const) {
    if (!(o[k] >= 0 && Number.isFinite(o[k]))) fail('EINVAL', `kfd option ${k} must be a finite number >= 0`);
  }
  if (!isSeed(o.seed)) fail('EINVAL', `kfd option seed must be an integer from 0 to 2^53-1, got ${String(o.seed)}`);
  return o;
}
