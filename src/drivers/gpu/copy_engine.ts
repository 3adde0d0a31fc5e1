// A copy engine (CE): a DMA engine that moves data between system memory and VRAM. Copies
// pushed to one engine run one after another; the time of each is the cost model's
// transferNs(bytes, direction). The data itself moves in the model's page frames when the
// driver copies them (phys.copyPage); the engine only keeps time.

import type { EventQueue } from '../clock.js';
import type { GpuCosts, TransferDirection } from './costs.js';

export class CopyEngine {
  /** When the last queued copy completes. */
  private busyUntil = 0;
  copies = 0;
  htodBytes = 0;
  dtohBytes = 0;
  /** Time spent copying (the sum of transfer times). */
  busyNs = 0;

  constructor(readonly id: number, private readonly queue: EventQueue, private readonly costs: GpuCosts) {}

  /**
   * Queue one copy of `bytes` that may start at `earliestNs` (default now); returns the time
   * it completes. Zero bytes completes when the queue drains.
   */
  copy(bytes: number, dir: TransferDirection, earliestNs = this.queue.now()): number {
    const start = Math.max(earliestNs, this.queue.now(), this.busyUntil);
    if (bytes <= 0) return start;
    const t = this.costs.transferNs(bytes, dir);
    this.busyUntil = start + t;
    this.busyNs += t;
    this.copies++;
    if (dir === 'htod') this.htodBytes += bytes;
    else this.dtohBytes += bytes;
    return this.busyUntil;
  }

  /** When the engine is next idle. */
  get idleAt(): number {
    return Math.max(this.busyUntil, this.queue.now());
  }
}
