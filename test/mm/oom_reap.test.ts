// Non-blockable invalidations: the OOM reaper (__oom_reap_task_mm) and subscribers that refuse
// a range they cannot take without sleeping.
import { describe, expect, it } from 'vitest';
import {
  MADV_PAGEOUT, MAP_HUGETLB, MMU_NOTIFIER_RANGE_BLOCKABLE, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq,
  MmuNotifier, mmuNotifierRegister, PMD_SIZE, PROT_READ,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, P, pm, RW, setup, SHARED_ANON, ranges } from './helpers.js';

describe('non-blockable invalidations: mm.oomReap (__oom_reap_task_mm)', () => {
  it('each private VMA gets a non-blockable UNMAP; a refusing interval subscriber keeps its VMA and the call is EAGAIN', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.mmap(0, P, PROT_READ, ANON); // keeps b from merging with a
    const b = p.mmap(0, 2 * P, RW, ANON);
    const s = p.mmap(0, P, RW, SHARED_ANON);
    const h = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    for (const x of [a, b, s, h]) p.writeU8(x, 1);
    const flags: Array<[number, number]> = [];
    mmuIntervalNotifierInsert(new MmuIntervalNotifier({
      invalidate: (sub, r, seq) => {
        flags.push([r.start, r.flags]);
        if (!(r.flags & MMU_NOTIFIER_RANGE_BLOCKABLE)) return false; // its lock is taken
        mmuIntervalSetSeq(sub, seq);
        return true;
      },
    }), p.mm, a, P);
    expect(errnoOf(() => p.mm.oomReap())).toBe('EAGAIN');
    expect(flags).toEqual([[a, 0]]);
    expect(pm(p, a).present).toBe(true); // skipped
    expect(pm(p, b).present).toBe(false); // reaped
    expect(pm(p, s).present).toBe(true); // shared memory is not reaped
    expect(pm(p, h).present).toBe(true); // hugetlb is not reaped
    expect(m.phys.usedRamFrames).toBe(1 + 1 + 512);
    expect(p.mm.notifiers.invalidating).toBe(false);
    expectConsistent(m);
  });

  it('a classic subscriber refusing a non-blockable start: the others that started get their end, the VMA is skipped', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const log: string[] = [];
    mmuNotifierRegister(new MmuNotifier({
      invalidateRangeStart: () => void log.push('ok start'),
      invalidateRangeEnd: () => void log.push('ok end'),
    }), p.mm);
    mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: (_s, r) => (r.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0 }), p.mm);
    expect(errnoOf(() => p.mm.oomReap())).toBe('EAGAIN');
    expect(log).toEqual(['ok start', 'ok end']);
    expect(pm(p, a).present).toBe(true);
    p.mm.notifiers.list.pop();
    p.mm.oomReap();
    expect(pm(p, a).present).toBe(false);
  });

  it('refusing a blockable range is a driver bug, reported loudly', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    mmuIntervalNotifierInsert(new MmuIntervalNotifier({ invalidate: () => false }), p.mm, a, P);
    expect(() => p.munmap(a, P)).toThrow(/refused a blockable range/);
  });

  it('swap-out of a page with a subscriber and MADV_PAGEOUT through the same path notify per page', () => {
    const { p } = setup();
    const a = p.mmap(0, 3 * P, RW, ANON);
    fill(p, a, 3 * P, 1);
    const rs = ranges(p);
    p.madvise(a, 3 * P, MADV_PAGEOUT);
    expect(rs.map((r) => [r.event, r.start - a, r.end - a])).toEqual([['CLEAR', 0, P], ['CLEAR', P, 2 * P], ['CLEAR', 2 * P, 3 * P]]);
  });
});
