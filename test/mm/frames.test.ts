// Page frames (struct page / folio): refcount, mapcount, flags, the zero pages, THP and hugetlb.
import { describe, expect, it } from 'vitest';
import {
  Machine, MADV_HUGEPAGE, MAP_HUGE_1GB, MAP_HUGE_2MB, MAP_HUGETLB, MAP_SHARED, PMD_SIZE, PROT_READ, PUD_SIZE,
} from '../../src/index.js';
import { keyLevel, keyVpn } from '../../src/mm/rmap.js';
import { PG_anon, PG_anon_exclusive, PG_head, PG_hugetlb, PG_tail } from '../../src/mm/page.js';
import { ANON, errnoOf, expectConsistent, freeRange, P, pm, RW, setup, SHARED_ANON, snapshot } from './helpers.js';

describe('small pages (mm/memory.c)', () => {
  it('do_anonymous_page: a read fault maps the shared zero page read-only and allocates nothing', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    const zeroRef = m.phys.frames.refcount[m.phys.zeroPfn];
    expect(p.readU32(a + P)).toBe(0);
    expect(pm(p, a + P)).toMatchObject({ present: true, kind: 'zero', pfn: m.phys.zeroPfn, write: false });
    expect(pm(p, a)).toMatchObject({ present: false, kind: 'none' }); // only the touched page
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.phys.frames.refcount[m.phys.zeroPfn]).toBe(zeroRef); // the zero page is not refcounted by mappings
    expect(m.phys.frames.mapcount[m.phys.zeroPfn]).toBe(0);
    expect(p.mm.vmas.all[0]!.anonVma).toBe(false); // no anon_vma_prepare for the zero page
    expectConsistent(m);
  });

  it('do_anonymous_page: a write fault maps a new exclusive anonymous page: refcount 1, mapcount 1, one rmap entry', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    p.writeU32(a + 2 * P + 8, 0xdeadbeef);
    const e = pm(p, a + 2 * P);
    expect(e).toMatchObject({ present: true, kind: 'anon', write: true, dirty: true, exclusive: true, order: 0 });
    const f = m.phys.frames;
    expect(f.refcount[e.pfn]).toBe(1);
    expect(f.mapcount[e.pfn]).toBe(1);
    expect(f.flags[e.pfn]! & (PG_anon | PG_anon_exclusive)).toBe(PG_anon | PG_anon_exclusive);
    const r = m.rmap.entries(e.pfn);
    expect(r.length).toBe(2);
    expect([r[0], keyVpn(r[1]!) * P, keyLevel(r[1]!)]).toEqual([p.mm.id, a + 2 * P, 0]);
    expect(m.phys.usedRamFrames).toBe(1);
    expect(p.readU32(a + 2 * P + 8)).toBe(0xdeadbeef);
    expect(p.readU32(a + 2 * P + 12)).toBe(0); // the rest of the new page is zeroed
  });

  it('wp_page_copy: a write to the zero page replaces it with a new zeroed page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.readU8(a);
    p.writeU8(a + 100, 7);
    const e = pm(p, a);
    expect(e.kind).toBe('anon');
    expect(e.pfn).not.toBe(m.phys.zeroPfn);
    expect(e.write).toBe(true);
    expect(Array.from(p.read(a + 98, 4))).toEqual([0, 0, 7, 0]);
    expectConsistent(m);
  });

  it('folio_put: unmapping the last mapping frees the frame and its data', () => {
    const { m, p } = setup();
    const freed: number[] = [];
    m.events.subscribe('free', (e) => void freed.push(e.pfn));
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.writeU32(a, 1);
    const pfn = pm(p, a).pfn;
    expect(m.phys.data.slotsInUse).toBe(1);
    p.munmap(a, 2 * P);
    expect(freed).toEqual([pfn]);
    expect(m.phys.frames.refcount[pfn]).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.phys.data.slotsInUse).toBe(0);
  });

  it('page cache: a file page holds one reference for the cache and one per mapping; mapping/index name the file', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(4 * P);
    const q = m.spawn();
    const a = p.mmap(0, 4 * P, RW, MAP_SHARED, f);
    const b = q.mmap(0, 4 * P, PROT_READ, MAP_SHARED, f);
    p.writeU32(a + 3 * P, 5);
    const pfn = pm(p, a + 3 * P).pfn;
    expect(m.phys.frames.refcount[pfn]).toBe(2);
    expect(q.readU32(b + 3 * P)).toBe(5);
    expect(pm(q, b + 3 * P)).toMatchObject({ pfn, kind: 'file', file: true, write: false, exclusive: false });
    expect(m.phys.frames.refcount[pfn]).toBe(3);
    expect(m.phys.frames.mapcount[pfn]).toBe(2);
    expect([m.phys.frames.mapping[pfn], m.phys.frames.index[pfn]]).toEqual([f.id, 3]);
    expect(m.phys.frames.flags[pfn]! & PG_anon).toBe(0);
    p.exit();
    q.exit();
    expect(m.phys.frames.refcount[pfn]).toBe(1); // the page cache still holds it
    f.close();
    expect(m.phys.usedRamFrames).toBe(1); // the file is still linked
    m.fs.unlink('f');
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('shmem: MAP_SHARED|MAP_ANONYMOUS memory lives in an unlinked file, freed with its last mapping', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, SHARED_ANON);
    p.writeU32(a, 9);
    const e = pm(p, a);
    expect(e).toMatchObject({ kind: 'file', file: true, write: true });
    expect(m.phys.frames.mapping[e.pfn]).not.toBe(0);
    expect(m.fs.cachedPages).toBe(1);
    p.munmap(a, 2 * P);
    expect(m.fs.cachedPages).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
  });
});

