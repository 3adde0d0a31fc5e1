// Counters a simulation keeps of the machine's events: faults by kind, invalidations by event,
// frames freed (from the bus's tally, which the mm keeps with no event object: counting
// them through listeners cost the demo about a tenth of its time), migrations (by listening,
// while attached).

import { EventTally, FAULT_KINDS, INVALIDATE_EVENTS } from '../mm/events.js';
import type { Machine } from '../mm/machine.js';

export interface MetricsSnapshot {
  /** Faults by kind, whoever took them. */
  faults: Record<string, number>;
  /** Faults a CPU access took (FAULT_FLAG_USER), by kind. */
  cpuFaults: Record<string, number>;
  /** Faults taken on a device's behalf (FAULT_FLAG_REMOTE: hmm_range_fault, get_user_pages), by kind. */
  deviceFaults: Record<string, number>;
  /** Invalidation ranges started, by event kind. */
  invalidations: Record<string, number>;
  framesFreed: { system: number; device: number };
  migrations: { toDevice: number; toSystem: number };
}

/** The tally's counts, copied (the difference of two is what happened in between). */
function copyTally(t: EventTally): EventTally {
  const c = new EventTally();
  c.faults.set(t.faults);
  c.invalidations.set(t.invalidations);
  c.freedSystem = t.freedSystem;
  c.freedDevice = t.freedDevice;
  return c;
}

export class Metrics {
  /** The tally when attached, and when detached (null while attached). */
  private readonly from: EventTally;
  private to: EventTally | null = null;
  private toDevice = 0;
  private toSystem = 0;
  private off: (() => void) | null;

  constructor(private readonly machine: Machine) {
    this.from = copyTally(machine.events.tally);
    this.off = machine.events.subscribe('migrate', (e) => {
      if (e.toDevice) this.toDevice++;
      else this.toSystem++;
    });
  }

  /** Stop counting. */
  detach(): void {
    if (!this.off) return;
    this.off();
    this.off = null;
    this.to = copyTally(this.machine.events.tally);
  }

  snapshot(): MetricsSnapshot {
    const to = this.to ?? this.machine.events.tally;
    const from = this.from;
    const faults: Array<[string, number]> = [];
    const cpuFaults: Array<[string, number]> = [];
    const deviceFaults: Array<[string, number]> = [];
    FAULT_KINDS.forEach((k, i) => {
      const cpu = to.faults[2 * i]! - from.faults[2 * i]!;
      const dev = to.faults[2 * i + 1]! - from.faults[2 * i + 1]!;
      if (cpu > 0) cpuFaults.push([k, cpu]);
      if (dev > 0) deviceFaults.push([k, dev]);
      if (cpu + dev > 0) faults.push([k, cpu + dev]);
    });
    const invalidations: Array<[string, number]> = [];
    INVALIDATE_EVENTS.forEach((ev, i) => {
      const n = to.invalidations[i]! - from.invalidations[i]!;
      if (n > 0) invalidations.push([ev, n]);
    });
    const sorted = (xs: Array<[string, number]>) => Object.fromEntries(xs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
    return {
      faults: sorted(faults),
      cpuFaults: sorted(cpuFaults),
      deviceFaults: sorted(deviceFaults),
      invalidations: sorted(invalidations),
      framesFreed: { system: to.freedSystem - from.freedSystem, device: to.freedDevice - from.freedDevice },
      migrations: { toDevice: this.toDevice, toSystem: this.toSystem },
    };
  }
}
