// docs/edge-cases-4.17.md rows 25-37 (cited as 4.17 #n), invalidation, range validity and the
// mirrors' life cycle (hmm_mirror_register / unregister, release): one test per row. Where
// hmmsim follows the documented intent or a later fix instead of observed 4.17, the test name
// says "deviation" and docs/api.md lists it.

import { describe, expect, it } from 'vitest';
import { MADV_DONTNEED, swapOutPage, type Process } from '../../../src/index.js';
import {
  HmmMirror, hmmMirrorRegister, hmmMirrorUnregister, hmmVmaFault, hmmVmaGetPfns, hmmVmaRangeDone, hmmOf, hmmInjectAllocFailure,
  type HmmMirrorOps,
} from '../../../src/hmm/v417/index.js';
import { K_PRESENT } from '../../../src/mm/pagetable.js';
import {
  anon, cpuKind, cpuPfn, F_DP, F_VALID, F_WRITE, installHwpoison, newMachine, P, range417, TestDevice, errnoOf,
} from '../helpers.js';
import { setup, thp } from './rows_setup.js';

describe('docs/edge-cases-4.17.md rows 25-37: invalidation, validity and mirrors', () => {
  it('4.17 #25 an invalidation overlapping a tracked range: valid = false, overlapping entries set to literal 0 (matches 4.17)', () => {
    const { p } = setup();
    const a = anon(p, 8);
    for (let i = 0; i < 8; i++) p.writeU8(a + i * P, i);
    const r = range417(p, a, a + 8 * P);
    hmmVmaGetPfns(r);
    const before = [...r.pfns];
    p.madvise(a + 2 * P, 2 * P, MADV_DONTNEED);
    expect([...r.pfns]).toEqual([before[0], before[1], 0, 0, ...before.slice(4)]);
    expect(r.valid).toBe(false);
    expect(hmmVmaRangeDone(r)).toBe(false);
  });

  it('4.17 #26 an invalidation ending exactly at range.start marks the range invalid and zeroes nothing (matches 4.17); one starting at range.end does not touch it', () => {
    const { p } = setup();
    const a = anon(p, 8);
    for (let i = 0; i < 8; i++) p.writeU8(a + i * P, i);
    const r = range417(p, a + 2 * P, a + 6 * P);
    hmmVmaGetPfns(r);
    const before = [...r.pfns];
    p.madvise(a + 6 * P, 2 * P, MADV_DONTNEED);
    expect(r.valid).toBe(true);
    p.madvise(a, 2 * P, MADV_DONTNEED);
    expect([...r.pfns]).toEqual(before);
    expect(hmmVmaRangeDone(r)).toBe(false);
  });

  it('4.17 #27 a COW, a THP split or a migration back caused by our own fault: returns 0, range_done false, a retry is valid', () => {
    const { m, p } = setup();
    const dev = new TestDevice(m);
    const a = anon(p, 4);
    p.writeU8(a, 1);
    const child = p.fork();
    const b = thp(p);
    p.fork();
    p.writeU8(a + P, 2);
    dev.migratePageToDevice(p.mm, a + P);
    const cases: Array<[number, number]> = [[a, F_VALID | F_WRITE], [b + 5 * P, F_VALID | F_WRITE], [a + P, F_VALID | F_DP]];
    for (const [addr, req] of cases) {
      const r = range417(p, addr, addr + P);
      r.pfns[0] = req;
      hmmVmaFault(r, true);
      expect(hmmVmaRangeDone(r)).toBe(false);
      r.pfns[0] = req;
      hmmVmaFault(r, true);
      expect(hmmVmaRangeDone(r)).toBe(true);
      expect(cpuKind(p.mm, addr)).toBe(K_PRESENT);
    }
    expect(child.readU8(a)).toBe(1);
  });

  it('4.17 #28 range_done called twice, or after an error return: EINVAL (deviation: list corruption in 4.17)', () => {
    const { p } = setup();
    const a = anon(p, 2);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    expect(hmmVmaRangeDone(r)).toBe(true);
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    installHwpoison(p.mm, a + P);
    expect(errnoOf(() => hmmVmaFault(r, true))).toBe('EFAULT');
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    expect(hmmOf(p.mm)!.ranges.length).toBe(0);
  });

  it('4.17 #29 range_done after the HMM state went away: every entry 0, false, and the range is unlinked', () => {
    const { p, mirror } = setup();
    const a = anon(p, 2);
    p.writeU8(a, 1);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    hmmMirrorUnregister(mirror);
    expect(hmmOf(p.mm)).toBeUndefined();
    hmmInjectAllocFailure(p.mm);
    expect(hmmVmaRangeDone(r)).toBe(false);
    expect([...r.pfns]).toEqual([0, 0]);
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    hmmInjectAllocFailure(p.mm, 0);
  });

  it('4.17 #30 range_done with end <= start: EINVAL (deviation: BUG() in 4.17)', () => {
    const { p } = setup();
    const a = anon(p, 2);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    r.end = r.start;
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    r.end = a + 2 * P;
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #31 register with a NULL mirror, NULL ops or NULL mm: EINVAL', () => {
    const m = newMachine();
    const p = m.spawn();
    const ok = { syncCpuDevicePagetables: () => {} };
    expect(errnoOf(() => hmmMirrorRegister(null as unknown as HmmMirror, p.mm))).toBe('EINVAL');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror(null as unknown as HmmMirrorOps), p.mm))).toBe('EINVAL');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror({} as HmmMirrorOps), p.mm))).toBe('EINVAL');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror(ok), null as unknown as Process['mm']))).toBe('EINVAL');
    expect(hmmOf(p.mm)).toBeUndefined();
  });

  it('4.17 #32 register when the per-mm allocation fails: ENOMEM, nothing registered', () => {
    const m = newMachine();
    const p = m.spawn();
    const mirror = new HmmMirror({ syncCpuDevicePagetables: () => {} });
    hmmInjectAllocFailure(p.mm);
    expect(errnoOf(() => hmmMirrorRegister(mirror, p.mm))).toBe('ENOMEM');
    expect(mirror.hmm).toBeNull();
    expect(hmmOf(p.mm)).toBeUndefined();
    expect(p.mm.notifiers.list.length).toBe(0);
    hmmMirrorRegister(mirror, p.mm);
    expect(mirror.hmm).toBe(hmmOf(p.mm));
  });

  it('4.17 #33 unregister called twice: the second call is a no-op', () => {
    const { p, mirror } = setup();
    const other = new HmmMirror({ syncCpuDevicePagetables: () => {} });
    hmmMirrorRegister(other, p.mm);
    hmmMirrorUnregister(mirror);
    hmmMirrorUnregister(mirror);
    expect(hmmOf(p.mm)!.users).toBe(1);
    expect(hmmOf(p.mm)!.mirrors).toEqual([other]);
  });

  it('4.17 #34 unregister of a non-last mirror, then a new register: works and the new mirror gets syncs (deviation: livelock in 4.17)', () => {
    const { p, mirror, syncs } = setup();
    const seen: number[] = [];
    const second = new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s) => void seen.push(s) });
    hmmMirrorRegister(second, p.mm);
    hmmMirrorUnregister(second);
    const third = new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s) => void seen.push(-s) });
    hmmMirrorRegister(third, p.mm);
    const a = anon(p, 2);
    p.writeU8(a, 1);
    p.munmap(a, 2 * P);
    expect(seen).toEqual([-a]);
    expect(syncs).toEqual([[a, a + 2 * P]]);
    expect(hmmOf(p.mm)!.mirrors).toEqual([third, mirror]);
  });

  it('4.17 hmm_invalidate_range: every invalidation of the mm reaches every mirror, newest first, after the tracked ranges are marked', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 4);
    p.writeU8(a, 1);
    const log: string[] = [];
    const r = range417(p, a, a + P);
    for (const name of ['old', 'mid', 'new']) {
      hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s, e) => void log.push(`${name} ${(s - a) / P}-${(e - a) / P} valid=${r.valid}`) }), p.mm);
    }
    hmmVmaGetPfns(r);
    p.madvise(a + 2 * P, P, MADV_DONTNEED); // outside the range: every mirror still hears of it
    p.madvise(a, P, MADV_DONTNEED);
    expect(log).toEqual(['new 2-3 valid=true', 'mid 2-3 valid=true', 'old 2-3 valid=true', 'new 0-1 valid=false', 'mid 0-1 valid=false', 'old 0-1 valid=false']);
    hmmVmaRangeDone(r);
  });

  it('4.17 #35 unregister of a non-last mirror, then of the last: the notifier and the HMM state go (deviation: leaked in 4.17)', () => {
    const { p, mirror, syncs } = setup();
    const second = new HmmMirror({ syncCpuDevicePagetables: () => {} });
    hmmMirrorRegister(second, p.mm);
    const hmm = hmmOf(p.mm)!;
    hmmMirrorUnregister(mirror);
    expect(hmmOf(p.mm)).toBe(hmm);
    hmmMirrorUnregister(second);
    expect(hmmOf(p.mm)).toBeUndefined();
    expect(hmm.dead).toBe(true);
    expect(p.mm.notifiers.list).not.toContain(hmm.notifier);
    const a = anon(p, 1);
    p.writeU8(a, 1);
    p.munmap(a, P);
    expect(syncs).toEqual([]);
  });

  it('4.17 #36 process exit with mirrors: release for each, newest first, no sync afterwards; the state stays until unregister', () => {
    const order: string[] = [];
    const { m, p, mirror } = setup({ release: () => void order.push('first') });
    const a = anon(p, 4);
    p.writeU8(a, 1);
    const second = new HmmMirror({
      release: () => void order.push('second'),
      syncCpuDevicePagetables: () => void order.push('sync'),
    });
    hmmMirrorRegister(second, p.mm);
    const hmm = hmmOf(p.mm)!;
    const r = range417(p, a, a + 4 * P);
    hmmVmaGetPfns(r);
    const mm = p.mm;
    p.exit();
    expect(order).toEqual(['second', 'first']);
    expect(hmmOf(mm)).toBe(hmm); // pinned: a zombie until the mirrors are unregistered
    expect(mirror.hmm).toBe(hmm);
    expect(hmmVmaRangeDone(r)).toBe(false); // release made the tracked range invalid (5.x fix)
    hmmMirrorUnregister(second);
    hmmMirrorUnregister(mirror);
    expect(hmmOf(mm)).toBeUndefined();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('4.17 #36, with reclaim during a release (mn_hlist_release): a mirror not yet released still gets sync for it', () => {
    const order: string[] = [];
    const { m, p } = setup({ release: () => void order.push('release first'), syncCpuDevicePagetables: (_m, _u, s) => void order.push(`sync first ${s}`) });
    const a = anon(p, 1);
    p.writeU8(a, 1);
    const pfn = cpuPfn(p.mm, a);
    // The newest mirror is released first; its release reclaims a page of the dying mm.
    const second = new HmmMirror({
      release: () => { order.push('release second'); swapOutPage(m, pfn); },
      syncCpuDevicePagetables: (_m, _u, s) => void order.push(`sync second ${s}`),
    });
    hmmMirrorRegister(second, p.mm);
    p.exit();
    // hmm_release unlinks each mirror before its release: only the first still gets the sync.
    expect(order).toEqual(['release second', `sync first ${a}`, 'release first']);
  });

  it('4.17 #37 unregister from inside release for the last mirror: safe, every mirror still released (deviation: use-after-free in 4.17)', () => {
    const released: string[] = [];
    const m = newMachine();
    const p = m.spawn();
    const first: HmmMirror = new HmmMirror({
      release: (mm) => { released.push('first'); hmmMirrorUnregister(mm); },
      syncCpuDevicePagetables: () => {},
    });
    const second: HmmMirror = new HmmMirror({
      release: (mm) => { released.push('second'); hmmMirrorUnregister(mm); hmmMirrorUnregister(first); },
      syncCpuDevicePagetables: () => {},
    });
    hmmMirrorRegister(first, p.mm);
    hmmMirrorRegister(second, p.mm);
    const mm = p.mm;
    p.exit();
    expect(released).toEqual(['second']); // second unregistered first before its release could run
    expect(hmmOf(mm)).toBeUndefined();
    expect(first.hmm).toBeNull();
    expect(second.hmm).toBeNull();
    // and a lone mirror unregistering itself
    const p2 = m.spawn();
    const lone: HmmMirror = new HmmMirror({ release: (x) => { released.push('lone'); hmmMirrorUnregister(x); }, syncCpuDevicePagetables: () => {} });
    hmmMirrorRegister(lone, p2.mm);
    const mm2 = p2.mm;
    p2.exit();
    expect(released).toEqual(['second', 'lone']);
    expect(hmmOf(mm2)).toBeUndefined();
  });
});