describe('transparent huge pages (mm/huge_memory.c), thp=madvise by default', () => {
  it('thp=madvise: without MADV_HUGEPAGE a fault in a 2 MiB aligned range maps a 4 KiB page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    expect(a % PMD_SIZE).toBe(0); // anonymous mappings of 2 MiB are PMD aligned for THP
    p.writeU32(a, 1);
    expect(pm(p, a).order).toBe(0);
    expect(m.phys.usedRamFrames).toBe(1);
  });

  it('do_huge_pmd_anonymous_page: with MADV_HUGEPAGE a write maps one PMD leaf of a 512-page folio', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU32(a + 5 * P, 0x1234);
    const e = pm(p, a + 5 * P);
    expect(e).toMatchObject({ present: true, kind: 'anon', order: 9, write: true, exclusive: true });
    const head = e.pfn - 5;
    const f = m.phys.frames;
    expect(head % 512).toBe(0);
    expect(f.flags[head]! & PG_head).toBe(PG_head);
    expect(f.order(head)).toBe(9);
    expect(f.flags[head + 7]! & PG_tail).toBe(PG_tail);
    expect(f.compoundHead(head + 7)).toBe(head);
    expect(f.refcount[head]).toBe(1); // one PMD mapping, one reference
    expect(f.mapcount[head]).toBe(0); // PTE mapcount: none
    expect(m.phys.entireMapcount.get(head)).toBe(1);
    expect(m.phys.usedRamFrames).toBe(512);
    expect(p.mm.pt.nodes).toBe(3); // PGD, PUD, PMD: no PTE table under a huge leaf
    expect(p.readU32(a + 5 * P)).toBe(0x1234);
    expectConsistent(m);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('thp=always backs any 2 MiB anonymous range; thp=never never does, even with MADV_HUGEPAGE', () => {
    const always = setup({ thp: 'always' }).p;
    const a = always.mmap(0, PMD_SIZE, RW, ANON);
    always.writeU8(a, 1);
    expect(pm(always, a).order).toBe(9);
    const never = setup({ thp: 'never' }).p;
    const b = never.mmap(0, PMD_SIZE, RW, ANON);
    never.madvise(b, PMD_SIZE, MADV_HUGEPAGE);
    never.writeU8(b, 1);
    expect(pm(never, b).order).toBe(0);
  });

  it('thp_vma_suitable_order: a PMD range not wholly inside the VMA gets small pages', () => {
    const { p } = setup({ thp: 'always' });
    const base = freeRange(p, 2 * PMD_SIZE, PMD_SIZE);
    const a = p.mmap(base + P, PMD_SIZE, RW, ANON | 0x10 /* MAP_FIXED */);
    p.writeU8(a, 1);
    p.writeU8(a + PMD_SIZE - P, 1);
    expect(pm(p, a).order).toBe(0);
    expect(pm(p, a + PMD_SIZE - P).order).toBe(0);
  });

  it('huge zero page: a read maps it as a PMD leaf; a write splits it and copies one 4 KiB page', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    expect(p.readU32(a + 3 * P)).toBe(0);
    expect(pm(p, a + 3 * P)).toMatchObject({ kind: 'zero', order: 9, write: false });
    expect(m.phys.usedRamFrames).toBe(0); // the huge zero page is reserved, not counted
    p.writeU8(a + 3 * P, 1);
    expect(pm(p, a + 3 * P)).toMatchObject({ kind: 'anon', order: 0, write: true });
    expect(pm(p, a)).toMatchObject({ kind: 'zero', order: 0, pfn: m.phys.zeroPfn }); // the rest: small zero pages
    expect(m.phys.usedRamFrames).toBe(1);
    expectConsistent(m);
  });

  it('do_huge_pmd_anonymous_page falls back to small pages when no 2 MiB block is free', () => {
    const { m, p } = setup({ ramBytes: 2 * PMD_SIZE });
    // Take one page out of each 2 MiB block so that no order-9 block is left.
    const blocks = p.mmap(0, 4 * P, RW, ANON);
    p.writeU8(blocks, 1);
    const q = m.spawn();
    const hog = q.mmap(0, PMD_SIZE, RW, ANON);
    q.madvise(hog, PMD_SIZE, MADV_HUGEPAGE);
    q.writeU8(hog, 1); // the only free 2 MiB block
    expect(pm(q, hog).order).toBe(9);
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a + P, 2);
    expect(pm(p, a + P)).toMatchObject({ kind: 'anon', order: 0 });
    expectConsistent(m);
  });
});

