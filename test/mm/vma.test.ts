// VMAs (mm/vma.c, mm/mmap.c): split and merge like the kernel.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MADV_DONTFORK, MADV_DOFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_FIXED, MAP_SHARED, MREMAP_FIXED, MREMAP_MAYMOVE, PMD_SIZE,
  PROT_NONE, PROT_READ, Vma,
} from '../../src/index.js';
import { VmaSet } from '../../src/mm/vma.js';
import { ANON, expectConsistent, fill, freeRange, P, pm, RW, setup, SHARED_ANON, vmaList } from './helpers.js';

describe('split and merge', () => {
  it('mprotect in the middle splits one VMA in three (__split_vma); mprotect back merges them into one (vma_merge)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 8 * P, RW, ANON);
    fill(p, a, 8 * P, 3);
    p.mprotect(a + 2 * P, 3 * P, PROT_READ);
    expect(p.mm.vmas.all.map((v) => [v.start - a, v.end - a, v.flags & 3])).toEqual([[0, 2 * P, 3], [2 * P, 5 * P, 1], [5 * P, 8 * P, 3]]);
    expect(p.mm.vmas.all.map((v) => v.pgoff - a / P)).toEqual([0, 2, 5]); // pgoff follows the split
    p.mprotect(a + 2 * P, 3 * P, RW);
    expect(vmaList(p)).toEqual([`[0x${a.toString(16)}-0x${(a + 8 * P).toString(16)} rw-p] pgoff=${a / P}`]);
    expect(p.readU8(a + 4 * P)).toBe(3);
    expectConsistent(m);
  });

  it('mprotect over two VMAs with the same result merges them with their neighbours', () => {
    const { p } = setup();
    const a = p.mmap(0, 6 * P, RW, ANON);
    p.mprotect(a + P, P, PROT_READ);
    p.mprotect(a + 3 * P, P, PROT_NONE);
    expect(p.mm.vmas.size).toBe(5);
    p.mprotect(a, 6 * P, RW);
    expect(p.mm.vmas.size).toBe(1);
  });

  it('vma_merge leaves no mergeable neighbours: mprotect or madvise ending inside a VMA that already has the result does not split it', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 8 * P, RW, ANON);
    p.mprotect(a + 2 * P, 3 * P, PROT_READ); // [rw][r--: 2..5][rw]
    p.mprotect(a + P, 2 * P, PROT_READ); // page 1 joins the middle; page 2 already read-only
    expect(p.mm.vmas.all.map((v) => [(v.start - a) / P, (v.end - a) / P])).toEqual([[0, 1], [1, 5], [5, 8]]);
    p.madvise(a + 6 * P, 2 * P, MADV_HUGEPAGE);
    p.madvise(a + 5 * P, 2 * P, MADV_HUGEPAGE); // page 5 joins; page 6 already advised
    expect(p.mm.vmas.all.map((v) => [(v.start - a) / P, (v.end - a) / P])).toEqual([[0, 1], [1, 5], [5, 8]]);
    expect(p.mremap(a + 5 * P, 3 * P, P, 0)).toBe(a + 5 * P); // one VMA: mremap may shrink it
    expectConsistent(m);
  });

  it('an anonymous mmap next to a compatible VMA extends it; a different protection does not', () => {
    const { p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    const b = p.mmap(a - 2 * P, 2 * P, RW, ANON | MAP_FIXED); // pgoff (start >> PAGE_SHIFT) is contiguous
    expect(b).toBe(a - 2 * P);
    expect(p.mm.vmas.size).toBe(1);
    p.mmap(a + 4 * P, P, PROT_READ, ANON | MAP_FIXED);
    expect(p.mm.vmas.size).toBe(2);
  });

  it('shared anonymous mappings never merge with each other (two shmem files)', () => {
    const { p } = setup();
    const a = p.mmap(0, 2 * P, RW, SHARED_ANON);
    p.mmap(a + 2 * P, 2 * P, RW, SHARED_ANON | MAP_FIXED);
    expect(p.mm.vmas.size).toBe(2);
  });

  it('file VMAs merge only when the file offsets are contiguous', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(16 * P);
    const a = p.mmap(0, 2 * P, RW, MAP_SHARED, f, 0);
    p.mmap(a + 2 * P, 2 * P, RW, MAP_SHARED | MAP_FIXED, f, 2 * P);
    expect(p.mm.vmas.size).toBe(1);
    p.mmap(a + 4 * P, 2 * P, RW, MAP_SHARED | MAP_FIXED, f, 8 * P);
    expect(p.mm.vmas.size).toBe(2);
  });

  it('munmap in the middle of a file mapping: the upper part keeps mapping the right file pages (its pgoff moves on)', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    for (let i = 0; i < 8; i++) f.pwrite(Uint8Array.of(i + 10), i * P);
    const a = p.mmap(0, 8 * P, PROT_READ, MAP_SHARED, f, 0);
    p.munmap(a + 2 * P, 2 * P);
    expect(p.mm.vmas.all.map((v) => v.pgoff)).toEqual([0, 4]);
    for (const i of [0, 1, 4, 7]) expect(p.readU8(a + i * P)).toBe(i + 10);
    expectConsistent(m);
  });

  it('madvise(MADV_HUGEPAGE) of a subrange splits the VMA; MADV_NOHUGEPAGE then the default merges nothing back', () => {
    const { p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    p.madvise(a + P, P, MADV_HUGEPAGE);
    expect(p.mm.vmas.size).toBe(3);
    p.madvise(a + P, P, MADV_NOHUGEPAGE); // VM_NOHUGEPAGE is a different flag from neither
    expect(p.mm.vmas.size).toBe(3);
    p.madvise(a, 4 * P, MADV_DONTFORK);
    p.madvise(a, 4 * P, MADV_DOFORK);
    expect(p.mm.vmas.size).toBe(3);
  });

  it('vma_adjust_trans_huge: splitting a VMA through a THP (MADV_NOHUGEPAGE of half) splits the PMD leaf', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    fill(p, a, PMD_SIZE, 7);
    expect(pm(p, a).order).toBe(9);
    p.madvise(a + PMD_SIZE / 2, PMD_SIZE / 2, MADV_NOHUGEPAGE);
    expect(p.mm.vmas.size).toBe(2);
    expect(pm(p, a).order).toBe(0);
    expect(pm(p, a + PMD_SIZE / 2).order).toBe(0);
    expectConsistent(m);
    const c = p.fork(); // each VMA copies only its own entries
    expectConsistent(m);
    expect(c.readU8(a + PMD_SIZE - 1)).toBe(7);
    c.exit();
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('madvise that changes no flag does not split a THP', () => {
    const { p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a, 1);
    p.madvise(a, PMD_SIZE / 2, MADV_HUGEPAGE);
    p.mprotect(a, PMD_SIZE / 2, RW);
    expect(pm(p, a).order).toBe(9);
    expect(p.mm.vmas.size).toBe(1);
  });

  it('move_vma: a moved anonymous VMA keeps its pgoff, so it does not merge with a neighbour at the destination', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    const b = freeRange(p, 8 * P);
    p.mmap(b, 2 * P, RW, ANON | MAP_FIXED);
    p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, b + 2 * P);
    expect(p.mm.vmas.size).toBe(2);
    expect(p.mm.vmas.all.map((v) => v.pgoff)).toEqual([b / P, a / P]);
    expectConsistent(m);
  });
});

