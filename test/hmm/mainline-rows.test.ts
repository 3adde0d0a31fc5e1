// docs/edge-cases-mainline.md, rows 1-19 (hmm_range_fault and the notifier sequence): one test
// per row, with the 4.17 API's counterpart where the row applies to both. Rows 20-23 are in
// notifier-rows.test.ts.

import { describe, expect, it } from 'vitest';
import {
  HmmRange, hmmRangeFault, hmmRangeFaultAsync, hmmPfnToMapOrder, hmmPfnToPage, KernelError, WouldBlock, MmuIntervalNotifier,
  mmuIntervalReadBegin, mmuIntervalReadRetry, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE,
  MAP_ANONYMOUS, MAP_FIXED, MAP_HUGE_1GB, MAP_HUGETLB, MAP_PRIVATE, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, PMD_SIZE,
  PROT_NONE, PROT_READ, PROT_WRITE, PUD_SIZE, VM_IO, VM_MIXEDMAP, VM_PFNMAP, allocPages, MAP_SHARED, mmapDevice, putPage,
  vmfInsertMixed, type Process,
} from '../../src/index.js';
import { HmmMirror, hmmMirrorRegister, hmmVmaFault, hmmVmaGetPfns, hmmVmaRangeDone } from '../../src/hmm/v417/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_NONE, K_PRESENT } from '../../src/mm/pagetable.js';
import {
  driverMapping, anon, cpuKind, cpuPfn, cpuWritable, enc, F_VALID, F_WRITE, makeExclusive, newMachine, P, range417, slotOf,
  startMigration, TestDevice, V_NONE, errnoOf,
} from './helpers.js';
import { subscribe } from './subscription.js';

function rangeOf(sub: MmuIntervalNotifier, start: number, end: number, defaultFlags = 0, extra: Partial<ConstructorParameters<typeof HmmRange>[0]> = {}): HmmRange {
  const r = new HmmRange({ notifier: sub, start, end, defaultFlags, ...extra });
  r.notifierSeq = mmuIntervalReadBegin(sub);
  return r;
}

/** The driver's retry loop: read_begin, hmm_range_fault, again on EBUSY (our own faults may invalidate the range). */
function faultLoop(r: HmmRange): number {
  for (let tries = 1; tries < 10; tries++) {
    r.notifierSeq = mmuIntervalReadBegin(r.notifier);
    try {
      hmmRangeFault(r);
      return tries;
    } catch (e) {
      if (!(e instanceof KernelError) || e.errno !== 'EBUSY') throw e;
    }
  }
  throw new Error('no progress');
}

function countFaults(p: Process): { n: number } {
  const c = { n: 0 };
  p.machine.events.subscribe('fault', () => void c.n++);
  return c;
}

function mirror417(p: Process): HmmMirror {
  const m = new HmmMirror({ syncCpuDevicePagetables: () => {} });
  hmmMirrorRegister(m, p.mm);
  return m;
}