describe('hugetlb (mm/hugetlb.c)', () => {
  it('MAP_HUGETLB: 2 MiB pages, the length rounded up; the first touch maps a PG_hugetlb folio as a PMD leaf', () => {
    const { m, p } = setup();
    const a = p.mmap(0, PMD_SIZE + P, RW, ANON | MAP_HUGETLB | MAP_HUGE_2MB);
    expect(a % PMD_SIZE).toBe(0);
    expect(p.mm.vmas.all[0]!.end - a).toBe(2 * PMD_SIZE);
    expect(m.phys.usedRamFrames).toBe(0);
    p.writeU32(a + PMD_SIZE + 8 * P, 3);
    const e = pm(p, a + PMD_SIZE + 8 * P);
    expect(e).toMatchObject({ kind: 'anon', order: 9, write: true });
    const head = e.pfn - 8;
    expect(m.phys.frames.flags[head]! & PG_hugetlb).toBe(PG_hugetlb);
    expect(m.phys.frames.refcount[head]).toBe(1);
    expect(m.phys.usedRamFrames).toBe(512);
    expect(pm(p, a).present).toBe(false);
    expectConsistent(m);
  });

  it('MAP_HUGETLB|MAP_HUGE_1GB maps a PUD leaf; a read fault maps a fresh (not zero) huge page read-only', () => {
    const { m, p } = setup({ ramBytes: 2 * PUD_SIZE });
    const g = p.mmap(0, PUD_SIZE, RW, ANON | MAP_HUGETLB | MAP_HUGE_1GB);
    expect(g % PUD_SIZE).toBe(0);
    expect(p.readU32(g + 12345 * P)).toBe(0);
    const e = pm(p, g + 12345 * P);
    expect(e).toMatchObject({ kind: 'anon', order: 18, write: false });
    expect(e.pfn % 262144).toBe(12345);
    p.writeU32(g + 7, 1); // hugetlb_wp: the exclusive page is reused
    expect(pm(p, g)).toMatchObject({ pfn: e.pfn - 12345, write: true });
    expect(m.phys.usedRamFrames).toBe(262144);
    expect(p.mm.pt.nodes).toBe(2); // PGD and PUD table: nothing below a PUD leaf
    expectConsistent(m);
    p.munmap(g, PUD_SIZE);
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('an empty hugetlb pool is SIGBUS at the fault, with nothing mapped', () => {
    const { m, p } = setup({ ramBytes: 64 << 20 });
    const g = p.mmap(0, PUD_SIZE, RW, ANON | MAP_HUGETLB | MAP_HUGE_1GB);
    const before = snapshot(m);
    expect(() => p.writeU8(g, 1)).toThrow(/SIGBUS/);
    expect(snapshot(m)).toEqual(before);
  });

  it('hugetlb VMAs split only at huge page boundaries (hugetlb_vm_op_split): EINVAL otherwise', () => {
    const { p } = setup();
    const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON | MAP_HUGETLB);
    expect(errnoOf(() => p.munmap(a + P, P))).toBe('EINVAL');
    expect(errnoOf(() => p.mprotect(a, PMD_SIZE + P, PROT_READ))).toBe('EINVAL');
    p.mprotect(a, PMD_SIZE, PROT_READ);
    expect(p.mm.vmas.size).toBe(2);
    p.munmap(a + PMD_SIZE, PMD_SIZE);
    expect(p.mm.vmas.size).toBe(1);
  });

  it('MAP_HUGE_* sizes other than 2 MiB and 1 GiB, or without MAP_HUGETLB, are EINVAL', () => {
    const { m, p } = setup();
    expect(errnoOf(() => p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB | (16 << 26)))).toBe('EINVAL');
    expect(errnoOf(() => p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGE_2MB))).toBe('EINVAL');
    expect(p.mm.vmas.size).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('Machine: a fresh machine of any size has every frame free but the zero page', () => {
    const m = new Machine({ ramBytes: 3 * PMD_SIZE + 5 * P });
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.phys.freeRamFrames).toBe(3 * 512 + 5 - 1);
  });
});
