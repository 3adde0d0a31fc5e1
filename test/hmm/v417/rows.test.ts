// docs/edge-cases-4.17.md, rows 1-37 (cited as 4.17 #n): one test per row (rows 38-50 belong to migration and
// devmem). Where hmmsim follows the documented intent or a later fix instead of observed
// 4.17, the test name says "deviation" and docs/api.md lists it.

import { describe, expect, it } from 'vitest';
import {
  WouldBlock, MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT,
  PMD_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, VM_DONTEXPAND, VM_IO, VM_MIXEDMAP, VM_PFNMAP, swapOutPage, type Process,
} from '../../../src/index.js';
import {
  HmmMirror, hmmMirrorRegister, hmmMirrorUnregister, hmmVmaFault, hmmVmaFaultAsync, hmmVmaGetPfns, hmmVmaRangeDone, hmmOf,
  hmmInjectAllocFailure, HmmRange as HmmRange417, hmmPfnToPfn, type HmmMirrorOps,
} from '../../../src/hmm/v417/index.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { K_DEVICE_PRIVATE, K_NONE, K_PRESENT } from '../../../src/mm/pagetable.js';
import {
  driverMapping, anon, cpuKind, cpuPfn, cpuWritable, enc, F_DP, F_VALID, F_WRITE, installBadPmd, installHwpoison, newMachine, P,
  range417, setProtnone, slotOf, startMigration, TestDevice, V_ERROR, V_NONE, V_SPECIAL, errnoOf,
} from '../helpers.js';

function setup(ops: Partial<HmmMirrorOps> = {}) {
  const m = newMachine();
  const p = m.spawn();
  const syncs: Array<[number, number]> = [];
  const mirror = new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s, e) => void syncs.push([s, e]), ...ops });
  hmmMirrorRegister(mirror, p.mm);
  return { m, p, mirror, syncs };
}

function untracked(r: HmmRange417): boolean {
  return r.tracker === null && errnoOf(() => hmmVmaRangeDone(r)) === 'EINVAL';
}

const SENTINEL = 0x3f;

/** A THP-backed 2 MiB mapping, written (so one PMD leaf maps it). */
function thp(p: Process): number {
  const a = anon(p, 512);
  p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
  p.writeU32(a, 7);
  expect(slotOf(p.mm, a).level).toBe(1);
  return a;
}

