// Unit tests of the mm operations, each named after the kernel behaviour it pins.
import { describe, expect, it } from 'vitest';
import {
  KernelError, Machine, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_HUGE_1GB,
  MAP_HUGETLB, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MmuIntervalNotifier, MmuNotifier, mmuIntervalNotifierInsert,
  mmuIntervalReadBegin, mmuIntervalReadRetry, mmuIntervalSetSeq, mmuNotifierRegister, MMU_RANGE_END_ALL, PAGE_SIZE,
  PMD_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, SignalError, type MmuNotifierRange, type Process, WouldBlock, blocking,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { E_WRITE, K_PRESENT, K_SWAP, KIND_MASK, type PtSlot } from '../../src/mm/pagetable.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function entry(p: Process, addr: number): { kind: number; write: boolean; val: number; level: number } {
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  p.mm.pt.lookup(Math.floor(addr / PAGE_SIZE), s);
  const flg = s.node.flg[s.idx]!;
  return { kind: flg & KIND_MASK, write: (flg & E_WRITE) !== 0, val: s.node.val[s.idx]!, level: s.level };
}

function setup(ram = 64 << 20): { m: Machine; p: Process } {
  const m = new Machine({ ramBytes: ram });
  return { m, p: m.spawn() };
}

function vmaList(p: Process): string[] {
  return p.mm.vmas.all.map((v) => v.toString());
}

describe('faults (mm/memory.c)', () => {
  it('do_anonymous_page: a read maps the shared zero page, read-only, with no page allocated', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    expect(p.readU32(a)).toBe(0);
    const e = entry(p, a);
    expect(e.val).toBe(m.phys.zeroPfn);
    expect(e.write).toBe(false);
    expect(m.phys.usedRamFrames).toBe(0);
    p.writeU32(a, 5); // wp_page_copy from the zero page
    expect(entry(p, a).val).not.toBe(m.phys.zeroPfn);
    expect(m.phys.usedRamFrames).toBe(1);
  });

  it('fork: private anon page is write-protected in both and copied on the first write', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    const pfn = entry(p, a).val;
    const c = p.fork();
    expect(entry(p, a)).toMatchObject({ val: pfn, write: false });
    expect(entry(c, a)).toMatchObject({ val: pfn, write: false });
    expect(m.phys.frames.refcount[pfn]).toBe(2);
    c.writeU32(a, 2);
    expect(entry(c, a).val).not.toBe(pfn);
    expect(p.readU32(a)).toBe(1);
    // The parent's page is exclusive again: its write reuses it (wp_page_reuse), no copy.
    p.writeU32(a, 3);
    expect(entry(p, a).val).toBe(pfn);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('fork: MAP_SHARED memory is shared, not copied', () => {
    const { p } = setup();
    const a = p.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.writeU32(a, 1);
    const c = p.fork();
    c.writeU32(a, 9);
    expect(p.readU32(a)).toBe(9);
  });

  it('THP: a write fault in a MADV_HUGEPAGE range maps one PMD leaf; a read maps the huge zero page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
    expect(a % PMD_SIZE).toBe(0);
    p.madvise(a, 2 * PMD_SIZE, MADV_HUGEPAGE);
    p.writeU32(a + 4096 * 3, 7);
    expect(entry(p, a)).toMatchObject({ level: 1, kind: K_PRESENT, write: true });
    expect(m.phys.usedRamFrames).toBe(512);
    expect(p.readU32(a + PMD_SIZE)).toBe(0);
    expect(entry(p, a + PMD_SIZE).level).toBe(1);
    expect(m.phys.usedRamFrames).toBe(512);
    // munmap of half a THP splits the leaf; the rest keeps its data.
    p.munmap(a, PMD_SIZE / 2);
    expect(p.readU32(a + PMD_SIZE / 2)).toBe(0);
    expect(entry(p, a + PMD_SIZE / 2).level).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('hugetlb: MAP_HUGETLB maps 2 MiB and 1 GiB leaves; munmap must be huge-page aligned', () => {
    const { m, p } = setup(3 * 2 ** 30);
    const a = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    p.writeU32(a + 100, 1);
    expect(entry(p, a).level).toBe(1);
    const g = p.mmap(0, 1 << 30, RW, ANON | MAP_HUGETLB | MAP_HUGE_1GB);
    p.writeU32(g + (1 << 29), 2);
    expect(entry(p, g).level).toBe(2);
    expect(() => p.munmap(a, PAGE_SIZE)).toThrow(KernelError);
    p.munmap(a, PMD_SIZE);
    expect(checkInvariants(m)).toEqual([]);
  });
});

describe('VMAs (mm/mmap.c, mm/mprotect.c)', () => {
  it('mprotect in the middle splits one VMA in three; mprotect back merges them into one', () => {
    const { p } = setup();
    const a = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
    p.mprotect(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ);
    expect(vmaList(p).length).toBe(3);
    p.mprotect(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, RW);
    expect(vmaList(p).length).toBe(1);
  });

  it('mprotect(PROT_READ) write-protects the entries; a write is then SIGSEGV and changes nothing', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 4);
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(entry(p, a).write).toBe(false);
    expect(() => p.writeU32(a, 5)).toThrow(SignalError);
    expect(p.readU32(a)).toBe(4);
    p.mprotect(a, PAGE_SIZE, PROT_NONE);
    expect(() => p.readU32(a)).toThrow(/SIGSEGV/);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('MAP_FIXED replaces an existing mapping; MAP_FIXED_NOREPLACE fails with EEXIST', () => {
    const { p } = setup();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    expect(() => p.mmap(a, PAGE_SIZE, RW, ANON | MAP_FIXED_NOREPLACE)).toThrow(expect.objectContaining({ errno: 'EEXIST' }));
    expect(p.readU32(a)).toBe(1);
    p.mmap(a, PAGE_SIZE, RW, ANON | MAP_FIXED);
    expect(p.readU32(a)).toBe(0);
  });

  it('MAP_POPULATE faults every page in up front (writable private: write faults)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 16 * PAGE_SIZE, RW, ANON | MAP_POPULATE);
    expect(m.phys.usedRamFrames).toBe(16);
    expect(entry(p, a + 15 * PAGE_SIZE).write).toBe(true);
  });
});