describe('VmaSet at scale (the maple tree\'s job): teardown is linear, single operations logarithmic', () => {
  /** n one-page VMAs, alternately read-only and read-write so that none merge, placed by hint (no gap search). */
  function manyVmas(n: number) {
    const { m, p } = setup({ ramBytes: 16 << 20 });
    const top = freeRange(p, (n + 1) * P, PMD_SIZE) + n * P;
    for (let i = 0; i < n; i++) p.mmap(top - (i + 1) * P, P, i % 2 ? RW : PROT_READ, ANON);
    expect(p.mm.vmas.size).toBe(n);
    return { m, p, low: top - n * P, top };
  }

  it('exit of a process with 100,000 VMAs takes well under a second (remove was indexOf + splice: 18 s)', () => {
    const { m, p } = manyVmas(100_000);
    const t = performance.now();
    p.exit();
    expect(performance.now() - t).toBeLessThan(2000); // a regression guard with a wide margin; the figure is in npm run bench
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('munmap of all of 100,000 VMAs at once takes well under a second, and one VMA in the middle is found and cut at once', () => {
    const { m, p, low, top } = manyVmas(100_000);
    const mid = low + 50_000 * P;
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) p.mprotect(mid + (i % 3) * P, P, PROT_NONE); // split-free, but lookup, prev and next each time
    expect(performance.now() - t0).toBeLessThan(2000);
    const t = performance.now();
    p.munmap(low, top - low);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(p.mm.vmas.size).toBe(0);
    expectConsistent(m);
  });

  it('under any sequence of inserts and removes, find_vma, lookup, prev, next, overlapping, the gap search and the order agree with a sorted array', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(999), fc.integer({ min: 1, max: 4 })), { maxLength: 400 }), fc.nat(999), (ops, probe) => {
      const set = new VmaSet();
      let ref: Vma[] = [];
      const overlapsRef = (s: number, e: number) => ref.filter((v) => v.start < e && v.end > s);
      for (const [add, at, len] of ops) {
        const s = at * P;
        const e = s + len * P;
        if (add) {
          if (overlapsRef(s, e).length) continue;
          const v = new Vma(s, e, 0, 0, null);
          set.insert(v);
          ref = [...ref, v].sort((x, y) => x.start - y.start);
        } else {
          const v = ref.find((x) => x.start <= s && x.end > s);
          if (!v) continue;
          set.remove(v);
          ref = ref.filter((x) => x !== v);
        }
      }
      expect(set.size).toBe(ref.length);
      expect(set.all).toEqual(ref);
      const addr = probe * P + 7;
      expect(set.findVma(addr)).toBe(ref.find((v) => v.end > addr));
      expect(set.lookup(addr)).toBe(ref.find((v) => v.start <= addr && v.end > addr));
      expect(set.overlapping(addr, addr + 10 * P)).toEqual(overlapsRef(addr, addr + 10 * P));
      ref.forEach((v, i) => {
        expect(set.prev(v)).toBe(ref[i - 1]);
        expect(set.next(v)).toBe(ref[i + 1]);
      });
      expect(set.isFree(addr, addr + P)).toBe(overlapsRef(addr, addr + P).length === 0);
      for (const len of [1, 3]) {
        let want = -1;
        for (let top = 1004 * P - len * P; top >= 2 * P && want < 0; top -= P) if (overlapsRef(top, top + len * P).length === 0) want = top;
        expect(set.findGapTopDown(len * P, 2 * P, 1004 * P, P)).toBe(want);
      }
    }), { numRuns: 200 });
  });

  it('lookupCached answers as lookup through inserts, removes (one, or a run) and a VMA end moved in place, probed around each', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(3), fc.nat(99), fc.integer({ min: 1, max: 4 }), fc.nat(99)), { minLength: 20, maxLength: 200 }), (ops) => {
      const set = new VmaSet();
      let ref: Vma[] = [];
      const at = (addr: number) => ref.find((v) => v.start <= addr && v.end > addr);
      for (const [op, a, len, probe] of ops) {
        const s = a * P;
        const e = s + len * P;
        expect(set.lookupCached(s + 5)).toBe(at(s + 5)); // cached now: the change below must not leave it stale
        if (op === 0 && !ref.some((v) => v.start < e && v.end > s)) {
          const v = new Vma(s, e, 0, 0, null);
          set.insert(v);
          ref = [...ref, v].sort((x, y) => x.start - y.start);
        } else if (op === 1 || op === 3) {
          const v = at(s);
          if (v) {
            if (op === 1) set.remove(v);
            else set.removeRun([v]);
            ref = ref.filter((x) => x !== v);
          }
        } else if (op === 2) {
          // An end moved in place (a split shrinks, an mremap grows into free space), no insert or remove.
          const v = at(s);
          const next = v && ref[ref.indexOf(v) + 1];
          if (v) v.end = Math.max(v.start + P, Math.min(next ? next.start : Infinity, v.end + (len - 2) * P));
        }
        for (const addr of [s + 5, probe * P + 5, s - P + 5]) expect(set.lookupCached(addr)).toBe(at(addr));
      }
    }), { numRuns: 200 });
  });
});
