// Recording the GPU simulator (`hmmsim run --record`): the recorder attaches when the run is
// set up — the machine's mm events and the process's CPU page table, the GPU's page tables and
// events (gpu.ts) — and events carry the run's simulated time.

import type { HmmGpuDriver } from '../../drivers/gpu/driver.js';
import { UvmDriver } from '../../drivers/gpu/uvm/uvm.js';
import type { RunHooks, RunSetup } from '../simulate.js';
import type { RecordDoc } from './format.js';
import { recordGpu } from './gpu.js';
import { Recorder, type RecorderOptions } from './recorder.js';

export interface RunRecording {
  /** Pass these to executeRun / runSimulation (onSetup; other hooks pass through). */
  hooks: RunHooks;
  /** The recorder, once the run is set up (tests read its position). */
  readonly recorder: Recorder | null;
  /** After the run: the record. */
  finish(): RecordDoc;
}

/** VRAM frames in use, as the driver counts them: chosen once per driver. */
export function vramUsedOf(driver: HmmGpuDriver, s: RunSetup): { used: () => number; stop: () => void } {
  if (driver instanceof UvmDriver) return { used: () => driver.pmm.usedFrames, stop: () => {} };
  // Another driver: its counters, if it reports the figure. They build an object, so they are
  // read again only after a copy, an eviction, a fault batch or a kernel's end (the recorder
  // asks at every event): the curve may lag a copy's own pages by an event or two.
  let cached = NaN;
  let stale = true;
  const touch = (): void => void (stale = true);
  const bus = s.system.gpu.events;
  const off = [bus.subscribe('migrate', touch), bus.subscribe('evict', touch), bus.subscribe('batch', touch), bus.subscribe('kernel', touch)];
  return {
    used: () => {
      if (stale) {
        cached = driver.counters().vramPagesUsed ?? NaN;
        stale = false;
      }
      return cached;
    },
    stop: () => {
      for (const f of off) f();
    },
  };
}

/** Hooks that record a run; `hooks` are called too (progress). */
export function recordRun(opts: RecorderOptions = {}, hooks: RunHooks = {}): RunRecording {
  let rec: Recorder | null = null;
  let stopGpu: (() => void) | null = null;
  return {
    hooks: {
      ...hooks,
      onSetup: (s: RunSetup) => {
        const c = s.config;
        rec = new Recorder({
          command: 'run',
          title: `hmmsim run: ${c.workload} on ${c.preset}, ${c.driver}, ${+c.footprintMiB.toFixed(2)} MiB at oversubscription ${c.oversub}`,
          meta: { config: c },
          clock: s.engine,
          ...opts,
        }).attach(s.machine);
        const vram = vramUsedOf(s.system.driver, s);
        const stop = recordGpu(rec, s.system.gpu, { vramUsed: vram.used });
        stopGpu = () => {
          stop();
          vram.stop();
        };
        hooks.onSetup?.(s);
      },
    },
    get recorder() {
      return rec;
    },
    finish() {
      if (!rec) throw new Error('the run did not start');
      stopGpu?.();
      return rec.finish();
    },
  };
}
