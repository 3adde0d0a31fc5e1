// HMM_RANGE_DEFAULT_TIMEOUT (include/linux/hmm.h): how long a driver keeps retrying
// hmm_range_fault while invalidations keep moving the notifier sequence (drm_gpusvm_get_pages,
// drm_gpusvm_range_evict, drm_gpusvm_check_pages give up with -EBUSY after it).
//
// Time is the simulator's (docs/architecture.md decision 8): with a Clock the deadline is
// HMM_RANGE_DEFAULT_TIMEOUT of simulated time from the first pass. Without one, the deadline
// counts passes instead: GPUSVM_TIMEOUT_PASSES passes of the retry loop stand for it (the same
// budget the dmirror port gives its loop, DMIRROR_RANGE_FAULT_TRIES). A clock that never
// moves while invalidations keep coming would loop as a frozen jiffies would; the pass
// backstop ends that too.

import type { Clock } from '../clock.js';

/** HMM_RANGE_DEFAULT_TIMEOUT, in milliseconds. */
export const HMM_RANGE_DEFAULT_TIMEOUT = 1000;
/** Passes that stand for HMM_RANGE_DEFAULT_TIMEOUT when no clock is given. */
export const GPUSVM_TIMEOUT_PASSES = 1000;
/** With a clock: passes after which the loop gives up anyway (simulated time may not move inside a call). */
export const GPUSVM_TIMEOUT_BACKSTOP_PASSES = 1_000_000;

/** A retry deadline: `jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT)` and time_after(). */
export class HmmRangeTimeout {
  private passes = 0;
  private readonly deadlineNs: number;

  constructor(private readonly clock: Clock | null, timeoutMs = HMM_RANGE_DEFAULT_TIMEOUT) {
    this.deadlineNs = clock ? clock.now() + timeoutMs * 1e6 : 0;
  }

  /** Count one pass of the retry loop; true once the deadline has passed (time_after(jiffies, timeout)). */
  expired(): boolean {
    this.passes++;
    if (this.clock) return this.clock.now() > this.deadlineNs || this.passes > GPUSVM_TIMEOUT_BACKSTOP_PASSES;
    return this.passes > GPUSVM_TIMEOUT_PASSES;
  }
}
