// The sleeping forms under the deterministic scheduler: a device fault handler waits for a
// migration that a CPU-side task finishes, in every interleaving the scheduler picks.

import { describe, expect, it } from 'vitest';
import {
  HmmRange, hmmRangeFaultAsync, KernelError, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin,
  mmuIntervalReadRetry, mmuIntervalSetSeq, HMM_PFN_REQ_FAULT, HMM_PFN_VALID,
} from '../../src/index.js';
import { HmmMirror, hmmMirrorRegister, hmmVmaFaultAsync, hmmVmaRangeDone } from '../../src/hmm/v417/index.js';
import { explore } from '../../src/sched/scheduler.js';
import { anon, cpuPfn, enc, F_VALID, F_WRITE, newMachine, P, range417, startMigration } from './helpers.js';

describe('HMM faults as scheduler tasks', () => {
  it('mainline: hmmRangeFaultAsync sleeps on a migration entry and reports the page the migration installed', async () => {
    const failed = await explore(async (sched) => {
      const m = newMachine(32);
      const p = m.spawn();
      const a = anon(p, 4);
      for (let i = 0; i < 4; i++) p.writeU32(a + i * P, i);
      const mig = startMigration(p.mm, a + P);
      let to = -1;
      const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => { mmuIntervalSetSeq(s, seq); return true; } });
      mmuIntervalNotifierInsert(sub, p.mm, a, 4 * P);
      const device = sched.spawn<HmmRange>('device', async (task) => {
        const r = new HmmRange({ notifier: sub, start: a, end: a + 4 * P, defaultFlags: HMM_PFN_REQ_FAULT });
        for (;;) {
          r.notifierSeq = await task.blocking(() => mmuIntervalReadBegin(sub));
          try {
            await hmmRangeFaultAsync(r, (w) => task.sleep(w));
          } catch (e) {
            if (e instanceof KernelError && e.errno === 'EBUSY') continue;
            throw e;
          }
          await task.yield('before the driver lock');
          if (!mmuIntervalReadRetry(sub, r.notifierSeq)) return r;
        }
      });
      sched.spawn('cpu', async (task) => {
        await task.yield();
        to = mig.finish(true);
      });
      await sched.run();
      const r = device.result!;
      expect(r.hmmFlags[1]! & HMM_PFN_VALID).toBe(HMM_PFN_VALID);
      expect(r.hmmPfns[1]).toBe(to);
      expect(cpuPfn(p.mm, a + P)).toBe(to);
    }, 20);
    expect(failed).toBeNull();
  });

  it('4.17: hmmVmaFaultAsync keeps the range tracked while it sleeps', async () => {
    const failed = await explore(async (sched) => {
      const m = newMachine(32);
      const p = m.spawn();
      hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), p.mm);
      const a = anon(p, 2);
      p.writeU32(a, 1);
      const mig = startMigration(p.mm, a);
      let to = -1;
      const r = range417(p, a, a + 2 * P);
      const device = sched.spawn<number>('device', async (task) => {
        for (;;) {
          r.pfns.fill(F_VALID);
          await hmmVmaFaultAsync(r, true, (w) => task.sleep(w));
          await task.yield('before the driver lock');
          if (hmmVmaRangeDone(r)) return r.pfns[0]!;
        }
      });
      sched.spawn('cpu', async (task) => {
        await task.yield();
        to = mig.finish(true);
      });
      await sched.run();
      expect(device.result).toBe(enc(to, F_VALID | F_WRITE));
    }, 20);
    expect(failed).toBeNull();
  });
});
