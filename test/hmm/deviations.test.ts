// Guards hmmsim adds where the kernel would loop forever (docs/api.md, Deviations 4 and 18),
// and a driver's migrate_to_ram failing.

import { describe, expect, it } from 'vitest';
import {
  HmmRange, hmmRangeFault, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalSetSeq,
  HMM_PFN_REQ_FAULT, HMM_PFN_VALID, MADV_HUGEPAGE, PMD_SIZE, PROT_READ, VM_FAULT_SIGBUS,
} from '../../src/index.js';
import { HmmMirror, hmmMirrorRegister, hmmVmaFault, hmmVmaRangeDone } from '../../src/hmm/v417/index.js';
import { K_DEVICE_PRIVATE } from '../../src/mm/pagetable.js';
import { anon, cpuKind, enc, F_DP, F_VALID, F_WRITE, newMachine, P, range417, TestDevice, V_ERROR, V_NONE, errnoOf } from './helpers.js';

function world() {
  const m = newMachine();
  const p = m.spawn();
  const dev = new TestDevice(m);
  const a = anon(p, 2);
  p.writeU32(a, 1);
  const d = dev.migratePageToDevice(p.mm, a);
  return { m, p, dev, a, d };
}

describe('no-progress guards and failing migrate_to_ram', () => {
  it('mainline: a migrate_to_ram that never migrates ends in EFAULT instead of looping (deviation 18)', () => {
    const { p, dev, a } = world();
    dev.stall = true;
    const sub = new MmuIntervalNotifier({ invalidate: (s, _r, q) => { mmuIntervalSetSeq(s, q); return true; } });
    mmuIntervalNotifierInsert(sub, p.mm, a, 2 * P);
    const r = new HmmRange({ notifier: sub, start: a, end: a + P, defaultFlags: HMM_PFN_REQ_FAULT });
    r.notifierSeq = mmuIntervalReadBegin(sub);
    expect(errnoOf(() => hmmRangeFault(r))).toBe('EFAULT');
    expect(dev.faults).toBeGreaterThan(10);
    expect(cpuKind(p.mm, a)).toBe(K_DEVICE_PRIVATE);
  });

  it('4.17: a fault that changes nothing is not repeated; the page is reported as it is (deviation 4)', () => {
    const { p, dev, a, d } = world();
    dev.stall = true;
    hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), p.mm);
    const r = range417(p, a, a + P);
    r.pfns[0] = F_VALID | F_DP;
    hmmVmaFault(r, true);
    expect(dev.faults).toBe(1);
    expect(r.pfns[0]).toBe(enc(d, F_VALID | F_DP | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('migrate_to_ram returning VM_FAULT_SIGBUS: EFAULT for both APIs (4.17 keeps the ERROR marker)', () => {
    const { p, dev, a } = world();
    dev.faultResult = VM_FAULT_SIGBUS;
    const sub = new MmuIntervalNotifier({ invalidate: (s, _r, q) => { mmuIntervalSetSeq(s, q); return true; } });
    mmuIntervalNotifierInsert(sub, p.mm, a, 2 * P);
    const r = new HmmRange({ notifier: sub, start: a, end: a + 2 * P, defaultFlags: HMM_PFN_REQ_FAULT });
    r.notifierSeq = mmuIntervalReadBegin(sub);
    expect(errnoOf(() => hmmRangeFault(r))).toBe('EFAULT');
    hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), p.mm);
    const q = range417(p, a, a + 2 * P);
    q.pfns.fill(F_VALID | F_DP);
    expect(errnoOf(() => hmmVmaFault(q, true))).toBe('EFAULT');
    expect([...q.pfns]).toEqual([V_ERROR, V_NONE]);
  });
});

describe('mm fix made for HMM (docs/api.md, "mm fixes made for HMM")', () => {
  it('splitting a huge zero PMD at a VMA boundary notifies the whole PMD, so a mirror drops its stale huge-zero pfns', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 512);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.readU8(a); // the huge zero page maps the whole PMD
    const seen: Array<[number, number]> = [];
    const sub = new MmuIntervalNotifier({ invalidate: (s, r, q) => { mmuIntervalSetSeq(s, q); seen.push([r.start, r.end]); return true; } });
    mmuIntervalNotifierInsert(sub, p.mm, a, P);
    const r = new HmmRange({ notifier: sub, start: a, end: a + P });
    r.notifierSeq = mmuIntervalReadBegin(sub);
    hmmRangeFault(r);
    expect(r.hmmFlags[0]).toBe(HMM_PFN_VALID | 9);
    const hugeZero = r.hmmPfns[0];
    p.mprotect(a + 100 * P, P, PROT_READ); // splits the PMD; page 0 now maps the small zero page
    expect(seen).toContainEqual([a, a + PMD_SIZE]);
    r.notifierSeq = mmuIntervalReadBegin(sub);
    hmmRangeFault(r);
    expect(r.hmmPfns[0]).toBe(m.phys.zeroPfn);
    expect(r.hmmPfns[0]).not.toBe(hugeZero);
  });
});
