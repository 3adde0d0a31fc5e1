// Bad input to both APIs: a typed errno, and nothing changed (no entry written, nothing
// tracked, nothing faulted, no state created).

import { describe, expect, it } from 'vitest';
import {
  HmmRange, hmmRangeFault, hmmRangeFaultAsync, KernelError, MmuIntervalNotifier, mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalSetSeq, HMM_PFN_REQ_FAULT, PROT_READ, type Process, type Mm,
} from '../../src/index.js';
import {
  HmmMirror, hmmMirrorRegister, hmmMirrorUnregister, hmmVmaFault, hmmVmaGetPfns, hmmVmaRangeDone, hmmOf,
  HmmRange as HmmRange417,
} from '../../src/hmm/v417/index.js';
import { K_NONE } from '../../src/mm/pagetable.js';
import { anon, cpuKind, F_DP, F_VALID, F_WRITE, newMachine, P, range417, V_ERROR, V_NONE, V_SPECIAL, errnoOf } from './helpers.js';

function with417() {
  const m = newMachine();
  const p = m.spawn();
  const mirror = new HmmMirror({ syncCpuDevicePagetables: () => {} });
  hmmMirrorRegister(mirror, p.mm);
  const a = anon(p, 8);
  return { m, p, mirror, a };
}

function mk(p: Process, vmaAt: number, start: number, end: number, pfns?: Float64Array): HmmRange417 {
  return new HmmRange417({
    vma: p.mm.findVma(vmaAt)!, start, end, flags: [F_VALID, F_WRITE, F_DP], values: [V_ERROR, V_NONE, V_SPECIAL], pfnShift: 6, pfns,
  });
}

/** Both 4.17 entry points on r: each must fail with `errno` and leave r and the mm as they were. */
function expect417Refused(p: Process, r: HmmRange417, errno: string): void {
  for (const call of [hmmVmaGetPfns, (x: HmmRange417) => hmmVmaFault(x, true), (x: HmmRange417) => hmmVmaFault(x, false)]) {
    r.pfns.fill(F_VALID | F_WRITE);
    const before = [...r.pfns];
    expect(errnoOf(() => call(r))).toBe(errno);
    expect([...r.pfns]).toEqual(before);
    expect(r.tracker).toBeNull();
  }
  const hmm = hmmOf(p.mm);
  if (hmm) expect(hmm.ranges.length).toBe(0);
}

function mainline(mm: Mm, start: number, len: number) {
  const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => { mmuIntervalSetSeq(s, seq); return true; } });
  mmuIntervalNotifierInsert(sub, mm, start, len);
  return sub;
}