describe('docs/edge-cases-4.17.md rows 1-37', () => {
  it('4.17 #1 start outside the vma, or end > vm_end: EINVAL, entries untouched, untracked (get_pfns and fault)', () => {
    const { p } = setup();
    const a = anon(p, 4);
    anon(p, 4, PROT_READ); // an unmergeable neighbour just below, so that start - P is mapped
    for (const [s, e] of [[a - P, a + P], [a + 2 * P, a + 6 * P]] as const) {
      for (const call of [hmmVmaGetPfns, (r: HmmRange417) => hmmVmaFault(r, true)]) {
        const r = new HmmRange417({ vma: p.mm.findVma(a)!, start: s, end: e, flags: [F_VALID, F_WRITE, F_DP], values: [V_ERROR, V_NONE, V_SPECIAL], pfnShift: 6 });
        r.pfns.fill(SENTINEL);
        expect(errnoOf(() => call(r))).toBe('EINVAL');
        expect([...r.pfns].every((v) => v === SENTINEL)).toBe(true);
        expect(untracked(r)).toBe(true);
      }
    }
  });

  it('4.17 #2 hugetlb vma: every entry SPECIAL, EINVAL, untracked (get_pfns and fault)', () => {
    const { p } = setup();
    const a = p.mmap(0, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    for (const call of [hmmVmaGetPfns, (r: HmmRange417) => hmmVmaFault(r, true)]) {
      const r = range417(p, a, a + 8 * P);
      r.pfns.fill(F_VALID);
      expect(errnoOf(() => call(r))).toBe('EINVAL');
      expect([...r.pfns].every((v) => v === V_SPECIAL)).toBe(true);
      expect(untracked(r)).toBe(true);
    }
    expect(cpuKind(p.mm, a)).toBe(K_NONE); // nothing was faulted
  });

  it('4.17 #3 VM_IO / VM_PFNMAP / VM_MIXEDMAP / VM_DONTEXPAND vma: same as 4.17 #2', () => {
    const made = { pfnmap: VM_IO | VM_PFNMAP | VM_DONTEXPAND, mixedmap: VM_MIXEDMAP, dontexpand: VM_DONTEXPAND } as const;
    for (const [kind, flag] of Object.entries(made) as Array<[keyof typeof made, number]>) {
      const { p } = setup();
      const a = driverMapping(p, kind, 4); // remap_pfn_range, vm_insert_page, vm_flags_set from the driver's mmap
      expect(p.mm.findVma(a)!.flags & flag).toBe(flag);
      const before = [0, 1, 2, 3].map((i) => cpuKind(p.mm, a + i * P));
      for (const call of [hmmVmaGetPfns, (r: HmmRange417) => hmmVmaFault(r, false)]) {
        const r = range417(p, a, a + 4 * P);
        r.pfns.fill(F_VALID | F_WRITE);
        expect(errnoOf(() => call(r))).toBe('EINVAL');
        expect([...r.pfns]).toEqual([V_SPECIAL, V_SPECIAL, V_SPECIAL, V_SPECIAL]);
        expect(untracked(r)).toBe(true);
      }
      expect([0, 1, 2, 3].map((i) => cpuKind(p.mm, a + i * P))).toEqual(before); // nothing was faulted or changed
    }
  });

  it('4.17 #4 vma without VM_READ (write-only, PROT_NONE): every entry NONE, EPERM, untracked', () => {
    for (const prot of [PROT_WRITE, PROT_NONE]) {
      const { p } = setup();
      const a = anon(p, 4, prot);
      for (const call of [hmmVmaGetPfns, (r: HmmRange417) => hmmVmaFault(r, true)]) {
        const r = range417(p, a, a + 4 * P);
        r.pfns.fill(F_VALID | F_WRITE);
        expect(errnoOf(() => call(r))).toBe('EPERM');
        expect([...r.pfns]).toEqual([V_NONE, V_NONE, V_NONE, V_NONE]);
        expect(untracked(r)).toBe(true);
      }
      expect(cpuKind(p.mm, a)).toBe(K_NONE);
    }
  });

  it('4.17 #5 per-mm HMM allocation fails in get_pfns: ENOMEM, entries untouched', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    hmmInjectAllocFailure(p.mm);
    const r = range417(p, a, a + 2 * P);
    r.pfns.fill(SENTINEL);
    expect(errnoOf(() => hmmVmaGetPfns(r))).toBe('ENOMEM');
    expect([...r.pfns]).toEqual([SENTINEL, SENTINEL]);
    expect(untracked(r)).toBe(true);
  });

  it('4.17 #5b per-mm HMM allocation fails in fault: ENOMEM, every entry NONE', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    hmmInjectAllocFailure(p.mm);
    const r = range417(p, a, a + 2 * P);
    r.pfns.fill(F_VALID);
    expect(errnoOf(() => hmmVmaFault(r, true))).toBe('ENOMEM');
    expect([...r.pfns]).toEqual([V_NONE, V_NONE]);
    expect(cpuKind(p.mm, a)).toBe(K_NONE);
  });

  it('4.17 #6 no mirror registered on the mm: EINVAL, no state created (documented intent; deviation: 4.17 created it silently)', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 2);
    for (const call of [hmmVmaGetPfns, (r: HmmRange417) => hmmVmaFault(r, true)]) {
      const r = range417(p, a, a + 2 * P);
      r.pfns.fill(F_VALID);
      expect(errnoOf(() => call(r))).toBe('EINVAL');
      expect([...r.pfns]).toEqual([F_VALID, F_VALID]);
    }
    expect(hmmOf(p.mm)).toBeUndefined();
    expect(p.mm.notifiers.list.length).toBe(0);
  });

  it('4.17 #7 start == end in get_pfns: EINVAL, untracked (deviation: 4.17 tracked it and range_done hit BUG)', () => {
    const { p } = setup();
    const a = anon(p, 2);
    const r = range417(p, a, a);
    expect(errnoOf(() => hmmVmaGetPfns(r))).toBe('EINVAL');
    expect(r.tracker).toBeNull();
    expect(hmmOf(p.mm)!.ranges.length).toBe(0);
  });

  it('4.17 #7b start == end in fault: EINVAL, untracked (deviation: 4.17 hit BUG in its internal range_done)', () => {
    const { p } = setup();
    const a = anon(p, 2);
    const r = range417(p, a, a);
    expect(errnoOf(() => hmmVmaFault(r, true))).toBe('EINVAL');
    expect(r.tracker).toBeNull();
  });

  it('4.17 #8 pte none, pmd none and missing directories all read NONE (get_pfns, and fault without requests)', () => {
    const { p } = setup();
    const a = anon(p, 1024); // two PMD chunks
    p.writeU8(a, 1); // a PTE table for the first chunk; the second PMD stays none
    const far = p.mmap(5 * 2 ** 30, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED); // no PMD table at all
    for (const [s, n] of [[a + P, 1023], [far, 4]] as const) {
      const r = range417(p, s, s + n * P);
      hmmVmaGetPfns(r);
      expect(r.pfns.every((v) => v === V_NONE)).toBe(true);
      expect(hmmVmaRangeDone(r)).toBe(true);
      r.pfns.fill(0);
      hmmVmaFault(r, true);
      expect(r.pfns.every((v) => v === V_NONE)).toBe(true);
      expect(hmmVmaRangeDone(r)).toBe(true);
    }
    expect(cpuKind(p.mm, a + P)).toBe(K_NONE);
  });

  it('4.17 #9 none entries with VALID requested are faulted, then snapshotted (per-page intent: only the requested pages; deviation: 4.17 faulted every page to the chunk end)', () => {
    const { p } = setup();
    const a = anon(p, 8);
    const r = range417(p, a, a + 8 * P);
    r.pfns[2] = F_VALID;
    r.pfns[5] = F_VALID | F_WRITE;
    hmmVmaFault(r, true);
    const zero = p.machine.phys.zeroPfn;
    expect(r.pfns[2]).toBe(enc(zero, F_VALID));
    expect(r.pfns[5]).toBe(enc(cpuPfn(p.mm, a + 5 * P), F_VALID | F_WRITE));
    for (const i of [0, 1, 3, 4, 6, 7]) {
      expect(r.pfns[i]).toBe(V_NONE);
      expect(cpuKind(p.mm, a + i * P)).toBe(K_NONE);
    }
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #10 regular swapped-out page: get_pfns reads NONE', () => {
    const { p } = setup();
    const a = anon(p, 2);
    p.writeU32(a, 0xabcd);
    p.madvise(a, P, MADV_PAGEOUT);
    expect(cpuKind(p.mm, a)).not.toBe(K_PRESENT);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    expect([...r.pfns]).toEqual([V_NONE, V_NONE]);
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #10b regular swapped-out page, requested: swapped in, data intact', () => {
    const { p } = setup();
    const a = anon(p, 2);
    p.writeU32(a, 0xabcd);
    p.madvise(a, P, MADV_PAGEOUT);
    const r = range417(p, a, a + 2 * P);
    r.pfns[0] = F_VALID;
    hmmVmaFault(r, true);
    const pfn = cpuPfn(p.mm, a);
    expect(pfn).toBeGreaterThan(0);
    expect(hmmPfnToPfn(r, r.pfns[0]!)).toBe(pfn);
    expect(p.readU32(a)).toBe(0xabcd);
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #11 migration entry: get_pfns reads NONE and does not wait', () => {
    const { p } = setup();
    const a = anon(p, 2);
    p.writeU32(a, 5);
    const mig = startMigration(p.mm, a);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    expect([...r.pfns]).toEqual([V_NONE, V_NONE]);
    expect(hmmVmaRangeDone(r)).toBe(true);
    mig.finish();
  });

  it('4.17 #11b migration entry, requested: the fault waits for the migration, then walks again from that address', async () => {
    const { p } = setup();
    const a = anon(p, 4);
    for (let i = 0; i < 4; i++) p.writeU32(a + i * P, i + 1);
    const mig = startMigration(p.mm, a + 2 * P);
    // Sync form: the walk would sleep -> WouldBlock (EAGAIN), untracked, entries from there NONE.
    const r = range417(p, a, a + 4 * P);
    r.pfns.fill(F_VALID);
    let wb: unknown;
    try {
      hmmVmaFault(r, true);
    } catch (e) {
      wb = e;
    }
    expect(wb).toBeInstanceOf(WouldBlock);
    expect((wb as WouldBlock).errno).toBe('EAGAIN');
    expect(untracked(r)).toBe(true);
    expect([r.pfns[2], r.pfns[3]]).toEqual([V_NONE, V_NONE]);
    // Sleeping form: stays tracked, resumes when the migration ends.
    r.pfns.fill(F_VALID);
    let done = false;
    const pending = hmmVmaFaultAsync(r, true).then(() => { done = true; });
    await Promise.resolve();
    await Promise.resolve();
    expect(done).toBe(false);
    expect(r.tracker).not.toBeNull();
    const to = mig.finish(true);
    await pending;
    expect(r.pfns[2]).toBe(enc(to, F_VALID | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(true);
    expect(p.readU32(a + 2 * P)).toBe(3);
  });

  it('4.17 #11b (sleeping form) the VMA changes while the fault sleeps on a migration: EBUSY, untracked', async () => {
    const { p } = setup();
    const a = anon(p, 4);
    for (let i = 0; i < 4; i++) p.writeU32(a + i * P, i + 1);
    const mig = startMigration(p.mm, a + P);
    const r = range417(p, a, a + 4 * P);
    r.pfns.fill(F_VALID);
    const pending = hmmVmaFaultAsync(r, true);
    await Promise.resolve();
    p.munmap(a + 3 * P, P); // the VMA no longer covers the range
    mig.finish();
    await expect(pending).rejects.toMatchObject({ errno: 'EBUSY' });
    expect(untracked(r)).toBe(true);
  });

  it('4.17 #12 device-private entry: pfn|VALID|DEVICE_PRIVATE(|WRITE); faulted only when DEVICE_PRIVATE is requested; with F[DEVICE_PRIVATE] = 0 it is ordinary memory', () => {
    const { m, p } = setup();
    const dev = new TestDevice(m);
    const a = anon(p, 4);
    for (let i = 0; i < 4; i++) p.writeU32(a + i * P, 100 + i);
    const d0 = dev.migratePageToDevice(p.mm, a);
    const d1 = dev.migratePageToDevice(p.mm, a + P);
    const d2 = dev.migratePageToDevice(p.mm, a + 2 * P);
    p.mprotect(a + P, P, PROT_READ); // d1's entry becomes read-only
    p.mprotect(a + P, P, PROT_READ | PROT_WRITE);
    // snapshot
    let r = range417(p, a, a + 3 * P);
    hmmVmaGetPfns(r);
    expect([...r.pfns]).toEqual([enc(d0, F_VALID | F_DP | F_WRITE), enc(d1, F_VALID | F_DP), enc(d2, F_VALID | F_DP | F_WRITE)]);
    hmmVmaRangeDone(r);
    // write requested without DEVICE_PRIVATE, even on the read-only entry: no fault
    r.pfns.fill(F_VALID | F_WRITE);
    hmmVmaFault(r, true);
    expect(dev.faults).toBe(0);
    expect(r.pfns[1]).toBe(enc(d1, F_VALID | F_DP));
    hmmVmaRangeDone(r);
    // DEVICE_PRIVATE requested on page 0 only: that page comes back
    r.pfns.fill(F_VALID);
    r.pfns[0] = F_VALID | F_DP;
    hmmVmaFault(r, true);
    expect(dev.faults).toBe(1);
    expect(cpuKind(p.mm, a)).toBe(K_PRESENT);
    expect(r.pfns[0]).toBe(enc(cpuPfn(p.mm, a), F_VALID | F_WRITE));
    expect(r.pfns[2]).toBe(enc(d2, F_VALID | F_DP | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(false); // the migration back invalidated it (4.17 #27)
    expect(p.readU32(a)).toBe(100);
    // F[DEVICE_PRIVATE] = 0: device pfns are plain VALID entries, and a write request on the
    // read-only one write-faults it, which migrates it back through the CPU fault path.
    r = range417(p, a + P, a + 3 * P, { dp: 0 });
    hmmVmaGetPfns(r);
    expect([...r.pfns]).toEqual([enc(d1, F_VALID), enc(d2, F_VALID | F_WRITE)]);
    hmmVmaRangeDone(r);
    r.pfns.fill(F_VALID | F_WRITE);
    hmmVmaFault(r, true);
    expect(dev.faults).toBe(2);
    expect(cpuKind(p.mm, a + P)).toBe(K_PRESENT);
    expect(cpuKind(p.mm, a + 2 * P)).toBe(K_DEVICE_PRIVATE);
    // The migration's own invalidation zeroed the requests: the driver retries (4.17 #27).
    expect(hmmVmaRangeDone(r)).toBe(false);
    r.pfns.fill(F_VALID | F_WRITE);
    hmmVmaFault(r, true);
    expect(r.pfns[0]).toBe(enc(cpuPfn(p.mm, a + P), F_VALID | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(true);
    expect(p.readU32(a + P)).toBe(101);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('4.17 #13 hwpoison entry in get_pfns: that entry ERROR, returns 0 and tracked (deviation: later entries NONE instead of stale)', () => {
    const { p } = setup();
    const a = anon(p, 4);
    p.writeU8(a, 1);
    installHwpoison(p.mm, a + P);
    p.writeU8(a + 3 * P, 1);
    const r = range417(p, a, a + 4 * P);
    r.pfns.fill(SENTINEL);
    hmmVmaGetPfns(r);
    expect(r.pfns[0]).toBe(enc(cpuPfn(p.mm, a), F_VALID | F_WRITE));
    expect(r.pfns[1]).toBe(V_ERROR);
    expect([r.pfns[2], r.pfns[3]]).toEqual([V_NONE, V_NONE]);
    expect(r.tracker).not.toBeNull();
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #13b hwpoison entry in fault: EFAULT, untracked, entries after it NONE (deviation: the ERROR marker is kept)', () => {
    const { p } = setup();
    const a = anon(p, 4);
    p.writeU8(a, 1);
    installHwpoison(p.mm, a + P);
    const r = range417(p, a, a + 4 * P);
    r.pfns.fill(0); // not even requested: a special entry fails the fault walk
    expect(errnoOf(() => hmmVmaFault(r, true))).toBe('EFAULT');
    expect(r.pfns[0]).toBe(enc(cpuPfn(p.mm, a), F_VALID | F_WRITE));
    expect([r.pfns[1], r.pfns[2], r.pfns[3]]).toEqual([V_ERROR, V_NONE, V_NONE]);
    expect(untracked(r)).toBe(true);
  });

  it('4.17 #14 zero page: its pfn, VALID without WRITE; a write request COWs it into a real page (and the range reads invalid once)', () => {
    const { p } = setup();
    const a = anon(p, 2);
    p.readU8(a);
    const zero = p.machine.phys.zeroPfn;
    const r = range417(p, a, a + P);
    hmmVmaGetPfns(r);
    expect(r.pfns[0]).toBe(enc(zero, F_VALID));
    hmmVmaRangeDone(r);
    r.pfns[0] = F_VALID; // read request: satisfied by the zero page
    hmmVmaFault(r, true);
    expect(r.pfns[0]).toBe(enc(zero, F_VALID));
    expect(hmmVmaRangeDone(r)).toBe(true);
    r.pfns[0] = F_VALID | F_WRITE;
    hmmVmaFault(r, true);
    const pfn = cpuPfn(p.mm, a);
    expect(pfn).not.toBe(zero);
    expect(r.pfns[0]).toBe(enc(pfn, F_VALID | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(false);
    r.pfns[0] = F_VALID | F_WRITE;
    hmmVmaFault(r, true);
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #15 writable THP: expanded per page with VALID|WRITE, consecutive pfns (both modes)', () => {
    const { p } = setup();
    const a = thp(p);
    const head = cpuPfn(p.mm, a);
    const r = range417(p, a + 4 * P, a + 20 * P);
    hmmVmaGetPfns(r);
    for (let i = 0; i < 16; i++) expect(r.pfns[i]).toBe(enc(head + 4 + i, F_VALID | F_WRITE));
    hmmVmaRangeDone(r);
    r.pfns.fill(F_VALID | F_WRITE);
    hmmVmaFault(r, true);
    for (let i = 0; i < 16; i++) expect(r.pfns[i]).toBe(enc(head + 4 + i, F_VALID | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #15b read-only THP with a write request: the write fault splits and COWs, the range must be retried (per-page intent: only the requested page; deviation: 4.17 write-faulted every page to the chunk end)', () => {
    const { m, p } = setup();
    const a = thp(p);
    const head = cpuPfn(p.mm, a);
    const child = p.fork(); // the THP is now read-only in both
    const r = range417(p, a, a + 8 * P);
    r.pfns[3] = F_VALID | F_WRITE;
    hmmVmaFault(r, true);
    const mine = cpuPfn(p.mm, a + 3 * P);
    expect(mine).not.toBe(head + 3);
    expect(r.pfns[3]).toBe(enc(mine, F_VALID | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(false); // split + COW invalidated it
    r.pfns.fill(0);
    r.pfns[3] = F_VALID | F_WRITE;
    hmmVmaFault(r, true);
    expect(hmmVmaRangeDone(r)).toBe(true);
    for (const i of [0, 1, 2, 4, 5, 6, 7]) {
      expect(r.pfns[i]).toBe(enc(head + i, F_VALID));
      expect(cpuWritable(p.mm, a + i * P)).toBe(false);
    }
    expect(child.readU32(a)).toBe(7);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('4.17 #16 protnone (NUMA hinting) THP in get_pfns: NONE for the whole chunk', () => {
    const { p } = setup();
    const a = thp(p);
    setProtnone(p.mm, a);
    const r = range417(p, a, a + PMD_SIZE);
    hmmVmaGetPfns(r);
    expect(r.pfns.every((v) => v === V_NONE)).toBe(true);
    hmmVmaRangeDone(r);
  });

  it('4.17 #16b protnone THP, requested: faulted (the NUMA fault clears protnone), then VALID', () => {
    const { p } = setup();
    const a = thp(p);
    const head = cpuPfn(p.mm, a);
    setProtnone(p.mm, a);
    const r = range417(p, a, a + 4 * P);
    r.pfns[1] = F_VALID;
    hmmVmaFault(r, true);
    for (let i = 0; i < 4; i++) expect(r.pfns[i]).toBe(enc(head + i, F_VALID | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #17 protnone PTE is reported as present (VALID), in both modes', () => {
    const { p } = setup();
    const a = anon(p, 2);
    p.writeU8(a, 1);
    const pfn = cpuPfn(p.mm, a);
    setProtnone(p.mm, a);
    const r = range417(p, a, a + P);
    hmmVmaGetPfns(r);
    expect(r.pfns[0]).toBe(enc(pfn, F_VALID | F_WRITE));
    hmmVmaRangeDone(r);
    r.pfns[0] = F_VALID | F_WRITE;
    hmmVmaFault(r, true);
    expect(r.pfns[0]).toBe(enc(pfn, F_VALID | F_WRITE));
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #18 THP under migration (PMD migration entry): ERROR for the chunk, no wait, in both modes (matches 4.17)', () => {
    const { p } = setup();
    const a = thp(p);
    const mig = startMigration(p.mm, a);
    const r = range417(p, a, a + 4 * P);
    hmmVmaGetPfns(r);
    expect([...r.pfns]).toEqual([V_ERROR, V_ERROR, V_ERROR, V_ERROR]);
    hmmVmaRangeDone(r);
    r.pfns.fill(F_VALID);
    hmmVmaFault(r, true); // returns at once: no WouldBlock
    expect([...r.pfns]).toEqual([V_ERROR, V_ERROR, V_ERROR, V_ERROR]);
    expect(hmmVmaRangeDone(r)).toBe(true);
    mig.finish();
  });

  it('4.17 #19 bad pmd: ERROR for its chunk, the walk goes on, returns 0', () => {
    const { p } = setup();
    const a = anon(p, 1024);
    installBadPmd(p.mm, a);
    p.writeU8(a + PMD_SIZE, 1);
    const r = range417(p, a + PMD_SIZE - 2 * P, a + PMD_SIZE + 2 * P);
    hmmVmaGetPfns(r);
    expect([...r.pfns]).toEqual([V_ERROR, V_ERROR, enc(cpuPfn(p.mm, a + PMD_SIZE), F_VALID | F_WRITE), V_NONE]);
    hmmVmaRangeDone(r);
    r.pfns.fill(F_VALID);
    r.pfns[3] = 0;
    hmmVmaFault(r, true);
    expect([r.pfns[0], r.pfns[1]]).toEqual([V_ERROR, V_ERROR]);
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #20 write requested on a read-only vma: no WRITE granted, returns 0 (matches 4.17: HMM does not check VM_WRITE)', () => {
    const { p } = setup();
    const a = anon(p, 2, PROT_READ);
    const r = range417(p, a, a + 2 * P);
    r.pfns.fill(F_VALID | F_WRITE);
    hmmVmaFault(r, true);
    for (let i = 0; i < 2; i++) {
      expect(r.pfns[i]! % 64 & F_VALID).toBe(F_VALID);
      expect(r.pfns[i]! % 64 & F_WRITE).toBe(0);
      expect(cpuWritable(p.mm, a + i * P)).toBe(false);
    }
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #21 WRITE requested without VALID: ignored, nothing faulted', () => {
    const { p } = setup();
    const a = anon(p, 2);
    p.readU8(a + P); // zero page, read-only
    const r = range417(p, a, a + 2 * P);
    r.pfns.fill(F_WRITE);
    hmmVmaFault(r, true);
    expect(r.pfns[0]).toBe(V_NONE);
    expect(r.pfns[1]).toBe(enc(p.machine.phys.zeroPfn, F_VALID));
    expect(cpuKind(p.mm, a)).toBe(K_NONE);
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #22 the fault returns VM_FAULT_ERROR (SIGBUS past EOF): EFAULT, untracked (deviation: the ERROR marker is kept, later entries NONE)', () => {
    const { m, p } = setup();
    const f = m.fs.tmpfile();
    f.truncate(P);
    const a = p.mmap(0, 4 * P, PROT_READ, MAP_SHARED, f, 0);
    const r = range417(p, a, a + 4 * P);
    r.pfns.fill(F_VALID);
    expect(errnoOf(() => hmmVmaFault(r, true))).toBe('EFAULT');
    expect(r.pfns[0]).toBe(enc(cpuPfn(p.mm, a), F_VALID));
    expect([r.pfns[1], r.pfns[2], r.pfns[3]]).toEqual([V_ERROR, V_NONE, V_NONE]);
    expect(untracked(r)).toBe(true);
  });

  it('4.17 #23 the fault returns VM_FAULT_RETRY: EBUSY with block = false, untracked; block = true sleeps instead (documented intent; deviation: 4.17 returned EBUSY for both)', async () => {
    const { m, p } = setup();
    const dev = new TestDevice(m);
    const a = anon(p, 2);
    p.writeU32(a, 9);
    const d = dev.migratePageToDevice(p.mm, a);
    m.phys.trylockPage(d); // someone holds the device page lock
    const r = range417(p, a, a + 2 * P);
    r.pfns.fill(F_VALID | F_DP);
    expect(errnoOf(() => hmmVmaFault(r, false))).toBe('EBUSY');
    expect(untracked(r)).toBe(true);
    expect([...r.pfns]).toEqual([V_NONE, V_NONE]);
    r.pfns.fill(F_VALID | F_DP);
    expect(() => hmmVmaFault(r, true)).toThrow(WouldBlock);
    r.pfns.fill(F_VALID | F_DP);
    const pending = hmmVmaFaultAsync(r, true);
    await Promise.resolve();
    expect(r.tracker).not.toBeNull();
    m.phys.unlockPage(d);
    await pending;
    expect(cpuKind(p.mm, a)).toBe(K_PRESENT);
    expect(r.pfns[0]).toBe(enc(cpuPfn(p.mm, a), F_VALID | F_WRITE));
    hmmVmaRangeDone(r);
    expect(p.readU32(a)).toBe(9);
  });

  it('4.17 #24 first needing page wants read, a later page of the chunk wants write: the later page gets WRITE (per-page intent; deviation: 4.17 erased the request)', () => {
    const { p } = setup();
    const a = anon(p, 8);
    const r = range417(p, a, a + 8 * P);
    r.pfns[1] = F_VALID;
    r.pfns[6] = F_VALID | F_WRITE;
    hmmVmaFault(r, true);
    expect(r.pfns[1]).toBe(enc(p.machine.phys.zeroPfn, F_VALID));
    expect(r.pfns[6]).toBe(enc(cpuPfn(p.mm, a + 6 * P), F_VALID | F_WRITE));
    expect(cpuWritable(p.mm, a + 6 * P)).toBe(true);
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #25 an invalidation overlapping a tracked range: valid = false, overlapping entries set to literal 0 (matches 4.17)', () => {
    const { p } = setup();
    const a = anon(p, 8);
    for (let i = 0; i < 8; i++) p.writeU8(a + i * P, i);
    const r = range417(p, a, a + 8 * P);
    hmmVmaGetPfns(r);
    const before = [...r.pfns];
    p.madvise(a + 2 * P, 2 * P, MADV_DONTNEED);
    expect([...r.pfns]).toEqual([before[0], before[1], 0, 0, ...before.slice(4)]);
    expect(r.valid).toBe(false);
    expect(hmmVmaRangeDone(r)).toBe(false);
  });

  it('4.17 #26 an invalidation ending exactly at range.start marks the range invalid and zeroes nothing (matches 4.17); one starting at range.end does not touch it', () => {
    const { p } = setup();
    const a = anon(p, 8);
    for (let i = 0; i < 8; i++) p.writeU8(a + i * P, i);
    const r = range417(p, a + 2 * P, a + 6 * P);
    hmmVmaGetPfns(r);
    const before = [...r.pfns];
    p.madvise(a + 6 * P, 2 * P, MADV_DONTNEED);
    expect(r.valid).toBe(true);
    p.madvise(a, 2 * P, MADV_DONTNEED);
    expect([...r.pfns]).toEqual(before);
    expect(hmmVmaRangeDone(r)).toBe(false);
  });

  it('4.17 #27 a COW, a THP split or a migration back caused by our own fault: returns 0, range_done false, a retry is valid', () => {
    const { m, p } = setup();
    const dev = new TestDevice(m);
    const a = anon(p, 4);
    p.writeU8(a, 1);
    const child = p.fork();
    const b = thp(p);
    p.fork();
    p.writeU8(a + P, 2);
    dev.migratePageToDevice(p.mm, a + P);
    const cases: Array<[number, number]> = [[a, F_VALID | F_WRITE], [b + 5 * P, F_VALID | F_WRITE], [a + P, F_VALID | F_DP]];
    for (const [addr, req] of cases) {
      const r = range417(p, addr, addr + P);
      r.pfns[0] = req;
      hmmVmaFault(r, true);
      expect(hmmVmaRangeDone(r)).toBe(false);
      r.pfns[0] = req;
      hmmVmaFault(r, true);
      expect(hmmVmaRangeDone(r)).toBe(true);
      expect(cpuKind(p.mm, addr)).toBe(K_PRESENT);
    }
    expect(child.readU8(a)).toBe(1);
  });

  it('4.17 #28 range_done called twice, or after an error return: EINVAL (deviation: list corruption in 4.17)', () => {
    const { p } = setup();
    const a = anon(p, 2);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    expect(hmmVmaRangeDone(r)).toBe(true);
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    installHwpoison(p.mm, a + P);
    expect(errnoOf(() => hmmVmaFault(r, true))).toBe('EFAULT');
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    expect(hmmOf(p.mm)!.ranges.length).toBe(0);
  });

  it('4.17 #29 range_done after the HMM state went away: every entry 0, false, and the range is unlinked', () => {
    const { p, mirror } = setup();
    const a = anon(p, 2);
    p.writeU8(a, 1);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    hmmMirrorUnregister(mirror);
    expect(hmmOf(p.mm)).toBeUndefined();
    hmmInjectAllocFailure(p.mm);
    expect(hmmVmaRangeDone(r)).toBe(false);
    expect([...r.pfns]).toEqual([0, 0]);
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    hmmInjectAllocFailure(p.mm, 0);
  });

  it('4.17 #30 range_done with end <= start: EINVAL (deviation: BUG() in 4.17)', () => {
    const { p } = setup();
    const a = anon(p, 2);
    const r = range417(p, a, a + 2 * P);
    hmmVmaGetPfns(r);
    r.end = r.start;
    expect(errnoOf(() => hmmVmaRangeDone(r))).toBe('EINVAL');
    r.end = a + 2 * P;
    expect(hmmVmaRangeDone(r)).toBe(true);
  });

  it('4.17 #31 register with a NULL mirror, NULL ops or NULL mm: EINVAL', () => {
    const m = newMachine();
    const p = m.spawn();
    const ok = { syncCpuDevicePagetables: () => {} };
    expect(errnoOf(() => hmmMirrorRegister(null as unknown as HmmMirror, p.mm))).toBe('EINVAL');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror(null as unknown as HmmMirrorOps), p.mm))).toBe('EINVAL');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror({} as HmmMirrorOps), p.mm))).toBe('EINVAL');
    expect(errnoOf(() => hmmMirrorRegister(new HmmMirror(ok), null as unknown as Process['mm']))).toBe('EINVAL');
    expect(hmmOf(p.mm)).toBeUndefined();
  });

  it('4.17 #32 register when the per-mm allocation fails: ENOMEM, nothing registered', () => {
    const m = newMachine();
    const p = m.spawn();
    const mirror = new HmmMirror({ syncCpuDevicePagetables: () => {} });
    hmmInjectAllocFailure(p.mm);
    expect(errnoOf(() => hmmMirrorRegister(mirror, p.mm))).toBe('ENOMEM');
    expect(mirror.hmm).toBeNull();
    expect(hmmOf(p.mm)).toBeUndefined();
    expect(p.mm.notifiers.list.length).toBe(0);
    hmmMirrorRegister(mirror, p.mm);
    expect(mirror.hmm).toBe(hmmOf(p.mm));
  });

  it('4.17 #33 unregister called twice: the second call is a no-op', () => {
    const { p, mirror } = setup();
    const other = new HmmMirror({ syncCpuDevicePagetables: () => {} });
    hmmMirrorRegister(other, p.mm);
    hmmMirrorUnregister(mirror);
    hmmMirrorUnregister(mirror);
    expect(hmmOf(p.mm)!.users).toBe(1);
    expect(hmmOf(p.mm)!.mirrors).toEqual([other]);
  });

  it('4.17 #34 unregister of a non-last mirror, then a new register: works and the new mirror gets syncs (deviation: livelock in 4.17)', () => {
    const { p, mirror, syncs } = setup();
    const seen: number[] = [];
    const second = new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s) => void seen.push(s) });
    hmmMirrorRegister(second, p.mm);
    hmmMirrorUnregister(second);
    const third = new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s) => void seen.push(-s) });
    hmmMirrorRegister(third, p.mm);
    const a = anon(p, 2);
    p.writeU8(a, 1);
    p.munmap(a, 2 * P);
    expect(seen).toEqual([-a]);
    expect(syncs).toEqual([[a, a + 2 * P]]);
    expect(hmmOf(p.mm)!.mirrors).toEqual([third, mirror]);
  });

  it('4.17 hmm_invalidate_range: every invalidation of the mm reaches every mirror, newest first, after the tracked ranges are marked', () => {
    const m = newMachine();
    const p = m.spawn();
    const a = anon(p, 4);
    p.writeU8(a, 1);
    const log: string[] = [];
    const r = range417(p, a, a + P);
    for (const name of ['old', 'mid', 'new']) {
      hmmMirrorRegister(new HmmMirror({ syncCpuDevicePagetables: (_m, _u, s, e) => void log.push(`${name} ${(s - a) / P}-${(e - a) / P} valid=${r.valid}`) }), p.mm);
    }
    hmmVmaGetPfns(r);
    p.madvise(a + 2 * P, P, MADV_DONTNEED); // outside the range: every mirror still hears of it
    p.madvise(a, P, MADV_DONTNEED);
    expect(log).toEqual(['new 2-3 valid=true', 'mid 2-3 valid=true', 'old 2-3 valid=true', 'new 0-1 valid=false', 'mid 0-1 valid=false', 'old 0-1 valid=false']);
    hmmVmaRangeDone(r);
  });

  it('4.17 #35 unregister of a non-last mirror, then of the last: the notifier and the HMM state go (deviation: leaked in 4.17)', () => {
    const { p, mirror, syncs } = setup();
    const second = new HmmMirror({ syncCpuDevicePagetables: () => {} });
    hmmMirrorRegister(second, p.mm);
    const hmm = hmmOf(p.mm)!;
    hmmMirrorUnregister(mirror);
    expect(hmmOf(p.mm)).toBe(hmm);
    hmmMirrorUnregister(second);
    expect(hmmOf(p.mm)).toBeUndefined();
    expect(hmm.dead).toBe(true);
    expect(p.mm.notifiers.list).not.toContain(hmm.notifier);
    const a = anon(p, 1);
    p.writeU8(a, 1);
    p.munmap(a, P);
    expect(syncs).toEqual([]);
  });

  it('4.17 #36 process exit with mirrors: release for each, newest first, no sync afterwards; the state stays until unregister', () => {
    const order: string[] = [];
    const { m, p, mirror } = setup({ release: () => void order.push('first') });
    const a = anon(p, 4);
    p.writeU8(a, 1);
    const second = new HmmMirror({
      release: () => void order.push('second'),
      syncCpuDevicePagetables: () => void order.push('sync'),
    });
    hmmMirrorRegister(second, p.mm);
    const hmm = hmmOf(p.mm)!;
    const r = range417(p, a, a + 4 * P);
    hmmVmaGetPfns(r);
    const mm = p.mm;
    p.exit();
    expect(order).toEqual(['second', 'first']);
    expect(hmmOf(mm)).toBe(hmm); // pinned: a zombie until the mirrors are unregistered
    expect(mirror.hmm).toBe(hmm);
    expect(hmmVmaRangeDone(r)).toBe(false); // release made the tracked range invalid (5.x fix)
    hmmMirrorUnregister(second);
    hmmMirrorUnregister(mirror);
    expect(hmmOf(mm)).toBeUndefined();
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('4.17 #36, with reclaim during a release (mn_hlist_release): a mirror not yet released still gets sync for it', () => {
    const order: string[] = [];
    const { m, p } = setup({ release: () => void order.push('release first'), syncCpuDevicePagetables: (_m, _u, s) => void order.push(`sync first ${s}`) });
    const a = anon(p, 1);
    p.writeU8(a, 1);
    const pfn = cpuPfn(p.mm, a);
    // The newest mirror is released first; its release reclaims a page of the dying mm.
    const second = new HmmMirror({
      release: () => { order.push('release second'); swapOutPage(m, pfn); },
      syncCpuDevicePagetables: (_m, _u, s) => void order.push(`sync second ${s}`),
    });
    hmmMirrorRegister(second, p.mm);
    p.exit();
    // hmm_release unlinks each mirror before its release: only the first still gets the sync.
    expect(order).toEqual(['release second', `sync first ${a}`, 'release first']);
  });

  it('4.17 #37 unregister from inside release for the last mirror: safe, every mirror still released (deviation: use-after-free in 4.17)', () => {
    const released: string[] = [];
    const m = newMachine();
    const p = m.spawn();
    const first: HmmMirror = new HmmMirror({
      release: (mm) => { released.push('first'); hmmMirrorUnregister(mm); },
      syncCpuDevicePagetables: () => {},
    });
    const second: HmmMirror = new HmmMirror({
      release: (mm) => { released.push('second'); hmmMirrorUnregister(mm); hmmMirrorUnregister(first); },
      syncCpuDevicePagetables: () => {},
    });
    hmmMirrorRegister(first, p.mm);
    hmmMirrorRegister(second, p.mm);
    const mm = p.mm;
    p.exit();
    expect(released).toEqual(['second']); // second unregistered first before its release could run
    expect(hmmOf(mm)).toBeUndefined();
    expect(first.hmm).toBeNull();
    expect(second.hmm).toBeNull();
    // and a lone mirror unregistering itself
    const p2 = m.spawn();
    const lone: HmmMirror = new HmmMirror({ release: (x) => { released.push('lone'); hmmMirrorUnregister(x); }, syncCpuDevicePagetables: () => {} });
    hmmMirrorRegister(lone, p2.mm);
    const mm2 = p2.mm;
    p2.exit();
    expect(released).toEqual(['second', 'lone']);
    expect(hmmOf(mm2)).toBeUndefined();
  });
});
