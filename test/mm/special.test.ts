// Special mappings made through the calls drivers use (mm/memory.c): remap_pfn_range,
// vm_insert_page, vmf_insert_mixed and vmf_insert_pfn from a device file's mmap and fault
// handler, with the kernel's checks, and what the rest of the mm does with what they map.

import { describe, expect, it } from 'vitest';
import {
  allocPages, getUserPages, putUserPages, Machine, MAP_PRIVATE, MAP_SHARED, memcpyFromPage, memcpyToPage, mmapDevice, PAGE_SIZE, pagemap,
  PROT_READ, PROT_WRITE, putPage, remapPfnRange, VM_DONTDUMP, VM_DONTEXPAND, VM_FAULT_NOPAGE, VM_FAULT_SIGBUS, VM_IO, VM_MIXEDMAP,
  VM_PFNMAP, vmfInsertMixed, vmfInsertPfn, vmInsertPage, type Vma,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { errnoOf } from './helpers.js';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;


/** A driver's buffer of n pages, each filled with its index + seed. */
function driverPages(m: Machine, n: number, seed = 1): number[] {
  const pages: number[] = [];
  for (let i = 0; i < n; i++) {
    const pfn = allocPages(m, 0);
    memcpyToPage(m, pfn, 0, new Uint8Array([i + seed, 0xaa]));
    pages.push(pfn);
  }
  return pages;
}

/** checkInvariants, with the references the driver holds on its own pages accounted for. */
function clean(m: Machine, ...held: number[]): string[] {
  const extra = new Map<number, number>();
  for (const pfn of held) extra.set(pfn, (extra.get(pfn) ?? 0) + 1);
  return checkInvariants(m, { extraRefs: extra });
}

/** One page-table entry's view in pagemap terms. */
const kindAt = (p: { mm: Parameters<typeof pagemap>[0] }, a: number) => pagemap(p.mm, a).kind;

describe('remap_pfn_range', () => {
  it('maps raw pfns with special PTEs (no reference, no rmap) and marks the VMA VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    const buf = driverPages(m, 1);
    const contiguous = allocPages(m, 9); // a driver's physically contiguous buffer
    memcpyToPage(m, contiguous + 2, 0, new Uint8Array([42]));
    let seen: Vma | null = null;
    const a = mmapDevice(p.mm, 0, 4 * P, RW, MAP_SHARED, 0, { mmap: (vma) => { seen = vma; remapPfnRange(vma, vma.start, contiguous, 4 * P); } });
    const vma = p.mm.findVma(a)!;
    expect(vma).toBe(seen);
    expect(vma.flags & (VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP)).toBe(VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
    expect(pagemap(p.mm, a + 2 * P)).toMatchObject({ kind: 'special', present: true, pfn: contiguous + 2, write: true });
    expect(m.phys.frames.refcount[contiguous]).toBe(1); // the driver's reference only
    expect(m.phys.frames.mapcount[contiguous + 2]).toBe(0);
    expect([...p.read(a + 2 * P, 1)]).toEqual([42]);
    p.write(a + 3 * P, new Uint8Array([7])); // a shared writable mapping writes the driver's memory
    const out = new Uint8Array(1);
    memcpyFromPage(m, out, contiguous + 3, 0);
    expect([...out]).toEqual([7]);
    expect(clean(m, contiguous, ...buf)).toEqual([]);
    expect(errnoOf(() => getUserPages(p.mm, a, 1))).toBe('EFAULT'); // check_vma_flags
    const c = p.fork(); // the child maps the same pfns, still without references
    expect(pagemap(c.mm, a + 2 * P)).toMatchObject({ kind: 'special', pfn: contiguous + 2 });
    expect([...c.read(a + 2 * P, 1)]).toEqual([42]);
    c.exit();
    p.munmap(a, 4 * P);
    expect(m.phys.frames.refcount[contiguous]).toBe(1); // zap dropped nothing
    putPage(m, contiguous);
    for (const b of buf) putPage(m, b);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('I/O memory (pfns beyond the frames, no struct page): reads as zeros, writes are dropped', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    const bar = m.phys.frames.capacity + 1000;
    const a = mmapDevice(p.mm, 0, 2 * P, RW, MAP_SHARED, 0, { mmap: (vma) => remapPfnRange(vma, vma.start, bar, 2 * P) });
    expect(pagemap(p.mm, a + P)).toMatchObject({ kind: 'special', pfn: bar + 1 });
    p.write(a + P, new Uint8Array([1, 2, 3]));
    expect([...p.read(a + P, 3)]).toEqual([0, 0, 0]);
    expect(checkInvariants(m)).toEqual([]);
    p.exit();
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a private mapping must be remapped whole (its vm_pgoff becomes the pfn); a write to it is SIGBUS, not a COW (docs/api.md)', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    const [pfn] = driverPages(m, 1, 5);
    expect(errnoOf(() => mmapDevice(p.mm, 0, 2 * P, RW, MAP_PRIVATE, 0, { mmap: (vma) => remapPfnRange(vma, vma.start, pfn!, P) }))).toBe('EINVAL');
    const a = mmapDevice(p.mm, 0, P, RW, MAP_PRIVATE, 0, { mmap: (vma) => remapPfnRange(vma, vma.start, pfn!, P) });
    expect(p.mm.findVma(a)!.pgoff).toBe(pfn);
    expect(pagemap(p.mm, a)).toMatchObject({ kind: 'special', write: false });
    expect([...p.read(a, 1)]).toEqual([5]);
    expect(() => p.write(a, new Uint8Array([1]))).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
  });

  it('bad arguments: EINVAL (unaligned, empty, outside the vma, bad pfn, a mixed map), EBUSY (already mapped); nothing mapped; an mmap whose handler fails leaves no VMA', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    const [pfn] = driverPages(m, 1);
    let vma: Vma | null = null;
    const a = mmapDevice(p.mm, 0, 4 * P, RW, MAP_SHARED, 0, { mmap: (v) => { vma = v; } });
    const v = vma!;
    expect(errnoOf(() => remapPfnRange(v, a + 1, pfn!, P))).toBe('EINVAL');
    expect(errnoOf(() => remapPfnRange(v, a, pfn!, 0))).toBe('EINVAL');
    expect(errnoOf(() => remapPfnRange(v, a + 3 * P, pfn!, 2 * P))).toBe('EINVAL');
    expect(errnoOf(() => remapPfnRange(v, a - P, pfn!, P))).toBe('EINVAL');
    expect(errnoOf(() => remapPfnRange(v, a, -1, P))).toBe('EINVAL');
    expect(errnoOf(() => remapPfnRange(v, a, 0.5, P))).toBe('EINVAL');
    expect(v.flags & VM_PFNMAP).toBe(0);
    remapPfnRange(v, a + P, pfn!, P);
    expect(errnoOf(() => remapPfnRange(v, a, pfn!, 3 * P))).toBe('EBUSY');
    expect(kindAt(p, a)).toBe('none'); // the range before the mapped page was left alone
    const anonVma = p.mm.findVma(p.mmap(0, P, RW, MAP_PRIVATE | 0x20))!;
    expect(errnoOf(() => remapPfnRange(anonVma, anonVma.start, pfn!, P))).toBe('EINVAL'); // not a device mapping
    const before = p.mm.vmas.size;
    expect(errnoOf(() => mmapDevice(p.mm, 0, 2 * P, RW, MAP_SHARED, 0, { mmap: (w) => { remapPfnRange(w, w.start, pfn!, P); remapPfnRange(w, w.start, pfn!, P); } }))).toBe('EBUSY');
    expect(p.mm.vmas.size).toBe(before);
    expect(clean(m, pfn!)).toEqual([]);
  });
});

describe('vm_insert_page', () => {
  it('inserts driver pages referenced and reverse-mapped (VM_MIXEDMAP): read-only in a private mapping (a write COWs), writable in a shared one; munmap frees them', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    for (const type of [MAP_PRIVATE, MAP_SHARED]) {
      const pages = driverPages(m, 2, 10);
      const a = mmapDevice(p.mm, 0, 2 * P, RW, type, 0, {
        mmap: (vma) => {
          pages.forEach((pg, i) => vmInsertPage(vma, vma.start + i * P, pg));
        },
      });
      expect(p.mm.findVma(a)!.flags & VM_MIXEDMAP).toBe(VM_MIXEDMAP);
      expect(m.phys.frames.refcount[pages[0]!]).toBe(2); // the driver's and the mapping's
      expect(m.phys.frames.mapcount[pages[0]!]).toBe(1);
      expect(pagemap(p.mm, a)).toMatchObject({ kind: 'file', pfn: pages[0], write: type === MAP_SHARED });
      expect([...p.read(a + P, 1)]).toEqual([11]);
      p.write(a, new Uint8Array([99]));
      if (type === MAP_PRIVATE) {
        expect(pagemap(p.mm, a)).toMatchObject({ kind: 'anon', write: true });
        expect(pagemap(p.mm, a).pfn).not.toBe(pages[0]);
        const out = new Uint8Array(1);
        memcpyFromPage(m, out, pages[0]!, 0);
        expect([...out]).toEqual([10]); // the driver's page kept its byte
        expect(m.phys.frames.refcount[pages[0]!]).toBe(1);
      } else {
        expect(pagemap(p.mm, a).pfn).toBe(pages[0]);
      }
      const got = getUserPages(p.mm, a + P, 1); // a page with a struct page: gup works
      expect(got).toEqual([pages[1]]);
      expect(clean(m, ...pages)).toEqual([]);
      putUserPages(p.mm, got);
      p.munmap(a, 2 * P);
      expect(m.phys.frames.refcount[pages[1]!]).toBe(1); // the mapping's reference went with it
      for (const pg of pages) putPage(m, pg);
      expect(checkInvariants(m)).toEqual([]);
    }
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('bad arguments: EFAULT outside the vma; EINVAL for a VM_PFNMAP vma, an unaligned address, a free, anonymous or tail page; EBUSY twice; nothing changed', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    const [pg] = driverPages(m, 1);
    let v: Vma | null = null;
    const a = mmapDevice(p.mm, 0, 2 * P, RW, MAP_SHARED, 0, { mmap: (vma) => { v = vma; } });
    const vma = v!;
    expect(errnoOf(() => vmInsertPage(vma, a + 2 * P, pg!))).toBe('EFAULT');
    expect(errnoOf(() => vmInsertPage(vma, a - P, pg!))).toBe('EFAULT');
    expect(errnoOf(() => vmInsertPage(vma, a + 1, pg!))).toBe('EINVAL');
    const freed = allocPages(m, 0);
    putPage(m, freed);
    expect(errnoOf(() => vmInsertPage(vma, a, freed))).toBe('EINVAL');
    const anon = p.mmap(0, P, RW, MAP_PRIVATE | 0x20);
    p.write(anon, new Uint8Array([1]));
    expect(errnoOf(() => vmInsertPage(vma, a, pagemap(p.mm, anon).pfn))).toBe('EINVAL');
    const thp = allocPages(m, 9);
    expect(errnoOf(() => vmInsertPage(vma, a, thp + 1))).toBe('EINVAL');
    expect(vma.flags & VM_MIXEDMAP).toBe(0);
    expect(kindAt(p, a)).toBe('none');
    vmInsertPage(vma, a, pg!);
    expect(errnoOf(() => vmInsertPage(vma, a, pg!))).toBe('EBUSY');
    expect(m.phys.frames.refcount[pg!]).toBe(2);
    let w: Vma | null = null;
    mmapDevice(p.mm, 0, P, RW, MAP_SHARED, 0, { mmap: (vv) => { w = vv; remapPfnRange(vv, vv.start, pg!, P); } });
    expect(errnoOf(() => vmInsertPage(w!, w!.start, pg!))).toBe('EINVAL'); // VM_PFNMAP
    expect(clean(m, pg!, thp)).toEqual([]);
  });
});

describe('vmf_insert_mixed and vmf_insert_pfn from a fault handler', () => {
  it('a VM_MIXEDMAP vma filled on fault: a page of memory referenced, an I/O pfn special; NOPAGE, also when already mapped; SIGBUS outside or without VM_MIXEDMAP', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    const [pg] = driverPages(m, 1, 3);
    const io = m.phys.frames.capacity + 7;
    const answers: number[] = [];
    const a = mmapDevice(p.mm, 0, 2 * P, PROT_READ, MAP_SHARED, 0, {
      mmap: (vma) => {
        vma.flags |= VM_MIXEDMAP; // vm_flags_set, as drivers do
        vma.special = {
          fault: (vmf) => {
            const r = vmfInsertMixed(vmf.vma, vmf.address, vmf.address === vmf.vma.start ? pg! : io);
            answers.push(r, vmfInsertMixed(vmf.vma, vmf.address, pg!)); // a second insert finds the entry: still NOPAGE
            return r;
          },
        };
      },
    });
    expect([...p.read(a, 1)]).toEqual([3]);
    expect([...p.read(a + P, 1)]).toEqual([0]);
    expect(answers).toEqual([VM_FAULT_NOPAGE, VM_FAULT_NOPAGE, VM_FAULT_NOPAGE, VM_FAULT_NOPAGE]);
    expect(pagemap(p.mm, a)).toMatchObject({ kind: 'file', pfn: pg });
    expect(pagemap(p.mm, a + P)).toMatchObject({ kind: 'special', pfn: io + 0 });
    expect(m.phys.frames.refcount[pg!]).toBe(2);
    const vma = p.mm.findVma(a)!;
    expect(vmfInsertMixed(vma, a + 2 * P, pg!)).toBe(VM_FAULT_SIGBUS);
    expect(vmfInsertPfn(vma, a, io)).toBe(VM_FAULT_SIGBUS); // not VM_PFNMAP
    expect(errnoOf(() => getUserPages(p.mm, a + P, 1))).toBe('EFAULT'); // no struct page behind it
    expect(clean(m, pg!)).toEqual([]);
    putPage(m, pg!);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('vmf_insert_pfn fills a VM_PFNMAP vma on fault; a handler that maps nothing is SIGBUS; no handler is SIGBUS', () => {
    const m = new Machine({ ramBytes: 8 << 20 });
    const p = m.spawn();
    const [pg] = driverPages(m, 1, 8);
    const a = mmapDevice(p.mm, 0, 2 * P, PROT_READ, MAP_SHARED, 0, {
      mmap: (vma) => {
        vma.flags |= VM_IO | VM_PFNMAP;
        vma.special = { fault: (vmf) => (vmf.address === vmf.vma.start ? vmfInsertPfn(vmf.vma, vmf.address, pg!) : VM_FAULT_NOPAGE) };
      },
    });
    expect([...p.read(a, 1)]).toEqual([8]);
    expect(pagemap(p.mm, a)).toMatchObject({ kind: 'special', pfn: pg });
    expect(m.phys.frames.refcount[pg!]).toBe(1);
    expect(() => p.read(a + P, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    const b = mmapDevice(p.mm, 0, P, PROT_READ, MAP_SHARED, 0, { mmap: () => {} });
    expect(() => p.read(b, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    expect(clean(m, pg!)).toEqual([]);
  });
});