describe('files and swap', () => {
  it('tmpfs: a store through a shared mapping is what pread and another process see; private maps COW', () => {
    const { m, p } = setup();
    const f = m.fs.open('data');
    f.truncate(2 * PAGE_SIZE);
    const q = m.spawn();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED, f);
    const b = q.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED, f);
    const c = q.mmap(0, 2 * PAGE_SIZE, RW, MAP_PRIVATE, f);
    p.writeU32(a + 8, 0xabcd);
    expect(new DataView(f.pread(4, 8).buffer).getUint32(0, true)).toBe(0xabcd);
    expect(q.readU32(b + 8)).toBe(0xabcd);
    expect(q.readU32(c + 8)).toBe(0xabcd);
    q.writeU32(c + 8, 1); // do_wp_page on a file page in a private mapping: a private copy
    expect(p.readU32(a + 8)).toBe(0xabcd);
    f.truncate(PAGE_SIZE);
    expect(() => p.readU32(a + PAGE_SIZE)).toThrow(/SIGBUS/);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('MADV_PAGEOUT swaps exclusive anon pages; the next access swaps them in with the data intact', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, 100 + i);
    p.madvise(a, 4 * PAGE_SIZE, MADV_PAGEOUT);
    expect(entry(p, a).kind).toBe(K_SWAP);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.swap.used).toBe(4);
    for (let i = 0; i < 4; i++) expect(p.readU32(a + i * PAGE_SIZE)).toBe(100 + i);
    expect(m.swap.used).toBe(0);
  });

  it('MADV_DONTNEED: private anon reads zero afterwards, shared memory refaults its data', () => {
    const { p } = setup();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    const s = p.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.writeU32(a, 3);
    p.writeU32(s, 4);
    p.madvise(a, PAGE_SIZE, MADV_DONTNEED);
    p.madvise(s, PAGE_SIZE, MADV_DONTNEED);
    expect(p.readU32(a)).toBe(0);
    expect(p.readU32(s)).toBe(4);
  });
});

