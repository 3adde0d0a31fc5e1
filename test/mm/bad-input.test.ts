// Bad input: every failing call throws a KernelError naming the errno the kernel returns, and
// changes nothing (VMAs, entries, frames, swap and page cache compared before and after).
import { describe, expect, it } from 'vitest';
import {
  KernelError, Machine, MADV_COLLAPSE, MADV_DONTNEED, MADV_FREE, MADV_NOHUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED,
  MAP_FIXED_NOREPLACE, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MmuIntervalNotifier, mmuIntervalNotifierInsert,
  MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, pagemapRange, PMD_SIZE, PROT_READ, swapOutPage, TASK_SIZE_4LEVEL, type Process,
  type TmpFile,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { ANON, errnoOf, expectConsistent, P, RW, setup, SHARED_ANON, snapshot } from './helpers.js';
import {
  PAGE_SIZE,
} from '../../src/index.js';
import { ptEntry, newProcess, vmaStrings } from './helpers.js';

interface World { m: Machine; p: Process; a: number; s: number; h: number; f: TmpFile; fm: number }

/** A process with a private mapping a (4 pages, page 2 unmapped), a shared one s, a hugetlb one h, a file f of one page mapped over 2 pages at fm. */
function world(): World {
  const { m, p } = setup();
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.write(a, new Uint8Array(2 * P).fill(7));
  p.munmap(a + 2 * P, P);
  const s = p.mmap(0, 2 * P, RW, SHARED_ANON);
  p.writeU8(s, 1);
  const h = p.mmap(0, 2 * PMD_SIZE, RW, ANON | MAP_HUGETLB);
  p.writeU8(h, 1);
  const f = m.fs.open('f');
  f.truncate(P);
  const fm = p.mmap(0, 2 * P, RW, MAP_SHARED, f);
  return { m, p, a, s, h, f, fm };
}

const TOP = TASK_SIZE_4LEVEL;
const cases: Array<[string, (w: World) => unknown, string]> = [
  // mmap (do_mmap, get_unmapped_area)
  ['mmap of length 0', ({ p }) => p.mmap(0, 0, RW, ANON), 'EINVAL'],
  ['mmap of a negative length (a huge size_t)', ({ p }) => p.mmap(0, -P, RW, ANON), 'ENOMEM'],
  ['mmap of a fractional length', ({ p }) => p.mmap(0, 1.5, RW, ANON), 'EINVAL'],
  ['mmap longer than the address space', ({ p }) => p.mmap(0, 2 ** 48, RW, ANON), 'ENOMEM'],
  ['mmap with an unknown flag', ({ p }) => p.mmap(0, P, RW, ANON | 0x800000), 'EINVAL'],
  ['MAP_SHARED_VALIDATE with an unknown flag', ({ p }) => p.mmap(0, P, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x800000), 'EOPNOTSUPP'],
  ['mmap with neither MAP_SHARED nor MAP_PRIVATE', ({ p }) => p.mmap(0, P, RW, MAP_ANONYMOUS), 'EINVAL'],
  ['mmap with an unknown prot bit', ({ p }) => p.mmap(0, P, 0x40, ANON), 'EINVAL'],
  ['mmap of a file mapping without a file', ({ p }) => p.mmap(0, P, RW, MAP_PRIVATE), 'EBADF'],
  ['mmap of a file at an unaligned offset', ({ p, f }) => p.mmap(0, P, RW, MAP_SHARED, f, 100), 'EINVAL'],
  ['mmap of a file at a negative offset', ({ p, f }) => p.mmap(0, P, RW, MAP_SHARED, f, -P), 'EINVAL'],
  ['MAP_FIXED at an unaligned address', ({ p, a }) => p.mmap(a + 8, P, RW, ANON | MAP_FIXED), 'EINVAL'],
  ['MAP_FIXED below mmap_min_addr', ({ p }) => p.mmap(0x1000, P, RW, ANON | MAP_FIXED), 'EPERM'],
  ['MAP_FIXED past TASK_SIZE', ({ p }) => p.mmap(TOP - P, 2 * P, RW, ANON | MAP_FIXED), 'ENOMEM'],
  ['MAP_FIXED at a negative address', ({ p }) => p.mmap(-P, P, RW, ANON | MAP_FIXED), 'EINVAL'],
  ['MAP_FIXED_NOREPLACE over a mapping', ({ p, a }) => p.mmap(a + P, 2 * P, RW, ANON | MAP_FIXED_NOREPLACE), 'EEXIST'],
  ['MAP_FIXED cutting a hugetlb page', ({ p, h }) => p.mmap(h + P, P, RW, ANON | MAP_FIXED), 'EINVAL'],
  ['MAP_HUGETLB of a file', ({ p, f }) => p.mmap(0, PMD_SIZE, RW, MAP_SHARED | MAP_HUGETLB, f), 'EINVAL'],
  ['MAP_HUGETLB shared (not modelled)', ({ p }) => p.mmap(0, PMD_SIZE, RW, SHARED_ANON | MAP_HUGETLB), 'EOPNOTSUPP'],
  // munmap (__vm_munmap)
  ['munmap of an unaligned address', ({ p, a }) => p.munmap(a + 1, P), 'EINVAL'],
  ['munmap of length 0', ({ p, a }) => p.munmap(a, 0), 'EINVAL'],
  ['munmap of a negative length', ({ p, a }) => p.munmap(a, -P), 'EINVAL'],
  ['munmap past TASK_SIZE', ({ p }) => p.munmap(TOP - P, 2 * P), 'EINVAL'],
  ['munmap of part of a hugetlb page', ({ p, h }) => p.munmap(h, P), 'EINVAL'],
  // mprotect (do_mprotect_pkey)
  ['mprotect of an unaligned address', ({ p, a }) => p.mprotect(a + 1, P, PROT_READ), 'EINVAL'],
  ['mprotect of a negative length (the end wraps)', ({ p, a }) => p.mprotect(a, -P, PROT_READ), 'ENOMEM'],
  ['mprotect with an unknown prot bit', ({ p, a }) => p.mprotect(a, P, 0x100), 'EINVAL'],
  ['mprotect of a range with a hole', ({ p, a }) => p.mprotect(a, 4 * P, PROT_READ), 'ENOMEM'],
  ['mprotect of an unmapped range', ({ p, a }) => p.mprotect(a + 2 * P, P, PROT_READ), 'ENOMEM'],
  ['mprotect past TASK_SIZE', ({ p }) => p.mprotect(TOP - P, 4 * P, PROT_READ), 'ENOMEM'],
  ['mprotect of part of a hugetlb page', ({ p, h }) => p.mprotect(h, P, PROT_READ), 'EINVAL'],
  // madvise
  ['madvise with unknown advice', ({ p, a }) => p.madvise(a, P, 999), 'EINVAL'],
  ['madvise of an unaligned address', ({ p, a }) => p.madvise(a + 1, P, MADV_DONTNEED), 'EINVAL'],
  ['madvise of a negative length', ({ p, a }) => p.madvise(a, -P, MADV_DONTNEED), 'EINVAL'],
  ['madvise over a hole', ({ p, a }) => p.madvise(a, 4 * P, MADV_DONTNEED), 'ENOMEM'],
  ['madvise past TASK_SIZE', ({ p }) => p.madvise(TOP - P, 4 * P, MADV_DONTNEED), 'ENOMEM'],
  ['MADV_FREE of shared memory', ({ p, s }) => p.madvise(s, P, MADV_FREE), 'EINVAL'],
  ['MADV_FREE of hugetlb memory', ({ p, h }) => p.madvise(h, PMD_SIZE, MADV_FREE), 'EINVAL'],
  ['MADV_PAGEOUT of hugetlb memory', ({ p, h }) => p.madvise(h, PMD_SIZE, MADV_PAGEOUT), 'EINVAL'],
  ['MADV_DONTNEED of hugetlb memory from an unaligned start', ({ p, h }) => p.madvise(h + P, P, MADV_DONTNEED), 'EINVAL'],
  ['MADV_NOHUGEPAGE of hugetlb memory', ({ p, h }) => p.madvise(h, PMD_SIZE, MADV_NOHUGEPAGE), 'EINVAL'],
  ['MADV_COLLAPSE of shared memory', ({ p, s }) => p.madvise(s, P, MADV_COLLAPSE), 'EINVAL'],
  // mremap
  ['mremap with an unknown flag', ({ p, a }) => p.mremap(a, P, P, 64), 'EINVAL'],
  ['mremap FIXED without MAYMOVE', ({ p, a }) => p.mremap(a, P, P, MREMAP_FIXED, a + 16 * P), 'EINVAL'],
  ['mremap DONTUNMAP with a new length', ({ p, a }) => p.mremap(a, P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), 'EINVAL'],
  ['mremap DONTUNMAP of shared memory', ({ p, s }) => p.mremap(s, P, P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), 'EINVAL'],
  ['mremap of an unaligned address', ({ p, a }) => p.mremap(a + 1, P, P, 0), 'EINVAL'],
  ['mremap to length 0', ({ p, a }) => p.mremap(a, P, 0, 0), 'EINVAL'],
  ['mremap of an unmapped range', ({ p, a }) => p.mremap(a + 2 * P, P, 2 * P, MREMAP_MAYMOVE), 'EFAULT'],
  ['mremap of a range across a hole', ({ p, a }) => p.mremap(a, 3 * P, 3 * P, MREMAP_MAYMOVE), 'EFAULT'],
  ['mremap growing into a mapping without MAYMOVE', ({ p, a }) => p.mremap(a, 2 * P, 4 * P, 0), 'ENOMEM'],
  ['mremap FIXED onto an overlapping range', ({ p, a }) => p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, a + P), 'EINVAL'],
  ['mremap FIXED to an unaligned address', ({ p, a }) => p.mremap(a, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, a + 64 * P + 1), 'EINVAL'],
  ['mremap FIXED below mmap_min_addr', ({ p, a }) => p.mremap(a, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, 0x2000), 'EPERM'],
  ['mremap FIXED past TASK_SIZE', ({ p, a }) => p.mremap(a, P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, TOP - P), 'EINVAL'],
  ['mremap of hugetlb memory (not modelled)', ({ p, h }) => p.mremap(h, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE), 'EINVAL'],
  // CPU access, files, notifiers, reclaim
  ['a read of a negative length', ({ p, a }) => p.read(a, -1), 'EINVAL'],
  ['a read outside any mapping (SIGSEGV)', ({ p, a }) => p.read(a + 2 * P, 1), 'EFAULT'],
  ['a write past the end of a file (SIGBUS)', ({ p, fm }) => p.writeU8(fm + P, 1), 'EFAULT'],
  ['an interval notifier of length 0', ({ p, a }) => mmuIntervalNotifierInsert(new MmuIntervalNotifier({ invalidate: () => true }), p.mm, a, 0), 'EOVERFLOW'],
  ['swapOutPage of a frame that does not exist', ({ m }) => swapOutPage(m, 2 ** 31), 'EINVAL'],
  ['truncate to a negative size', ({ f }) => f.truncate(-1), 'EINVAL'],
  // sizes and types checked before anything is allocated
  ['a read of 2^40 bytes (nothing maps that much: SIGSEGV before any buffer)', ({ p, a }) => p.read(a, 2 ** 40), 'EFAULT'],
  ['a write of null data', ({ p, a }) => p.write(a, null as unknown as Uint8Array), 'EFAULT'],
  ['a write of something that is not bytes', ({ p, a }) => p.write(a, [1, 2] as unknown as Uint8Array), 'EFAULT'],
  ['pagemapRange of 2^40 pages', ({ p, a }) => pagemapRange(p.mm, a, 2 ** 40), 'ENOMEM'],
  ['pagemapRange at a negative address', ({ p }) => pagemapRange(p.mm, -P, 1), 'EINVAL'],
  ['pwrite of null data', ({ f }) => f.pwrite(null as unknown as Uint8Array, 0), 'EFAULT'],
];

