// Interval notifiers (mmu_interval_notifier_insert and the sequence protocol of
// mmu_interval_read_begin / read_retry / set_seq), and the interval tree that finds them.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  blocking, MADV_DONTNEED, MMU_RANGE_END_ALL, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove,
  mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq, WouldBlock,
} from '../../src/index.js';
import { ANON, errnoOf, fill, P, RW, setup } from './helpers.js';

describe('interval notifiers', () => {
  function recorder(name: string, seen: string[], setSeq = true) {
    return new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        if (setSeq) mmuIntervalSetSeq(s, seq);
        seen.push(`${name} ${r.event}`);
        return true;
      },
    });
  }

  it('insert, read_begin, read_retry and set_seq: a read is retried exactly when an overlapping invalidation ran', () => {
    const { p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 1);
    const seen: string[] = [];
    const sub = recorder('x', seen);
    mmuIntervalNotifierInsert(sub, p.mm, a + P, P);
    expect(errnoOf(() => mmuIntervalNotifierInsert(sub, p.mm, a, P))).toBe('EINVAL');
    const seq = mmuIntervalReadBegin(sub);
    p.madvise(a + 2 * P, P, MADV_DONTNEED); // does not overlap
    expect(mmuIntervalReadRetry(sub, seq)).toBe(false);
    p.madvise(a, 2 * P, MADV_DONTNEED); // overlaps
    expect(mmuIntervalReadRetry(sub, seq)).toBe(true);
    const seq2 = mmuIntervalReadBegin(sub);
    expect(seq2).not.toBe(seq);
    expect(mmuIntervalReadRetry(sub, seq2)).toBe(false);
    expect(seen).toEqual(['x CLEAR']);
  });

  it('invalidate is called only for subscriptions overlapping [start, end): not for one starting at end or ending at start', () => {
    const { p } = setup();
    const a = p.mmap(0, 8 * P, RW, ANON);
    fill(p, a, 8 * P, 1);
    const seen: string[] = [];
    mmuIntervalNotifierInsert(recorder('before', seen), p.mm, a, 2 * P);
    mmuIntervalNotifierInsert(recorder('first', seen), p.mm, a + P, 2 * P);
    mmuIntervalNotifierInsert(recorder('inside', seen), p.mm, a + 3 * P, P);
    mmuIntervalNotifierInsert(recorder('last', seen), p.mm, a + 4 * P, 1);
    mmuIntervalNotifierInsert(recorder('after', seen), p.mm, a + 5 * P, 2 * P);
    p.munmap(a + 2 * P, 3 * P);
    expect(seen.sort()).toEqual(['first UNMAP', 'inside UNMAP', 'last UNMAP']);
  });

  it('exit: RELEASE of [0, MMU_RANGE_END_ALL) to every interval subscription, then UNMAP', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const rs: Array<[string, number, number]> = [];
    mmuIntervalNotifierInsert(new MmuIntervalNotifier({
      invalidate: (s, r, seq) => (mmuIntervalSetSeq(s, seq), rs.push([r.event, r.start, r.end]), true),
    }), p.mm, a, P);
    p.exit();
    expect(rs).toEqual([['RELEASE', 0, MMU_RANGE_END_ALL], ['UNMAP', 0, MMU_RANGE_END_ALL]]);
  });

  it('a callback calling read_begin gets WouldBlock, whose wait resolves only after the invalidation ended', async () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    let waited: Promise<void> | null = null;
    const sub = new MmuIntervalNotifier({
      invalidate: (s, _r, seq) => {
        mmuIntervalSetSeq(s, seq);
        try {
          mmuIntervalReadBegin(s);
        } catch (e) {
          expect(e).toBeInstanceOf(WouldBlock);
          waited = (e as WouldBlock).wait();
        }
        return true;
      },
    });
    mmuIntervalNotifierInsert(sub, p.mm, a, P);
    // Hold an invalidation open across event-loop turns (as a migration does between its start and end).
    const r = p.mm.invalidateStart('CLEAR', a, a + P);
    expect(waited).not.toBeNull();
    let resolved = false;
    void waited!.then(() => void (resolved = true));
    await new Promise((res) => setTimeout(res, 5));
    expect(resolved).toBe(false);
    expect(p.mm.notifiers.invalidating).toBe(true);
    p.mm.invalidateEnd(r);
    await waited;
    expect(resolved).toBe(true);
    const seq = await blocking(() => mmuIntervalReadBegin(sub));
    expect(mmuIntervalReadRetry(sub, seq)).toBe(false);
  });

  it('insert during an invalidation is deferred: the new subscription is not called for it and read_begin waits for its end', async () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const seen: string[] = [];
    const late = recorder('late', seen);
    let lateWait: Promise<void> | null = null;
    mmuIntervalNotifierInsert(new MmuIntervalNotifier({
      invalidate: (s, _r, seq) => {
        mmuIntervalSetSeq(s, seq);
        seen.push('early');
        if (late.mm) return true;
        mmuIntervalNotifierInsert(late, p.mm, a, P);
        try {
          mmuIntervalReadBegin(late);
        } catch (e) {
          lateWait = (e as WouldBlock).wait();
        }
        return true;
      },
    }), p.mm, a, P);
    p.madvise(a, P, MADV_DONTNEED);
    expect(seen).toEqual(['early']);
    expect(lateWait).not.toBeNull();
    await lateWait;
    mmuIntervalReadBegin(late);
    p.munmap(a, P);
    expect(seen).toEqual(['early', 'early', 'late UNMAP']);
  });

  it('remove during an invalidation of the subscription waits (WouldBlock) until it ends; afterwards no callback runs', async () => {
    const { p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 1);
    const seen: string[] = [];
    let pending: Promise<void> | null = null;
    const sub: MmuIntervalNotifier = new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        mmuIntervalSetSeq(s, seq);
        seen.push(r.event);
        if (!pending) pending = blocking(() => mmuIntervalNotifierRemove(sub));
        return true;
      },
    });
    mmuIntervalNotifierInsert(sub, p.mm, a, 2 * P);
    p.madvise(a, P, MADV_DONTNEED);
    await pending;
    expect(sub.mm).toBeNull();
    expect(p.mm.notifiers.intervalCount).toBe(0);
    p.munmap(a, 2 * P);
    expect(seen).toEqual(['CLEAR']);
  });
});

