// docs/edge-cases-4.17.md rows 1-24 (cited as 4.17 #n), the snapshot and the fault
// (hmm_vma_get_pfns, hmm_vma_fault): one test per row. Rows 25-37 are in mirror-rows.test.ts,
// rows 38-50 (migration and devmem) in migrate-rows.test.ts. Where hmmsim follows the
// documented intent or a later fix instead of observed 4.17, the test name says "deviation"
// and docs/api.md lists it.

import { describe, expect, it } from 'vitest';
import {
  WouldBlock, MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, MADV_PAGEOUT, PMD_SIZE, PROT_NONE, PROT_READ,
  PROT_WRITE, VM_DONTEXPAND, VM_IO, VM_MIXEDMAP, VM_PFNMAP,
} from '../../../src/index.js';
import {
  hmmVmaFault, hmmVmaFaultAsync, hmmVmaGetPfns, hmmVmaRangeDone, hmmOf, hmmInjectAllocFailure, HmmRange as HmmRange417,
  hmmPfnToPfn,
} from '../../../src/hmm/v417/index.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { K_DEVICE_PRIVATE, K_NONE, K_PRESENT } from '../../../src/mm/pagetable.js';
import {
  driverMapping, anon, cpuKind, cpuPfn, cpuWritable, enc, F_DP, F_VALID, F_WRITE, installBadPmd, installHwpoison, newMachine, P,
  range417, setProtnone, startMigration, TestDevice, V_ERROR, V_NONE, V_SPECIAL, errnoOf,
} from '../helpers.js';
import { setup, untracked, SENTINEL, thp } from './rows_setup.js';

describe('docs/edge-cases-4.17.md rows 1-24: snapshot and fault', () => {
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
});
