// mmap, munmap and mprotect (mm/mmap.c, mm/vma.c, mm/mprotect.c).
import { describe, expect, it } from 'vitest';
import {
  MADV_HUGEPAGE, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_HUGETLB, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, PMD_SIZE, PROT_EXEC,
  PROT_NONE, PROT_READ, PROT_WRITE,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, freeRange, P, pm, rssOf, RW, setup, SHARED_ANON, snapshot } from './helpers.js';
import {
  PAGE_SIZE, SignalError,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { ptEntry, newProcess, vmaStrings } from './helpers.js';

describe('mmap', () => {
  it('get_unmapped_area: top-down, each new mapping below the last; an anonymous 2 MiB mapping is PMD aligned', () => {
    const { p } = setup();
    const a = p.mmap(0, 3 * P, RW, ANON);
    const b = p.mmap(0, P, PROT_READ, ANON);
    expect(b).toBe(a - P);
    const c = p.mmap(0, PMD_SIZE, RW, ANON);
    expect(c % PMD_SIZE).toBe(0);
    expect(c + PMD_SIZE).toBeLessThanOrEqual(b);
  });

  it('__get_unmapped_area: only a private anonymous length that is a multiple of 2 MiB is THP aligned', () => {
    const { p } = setup();
    const odd = p.mmap(0, 3 * PMD_SIZE / 2, RW, ANON);
    expect(odd % PMD_SIZE).not.toBe(0); // 3 MiB: placed right below the mmap base, which is not 2 MiB aligned
    expect(p.mmap(0, 2 * PMD_SIZE, RW, ANON) % PMD_SIZE).toBe(0);
  });

  it('a free hint is taken (rounded down to a page, as x86 does); a busy one is not; one below mmap_min_addr is raised to it', () => {
    const { p } = setup();
    const h = freeRange(p, 8 * P) + 3 * P;
    expect(p.mmap(h + 5, P, RW, ANON)).toBe(h);
    expect(p.mmap(h, P, RW, ANON)).not.toBe(h);
    expect(p.mmap(0x1000, P, RW, ANON)).toBe(0x10000);
  });

  it('anonymous private: reads are zero, writes are private to the process', () => {
    const { m, p } = setup();
    const q = m.spawn();
    const a = p.mmap(0, 2 * P, RW, ANON);
    const b = q.mmap(a, 2 * P, RW, ANON | MAP_FIXED);
    p.writeU32(a, 1);
    expect(q.readU32(b)).toBe(0);
    expect(rssOf(p.mm)).toEqual({ anon: 1, file: 0, shmem: 0, swap: 0 });
  });

  it('anonymous shared: one shmem page behind every mapping; shmem rss', () => {
    const { p } = setup();
    const a = p.mmap(0, 2 * P, RW, SHARED_ANON);
    p.writeU32(a + P, 5);
    expect(rssOf(p.mm)).toEqual({ anon: 0, file: 0, shmem: 1, swap: 0 });
    const c = p.fork();
    c.writeU32(a + P, 6);
    expect(p.readU32(a + P)).toBe(6);
    expect(pm(c, a + P).pfn).toBe(pm(p, a + P).pfn);
  });

  it('file private: reads map the page-cache page read-only; a write makes a private copy (do_cow_fault)', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.pwrite(new Uint8Array(2 * P).fill(9), 0);
    const a = p.mmap(0, 2 * P, RW, MAP_PRIVATE, f);
    expect(p.readU8(a)).toBe(9);
    expect(pm(p, a)).toMatchObject({ kind: 'file', pfn: f.pages.get(0), write: false });
    p.writeU8(a + P, 1); // a write fault on an empty entry copies at once
    expect(pm(p, a + P)).toMatchObject({ kind: 'anon', write: true });
    expect(Array.from(p.read(a + P, 3))).toEqual([1, 9, 9]);
    expect(Array.from(f.pread(2, P))).toEqual([9, 9]);
    expectConsistent(m);
  });

  it('file shared: stores reach the page cache and pread', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(P);
    const a = p.mmap(0, P, RW, MAP_SHARED, f);
    p.writeU32(a + 4, 0x01020304);
    expect(Array.from(f.pread(4, 4))).toEqual([4, 3, 2, 1]);
    expect(pm(p, a)).toMatchObject({ kind: 'file', write: true, dirty: true });
    expectConsistent(m);
  });

  it('MAP_FIXED replaces what was there: the old pages are freed and the new mapping reads zero', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 1);
    const seen: string[] = [];
    m.events.subscribe('unmap', (e) => void seen.push(`${e.reason} ${e.start - a} ${e.end - a}`));
    expect(p.mmap(a + P, 2 * P, PROT_READ, ANON | MAP_FIXED)).toBe(a + P);
    expect(seen).toEqual([`munmap ${P} ${3 * P}`]);
    expect(m.phys.usedRamFrames).toBe(2);
    expect(p.readU8(a + P)).toBe(0);
    expect([p.readU8(a), p.readU8(a + 3 * P)]).toEqual([1, 1]);
    expect(p.mm.vmas.size).toBe(3);
    expectConsistent(m);
  });

  it('MAP_FIXED_NOREPLACE over a mapping is EEXIST and changes nothing; over a hole it maps', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 1);
    p.munmap(a + 3 * P, P);
    const before = snapshot(m);
    expect(errnoOf(() => p.mmap(a + 2 * P, 2 * P, RW, ANON | MAP_FIXED_NOREPLACE))).toBe('EEXIST');
    expect(snapshot(m)).toEqual(before);
    expect(p.mmap(a + 3 * P, P, RW, ANON | MAP_FIXED_NOREPLACE)).toBe(a + 3 * P);
  });

  it('MAP_POPULATE: private writable memory is write-faulted (populate_vma_page_range), read-only memory gets the zero page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 8 * P, RW, ANON | MAP_POPULATE);
    expect(m.phys.usedRamFrames).toBe(8);
    expect(pm(p, a + 7 * P)).toMatchObject({ kind: 'anon', write: true });
    const r = p.mmap(0, 4 * P, PROT_READ, ANON | MAP_POPULATE);
    expect(pm(p, r + 3 * P)).toMatchObject({ kind: 'zero' });
    expect(m.phys.usedRamFrames).toBe(8);
  });

  it('MAP_POPULATE: a shared mapping is read-faulted (no COW to break); PROT_NONE is skipped; a file hole past EOF ends it quietly', () => {
    const { m, p } = setup();
    const s = p.mmap(0, 2 * P, RW, SHARED_ANON | MAP_POPULATE);
    expect(pm(p, s)).toMatchObject({ kind: 'file', write: true });
    expect(m.fs.cachedPages).toBe(2);
    const n = p.mmap(0, 2 * P, PROT_NONE, ANON | MAP_POPULATE);
    expect(pm(p, n).present).toBe(false);
    const f = m.fs.open('f');
    f.truncate(P);
    const fa = p.mmap(0, 3 * P, PROT_READ, MAP_SHARED | MAP_POPULATE, f); // mm_populate ignores the SIGBUS
    expect(pm(p, fa).present).toBe(true);
    expect(pm(p, fa + P).present).toBe(false);
    expectConsistent(m);
  });

  it('MAP_HUGETLB|MAP_POPULATE faults every huge page in', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON | MAP_HUGETLB | MAP_POPULATE);
    expect(m.phys.usedRamFrames).toBe(1024);
    expect(pm(p, a + PMD_SIZE)).toMatchObject({ order: 9, write: true });
  });
});