describe('bad input: a typed errno and nothing changed', () => {
  for (const [name, f, errno] of cases) {
    it(`${name}: ${errno}`, () => {
      const w = world();
      const before = snapshot(w.m);
      const checks = checkInvariants(w.m);
      let err: unknown = null;
      try {
        f(w);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KernelError);
      expect((err as KernelError).errno).toBe(errno);
      expect((err as KernelError).code).toBeLessThan(0);
      expect(snapshot(w.m)).toEqual(before);
      expect(checkInvariants(w.m)).toEqual(checks);
      expectConsistent(w.m);
      expect(w.p.readU8(w.a)).toBe(7);
    });
  }

  it('a read of 2^31 bytes of a mapped range (more than MAX_RW_COUNT): EINVAL before a 2 GiB buffer is allocated', () => {
    const { p } = setup();
    const a = p.mmap(0, 2 ** 31 + P, PROT_READ, ANON);
    const t = Date.now();
    expect(errnoOf(() => p.read(a, 2 ** 31))).toBe('EINVAL');
    expect(Date.now() - t).toBeLessThan(1000);
    expect(p.read(a, 2 * P).length).toBe(2 * P);
  });

  it('a machine larger than the frame table can describe: ENOMEM, promptly', () => {
    expect(errnoOf(() => new Machine({ ramBytes: 2 ** 50 }))).toBe('ENOMEM');
    expect(errnoOf(() => new Machine({ ramBytes: 2 ** 40 }))).toBe('ENOMEM');
    expect(errnoOf(() => new Machine({ ramBytes: 2 ** 60 }))).toBe('EINVAL'); // not a safe integer
  });

  it('Machine options: unknown keys, bad sizes and levels are EINVAL', () => {
    expect(errnoOf(() => new Machine({ ramBytes: 4097 }))).toBe('EINVAL');
    expect(errnoOf(() => new Machine({ levels: 3 as 4 }))).toBe('EINVAL');
    expect(errnoOf(() => new Machine({ thp: 'sometimes' as 'never' }))).toBe('EINVAL');
    expect(errnoOf(() => new Machine({ swapBytes: -1 }))).toBe('EINVAL');
    expect(errnoOf(() => new Machine({ deviceBytes: -1 }))).toBe('EINVAL');
    expect(errnoOf(() => new Machine({ deviceBytes: 1.5 }))).toBe('EINVAL');
    expect(errnoOf(() => new Machine({ ramBytes: 1 << 20, bogus: 1 } as never))).toBe('EINVAL');
  });

  it('a disposed machine spawns nothing (ESRCH) and its processes are gone', () => {
    const m = new Machine({ ramBytes: 1 << 20 });
    const p = m.spawn();
    p.writeU8(p.mmap(0, P, RW, ANON), 1);
    m.dispose();
    expect(p.alive).toBe(false);
    expect(errnoOf(() => m.spawn())).toBe('ESRCH');
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
      const { m, p } = newProcess();
      const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
      p.writeU32(a, 77);
      const before = { vmas: vmaStrings(p), used: m.phys.usedRamFrames, pte: ptEntry(p, a) };
      expect(() => f(p, a)).toThrow(expect.objectContaining({ errno }));
      expect({ vmas: vmaStrings(p), used: m.phys.usedRamFrames, pte: ptEntry(p, a) }).toEqual(before);
      expect(p.readU32(a)).toBe(77);
      expect(checkInvariants(m)).toEqual([]);
    });
  }

  it('use after exit: ESRCH', () => {
    const { p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.exit();
    expect(() => p.readU32(a)).toThrow(expect.objectContaining({ errno: 'ESRCH' }));
    expect(() => p.fork()).toThrow(expect.objectContaining({ errno: 'ESRCH' }));
    expect(() => p.exit()).toThrow(expect.objectContaining({ errno: 'ESRCH' }));
  });
});
