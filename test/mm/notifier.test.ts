// MMU notifiers (mm/mmu_notifier.c): classic subscriptions see start before any entry of the
// range changes and end after; interval subscriptions and their sequence protocol; the
// non-blockable invalidations of the OOM reaper.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  blocking, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_FIXED, MAP_HUGETLB, MAP_SHARED, MMU_NOTIFIER_RANGE_BLOCKABLE, MMU_RANGE_END_ALL,
  MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalReadRetry,
  mmuIntervalSetSeq, MmuNotifier, mmuNotifierRegister, mmuNotifierUnregister, type MmuNotifierRange, MREMAP_FIXED, MREMAP_MAYMOVE,
  PMD_SIZE, PROT_READ, swapOutPage, WouldBlock, type Process, getUserPages, makeDeviceExclusive, migrateVmaSetup, migrateVmaPages,
  migrateVmaFinalize, newMigrateVma, MIGRATE_VMA_SELECT_SYSTEM,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, freeRange, P, pm, RW, setup, SHARED_ANON, snapshot } from './helpers.js';
import {
  PAGE_SIZE,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { K_PRESENT } from '../../src/mm/pagetable.js';
import { ptEntry, newProcess } from './helpers.js';

/** A classic notifier that records each start/end with what the page table says at `watch` at that moment. */
function watchEntry(p: Process, watch: number) {
  const log: string[] = [];
  const at = () => {
    const e = pm(p, watch);
    return `${e.kind}${e.write ? '+w' : ''}${e.pfn >= 0 ? `@${e.pfn}` : ''}`;
  };
  const sub = new MmuNotifier({
    invalidateRangeStart: (_s, r) => void log.push(`start ${r.event} ${at()}`),
    invalidateRangeEnd: (_s, r) => void log.push(`end ${r.event} ${at()}`),
  });
  mmuNotifierRegister(sub, p.mm);
  return { log, sub };
}

function ranges(p: Process) {
  const out: MmuNotifierRange[] = [];
  mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: (_s, r) => void out.push(r) }), p.mm);
  return out;
}

