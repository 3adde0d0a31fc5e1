// Recording a failing `hmmsim check` schedule (`hmmsim check --record`): the schedule is run
// once more from its token with the recorder attached to the world's machine, so the swim
// lanes come with the event log and the page tables — the CPU's of each process and the device
// table of each mirror — a mark per step (mark 0 is the setup, mark k step k).
//
// A check driver's device table (DeviceMappings) emits nothing when it changes: it is read
// whole after every step, which is cheap for the few pages a scenario maps.

import type { Mm } from '../../mm/mm.js';
import { parseCheckToken, scenarioProgram } from '../../check/check.js';
import type { CheckDriver } from '../../check/driver.js';
import type { DeviceMappings } from '../../check/device-pt.js';
import type { World } from '../../check/world.js';
import { DPTE_WRITE } from '../../drivers/gpusvm/device-pagetable.js';
import { replaySchedule } from '../../sched/explore.js';
import type { RecordDoc } from './format.js';
import { type DeviceTableSource, Recorder } from './recorder.js';

/** A check mirror's device table as a recorder source; `poll()` reports the entries that changed since the last poll. */
export function deviceMappingsSource(pt: DeviceMappings, mm: Mm, name: string): DeviceTableSource & { poll(): void } {
  const watchers: Array<(vpn: number, n: number) => void> = [];
  let last = new Map<number, number>();
  return {
    name,
    mm,
    memory: null,
    entry(vpn) {
      const pfn = pt.lookup(vpn);
      return pfn < 0 ? -1 : pfn * 2 + (pt.flagsOf(vpn) & DPTE_WRITE ? 1 : 0);
    },
    forEachVpn(s, e, fn) {
      pt.forEach((vpn) => {
        if (vpn >= s && vpn < e) fn(vpn);
      });
    },
    watch(fn) {
      watchers.push(fn);
      return () => void watchers.splice(watchers.indexOf(fn), 1);
    },
    poll() {
      const now = new Map<number, number>();
      pt.forEach((vpn, pfn, flags) => void now.set(vpn, pfn * 2 + (flags & DPTE_WRITE ? 1 : 0)));
      const changed: number[] = [];
      for (const [vpn, ent] of now) if (last.get(vpn) !== ent) changed.push(vpn);
      for (const vpn of last.keys()) if (!now.has(vpn)) changed.push(vpn);
      last = now;
      changed.sort((a, b) => a - b);
      for (const vpn of changed) for (const w of watchers) w(vpn, 1);
    },
  };
}

export interface CheckRecording {
  doc: RecordDoc;
  /** The world the schedule ran in (its machine as the schedule left it). */
  world: World;
}

/** Run the schedule of `token` against `driver` once, recorded. */
export async function recordCheckSchedule(driver: CheckDriver, token: string, title = `hmmsim check: ${token}`): Promise<CheckRecording> {
  const { scenario, schedule } = parseCheckToken(token);
  let rec: Recorder | null = null;
  let world: World | null = null;
  const sources: Array<ReturnType<typeof deviceMappingsSource>> = [];
  const afterStep = (w: World): void => {
    // Mirrors appear as the scenario attaches them.
    for (let i = sources.length; i < w.mirrors.length; i++) {
      const m = w.mirrors[i]!;
      const src = deviceMappingsSource(m.mirror.pt, m.proc.mm, `device (${m.name})`);
      sources.push(src);
      rec!.addDevice(src);
    }
    for (const s of sources) s.poll();
  };
  let steps = 0;
  const program = scenarioProgram(driver, scenario, (w) => {
    world = w;
    rec = new Recorder({ command: 'check', title, meta: { token } }).attach(w.machine);
    rec.mark('setup');
    // Step k's span starts when step k - 1 ends (the threads start after the setup); it is
    // named once the schedule has run, from the world's trace.
    const run = w.run.bind(w);
    w.run = () => {
      afterStep(w);
      rec!.mark(`step ${++steps}`);
      return run();
    };
    const step = w.sched.onStep;
    w.sched.onStep = (task) => {
      try {
        step?.(task);
      } finally {
        afterStep(w);
        rec!.mark(`step ${++steps}`);
      }
    };
  });
  await replaySchedule(program, schedule);
  if (!rec || !world) throw new Error(`the schedule ${token} did not start`);
  const r = rec as Recorder;
  const w = world as World;
  afterStep(w);
  const doc = r.finish();
  // The span opened after the last step holds only the teardown, if anything.
  const last = doc.marks[doc.marks.length - 1];
  if (last && doc.marks.length > w.trace.length + 1) {
    if (last.end > last.start) last.label = 'after the last step';
    else doc.marks.pop();
  }
  w.trace.forEach((t, k) => {
    const m = doc.marks[k + 1];
    if (m) m.label = `step ${k + 1}: ${t.threadName}: ${t.notes[0] ?? `-> ${t.stoppedAt}`}`;
  });
  return { doc, world: w };
}
