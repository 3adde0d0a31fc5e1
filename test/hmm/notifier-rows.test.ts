// docs/edge-cases-mainline.md, rows 20-23: the notifiers and the events they see, one test per row.

import { describe, expect, it } from 'vitest';
import {
  KernelError, WouldBlock, mmuIntervalNotifierRemove, mmuNotifierRangeBlockable, MADV_DONTNEED, MMU_RANGE_END_ALL, PROT_READ,
  PROT_WRITE, type MmuNotifierRange, type Mm,
} from '../../src/index.js';
import { HmmMirror, hmmMirrorRegister } from '../../src/hmm/v417/index.js';
import { K_PRESENT } from '../../src/mm/pagetable.js';
import { zapRange } from '../../src/mm/memory.js';
import { anon, cpuKind, newMachine, P, errnoOf } from './helpers.js';
import { subscribe } from './subscription.js';

describe('docs/edge-cases-mainline.md rows 20-23: notifiers and the events they see', () => {
  it('mainline #20 an interval invalidate callback refusing a non-blockable range: the operation fails with EAGAIN', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    p.writeU8(a, 1);
    let refused = 0;
    subscribe(p.mm, a, 2 * P, (_s, r) => {
      if (mmuNotifierRangeBlockable(r)) return true;
      refused++;
      return false; // its lock is taken: it cannot wait
    });
    // An OOM-reaper-like zap: non-blockable, gives up with EAGAIN when refused (test-only).
    const reap = (mm: Mm, start: number, end: number): void => {
      const range: MmuNotifierRange = { mm, start, end, event: 'CLEAR', flags: 0, owner: null };
      if (!mm.notifiers.invalidateRangeStart(range)) throw new KernelError('EAGAIN', 'notifier refused a non-blockable range');
      zapRange(mm, start, end, mm.gather);
      mm.notifiers.invalidateRangeEnd(range);
      mm.gather.flush(mm);
    };
    expect(errnoOf(() => reap(p.mm, a, a + 2 * P))).toBe('EAGAIN');
    expect(refused).toBe(1);
    expect(cpuKind(p.mm, a)).toBe(K_PRESENT); // nothing changed
    expect(p.mm.notifiers.invalidating).toBe(false);
  });

  it('mainline #21 an interval notifier removed while an invalidation runs: remove waits; no callback after it returns', async () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 4);
    p.writeU8(a, 1);
    let calls = 0;
    const victim = subscribe(p.mm, a, 4 * P, () => void calls++);
    let wait: WouldBlock | null = null;
    subscribe(p.mm, a, 4 * P, () => {
      try {
        mmuIntervalNotifierRemove(victim.sub);
      } catch (e) {
        if (e instanceof WouldBlock) wait = e;
      }
    });
    p.madvise(a, P, MADV_DONTNEED);
    expect(wait).toBeInstanceOf(WouldBlock);
    await wait!.wait();
    mmuIntervalNotifierRemove(victim.sub);
    expect(victim.sub.mm).toBeNull();
    const before = calls;
    p.madvise(a, 4 * P, MADV_DONTNEED);
    p.munmap(a, 4 * P);
    expect(calls).toBe(before);
  });

  it('mainline #22 munmap of a subrange: one UNMAP invalidation of exactly the subrange (4.17: sync gets exactly it)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 8);
    for (let i = 0; i < 8; i++) p.writeU8(a + i * P, 1);
    const { seen } = subscribe(p.mm, a, 8 * P);
    const syncs: Array<[number, number]> = [];
    hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s, e) => void syncs.push([s, e]) }), p.mm);
    p.munmap(a + 2 * P, 3 * P);
    expect(seen.map((r) => [r.event, r.start, r.end])).toEqual([['UNMAP', a + 2 * P, a + 5 * P]]);
    expect(syncs).toEqual([[a + 2 * P, a + 5 * P]]);
  });

  it('mainline #23 events: mprotect PROTECTION_VMA, madvise(DONTNEED) CLEAR, fork PROTECTION_PAGE on the parent, exit RELEASE of [0, max)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 4);
    for (let i = 0; i < 4; i++) p.writeU8(a + i * P, 1);
    const { seen } = subscribe(p.mm, 0, 2 ** 47);
    p.mprotect(a, 4 * P, PROT_READ);
    p.madvise(a, P, MADV_DONTNEED);
    p.mprotect(a, 4 * P, PROT_READ | PROT_WRITE);
    const child = p.fork();
    p.exit();
    const ev = seen.map((r) => [r.event, r.start, r.end]);
    expect(ev[0]).toEqual(['PROTECTION_VMA', a, a + 4 * P]);
    expect(ev[1]).toEqual(['CLEAR', a, a + P]);
    expect(ev).toContainEqual(['PROTECTION_PAGE', a, a + 4 * P]);
    expect(ev.filter((e) => e[0] === 'RELEASE')).toEqual([['RELEASE', 0, MMU_RANGE_END_ALL]]);
    expect(seen.every((r) => r.mm !== child.mm)).toBe(true);
  });
});