describe('classic notifier: start before the entries change, end after', () => {
  it('munmap: one UNMAP for exactly the subrange', () => {
    const { p } = setup();
    const a = p.mmap(0, 8 * P, RW, ANON);
    fill(p, a, 8 * P, 1);
    const pfn = pm(p, a + 3 * P).pfn;
    const { log } = watchEntry(p, a + 3 * P);
    const rs = ranges(p);
    p.munmap(a + 2 * P, 3 * P);
    expect(log).toEqual([`start UNMAP anon+w@${pfn}`, 'end UNMAP none']);
    expect(rs.map((r) => [r.event, r.start - a, r.end - a, r.flags])).toEqual([['UNMAP', 2 * P, 5 * P, MMU_NOTIFIER_RANGE_BLOCKABLE]]);
  });

  it('munmap of part of a THP: __split_huge_pmd sends CLEAR for the whole PMD first, then UNMAP for the subrange', () => {
    const { p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a, 1);
    const rs = ranges(p);
    p.munmap(a, 4 * P);
    expect(rs.map((r) => [r.event, r.start - a, r.end - a])).toEqual([['CLEAR', 0, PMD_SIZE], ['UNMAP', 0, 4 * P]]);
  });

  it('mprotect: PROTECTION_VMA; the entry is writable at start and read-only at end', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const { log } = watchEntry(p, a);
    p.mprotect(a, P, PROT_READ);
    expect(log).toEqual([`start PROTECTION_VMA anon+w@${pfn}`, `end PROTECTION_VMA anon@${pfn}`]);
  });

  it('mprotect of a range with no page tables at all sends nothing (change_pud_range: every pud_none)', () => {
    const { p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    const rs = ranges(p);
    p.mprotect(a, 4 * P, PROT_READ);
    expect(rs).toEqual([]);
  });

  it('mprotect (change_pud_range): PROTECTION_VMA as soon as a PUD entry covers the range, even with no PTE in it', () => {
    const { p } = setup();
    const base = freeRange(p, 2 ** 30, 2 ** 30);
    const a = p.mmap(base, 4 * P, RW, ANON | MAP_FIXED);
    const b = p.mmap(base + 8 * P, 4 * P, RW, ANON | MAP_FIXED);
    p.writeU8(a, 1); // allocates the PMD table covering b too; b itself has no entry
    const rs = ranges(p);
    p.mprotect(b, 4 * P, PROT_READ);
    expect(rs.map((r) => [r.event, r.start - b, r.end - b])).toEqual([['PROTECTION_VMA', 0, 4 * P]]);
    expect(pm(p, b).kind).toBe('none');
  });

  it('mprotect (change_pud_range): the range starts at the first PUD entry that is not none', () => {
    const { p } = setup();
    const G = 2 ** 30;
    const base = freeRange(p, 2 * G, G);
    const a = p.mmap(base + G - 4 * P, 8 * P, RW, ANON | MAP_FIXED); // 4 pages each side of a 1 GiB boundary
    p.writeU8(base + G + P, 1); // only the upper PUD entry gets a PMD table
    const rs = ranges(p);
    p.mprotect(a, 8 * P, PROT_READ);
    expect(rs.map((r) => [r.event, r.start - a, r.end - a])).toEqual([['PROTECTION_VMA', 4 * P, 8 * P]]);
  });

  it('mprotect of a hugetlb VMA (hugetlb_change_protection): PROTECTION_VMA for the whole range, entries or not', () => {
    const { p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    const rs = ranges(p);
    p.mprotect(a, PMD_SIZE, PROT_READ);
    expect(rs.map((r) => [r.event, r.start - a, r.end - a])).toEqual([['PROTECTION_VMA', 0, PMD_SIZE]]);
  });

  it('madvise(MADV_DONTNEED): CLEAR', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const { log } = watchEntry(p, a);
    p.madvise(a, P, MADV_DONTNEED);
    expect(log).toEqual([`start CLEAR anon+w@${pfn}`, 'end CLEAR none']);
  });

  it('fork: PROTECTION_PAGE on the parent; writable at start, write-protected at end; nothing on the child', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const { log } = watchEntry(p, a);
    const c = p.fork();
    expect(log).toEqual([`start PROTECTION_PAGE anon+w@${pfn}`, `end PROTECTION_PAGE anon@${pfn}`]);
    expect(c.mm.notifiers.hasSubscriptions).toBe(false);
  });

  it('COW break: CLEAR of the one page; the old frame at start, the new copy at end', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const c = p.fork();
    const { log } = watchEntry(c, a);
    const rs = ranges(c);
    c.writeU8(a, 2);
    const copy = pm(c, a).pfn;
    expect(log).toEqual([`start CLEAR anon@${pfn}`, `end CLEAR anon+w@${copy}`]);
    expect(rs.map((r) => [r.start - a, r.end - a])).toEqual([[0, P]]);
  });

  it('swap-out: CLEAR per mapping; present at start, a swap entry at end', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const { log } = watchEntry(p, a);
    swapOutPage(m, pfn);
    expect(log).toEqual([`start CLEAR anon+w@${pfn}`, 'end CLEAR swap']);
  });

  it('mremap: UNMAP of the old range; present at the old address at start, gone at end', () => {
    const { p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 1);
    const pfn = pm(p, a).pfn;
    const { log } = watchEntry(p, a);
    const d = freeRange(p, 4 * P);
    log.length = 0;
    p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, d);
    expect(log).toEqual([`start UNMAP anon+w@${pfn}`, 'end UNMAP none']);
  });

  it('truncate: CLEAR of the mapped pages past the new size', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(2 * P);
    const a = p.mmap(0, 2 * P, RW, MAP_SHARED, f);
    fill(p, a, 2 * P, 1);
    const rs = ranges(p);
    f.truncate(P);
    expect(rs.map((r) => [r.event, r.start - a, r.end - a])).toEqual([['CLEAR', P, 2 * P]]);
  });

  it('exit: release is called before any VMA is unmapped, and a released subscriber sees no UNMAP', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const log: string[] = [];
    mmuNotifierRegister(new MmuNotifier({
      release: (_s, mm) => void log.push(`release vmas=${mm.vmas.size} ${pm(p, a).kind}`),
      invalidateRangeStart: (_s, r) => void log.push(`start ${r.event}`),
    }), p.mm);
    p.exit();
    expect(log).toEqual(['release vmas=1 anon']);
  });

  it('exit (mn_hlist_release): every release runs while all subscribers are still hashed, so an invalidation during one release reaches the others', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const log: string[] = [];
    // The first release reclaims a page of the dying mm (as reclaim on another CPU may):
    // try_to_unmap's CLEAR must still reach both subscribers, released or not.
    const first = new MmuNotifier({
      release: () => { log.push('release first'); swapOutPage(m, pfn); },
      invalidateRangeStart: (_s, r) => void log.push(`first ${r.event}`),
    });
    const second = new MmuNotifier({
      release: () => void log.push('release second'),
      invalidateRangeStart: (_s, r) => void log.push(`second ${r.event}`),
    });
    mmuNotifierRegister(first, p.mm);
    mmuNotifierRegister(second, p.mm);
    const mm = p.mm;
    p.exit();
    expect(log).toEqual(['release first', 'first CLEAR', 'second CLEAR', 'release second']);
    // Only then are they unhashed: neither sees exit's UNMAP, and both are unregistered.
    expect(first.mm).toBeNull();
    expect(second.mm).toBeNull();
    expect(mm.notifiers.list).toEqual([]);
    expectConsistent(m);
  });

  it('exit (mn_itree_release before mn_hlist_release): an invalidation during an interval RELEASE reaches the whole-mm subscribers', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const log: string[] = [];
    mmuIntervalNotifierInsert(new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        mmuIntervalSetSeq(s, seq);
        log.push(`interval ${r.event}`);
        if (r.event === 'RELEASE') swapOutPage(m, pfn);
        return true;
      },
    }), p.mm, 0, p.mm.taskSize);
    mmuNotifierRegister(new MmuNotifier({
      release: () => void log.push('release'),
      invalidateRangeStart: (_s, r) => void log.push(`whole-mm ${r.event}`),
    }), p.mm);
    p.exit();
    expect(log).toEqual(['interval RELEASE', 'interval CLEAR', 'whole-mm CLEAR', 'release', 'interval UNMAP']);
    expectConsistent(m);
  });

  it('exit: a subscriber unregistered by an earlier release (mmu_notifier_unregister) gets its release once, from the unregister', () => {
    const { p } = setup();
    const log: string[] = [];
    const second = new MmuNotifier({ release: () => void log.push('release second') });
    const first = new MmuNotifier({ release: (_s, mm) => { log.push('release first'); mmuNotifierUnregister(second, mm); } });
    mmuNotifierRegister(first, p.mm);
    mmuNotifierRegister(second, p.mm);
    p.exit();
    expect(log).toEqual(['release first', 'release second']);
  });

  it('mmu_notifier_unregister calls release once; the subscriber then sees nothing', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    const log: string[] = [];
    const sub = new MmuNotifier({ release: () => void log.push('release'), invalidateRangeStart: () => void log.push('start') });
    mmuNotifierRegister(sub, p.mm);
    expect(errnoOf(() => mmuNotifierRegister(sub, p.mm))).toBe('EINVAL');
    mmuNotifierUnregister(sub, p.mm);
    p.munmap(a, P);
    p.exit();
    expect(log).toEqual(['release']);
  });
});

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