describe('docs/edge-cases-mainline.md rows 1-19: hmm_range_fault and the notifier sequence', () => {
  it('mainline #1 hmm_range_fault with a stale notifier_seq: EBUSY, nothing faulted', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 8);
    const { sub } = subscribe(p.mm, a, 8 * P);
    const r = rangeOf(sub, a, a + 8 * P, HMM_PFN_REQ_FAULT);
    p.writeU8(a + 7 * P, 1);
    p.madvise(a + 7 * P, P, MADV_DONTNEED); // moves the sequence
    const faults = countFaults(p);
    expect(errnoOf(() => hmmRangeFault(r))).toBe('EBUSY');
    expect(faults.n).toBe(0);
    for (let i = 0; i < 8; i++) expect(cpuKind(p.mm, a + i * P)).toBe(K_NONE);
  });

  it('mainline #2 an invalidation between read_begin and read_retry: read_retry is true, the retry ends with the new state (4.17: range_done false, then valid)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 4);
    p.writeU32(a, 1);
    const { sub } = subscribe(p.mm, a, 4 * P);
    const r = rangeOf(sub, a, a + 4 * P, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE);
    hmmRangeFault(r);
    const old = r.hmmPfns[0];
    const child = p.fork(); // write-protects the parent: PROTECTION_PAGE
    expect(mmuIntervalReadRetry(sub, r.notifierSeq)).toBe(true);
    // the driver's loop
    for (;;) {
      r.notifierSeq = mmuIntervalReadBegin(sub);
      try {
        hmmRangeFault(r);
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue;
        throw e;
      }
      if (!mmuIntervalReadRetry(sub, r.notifierSeq)) break;
    }
    expect(r.hmmPfns[0]).not.toBe(old); // the write fault broke COW
    expect(r.hmmPfns[0]).toBe(cpuPfn(p.mm, a));
    expect(r.hmmFlags[0]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(child.readU32(a)).toBe(1);
    // 4.17
    const q = m.spawn();
    const b = anon(q, 2);
    mirror417(q);
    const r4 = range417(q, b, b + 2 * P);
    r4.pfns.fill(F_VALID | F_WRITE);
    hmmVmaFault(r4, true);
    q.madvise(b, P, MADV_DONTNEED);
    expect(hmmVmaRangeDone(r4)).toBe(false);
    r4.pfns.fill(F_VALID | F_WRITE);
    hmmVmaFault(r4, true);
    expect(hmmVmaRangeDone(r4)).toBe(true);
    expect(r4.pfns[0]).toBe(enc(cpuPfn(q.mm, b), F_VALID | F_WRITE));
  });

  it('mainline #3 read_begin during an invalidation waits until it ends', async () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    p.writeU8(a, 1);
    let blocked: WouldBlock | null = null;
    const { sub } = subscribe(p.mm, a, 2 * P, (s) => {
      try {
        mmuIntervalReadBegin(s);
      } catch (e) {
        if (e instanceof WouldBlock) blocked = e;
      }
    });
    p.madvise(a, P, MADV_DONTNEED);
    expect(blocked).toBeInstanceOf(WouldBlock);
    await blocked!.wait();
    const seq = mmuIntervalReadBegin(sub);
    expect(mmuIntervalReadRetry(sub, seq)).toBe(false);
  });

  it('mainline #4 a snapshot (no REQ bits) of holes, the zero page, swap and migration entries: 0, zero pfn VALID, 0, 0; nothing faulted (4.17: NONE, zero VALID, NONE, NONE)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 5);
    p.readU8(a + P); // zero page
    p.writeU8(a + 2 * P, 1);
    p.madvise(a + 2 * P, P, MADV_PAGEOUT); // swap entry
    p.writeU8(a + 3 * P, 1);
    const mig = startMigration(p.mm, a + 3 * P);
    const { sub } = subscribe(p.mm, a, 5 * P);
    const r = rangeOf(sub, a, a + 5 * P);
    r.hmmFlags.fill(HMM_PFN_REQ_FAULT); // per-page bits do not count: pfn_flags_mask is 0
    const faults = countFaults(p);
    hmmRangeFault(r);
    expect([...r.hmmFlags]).toEqual([0, HMM_PFN_VALID, 0, 0, 0]);
    expect(hmmPfnToPage(r, 1)).toBe(m.phys.zeroPfn);
    expect(faults.n).toBe(0);
    mirror417(p);
    const r4 = range417(p, a, a + 5 * P);
    hmmVmaGetPfns(r4);
    expect([...r4.pfns]).toEqual([V_NONE, enc(m.phys.zeroPfn, F_VALID), V_NONE, V_NONE, V_NONE]);
    hmmVmaRangeDone(r4);
    expect(faults.n).toBe(0);
    mig.finish();
  });

  it('mainline #5 REQ_FAULT over a hole: pages zero-mapped, VALID (4.17 likewise)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 6);
    const { sub } = subscribe(p.mm, a, 6 * P);
    const r = rangeOf(sub, a, a + 6 * P, HMM_PFN_REQ_FAULT);
    hmmRangeFault(r);
    for (let i = 0; i < 6; i++) {
      expect(r.hmmFlags[i]).toBe(HMM_PFN_VALID);
      expect(r.hmmPfns[i]).toBe(m.phys.zeroPfn);
      expect(cpuPfn(p.mm, a + i * P)).toBe(m.phys.zeroPfn);
    }
    const q = m.spawn();
    const b = anon(q, 2);
    mirror417(q);
    const r4 = range417(q, b, b + 2 * P);
    r4.pfns.fill(F_VALID);
    hmmVmaFault(r4, true);
    expect([...r4.pfns]).toEqual([enc(m.phys.zeroPfn, F_VALID), enc(m.phys.zeroPfn, F_VALID)]);
    hmmVmaRangeDone(r4);
  });

  it('mainline #6 REQ_WRITE on a read-only VMA: EPERM (4.17 has no such check: 0 without WRITE, row 20)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2, PROT_READ);
    const { sub } = subscribe(p.mm, a, 2 * P);
    const r = rangeOf(sub, a, a + 2 * P, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE);
    expect(errnoOf(() => hmmRangeFault(r))).toBe('EPERM');
    expect(cpuKind(p.mm, a)).toBe(K_NONE);
  });

  it('mainline #7 REQ_WRITE on a COW-shared page: COW break, the pfn differs from the parent\'s (4.17 likewise)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    p.writeU32(a, 42);
    const child = p.fork();
    const parentPfn = cpuPfn(p.mm, a);
    expect(cpuPfn(child.mm, a)).toBe(parentPfn);
    const { sub } = subscribe(child.mm, a, 2 * P);
    const r = rangeOf(sub, a, a + P, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE);
    expect(errnoOf(() => hmmRangeFault(r))).toBe('EBUSY'); // the COW break invalidated the range
    expect(faultLoop(r)).toBe(1); // the second pass needs no fault
    expect(r.hmmFlags[0]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(r.hmmPfns[0]).not.toBe(parentPfn);
    expect(r.hmmPfns[0]).toBe(cpuPfn(child.mm, a));
    const child2 = p.fork();
    mirror417(child2);
    const r4 = range417(child2, a, a + P);
    r4.pfns[0] = F_VALID | F_WRITE;
    hmmVmaFault(r4, true);
    expect(r4.pfns[0]).toBe(enc(cpuPfn(child2.mm, a), F_VALID | F_WRITE));
    expect(cpuPfn(child2.mm, a)).not.toBe(parentPfn);
    hmmVmaRangeDone(r4);
    expect(p.readU32(a)).toBe(42);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('mainline #8 REQ_WRITE on the zero page: a new page, VALID|WRITE', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    p.readU8(a);
    const { sub } = subscribe(p.mm, a, 2 * P);
    const r = rangeOf(sub, a, a + P, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE);
    faultLoop(r);
    expect(r.hmmFlags[0]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(r.hmmPfns[0]).not.toBe(m.phys.zeroPfn);
    expect(r.hmmPfns[0]).toBe(cpuPfn(p.mm, a));
  });

  it('mainline #9 a range covering a VM_PFNMAP/VM_IO VMA: ERROR entries for it and normal ones elsewhere; with REQ_FAULT, EFAULT', () => {
    const m = newMachine();
    const p = m.spawn();
    const base = 0x10000000;
    const a = p.mmap(base, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    driverMapping(p, 'pfnmap', 4, { addr: base + 4 * P, prot: PROT_READ }); // remap_pfn_range: VM_IO | VM_PFNMAP
    expect(p.mm.findVma(base + 4 * P)!.flags & (VM_PFNMAP | VM_IO)).toBe(VM_PFNMAP | VM_IO);
    p.writeU8(a, 1);
    const { sub } = subscribe(p.mm, base, 8 * P);
    const r = rangeOf(sub, base, base + 8 * P);
    hmmRangeFault(r);
    expect([...r.hmmFlags]).toEqual([HMM_PFN_VALID | HMM_PFN_WRITE, 0, 0, 0, HMM_PFN_ERROR, HMM_PFN_ERROR, HMM_PFN_ERROR, HMM_PFN_ERROR]);
    const f = rangeOf(sub, base, base + 8 * P, HMM_PFN_REQ_FAULT);
    expect(errnoOf(() => hmmRangeFault(f))).toBe('EFAULT');
    // a fault requested only outside the pfnmap VMA is fine
    const g = rangeOf(sub, base, base + 8 * P, 0, { pfnFlagsMask: HMM_PFN_REQ_FAULT });
    g.hmmFlags[1] = HMM_PFN_REQ_FAULT;
    hmmRangeFault(g);
    expect(g.hmmFlags[1]).toBe(HMM_PFN_VALID);
    expect(g.hmmFlags[5]).toBe(HMM_PFN_ERROR);
  });

  it('mainline table: a present PTE without a struct page in a VM_MIXEDMAP vma (vmf_insert_mixed of an I/O pfn): ERROR; with REQ_FAULT, EFAULT; the driver\'s own pages beside it are VALID', () => {
    const m = newMachine();
    const p = m.spawn();
    const io = m.phys.frames.capacity + 3;
    const page = allocPages(m);
    const a = mmapDevice(p.mm, 0, 2 * P, PROT_READ, MAP_SHARED, 0, {
      mmap: (vma) => {
        vma.flags |= VM_MIXEDMAP;
        vma.special = { fault: (vmf) => vmfInsertMixed(vmf.vma, vmf.address, vmf.address === vmf.vma.start ? page : io) };
      },
    });
    p.read(a, 1);
    p.read(a + P, 1); // both faulted in by the driver's handler
    const { sub } = subscribe(p.mm, a, 2 * P);
    const r = rangeOf(sub, a, a + 2 * P);
    hmmRangeFault(r);
    expect([...r.hmmFlags]).toEqual([HMM_PFN_VALID, HMM_PFN_ERROR]);
    expect(r.hmmPfns[0]).toBe(page);
    const f = rangeOf(sub, a, a + 2 * P, HMM_PFN_REQ_FAULT);
    expect(errnoOf(() => hmmRangeFault(f))).toBe('EFAULT');
    putPage(m, page);
  });

  it('mainline #10 a range crossing a gap between VMAs: ERROR for the gap in a snapshot, EFAULT when faulting', () => {
    const m = newMachine();
    const p = m.spawn();
    const base = 0x10000000;
    p.mmap(base, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    p.mmap(base + 4 * P, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    p.writeU8(base + 4 * P, 1);
    const { sub } = subscribe(p.mm, base, 6 * P);
    const r = rangeOf(sub, base, base + 6 * P);
    hmmRangeFault(r);
    expect([...r.hmmFlags]).toEqual([0, 0, HMM_PFN_ERROR, HMM_PFN_ERROR, HMM_PFN_VALID | HMM_PFN_WRITE, 0]);
    const f = rangeOf(sub, base, base + 6 * P, HMM_PFN_REQ_FAULT);
    expect(errnoOf(() => hmmRangeFault(f))).toBe('EFAULT');
    // a range wholly in no VMA
    const g = rangeOf(sub, base + 2 * P, base + 4 * P);
    hmmRangeFault(g);
    expect([...g.hmmFlags]).toEqual([HMM_PFN_ERROR, HMM_PFN_ERROR]);
  });

  it('mainline #11 a VMA without VM_READ (PROT_NONE, write-only): ERROR, or EFAULT when faulting', () => {
    for (const prot of [PROT_NONE, PROT_WRITE]) {
      const m = newMachine();
      const p = m.spawn();
      const a = anon(p, 2, prot);
      const { sub } = subscribe(p.mm, a, 2 * P);
      const r = rangeOf(sub, a, a + 2 * P);
      hmmRangeFault(r);
      expect([...r.hmmFlags]).toEqual([HMM_PFN_ERROR, HMM_PFN_ERROR]);
      const f = rangeOf(sub, a, a + 2 * P, HMM_PFN_REQ_FAULT);
      expect(errnoOf(() => hmmRangeFault(f))).toBe('EFAULT');
      expect(cpuKind(p.mm, a)).toBe(K_NONE);
    }
  });

  it('mainline #12 default_flags = REQ_FAULT with pfn_flags_mask = 0: every page faulted, whatever the per-page bits', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 6);
    const { sub } = subscribe(p.mm, a, 6 * P);
    const r = rangeOf(sub, a, a + 6 * P, HMM_PFN_REQ_FAULT);
    r.hmmFlags.fill(0);
    r.hmmFlags[2] = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE; // masked out
    hmmRangeFault(r);
    for (let i = 0; i < 6; i++) {
      expect(r.hmmFlags[i]).toBe(HMM_PFN_VALID);
      expect(cpuPfn(p.mm, a + i * P)).toBe(m.phys.zeroPfn);
    }
  });

  it('mainline #13 pfn_flags_mask selects per-page REQ_WRITE: requested pages are write-faulted, pages before them and in other PMD chunks are not (the kernel faults from the requesting page to the end of its page-table chunk)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 1024);
    const s = a + 508 * P; // 8 pages across the PMD boundary at a + 512 P
    for (let i = 0; i < 8; i++) p.readU8(s + i * P);
    const { sub } = subscribe(p.mm, s, 8 * P);
    const r = rangeOf(sub, s, s + 8 * P, HMM_PFN_REQ_FAULT, { pfnFlagsMask: HMM_PFN_REQ_WRITE });
    r.hmmFlags.fill(0);
    r.hmmFlags[2] = HMM_PFN_REQ_WRITE;
    r.hmmFlags[6] = HMM_PFN_REQ_WRITE;
    // Each pass: the zero-page COWs invalidate the range (EBUSY), and the per-page requests
    // must be written again, as after any error.
    for (;;) {
      r.notifierSeq = mmuIntervalReadBegin(sub);
      try {
        hmmRangeFault(r);
        break;
      } catch (e) {
        if ((e as KernelError).errno !== 'EBUSY') throw e;
        r.hmmFlags.fill(0);
        r.hmmFlags[2] = HMM_PFN_REQ_WRITE;
        r.hmmFlags[6] = HMM_PFN_REQ_WRITE;
      }
    }
    const w = [...r.hmmFlags].map((f) => (f & HMM_PFN_WRITE ? 1 : 0));
    expect(w).toEqual([0, 0, 1, 1, 0, 0, 1, 1]);
    for (let i = 0; i < 8; i++) {
      expect(r.hmmFlags[i]! & HMM_PFN_VALID).toBe(HMM_PFN_VALID);
      expect(cpuWritable(p.mm, s + i * P)).toBe(w[i] === 1);
    }
  });

  it('mainline #13 (a hole) per-page REQ_WRITE in an empty PMD: the whole hole is faulted once, for write, because the hole\'s need is the union of its pages\' requests', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 16);
    const { sub } = subscribe(p.mm, a, 16 * P);
    const r = rangeOf(sub, a, a + 8 * P, 0, { pfnFlagsMask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    r.hmmFlags.fill(0);
    r.hmmFlags[0] = HMM_PFN_REQ_FAULT;
    r.hmmFlags[5] = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
    const faults = countFaults(p);
    hmmRangeFault(r); // new pages in empty entries invalidate nothing: one call
    for (let i = 0; i < 8; i++) expect(r.hmmFlags[i]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(faults.n).toBe(8); // one write fault per page of [a, a + 8 P), none twice
    expect(cpuKind(p.mm, a + 8 * P)).toBe(K_NONE); // the hole is clipped to the range
  });

  it('mainline #14 THP mapping: order 9 on every entry, consecutive pfns (4.17: expanded per page, row 15)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 512);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a, 1);
    expect(slotOf(p.mm, a).level).toBe(1);
    const head = cpuPfn(p.mm, a);
    const { sub } = subscribe(p.mm, a, PMD_SIZE);
    const r = rangeOf(sub, a + 3 * P, a + PMD_SIZE, HMM_PFN_REQ_FAULT);
    hmmRangeFault(r);
    for (let i = 0; i < 509; i++) {
      expect(r.hmmFlags[i]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE | 9);
      expect(hmmPfnToMapOrder(r, i)).toBe(9);
      expect(r.hmmPfns[i]).toBe(head + 3 + i);
    }
  });

  it('mainline #15 hugetlb 2 MiB and 1 GiB pages: order 9 and 18', () => {
    const m = newMachine(2048 + 64);
    const p = m.spawn();
    const h2 = p.mmap(0, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    const h1 = p.mmap(0, PUD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB);
    p.writeU8(h1 + 5 * P, 1);
    const { sub } = subscribe(p.mm, 0, 2 ** 47);
    // 2 MiB: faulted by hmm_range_fault itself
    const r2 = rangeOf(sub, h2, h2 + 4 * P, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE);
    hmmRangeFault(r2);
    const head2 = cpuPfn(p.mm, h2);
    for (let i = 0; i < 4; i++) expect([r2.hmmFlags[i], r2.hmmPfns[i]]).toEqual([HMM_PFN_VALID | HMM_PFN_WRITE | 9, head2 + i]);
    // 1 GiB: a snapshot, in the middle of the page
    const r1 = rangeOf(sub, h1 + 1000 * P, h1 + 1004 * P);
    hmmRangeFault(r1);
    const head1 = cpuPfn(p.mm, h1);
    for (let i = 0; i < 4; i++) expect([r1.hmmFlags[i], r1.hmmPfns[i]]).toEqual([HMM_PFN_VALID | HMM_PFN_WRITE | 18, head1 + 1000 + i]);
    p.mprotect(h1, PUD_SIZE, PROT_READ);
    r1.notifierSeq = mmuIntervalReadBegin(sub);
    hmmRangeFault(r1);
    expect(r1.hmmFlags[0]).toBe(HMM_PFN_VALID | 18);
  });

  it('mainline #16 own device-private page: device pfn reported, never migrated; another owner\'s: 0 in a snapshot, migrated back on REQ_FAULT', () => {
    const m = newMachine();
    const p = m.spawn();
    const mine = new TestDevice(m);
    const theirs = new TestDevice(m);
    const a = anon(p, 2);
    p.writeU32(a, 11);
    p.writeU32(a + P, 22);
    const d0 = mine.migratePageToDevice(p.mm, a);
    theirs.migratePageToDevice(p.mm, a + P);
    p.mprotect(a, P, PROT_READ); // own entry read-only: still not faulted on REQ_WRITE
    p.mprotect(a, P, PROT_READ | PROT_WRITE);
    const { sub } = subscribe(p.mm, a, 2 * P);
    const snap = rangeOf(sub, a, a + 2 * P, 0, { devPrivateOwner: mine.owner });
    hmmRangeFault(snap);
    expect([snap.hmmFlags[0], snap.hmmPfns[0]]).toEqual([HMM_PFN_VALID, d0]);
    expect([snap.hmmFlags[1], snap.hmmPfns[1]]).toEqual([0, 0]);
    const f = rangeOf(sub, a, a + 2 * P, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, { devPrivateOwner: mine.owner });
    try {
      hmmRangeFault(f);
    } catch (e) {
      // the migration back invalidated the range: read_begin again
      expect((e as KernelError).errno).toBe('EBUSY');
      f.notifierSeq = mmuIntervalReadBegin(sub);
      hmmRangeFault(f);
    }
    expect(mine.faults).toBe(0);
    expect(theirs.faults).toBe(1);
    expect(cpuKind(p.mm, a)).toBe(K_DEVICE_PRIVATE);
    expect(cpuKind(p.mm, a + P)).toBe(K_PRESENT);
    expect([f.hmmFlags[0], f.hmmPfns[0]]).toEqual([HMM_PFN_VALID, d0]);
    expect([f.hmmFlags[1], f.hmmPfns[1]]).toEqual([HMM_PFN_VALID | HMM_PFN_WRITE, cpuPfn(p.mm, a + P)]);
    expect(p.readU32(a + P)).toBe(22);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('mainline #17 device-exclusive entry with REQ_FAULT: the CPU mapping is restored and an EXCLUSIVE invalidation is seen', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    p.writeU32(a, 5);
    const pfn = cpuPfn(p.mm, a);
    const owner = {};
    makeExclusive(p.mm, a, owner);
    const { sub, seen } = subscribe(p.mm, a, 2 * P);
    const snap = rangeOf(sub, a, a + P);
    hmmRangeFault(snap);
    expect(snap.hmmFlags[0]).toBe(0);
    expect(cpuKind(p.mm, a)).toBe(K_DEVICE_EXCLUSIVE);
    const r = rangeOf(sub, a, a + P, HMM_PFN_REQ_FAULT);
    expect(errnoOf(() => hmmRangeFault(r))).toBe('EBUSY'); // the restore invalidated the range
    expect(seen.map((x) => [x.event, x.owner])).toEqual([['EXCLUSIVE', null]]);
    expect(cpuKind(p.mm, a)).toBe(K_PRESENT);
    r.notifierSeq = mmuIntervalReadBegin(sub);
    hmmRangeFault(r);
    expect([r.hmmFlags[0], r.hmmPfns[0]]).toEqual([HMM_PFN_VALID | HMM_PFN_WRITE, pfn]);
    expect(p.readU32(a)).toBe(5);
  });

  it('mainline #18 swapped page with REQ_FAULT: swapped in, data intact (4.17 row 10b likewise)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    p.writeU32(a + P, 0xfeed);
    p.madvise(a + P, P, MADV_PAGEOUT);
    const { sub } = subscribe(p.mm, a, 2 * P);
    const r = rangeOf(sub, a + P, a + 2 * P, HMM_PFN_REQ_FAULT);
    hmmRangeFault(r);
    expect(r.hmmFlags[0]).toBe(HMM_PFN_VALID);
    expect(r.hmmPfns[0]).toBe(cpuPfn(p.mm, a + P));
    expect(p.readU32(a + P)).toBe(0xfeed);
    expect(m.swap.used).toBe(0);
  });

  it('mainline #19 a page under migration with REQ_FAULT: waits, then reports the new page (a PMD migration entry too)', async () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    p.writeU32(a, 77);
    const mig = startMigration(p.mm, a);
    const { sub } = subscribe(p.mm, a, 2 * P);
    const r = rangeOf(sub, a, a + 2 * P, HMM_PFN_REQ_FAULT);
    expect(() => hmmRangeFault(r)).toThrow(WouldBlock);
    r.notifierSeq = mmuIntervalReadBegin(sub);
    let done = false;
    const pending = hmmRangeFaultAsync(r).then(() => { done = true; });
    await Promise.resolve();
    await Promise.resolve();
    expect(done).toBe(false);
    const to = mig.finish(true);
    await pending;
    expect([r.hmmFlags[0], r.hmmPfns[0]]).toEqual([HMM_PFN_VALID | HMM_PFN_WRITE, to]);
    expect(p.readU32(a)).toBe(77);
    // a THP under migration: 4.17 reports ERROR (row 18), mainline waits
    const b = anon(p, 512);
    p.madvise(b, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(b, 1);
    const thp = startMigration(p.mm, b);
    const s2 = subscribe(p.mm, b, PMD_SIZE).sub;
    const r2 = rangeOf(s2, b, b + 4 * P, HMM_PFN_REQ_FAULT);
    const pending2 = hmmRangeFaultAsync(r2);
    await Promise.resolve();
    thp.finish();
    await pending2;
    expect(r2.hmmFlags[0]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE | 9);
    expect(checkInvariants(m)).toEqual([]);
  });
});
