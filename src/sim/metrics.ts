// Counters a simulation keeps by listening to the machine's events: faults by kind,
// invalidations by event, frames freed. Listening costs only while a collector is attached.

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

export class Metrics {
  private readonly cpuFaults = new Map<string, number>();
  private readonly deviceFaults = new Map<string, number>();
  private readonly invalidations = new Map<string, number>();
  private freedSystem = 0;
  private freedDevice = 0;
  private toDevice = 0;
  private toSystem = 0;
  private readonly off: Array<() => void> = [];

  constructor(machine: Machine) {
    const ev = machine.events;
    this.off.push(
      ev.subscribe('fault', (e) => {
        // One count per fault; the totals by kind are the two added up (snapshot).
        const by = e.remote ? this.deviceFaults : this.cpuFaults;
        by.set(e.kind, (by.get(e.kind) ?? 0) + 1);
      }),
      ev.subscribe('invalidate', (e) => {
        if (e.phase === 'start') this.invalidations.set(e.range.event, (this.invalidations.get(e.range.event) ?? 0) + 1);
      }),
      ev.subscribe('free', (e) => {
        if (e.device) this.freedDevice += 1 << e.order;
        else this.freedSystem += 1 << e.order;
      }),
      ev.subscribe('migrate', (e) => {
        if (e.toDevice) this.toDevice++;
        else this.toSystem++;
      }),
    );
  }

  /** Stop listening. */
  detach(): void {
    for (const f of this.off.splice(0)) f();
  }

  snapshot(): MetricsSnapshot {
    return {
      faults: Object.fromEntries([...this.cpuFaults.keys(), ...this.deviceFaults.keys()].sort().filter((k, i, a) => k !== a[i - 1])
        .map((k) => [k, (this.cpuFaults.get(k) ?? 0) + (this.deviceFaults.get(k) ?? 0)])),
      cpuFaults: Object.fromEntries([...this.cpuFaults].sort()),
      deviceFaults: Object.fromEntries([...this.deviceFaults].sort()),
      invalidations: Object.fromEntries([...this.invalidations].sort()),
      framesFreed: { system: this.freedSystem, device: this.freedDevice },
      migrations: { toDevice: this.toDevice, toSystem: this.toSystem },
    };
  }
}