describe('mm operations from inside a callback of the same mm: EDEADLK (the mmap lock), nothing changed, nothing stuck', () => {
  // Each inner call runs inside an invalidate callback of an munmap of page 0; the kernel
  // would deadlock on the mmap lock the caller holds. Page 2 is the inner call's target,
  // page 0 the very range being invalidated.
  const inner: Array<[string, (p: Process, a: number) => unknown]> = [
    ['munmap of the range being invalidated', (p, a) => p.munmap(a, P)],
    ['munmap', (p, a) => p.munmap(a + 2 * P, P)],
    ['mprotect', (p, a) => p.mprotect(a + 2 * P, P, PROT_READ)],
    ['mremap', (p, a) => p.mremap(a + 2 * P, P, 2 * P, MREMAP_MAYMOVE)],
    ['madvise', (p, a) => p.madvise(a + 2 * P, P, MADV_DONTNEED)],
    ['mmap', (p) => p.mmap(0, P, RW, ANON)],
    ['fork', (p) => p.fork()],
    ['exit', (p) => p.exit()],
    ['a CPU access (the fault path)', (p, a) => p.writeU8(a + 3 * P, 1)],
    ['get_user_pages', (p, a) => getUserPages(p.mm, a + 2 * P, 1)],
    ['make_device_exclusive', (p, a) => makeDeviceExclusive(p.mm, a + 2 * P, null)],
    ['migrate_vma_setup', (p, a) => migrateVmaSetup(newMigrateVma(p.mm.findVma(a + 2 * P)!, a + 2 * P, a + 3 * P, MIGRATE_VMA_SELECT_SYSTEM, null))],
  ];
  for (const [name, call] of inner) {
    for (const kind of ['interval', 'classic'] as const) {
      it(`${name} from a ${kind} callback: EDEADLK before anything changes; the outer munmap completes`, () => {
        const { m, p } = setup();
        const a = p.mmap(0, 4 * P, RW, ANON);
        fill(p, a, 3 * P, 7);
        const got: string[] = [];
        let done = false;
        const once = (): void => {
          if (done) return;
          done = true;
          const before = snapshot(m);
          got.push(errnoOf(() => call(p, a)));
          expect(snapshot(m)).toEqual(before);
        };
        const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), kind === 'interval' && once(), true) });
        mmuIntervalNotifierInsert(sub, p.mm, a, 4 * P);
        if (kind === 'classic') mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: once }), p.mm);
        p.munmap(a, P);
        expect(got).toEqual(['EDEADLK']);
        expect(pm(p, a).kind).toBe('none');
        expect(p.mm.notifiers.invalidating).toBe(false);
        expect(typeof mmuIntervalReadBegin(sub)).toBe('number');
        mmuIntervalNotifierRemove(sub); // does not block
        expect(sub.mm).toBeNull();
        expectConsistent(m);
        expect(p.readU8(a + 2 * P)).toBe(7);
      });
    }
  }

  it('migrate_vma_pages and migrate_vma_finalize from a callback: EDEADLK; the migration finishes afterwards', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 3);
    const args = newMigrateVma(p.mm.findVma(a)!, a + 2 * P, a + 3 * P, MIGRATE_VMA_SELECT_SYSTEM, null);
    migrateVmaSetup(args);
    const got: string[] = [];
    mmuNotifierRegister(new MmuNotifier({
      invalidateRangeStart: () => void got.push(errnoOf(() => migrateVmaPages(args)), errnoOf(() => migrateVmaFinalize(args))),
    }), p.mm);
    p.munmap(a, P);
    expect(got).toEqual(['EDEADLK', 'EDEADLK']);
    migrateVmaFinalize(args); // nothing moved: the page is restored
    expect(p.readU8(a + 2 * P)).toBe(3);
    expectConsistent(m);
  });

  it('a callback that lets EDEADLK go (munmap of its own range): the outer munmap fails with it, and nothing is left invalidating', async () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 5);
    let armed = true;
    const sub = new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        mmuIntervalSetSeq(s, seq);
        if (armed) {
          armed = false;
          p.munmap(r.start, r.end - r.start);
        }
        return true;
      },
    });
    mmuIntervalNotifierInsert(sub, p.mm, a, 4 * P);
    expect(errnoOf(() => p.munmap(a, P))).toBe('EDEADLK');
    expect(p.mm.notifiers.invalidating).toBe(false);
    expect(p.readU8(a)).toBe(5); // the outer munmap stopped at its invalidation: the page is still there
    expect(typeof mmuIntervalReadBegin(sub)).toBe('number');
    await blocking(() => mmuIntervalNotifierRemove(sub));
    p.munmap(a, 4 * P);
    expectConsistent(m);
  });

  it('exit completes even when a release callback throws; the error comes out afterwards', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    mmuNotifierRegister(new MmuNotifier({ release: () => { throw new Error('driver bug'); } }), p.mm);
    const mm = p.mm;
    expect(() => p.exit()).toThrow('driver bug');
    expect(mm.dead).toBe(true);
    expect(p.alive).toBe(false);
    expect(m.phys.usedRamFrames).toBe(0);
    expectConsistent(m);
  });

  it('operations from a release callback at exit: ESRCH (the mm has no users any more)', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    const got: string[] = [];
    mmuNotifierRegister(new MmuNotifier({ release: () => void got.push(errnoOf(() => p.munmap(a, P)), errnoOf(() => p.fork())) }), p.mm);
    p.exit();
    expect(got).toEqual(['ESRCH', 'ESRCH']);
  });

  it('an operation on another mm from a callback is fine (each mm has its own mmap lock)', () => {
    const { m, p } = setup();
    const q = m.spawn();
    const b = q.mmap(0, P, RW, ANON);
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: () => q.writeU8(b, 9) }), p.mm);
    p.munmap(a, P);
    expect(q.readU8(b)).toBe(9);
  });
});

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