describe('munmap', () => {
  it('partial munmap splits the VMA, frees exactly the unmapped pages, and makes the hole SIGSEGV', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 8 * P, RW, ANON);
    fill(p, a, 8 * P, 4);
    p.munmap(a + 2 * P, 3 * P);
    expect(p.mm.vmas.all.map((v) => [v.start - a, v.end - a])).toEqual([[0, 2 * P], [5 * P, 8 * P]]);
    expect(m.phys.usedRamFrames).toBe(5);
    expect(() => p.readU8(a + 2 * P)).toThrow(/SIGSEGV/);
    expect(p.readU8(a + 5 * P)).toBe(4);
    expectConsistent(m);
  });

  it('munmap across several VMAs and holes removes all of them; unmapping a hole is not an error', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 8 * P, RW, ANON);
    p.mprotect(a + 2 * P, 2 * P, PROT_READ);
    p.munmap(a + 5 * P, P);
    fill(p, a, 2 * P, 1);
    p.munmap(a + P, 6 * P);
    expect(p.mm.vmas.all.map((v) => [v.start - a, v.end - a])).toEqual([[0, P], [7 * P, 8 * P]]);
    p.munmap(a + 2 * P, 4 * P);
    expect(m.phys.usedRamFrames).toBe(1);
    expectConsistent(m);
  });

  it('munmap of a length that is not a page multiple rounds it up', () => {
    const { p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    p.munmap(a, P + 1);
    expect(p.mm.vmas.all[0]!.start).toBe(a + 2 * P);
  });
});

