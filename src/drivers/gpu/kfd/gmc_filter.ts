// amdgpu_gmc_filter_faults (drivers/gpu/drm/amd/amdgpu/amdgpu_gmc.c): the interrupt side drops a
// retry fault on a page that already has one pending within the timeout, so one page's retries
// do not flood the fault work; the work removes the page once it is handled
// (amdgpu_gmc_filter_faults_remove), and the next retry gets through.

/** AMDGPU_GMC_FAULT_RING_ORDER 8: the filter remembers the last 256 faults. */
const FAULT_RING_SIZE = 256;

export class GmcFaultFilter {
  /** (asid, page) key -> when it was last let through, oldest first. */
  private readonly seen = new Map<number, number>();

  constructor(private readonly timeoutNs: number) {}

  /** The key of a fault: the address space and the page. */
  static key(asid: number, addr: number): number {
    return asid * 2 ** 36 + addr / 4096;
  }

  static asidOf(key: number): number {
    return Math.floor(key / 2 ** 36);
  }

  static addrOf(key: number): number {
    return (key - GmcFaultFilter.asidOf(key) * 2 ** 36) * 4096;
  }

  /** Whether a fault on `key` at `now` goes through (and is remembered) or is dropped. */
  pass(key: number, now: number): boolean {
    const seen = this.seen.get(key);
    if (seen !== undefined && now - seen < this.timeoutNs) return false;
    this.seen.delete(key);
    this.seen.set(key, now);
    if (this.seen.size > FAULT_RING_SIZE) this.seen.delete(this.seen.keys().next().value!);
    return true;
  }

  /** amdgpu_gmc_filter_faults_remove: the fault was handled. */
  remove(key: number): void {
    this.seen.delete(key);
  }
}
