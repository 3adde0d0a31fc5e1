// Records for the visualizer's tests: the demo scenario, small; and a run of over a million
// events (the device faults, writes, migrates, the CPU pages out and the device reads back).
import {
  Machine, MADV_NOHUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE,
} from '../../src/index.js';
import { SvmDevice } from '../../src/drivers/svmdev/index.js';
import { runDemo } from '../../src/sim/demo.js';
import { Recorder, recordDemo, svmDeviceSource, type RecordDoc } from '../../src/sim/record/index.js';
import { recordRun } from '../../src/sim/record/run.js';
import { runSimulation } from '../../src/sim/simulate.js';

export function demoRecord(sizeMiB = 1, seed = 1): RecordDoc {
  const rec = recordDemo({ command: 'demo', title: `hmmsim demo: ${sizeMiB} MiB, seed ${seed}` });
  const r = runDemo({ sizeBytes: sizeMiB << 20, seed, ...rec.hooks });
  if (!r.ok) throw new Error('the demo failed');
  return rec.finish();
}

/** A small GPU simulation (stream over 4 MiB with 2 MiB of VRAM: faults, migrations, evictions), recorded as `hmmsim run --record` does. */
export function gpuRunRecord(): RecordDoc {
  const rec = recordRun();
  runSimulation({ workload: 'stream', footprintMiB: 4, oversub: 1.25, iterations: 1, costs: { hardware: { sms: 4, warpsPerSm: 8, utlbEntries: 64, l2TlbEntries: 512 } } }, rec.hooks);
  return rec.finish();
}

/** About 1.2 million events over 512 MiB (131072 pages). */
export function millionRecord(pages = 131072): RecordDoc {
  const P = PAGE_SIZE;
  const m = new Machine({ ramBytes: 2 * pages * P + (64 << 20), swapBytes: pages * P });
  const proc = m.spawn();
  const base = proc.mmap(0, pages * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  proc.madvise(base, pages * P, MADV_NOHUGEPAGE);
  const dev = new SvmDevice(proc.mm, { device: 'dev0' });
  dev.attachMemory(pages / 8);
  const rec = new Recorder({ command: 'test', title: 'a million events' }).attach(m);
  rec.addDevice(svmDeviceSource(dev, 'dev0'));
  const end = base + pages * P;
  rec.mark('device reads everything (zero pages)');
  dev.fault(base, end, false);
  rec.mark('device writes everything');
  dev.fault(base, end, true);
  rec.mark('device migrates an eighth');
  dev.migrateToDevice(base, base + (pages / 8) * P);
  rec.mark('CPU pages out half');
  proc.madvise(base + (pages / 2) * P, (pages / 2) * P, MADV_PAGEOUT);
  rec.mark('device reads everything again');
  dev.fault(base, end, false);
  const doc = rec.finish();
  dev.close();
  m.dispose();
  return doc;
}