describe('mprotect', () => {
  it('change_pte_range: removing write downgrades present entries; a write is then SIGSEGV with nothing changed', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 2);
    p.mprotect(a, 4 * P, PROT_READ);
    for (let i = 0; i < 4; i++) expect(pm(p, a + i * P)).toMatchObject({ present: true, write: false });
    const before = snapshot(m);
    expect(() => p.writeU8(a + P, 3)).toThrow(/SIGSEGV/);
    expect(snapshot(m)).toEqual(before);
    expect(p.readU8(a + P)).toBe(2);
  });

  it('change_huge_pmd: removing write from a whole THP keeps it one read-only leaf', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a, 1);
    p.mprotect(a, PMD_SIZE, PROT_READ);
    expect(pm(p, a)).toMatchObject({ order: 9, write: false });
    expectConsistent(m);
  });

  it('PROT_NONE: reads and writes are SIGSEGV and change nothing; the pages stay and come back with PROT_READ', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.writeU32(a, 77);
    p.mprotect(a, 2 * P, PROT_NONE);
    const before = snapshot(m);
    expect(() => p.readU8(a)).toThrow(expect.objectContaining({ signal: 'SIGSEGV', errno: 'EFAULT' }));
    expect(() => p.writeU8(a + P, 1)).toThrow(expect.objectContaining({ signal: 'SIGSEGV' }));
    expect(snapshot(m)).toEqual(before);
    p.mprotect(a, 2 * P, PROT_READ);
    expect(p.readU32(a)).toBe(77);
  });

  it('can_change_pte_writable: adding write back makes exclusive anonymous pages writable at once, but not pages shared with a child or the zero page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 3 * P, RW, ANON);
    p.writeU8(a, 1);
    p.readU8(a + 2 * P); // zero page
    p.mprotect(a, 3 * P, PROT_READ);
    p.mprotect(a, 3 * P, RW);
    expect(pm(p, a).write).toBe(true);
    expect(pm(p, a + 2 * P)).toMatchObject({ kind: 'zero', write: false });
    const c = p.fork();
    p.mprotect(a, 3 * P, PROT_READ);
    p.mprotect(a, 3 * P, RW);
    expect(pm(p, a).write).toBe(false); // shared with the child: still COW
    expect(c.readU8(a)).toBe(1);
    expectConsistent(m);
  });

  it('can_change_pmd_writable: an exclusive THP becomes writable again as one leaf', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a, 1);
    p.mprotect(a, PMD_SIZE, PROT_READ);
    p.mprotect(a, PMD_SIZE, RW);
    expect(pm(p, a)).toMatchObject({ order: 9, write: true });
    expectConsistent(m);
  });

  it('shared mappings: mprotect(RW) makes every present page writable again (pte_modify; shmem needs no write notification)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, SHARED_ANON);
    fill(p, a, 2 * P, 1);
    p.mprotect(a, 2 * P, PROT_READ);
    expect(pm(p, a + P).write).toBe(false);
    p.mprotect(a, 2 * P, RW);
    expect(pm(p, a + P).write).toBe(true);
    expectConsistent(m);
  });

  it('PROT_EXEC alone still allows reads (x86 access_error), not writes', () => {
    const { p } = setup();
    const a = p.mmap(0, P, PROT_EXEC, ANON);
    expect(p.readU8(a)).toBe(0);
    expect(() => p.writeU8(a, 1)).toThrow(/SIGSEGV/);
    const w = p.mmap(0, P, PROT_WRITE, ANON); // write implies read on x86
    p.writeU8(w, 5);
    expect(p.readU8(w)).toBe(5);
  });

  it('do_mprotect_pkey: a zero length succeeds whatever the prot; a hole is ENOMEM with nothing changed', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    p.munmap(a + 2 * P, P);
    p.mprotect(a, 0, 0x1000);
    const before = snapshot(m);
    expect(errnoOf(() => p.mprotect(a, 4 * P, PROT_READ))).toBe('ENOMEM');
    expect(snapshot(m)).toEqual(before);
  });
});

describe('VMAs (mm/mmap.c, mm/mprotect.c)', () => {
  it('mprotect in the middle splits one VMA in three; mprotect back merges them into one', () => {
    const { p } = newProcess();
    const a = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
    p.mprotect(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ);
    expect(vmaStrings(p).length).toBe(3);
    p.mprotect(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, RW);
    expect(vmaStrings(p).length).toBe(1);
  });

  it('mprotect(PROT_READ) write-protects the entries; a write is then SIGSEGV and changes nothing', () => {
    const { m, p } = newProcess();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 4);
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(ptEntry(p, a).write).toBe(false);
    expect(() => p.writeU32(a, 5)).toThrow(SignalError);
    expect(p.readU32(a)).toBe(4);
    p.mprotect(a, PAGE_SIZE, PROT_NONE);
    expect(() => p.readU32(a)).toThrow(/SIGSEGV/);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('MAP_FIXED replaces an existing mapping; MAP_FIXED_NOREPLACE fails with EEXIST', () => {
    const { p } = newProcess();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    expect(() => p.mmap(a, PAGE_SIZE, RW, ANON | MAP_FIXED_NOREPLACE)).toThrow(expect.objectContaining({ errno: 'EEXIST' }));
    expect(p.readU32(a)).toBe(1);
    p.mmap(a, PAGE_SIZE, RW, ANON | MAP_FIXED);
    expect(p.readU32(a)).toBe(0);
  });

  it('MAP_POPULATE faults every page in up front (writable private: write faults)', () => {
    const { m, p } = newProcess();
    const a = p.mmap(0, 16 * PAGE_SIZE, RW, ANON | MAP_POPULATE);
    expect(m.phys.usedRamFrames).toBe(16);
    expect(ptEntry(p, a + 15 * PAGE_SIZE).write).toBe(true);
  });
});
