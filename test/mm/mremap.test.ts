// mremap (mm/mremap.c): grow in place, move with MAYMOVE, FIXED, DONTUNMAP; the page-table
// entries move (the frames stay the same), THPs move whole when source and destination are
// PMD aligned.
import { describe, expect, it } from 'vitest';
import {
  MADV_HUGEPAGE, MADV_PAGEOUT, MAP_FIXED, MAP_PRIVATE, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PMD_SIZE, PROT_READ, swapOutPage,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, freeRange, P, pm, rssOf, RW, setup, SHARED_ANON, snapshot } from './helpers.js';

describe('mremap', () => {
  it('vma_expandable: grows in place when the space after it is free; the data stays, the new part reads zero', () => {
    const { m, p } = setup();
    const base = freeRange(p, 16 * P);
    const a = p.mmap(base, 4 * P, RW, ANON | MAP_FIXED);
    fill(p, a, 4 * P, 1);
    const pfn = pm(p, a).pfn;
    expect(p.mremap(a, 4 * P, 8 * P, 0)).toBe(a);
    expect(p.mm.vmas.size).toBe(1);
    expect(p.mm.vmas.all[0]!.end).toBe(a + 8 * P);
    expect(pm(p, a).pfn).toBe(pfn);
    expect([p.readU8(a + 3 * P), p.readU8(a + 7 * P)]).toEqual([1, 0]);
    expectConsistent(m);
  });

  it('cannot grow in place over another mapping: ENOMEM without MREMAP_MAYMOVE, nothing changed', () => {
    const { m, p } = setup();
    const base = freeRange(p, 16 * P);
    const a = p.mmap(base, 4 * P, RW, ANON | MAP_FIXED);
    p.mmap(base + 5 * P, P, PROT_READ, ANON | MAP_FIXED);
    fill(p, a, 4 * P, 1);
    const before = snapshot(m);
    expect(errnoOf(() => p.mremap(a, 4 * P, 8 * P, 0))).toBe('ENOMEM');
    expect(snapshot(m)).toEqual(before);
  });

  it('MREMAP_MAYMOVE: the entries move to a new range, the frames and data follow, the old range is gone', () => {
    const { m, p } = setup();
    const base = freeRange(p, 16 * P);
    const a = p.mmap(base, 4 * P, RW, ANON | MAP_FIXED);
    p.mmap(base + 4 * P, P, PROT_READ, ANON | MAP_FIXED); // blocks growth
    for (let i = 0; i < 4; i++) p.writeU32(a + i * P, 10 + i);
    const pfns = [0, 1, 2, 3].map((i) => pm(p, a + i * P).pfn);
    const used = m.phys.usedRamFrames;
    const n = p.mremap(a, 4 * P, 6 * P, MREMAP_MAYMOVE);
    expect(n).not.toBe(a);
    expect([0, 1, 2, 3].map((i) => pm(p, n + i * P).pfn)).toEqual(pfns); // moved, not copied
    for (let i = 0; i < 4; i++) expect(p.readU32(n + i * P)).toBe(10 + i);
    expect(p.readU32(n + 5 * P)).toBe(0);
    expect(() => p.readU8(a)).toThrow(/SIGSEGV/);
    expect(m.phys.usedRamFrames).toBe(used);
    expect(rssOf(p.mm).anon).toBe(4);
    expectConsistent(m);
    // The reverse map follows the move: reclaim finds the page at its new address.
    swapOutPage(m, pfns[2]!);
    expect(pm(p, n + 2 * P).kind).toBe('swap');
    expect(p.readU32(n + 2 * P)).toBe(12);
    expectConsistent(m);
  });

  it('MREMAP_FIXED replaces what is at the destination; swap entries move along', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    const d = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 2 * P, 1);
    fill(p, d, 4 * P, 2);
    p.madvise(a, P, MADV_PAGEOUT);
    expect(p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, d + P)).toBe(d + P);
    expect([p.readU8(d), p.readU8(d + P), p.readU8(d + 2 * P), p.readU8(d + 3 * P)]).toEqual([2, 1, 1, 2]);
    expect(m.phys.usedRamFrames).toBe(4);
    expect(m.swap.used).toBe(0);
    expect(p.mm.vmas.all.filter((v) => v.start >= d && v.end <= d + 4 * P).length).toBe(3);
    expectConsistent(m);
  });

  it('MREMAP_FIXED to a longer length: the entries move, the extension reads zero, the VMA keeps its file offset', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    for (let i = 0; i < 4; i++) f.pwrite(Uint8Array.of(i + 1), i * P);
    const a = p.mmap(0, 2 * P, RW, MAP_PRIVATE, f, P);
    p.writeU8(a + P + 1, 9); // a COW copy of file page 2
    const d = freeRange(p, 8 * P);
    expect(p.mremap(a, 2 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, d)).toBe(d);
    expect([p.readU8(d), p.readU8(d + P), p.readU8(d + P + 1), p.readU8(d + 2 * P)]).toEqual([2, 3, 9, 4]);
    expect(p.mm.vmas.lookup(d)!.pgoff).toBe(1);
    expectConsistent(m);
  });

  it('MREMAP_DONTUNMAP: the old VMA stays, empty (anonymous memory reads zero), the pages are at the new address', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    fill(p, a, 2 * P, 7);
    const pfn = pm(p, a).pfn;
    const n = p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    expect(pm(p, n).pfn).toBe(pfn);
    expect(p.readU8(n + P)).toBe(7);
    expect(pm(p, a).present).toBe(false);
    expect(p.readU8(a)).toBe(0);
    expect(p.mm.vmas.size).toBe(2);
    expectConsistent(m);
  });

  it('move_huge_pmd: a PMD-aligned THP moves to a PMD-aligned destination as one leaf', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    fill(p, a, PMD_SIZE, 9);
    const head = pm(p, a).pfn;
    const d = freeRange(p, PMD_SIZE, PMD_SIZE);
    p.mremap(a, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, d);
    expect(pm(p, d)).toMatchObject({ order: 9, pfn: head, write: true });
    expect(p.readU8(d + PMD_SIZE - 1)).toBe(9);
    expectConsistent(m);
  });

  it('a THP moved to a destination that is not PMD aligned is split and moved as 512 PTEs', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    fill(p, a, PMD_SIZE, 9);
    const head = pm(p, a).pfn;
    const d = freeRange(p, 2 * PMD_SIZE, PMD_SIZE) + P;
    p.mremap(a, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, d);
    expect(pm(p, d)).toMatchObject({ order: 0, pfn: head });
    expect(pm(p, d + 511 * P)).toMatchObject({ order: 0, pfn: head + 511 });
    expect(p.readU8(d + PMD_SIZE - 1)).toBe(9);
    expectConsistent(m);
  });

  it('shrinking unmaps the tail and frees its pages', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 1);
    expect(p.mremap(a, 4 * P, P, 0)).toBe(a);
    expect(m.phys.usedRamFrames).toBe(1);
    expect(() => p.readU8(a + P)).toThrow(/SIGSEGV/);
  });

  it('growing a shared anonymous mapping in place: the part past the shmem file size is SIGBUS, as in the kernel', () => {
    const { p } = setup();
    const base = freeRange(p, 8 * P);
    const a = p.mmap(base, 2 * P, RW, SHARED_ANON | MAP_FIXED);
    p.mremap(a, 2 * P, 4 * P, 0);
    p.writeU8(a + P, 1);
    expect(() => p.readU8(a + 3 * P)).toThrow(/SIGBUS/);
  });

  it('errors change nothing: a range across two VMAs is EFAULT, overlapping FIXED ranges EINVAL, DONTUNMAP with a new length EINVAL', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    p.mprotect(a + 2 * P, 2 * P, PROT_READ);
    fill(p, a, 2 * P, 1);
    const before = snapshot(m);
    expect(errnoOf(() => p.mremap(a, 4 * P, 4 * P, MREMAP_MAYMOVE))).toBe('EFAULT');
    expect(errnoOf(() => p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, a + P))).toBe('EINVAL');
    expect(errnoOf(() => p.mremap(a, 2 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP))).toBe('EINVAL');
    expect(errnoOf(() => p.mremap(a, 2 * P, 2 * P, MREMAP_FIXED, a + 8 * P))).toBe('EINVAL');
    expect(errnoOf(() => p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, 0x1000))).toBe('EPERM');
    expect(snapshot(m)).toEqual(before);
  });
});