describe('MMU notifiers (mm/mmu_notifier.c)', () => {
  function recorder(p: Process, addr: number) {
    const log: string[] = [];
    const sub = new MmuNotifier({
      invalidateRangeStart: (_s, r) => void log.push(`start ${r.event} ${r.start - addr} ${r.end === MMU_RANGE_END_ALL ? 'all' : r.end - addr} pte=${entry(p, addr).kind}`),
      invalidateRangeEnd: (_s, r) => void log.push(`end ${r.event} pte=${entry(p, addr).kind}`),
      release: () => void log.push(`release vmas=${p.mm.vmas.size}`),
    });
    mmuNotifierRegister(sub, p.mm);
    return log;
  }

  it('munmap of a subrange: one UNMAP for exactly the subrange; start before the entries change, end after', () => {
    const { p } = setup();
    const a = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < 8; i++) p.writeU32(a + i * PAGE_SIZE, i);
    const log = recorder(p, a + 2 * PAGE_SIZE);
    p.munmap(a + 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    expect(log).toEqual([`start UNMAP 0 ${3 * PAGE_SIZE} pte=${K_PRESENT}`, 'end UNMAP pte=0']);
  });

  it('event kinds: mprotect PROTECTION_VMA (either direction, change_pmd_range), DONTNEED CLEAR, fork PROTECTION_PAGE, COW CLEAR, exit release first', () => {
    const { p } = setup();
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
    const { p } = setup();
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
    const { p } = setup();
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

describe('bad input: a typed errno and nothing changed', () => {
  const cases: Array<[string, (p: Process, a: number) => void, string]> = [
    ['munmap of an unaligned address', (p, a) => p.munmap(a + 1, PAGE_SIZE), 'EINVAL'],
    ['munmap of length 0', (p, a) => p.munmap(a, 0), 'EINVAL'],
    ['munmap of a negative length', (p, a) => p.munmap(a, -4096), 'EINVAL'],
    ['munmap past the address space', (p) => p.munmap(2 ** 47 - PAGE_SIZE, 2 * PAGE_SIZE), 'EINVAL'],
    ['mmap of length 0', (p) => p.mmap(0, 0, RW, ANON), 'EINVAL'],
    ['mmap with unknown flags', (p) => p.mmap(0, PAGE_SIZE, RW, ANON | 0x800000), 'EINVAL'],
    ['mmap with unknown prot', (p) => p.mmap(0, PAGE_SIZE, 0x40, ANON), 'EINVAL'],
    ['mmap without SHARED or PRIVATE', (p) => p.mmap(0, PAGE_SIZE, RW, MAP_ANONYMOUS), 'EINVAL'],
    ['MAP_FIXED at an unaligned address', (p, a) => p.mmap(a + 8, PAGE_SIZE, RW, ANON | MAP_FIXED), 'EINVAL'],
    ['MAP_FIXED past the address space', (p) => p.mmap(2 ** 47 - PAGE_SIZE, 2 * PAGE_SIZE, RW, ANON | MAP_FIXED), 'ENOMEM'],
    ['mprotect of a range with a hole', (p, a) => p.mprotect(a, 64 * PAGE_SIZE, PROT_READ), 'ENOMEM'],
    ['mprotect with unknown prot', (p, a) => p.mprotect(a, PAGE_SIZE, 0x100), 'EINVAL'],
    ['madvise with unknown advice', (p, a) => p.madvise(a, PAGE_SIZE, 999), 'EINVAL'],
    ['madvise over a hole', (p, a) => p.madvise(a, 64 * PAGE_SIZE, MADV_DONTNEED), 'ENOMEM'],
    ['mremap of an unmapped range', (p) => p.mremap(0x10000, PAGE_SIZE, 2 * PAGE_SIZE, 1), 'EFAULT'],
    ['mremap with unknown flags', (p, a) => p.mremap(a, PAGE_SIZE, PAGE_SIZE, 64), 'EINVAL'],
  ];
  for (const [name, f, errno] of cases) {
    it(`${name}: ${errno}`, () => {
      const { m, p } = setup();
      const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
      p.writeU32(a, 77);
      const before = { vmas: vmaList(p), used: m.phys.usedRamFrames, pte: entry(p, a) };
      expect(() => f(p, a)).toThrow(expect.objectContaining({ errno }));
      expect({ vmas: vmaList(p), used: m.phys.usedRamFrames, pte: entry(p, a) }).toEqual(before);
      expect(p.readU32(a)).toBe(77);
      expect(checkInvariants(m)).toEqual([]);
    });
  }

  it('use after exit: ESRCH', () => {
    const { p } = setup();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.exit();
    expect(() => p.readU32(a)).toThrow(expect.objectContaining({ errno: 'ESRCH' }));
    expect(() => p.fork()).toThrow(expect.objectContaining({ errno: 'ESRCH' }));
    expect(() => p.exit()).toThrow(expect.objectContaining({ errno: 'ESRCH' }));
  });
});

describe('non-blockable invalidations and 5-level paging', () => {
  it('__oom_reap_task_mm: a subscriber refusing the non-blockable range keeps its VMA; the rest is reaped; EAGAIN', () => {
    const { m, p } = setup();
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

  it('5-level paging: addresses above 2^47 map, fault and unmap like any other', () => {
    const m = new Machine({ ramBytes: 16 << 20, levels: 5 });
    const p = m.spawn();
    const hi = 2 ** 52;
    const a = p.mmap(hi, 2 * PAGE_SIZE, RW, ANON | MAP_FIXED);
    expect(a).toBe(hi);
    p.writeU32(a + PAGE_SIZE, 99);
    expect(p.readU32(a + PAGE_SIZE)).toBe(99);
    expect(p.mm.pt.root.level).toBe(4);
    p.munmap(a, 2 * PAGE_SIZE);
    expect(p.mm.pt.nodes).toBe(1); // every table below the root was freed
    expect(m.phys.usedRamFrames).toBe(0);
    const four = new Machine({ ramBytes: 16 << 20 }).spawn();
    expect(() => four.mmap(hi, PAGE_SIZE, RW, ANON | MAP_FIXED)).toThrow(expect.objectContaining({ errno: 'ENOMEM' }));
  });
});