describe('interval tree', () => {
  it('under any sequence of inserts, removals and invalidations, exactly the overlapping subscriptions are called (interval_tree_iter_first/next)', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('insert' as const), start: fc.nat(64), len: fc.integer({ min: 1, max: 16 }) }),
      fc.record({ k: fc.constant('remove' as const), i: fc.nat(40) }),
      fc.record({ k: fc.constant('invalidate' as const), start: fc.nat(70), len: fc.integer({ min: 1, max: 20 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const { p } = setup();
      const live: Array<{ sub: MmuIntervalNotifier; start: number; end: number; id: number }> = [];
      let called: number[] = [];
      let next = 0;
      for (const o of ops) {
        if (o.k === 'insert') {
          const id = next++;
          const sub = new MmuIntervalNotifier({ invalidate: (sb, _r, seq) => (mmuIntervalSetSeq(sb, seq), called.push(id), true) });
          mmuIntervalNotifierInsert(sub, p.mm, o.start * P, o.len * P);
          live.push({ sub, start: o.start * P, end: (o.start + o.len) * P, id });
        } else if (o.k === 'remove') {
          if (live.length === 0) continue;
          const [x] = live.splice(o.i % live.length, 1);
          mmuIntervalNotifierRemove(x!.sub);
        } else {
          called = [];
          const s = o.start * P;
          const e = (o.start + o.len) * P;
          const r = p.mm.invalidateStart('CLEAR', s, e);
          p.mm.invalidateEnd(r);
          const want = live.filter((x) => x.start < e && s < x.end).map((x) => x.id);
          expect(called.sort((a, b) => a - b)).toEqual(want.sort((a, b) => a - b));
          expect(p.mm.notifiers.invalidating).toBe(false);
        }
      }
      expect(p.mm.notifiers.intervalCount).toBe(live.length);
    }), { numRuns: 200 });
  });
});