describe('bad input: typed errno, nothing changed', () => {
  it('4.17: reversed, empty and unaligned ranges: EINVAL', () => {
    const { p, a } = with417();
    expect417Refused(p, mk(p, a, a + 4 * P, a + 2 * P, new Float64Array(4)), 'EINVAL');
    expect417Refused(p, mk(p, a, a + 2 * P, a + 2 * P, new Float64Array(4)), 'EINVAL');
    expect417Refused(p, mk(p, a, a + 100, a + 2 * P), 'EINVAL');
    expect417Refused(p, mk(p, a, a, a + 2 * P + 1, new Float64Array(4)), 'EINVAL');
    expect(cpuKind(p.mm, a)).toBe(K_NONE);
  });

  it('4.17: a range across two VMAs: EINVAL', () => {
    const { p, a } = with417();
    const b = anon(p, 4, PROT_READ); // just below a, not mergeable
    expect(b + 4 * P).toBe(a);
    expect417Refused(p, mk(p, a, b + 2 * P, a + 2 * P), 'EINVAL');
    expect417Refused(p, mk(p, b, b + 2 * P, a + 2 * P), 'EINVAL');
  });

  it('4.17: pfns shorter than the range: EINVAL', () => {
    const { p, a } = with417();
    expect417Refused(p, mk(p, a, a, a + 4 * P, new Float64Array(3)), 'EINVAL');
  });

  it('4.17: a stale VMA (unmapped since the range was built): EINVAL', () => {
    const { p, a } = with417();
    const r = mk(p, a, a, a + 2 * P);
    p.munmap(a, 8 * P);
    expect417Refused(p, r, 'EINVAL');
  });

  it('4.17: a range already tracked: EINVAL (4.17 would corrupt its list)', () => {
    const { p, a } = with417();
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    r.pfns.fill(7);
    expect(errnoOf(() => hmmVmaGetPfns(r))).toBe('EINVAL');
    expect(errnoOf(() => hmmVmaFault(r, true))).toBe('EINVAL');
    expect([...r.pfns]).toEqual([7, 7]);
    expect(hmmOf(p.mm)!.ranges).toEqual([r]);
    hmmVmaRangeDone(r);
  });

  it('4.17: unregistered mirror (no mirror left on the mm): EINVAL', () => {
    const { p, a, mirror } = with417();
    hmmMirrorUnregister(mirror);
    expect417Refused(p, range417(p, a, a + 2 * P), 'EINVAL');
    expect(hmmOf(p.mm)).toBeUndefined();
  });

  it('4.17: exited mm: ESRCH for snapshots and registration', () => {
    const { p, a, mirror } = with417();
    const r = range417(p, a, a + 2 * P);
    const mm = p.mm;
    p.exit();
    expect417Refused(p, r, 'ESRCH');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), mm))).toBe('ESRCH');
    hmmMirrorUnregister(mirror);
  });

  it('4.17: registration misuse: twice, a conflicting syncAt, from a sync callback (EDEADLK), from release (ESRCH)', () => {
    const { p, a, mirror } = with417();
    expect(errnoOf(() => hmmMirrorRegister(mirror, p.mm))).toBe('EINVAL');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), p.mm, { syncAt: 'end' }))).toBe('EINVAL');
    expect(hmmOf(p.mm)!.mirrors).toEqual([mirror]);
    const errs: string[] = [];
    const nested = new HmmMirror({
      syncCpuDevicePagetables: () => {
        errs.push(errnoOf(() => hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), p.mm)));
        errs.push(errnoOf(() => hmmMirrorUnregister(mirror)));
      },
      release: () => void errs.push(errnoOf(() => hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: () => {} }), p.mm))),
    });
    hmmMirrorRegister(nested, p.mm);
    p.writeU8(a, 1);
    p.munmap(a, P);
    expect(errs).toEqual(['EDEADLK', 'EDEADLK']);
    expect(hmmOf(p.mm)!.mirrors).toEqual([nested, mirror]);
    p.exit();
    expect(errs).toEqual(['EDEADLK', 'EDEADLK', 'ESRCH']);
  });

  it('4.17: range_done on something that is not a tracked range: EINVAL', () => {
    const { p, a } = with417();
    expect(errnoOf(() => hmmVmaRangeDone(range417(p, a, a + P)))).toBe('EINVAL');
    expect(errnoOf(() => hmmVmaRangeDone({} as HmmRange417))).toBe('EINVAL');
  });

  it('4.17: bad encodings are refused when the range is built: EINVAL', () => {
    const { p, a } = with417();
    const vma = p.mm.findVma(a)!;
    const base = { vma, start: a, end: a + P };
    expect(errnoOf(() => new HmmRange417({ ...base, flags: [1, 2, 4], values: [8, 16, 32], pfnShift: 21 }))).toBe('EINVAL');
    expect(errnoOf(() => new HmmRange417({ ...base, flags: [1, 2, 64], values: [8, 16, 32], pfnShift: 6 }))).toBe('EINVAL');
    expect(errnoOf(() => new HmmRange417({ ...base, flags: [1, 2, 4], values: [9, 16, 32], pfnShift: 6 }))).toBe('EINVAL');
    expect(errnoOf(() => new HmmRange417({ ...base, flags: [1, 2, 4], values: [8, 8, 32], pfnShift: 6 }))).toBe('EINVAL');
    expect(errnoOf(() => new HmmRange417({ ...base, flags: [1, 2, 4], values: [8, 16, -1], pfnShift: 6 }))).toBe('EINVAL');
  });

  it('mainline: reversed, empty, unaligned ranges and short arrays: EINVAL, nothing written or faulted', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 8);
    const sub = mainline(p.mm, a, 8 * P);
    const cases: Array<[number, number, number]> = [
      [a + 4 * P, a + 2 * P, 8], [a, a, 8], [a + 1, a + 2 * P, 8], [a, a + 2 * P + 7, 8], [a, a + 4 * P, 3],
    ];
    for (const [s, e, n] of cases) {
      const r = new HmmRange({ notifier: sub, start: s, end: e, defaultFlags: HMM_PFN_REQ_FAULT, hmmPfns: new Uint32Array(n).fill(9), hmmFlags: new Uint8Array(n).fill(9) });
      r.notifierSeq = mmuIntervalReadBegin(sub);
      expect(errnoOf(() => hmmRangeFault(r))).toBe('EINVAL');
      expect([...r.hmmPfns].every((v) => v === 9) && [...r.hmmFlags].every((v) => v === 9)).toBe(true);
    }
    const bad = new HmmRange({ notifier: sub, start: a, end: a + P, defaultFlags: 0x100 });
    expect(errnoOf(() => hmmRangeFault(bad))).toBe('EINVAL');
    expect(cpuKind(p.mm, a)).toBe(K_NONE);
  });

  it('mainline: a notifier never inserted, or removed: EINVAL', async () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    const loose = new MmuIntervalNotifier({ invalidate: () => true });
    expect(errnoOf(() => hmmRangeFault(new HmmRange({ notifier: loose, start: a, end: a + P, defaultFlags: HMM_PFN_REQ_FAULT })))).toBe('EINVAL');
    const sub = mainline(p.mm, a, 2 * P);
    mmuIntervalNotifierRemove(sub);
    const r = new HmmRange({ notifier: sub, start: a, end: a + P, defaultFlags: HMM_PFN_REQ_FAULT });
    expect(errnoOf(() => hmmRangeFault(r))).toBe('EINVAL');
    await expect(hmmRangeFaultAsync(r)).rejects.toThrow(KernelError);
    expect(cpuKind(p.mm, a)).toBe(K_NONE);
  });

  it('hmm_range_fault and hmm_vma_get_pfns / hmm_vma_fault from an invalidate callback of the same mm: EDEADLK (mmap lock), nothing written or faulted', () => {
    const { p, a } = with417();
    const sub = mainline(p.mm, a, 8 * P);
    const got: string[] = [];
    const r = new HmmRange({ notifier: sub, start: a + 2 * P, end: a + 3 * P, defaultFlags: HMM_PFN_REQ_FAULT, hmmPfns: new Uint32Array(1).fill(9), hmmFlags: new Uint8Array(1).fill(9) });
    const r417 = range417(p, a + 2 * P, a + 3 * P);
    mmuIntervalNotifierInsert(new MmuIntervalNotifier({
      invalidate: (s, _r, seq) => {
        mmuIntervalSetSeq(s, seq);
        r.notifierSeq = s.invalidateSeq;
        got.push(errnoOf(() => hmmRangeFault(r)), errnoOf(() => hmmVmaGetPfns(r417)), errnoOf(() => hmmVmaFault(r417, true)));
        return true;
      },
    }), p.mm, a, P);
    p.writeU8(a, 1);
    p.munmap(a, P);
    expect(got).toEqual(['EDEADLK', 'EDEADLK', 'EDEADLK']);
    expect(r.hmmPfns[0]).toBe(9);
    expect(r417.tracker).toBeNull();
    expect(cpuKind(p.mm, a + 2 * P)).toBe(K_NONE);
  });

  it('mainline: exited mm: ESRCH', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    const sub = mainline(p.mm, a, 2 * P);
    const r = new HmmRange({ notifier: sub, start: a, end: a + P, defaultFlags: HMM_PFN_REQ_FAULT });
    r.hmmFlags[0] = 3;
    p.exit();
    expect(errnoOf(() => hmmRangeFault(r))).toBe('ESRCH');
    expect(r.hmmFlags[0]).toBe(3);
  });
});
