// Classic MMU notifiers (mm/mmu_notifier.c): a subscription sees start before any entry of the
// range changes and end after, with the event and range of each mm operation, and release
// before the mm goes.
import { describe, expect, it } from 'vitest';
import {
  blocking, MADV_DONTNEED, MADV_HUGEPAGE, MAP_FIXED, MAP_HUGETLB, MAP_SHARED, MMU_NOTIFIER_RANGE_BLOCKABLE, MMU_RANGE_END_ALL,
  MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq, MmuNotifier,
  mmuNotifierRegister, mmuNotifierUnregister, type MmuNotifierRange, MREMAP_FIXED, MREMAP_MAYMOVE, PMD_SIZE, PROT_READ,
  swapOutPage, WouldBlock, type Process, PAGE_SIZE,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, freeRange, P, pm, RW, setup, ptEntry, newProcess, ranges } from './helpers.js';
import { K_PRESENT } from '../../src/mm/pagetable.js';

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
