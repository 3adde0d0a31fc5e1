// Access counters (uvm_gpu_access_counters.c): the GPU counts its accesses to system memory
// (remote mappings) per region of `granularity` bytes (2 MiB, UVM_PERF_ACCESS_COUNTER_GRANULARITY);
// when a region's count reaches `threshold` (uvm_perf_access_counter_threshold, 256) it writes a
// notification to the access counter buffer, resets the count, and interrupts the driver,
// which fetches notifications in batches of `batchCount` (uvm_perf_access_counter_batch_count,
// 256). A full buffer drops notifications.

export interface AccessCounterConfig {
  /** Bytes per counted region. Default 2 MiB. */
  granularity: number;
  /** Remote accesses to a region before a notification. Default 256. */
  threshold: number;
  /** Notifications the driver fetches per batch. Default 256. */
  batchCount: number;
  /** Notification buffer entries. Default 2048. */
  bufferEntries: number;
}

export const DEFAULT_ACCESS_COUNTER_CONFIG: AccessCounterConfig = { granularity: 2 << 20, threshold: 256, batchCount: 256, bufferEntries: 2048 };

export class AccessCounters {
  private readonly counts = new Map<number, number>();
  /** Pending notifications: region start address, address space, count. */
  private readonly addrs: Float64Array;
  private readonly asids: Uint16Array;
  private readonly values: Uint32Array;
  private head = 0;
  private n = 0;
  notifications = 0;
  dropped = 0;
  /** Called when the buffer goes from empty to non-empty (the interrupt). */
  onNotify: (() => void) | null = null;

  constructor(readonly config: AccessCounterConfig) {
    if (!(config.granularity > 0) || config.granularity % 4096) throw new RangeError('access counter granularity must be a multiple of 4 KiB');
    if (!(config.threshold >= 1) || !(config.batchCount >= 1) || !(config.bufferEntries >= 1)) throw new RangeError('bad access counter configuration');
    this.addrs = new Float64Array(config.bufferEntries);
    this.asids = new Uint16Array(config.bufferEntries);
    this.values = new Uint32Array(config.bufferEntries);
  }

  /** One remote access by address space asid to page vpn. */
  record(asid: number, vpn: number): void {
    const regionPages = this.config.granularity / 4096;
    const region = Math.floor(vpn / regionPages);
    const key = asid * 2 ** 37 + region;
    const c = (this.counts.get(key) ?? 0) + 1;
    if (c < this.config.threshold) {
      this.counts.set(key, c);
      return;
    }
    this.counts.delete(key);
    if (this.n === this.addrs.length) {
      this.dropped++;
      return;
    }
    const i = (this.head + this.n) % this.addrs.length;
    this.addrs[i] = region * this.config.granularity;
    this.asids[i] = asid;
    this.values[i] = c;
    this.n++;
    this.notifications++;
    if (this.n === 1) this.onNotify?.();
  }

  get pending(): number {
    return this.n;
  }

  /** Fetch up to `max` notifications (default batchCount) into out; returns how many. */
  fetch(out: { addr: number; asid: number; count: number }[], max = this.config.batchCount): number {
    let k = 0;
    while (this.n > 0 && k < max) {
      const i = this.head;
      out[k] = { addr: this.addrs[i]!, asid: this.asids[i]!, count: this.values[i]! };
      this.head = (this.head + 1) % this.addrs.length;
      this.n--;
      k++;
    }
    return k;
  }

  /** Clear the counters of an address space (all regions), e.g. after the driver acted on them. */
  clear(asid = -1): void {
    if (asid < 0) this.counts.clear();
    else for (const k of [...this.counts.keys()]) if (Math.floor(k / 2 ** 37) === asid) this.counts.delete(k);
  }
}