describe('MMU notifiers (mm/mmu_notifier.c)', () => {
  function recorder(p: Process, addr: number) {
    const log: string[] = [];
    const sub = new MmuNotifier({
      invalidateRangeStart: (_s, r) => void log.push(`start ${r.event} ${r.start - addr} ${r.end === MMU_RANGE_END_ALL ? 'all' : r.end - addr} pte=${ptEntry(p, addr).kind}`),
      invalidateRangeEnd: (_s, r) => void log.push(`end ${r.event} pte=${ptEntry(p, addr).kind}`),
      release: () => void log.push(`release vmas=${p.mm.vmas.size}`),
    });
    mmuNotifierRegister(sub, p.mm);
    return log;
  }

  it('munmap of a subrange: one UNMAP for exactly the subrange; start before the entries change, end after', () => {
    const { p } = newProcess();
    const a = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < 8; i++) p.writeU32(a + i * PAGE_SIZE, i);
    const log = recorder(p, a + 2 * PAGE_SIZE);
    p.munmap(a + 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    expect(log).toEqual([`start UNMAP 0 ${3 * PAGE_SIZE} pte=${K_PRESENT}`, 'end UNMAP pte=0']);
  });

  it('event kinds: mprotect PROTECTION_VMA (either direction, change_pmd_range), DONTNEED CLEAR, fork PROTECTION_PAGE, COW CLEAR, exit release first', () => {
    const { p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    const log = recorder(p, a);
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    p.mprotect(a, PAGE_SIZE, RW);
    const c = p.fork();
    p.writeU32(a, 2);
    p.madvise(a, PAGE_SIZE, MADV_DONTNEED);
    p.exit();
    const events = log.filter((l) => l.startsWith('start') || l.startsWith('release')).map((l) => l.split(' ').slice(0, 2).join(' '));
    expect(events).toEqual(['start PROTECTION_VMA', 'start PROTECTION_VMA', 'start PROTECTION_PAGE', 'start CLEAR', 'start CLEAR', 'release vmas=1']);
    c.exit();
  });

  it('interval notifier: only overlapping subscriptions are called; read_retry sees the change; exit sends RELEASE', () => {
    const { p } = newProcess();
    const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    const seen: Array<[string, string]> = [];
    const mk = (name: string) => new MmuIntervalNotifier({ invalidate: (s, r: MmuNotifierRange, seq) => (mmuIntervalSetSeq(s, seq), seen.push([name, r.event]), true) });
    const x = mk('x');
    const y = mk('y');
    mmuIntervalNotifierInsert(x, p.mm, a, PAGE_SIZE);
    mmuIntervalNotifierInsert(y, p.mm, a + 2 * PAGE_SIZE, PAGE_SIZE);
    const seq = mmuIntervalReadBegin(x);
    expect(mmuIntervalReadRetry(x, seq)).toBe(false);
    p.madvise(a, PAGE_SIZE, MADV_DONTNEED);
    expect(seen).toEqual([['x', 'CLEAR']]);
    expect(mmuIntervalReadRetry(x, seq)).toBe(true);
    p.exit();
    expect(seen.slice(1)).toEqual([['x', 'RELEASE'], ['y', 'RELEASE'], ['x', 'UNMAP'], ['y', 'UNMAP']]);
  });

  it('read_begin during an invalidation of the subscription sleeps until that invalidation ends', async () => {
    const { p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    let waiter: Promise<number> | null = null;
    let endedAt = -1;
    const sub = new MmuIntervalNotifier({
      invalidate: (s, _r, seq) => {
        mmuIntervalSetSeq(s, seq);
        expect(() => mmuIntervalReadBegin(s)).toThrow(WouldBlock);
        waiter = blocking(() => mmuIntervalReadBegin(s));
        return true;
      },
    });
    mmuIntervalNotifierInsert(sub, p.mm, a, PAGE_SIZE);
    p.munmap(a, PAGE_SIZE);
    endedAt = p.mm.notifiers.invalidateSeq;
    const seq = await waiter!;
    expect(seq % 2).toBe(1); // the subscription's sequence from that (odd) invalidation
    expect(p.mm.notifiers.invalidateSeq).toBe(endedAt);
    expect(endedAt % 2).toBe(0);
  });
});


describe('non-blockable invalidations (__oom_reap_task_mm)', () => {
  it('__oom_reap_task_mm: a subscriber refusing the non-blockable range keeps its VMA; the rest is reaped; EAGAIN', () => {
    const { m, p } = newProcess();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    const b = p.mmap(0, 2 * PAGE_SIZE, PROT_READ, ANON);
    p.writeU32(a, 1);
    const seen: boolean[] = [];
    const sub = new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        const blockable = (r.flags & 1) !== 0;
        seen.push(blockable);
        if (!blockable) return false; // "could not take the driver lock without sleeping"
        mmuIntervalSetSeq(s, seq);
        return true;
      },
    });
    mmuIntervalNotifierInsert(sub, p.mm, a, PAGE_SIZE);
    p.read(b, 4);
    expect(() => p.mm.oomReap()).toThrow(expect.objectContaining({ errno: 'EAGAIN' }));
    expect(seen).toEqual([false]);
    expect(p.readU32(a)).toBe(1); // the refused VMA was left alone
    expect(m.phys.usedRamFrames).toBe(1);
    expect(checkInvariants(m)).toEqual([]);
  });
});
