// CPU accesses (the x86 page-fault path: access_error, handle_mm_fault) through Process.read/write.
import { describe, expect, it } from 'vitest';
import {
  FAULT_FLAG_WRITE, MADV_PAGEOUT, MAP_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migrateVmaFinalize, migrateVmaSetup, newMigrateVma,
  PROT_NONE, PROT_READ, SignalError, VM_FAULT_RETRY, type FaultKind,
} from '../../src/index.js';
import { faultRetryWait, handleMmFault, newFaultRetry } from '../../src/mm/fault.js';
import { ANON, errnoOf, expectConsistent, fill, P, pm, RW, setup, snapshot } from './helpers.js';

function faults(m: ReturnType<typeof setup>['m']): FaultKind[] {
  const out: FaultKind[] = [];
  m.events.subscribe('fault', (e) => void out.push(e.kind));
  return out;
}

describe('CPU access', () => {
  it('each first access takes the fault the kernel would: zero page, write after it, COW, reuse, file, swap-in', () => {
    const { m, p } = setup();
    const seen = faults(m);
    const a = p.mmap(0, 4 * P, RW, ANON);
    p.readU8(a); // do_anonymous_page (read): zero page
    p.writeU8(a, 1); // do_wp_page on the zero page: wp_page_copy
    p.writeU8(a + P, 1); // do_anonymous_page (write)
    p.readU8(a + P); // present: no fault at all
    const c = p.fork();
    p.writeU8(a + P, 2); // COW: shared with the child, copied
    c.writeU8(a, 2); // COW in the child
    p.writeU8(a, 3); // the parent's page is exclusive again: reused
    const f = m.fs.open('f');
    f.truncate(P);
    const fa = p.mmap(0, P, RW, MAP_PRIVATE, f);
    p.readU8(fa); // do_read_fault
    p.writeU8(fa, 1); // do_wp_page on a page-cache page: copy
    p.madvise(a + P, P, MADV_PAGEOUT);
    p.readU8(a + P); // do_swap_page
    expect(seen).toEqual(['zero', 'cow', 'anon', 'cow', 'cow', 'reuse', 'file', 'cow', 'swapin']);
    expectConsistent(m);
  });

  it('a write spanning two pages faults both and lands on both', () => {
    const { p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.write(a + P - 2, Uint8Array.of(1, 2, 3, 4));
    expect(Array.from(p.read(a + P - 3, 6))).toEqual([0, 1, 2, 3, 4, 0]);
    expect(pm(p, a).present && pm(p, a + P).present).toBe(true);
  });

  it('access outside any VMA is SIGSEGV with nothing changed, even when it starts in a mapping', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.munmap(a + P, P);
    fill(p, a, P, 5);
    const before = snapshot(m);
    expect(() => p.write(a + P - 4, new Uint8Array(8).fill(9))).toThrow(SignalError);
    expect(() => p.read(a + P - 4, 8)).toThrow(expect.objectContaining({ signal: 'SIGSEGV', addr: a + P, errno: 'EFAULT' }));
    expect(() => p.readU8(0)).toThrow(/SIGSEGV/);
    expect(snapshot(m)).toEqual(before);
    expect(p.readU8(a + P - 1)).toBe(5); // the part before the hole was not written
  });

  it('access against the protection is SIGSEGV and changes nothing: a write to read-only memory, anything to PROT_NONE', () => {
    const { m, p } = setup();
    const r = p.mmap(0, P, PROT_READ, ANON);
    const n = p.mmap(0, P, PROT_NONE, ANON);
    const before = snapshot(m);
    expect(() => p.writeU8(r, 1)).toThrow(/SIGSEGV/);
    expect(() => p.readU8(n)).toThrow(/SIGSEGV/);
    expect(snapshot(m)).toEqual(before);
    expect(pm(p, r).present).toBe(false); // the failing write did not even fault the zero page in
  });

  it('an empty access does nothing; a negative length or address is EINVAL', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    expect(p.read(a, 0).length).toBe(0);
    expect(errnoOf(() => p.read(a, -1))).toBe('EINVAL');
    expect(errnoOf(() => p.read(-P, 1))).toBe('EINVAL');
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('out of memory on a write fault, with nothing reclaimable (no swap), is ENOMEM, and the page stays unmapped', () => {
    const { m, p } = setup({ ramBytes: 16 * P, swapBytes: 0 });
    const a = p.mmap(0, 32 * P, RW, ANON);
    let i = 0;
    while (m.phys.freeRamFrames > 0) p.writeU8(a + i++ * P, 1);
    const before = snapshot(m);
    expect(errnoOf(() => p.writeU8(a + i * P, 1))).toBe('ENOMEM');
    expect(snapshot(m)).toEqual(before);
    expect(p.readU8(a + (i + 1) * P)).toBe(0); // reads still map the zero page
  });

  it('64-bit helpers read and write little-endian', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU64(a, 0x0102030405060708n);
    expect(p.readU8(a)).toBe(8);
    expect(p.readU64(a)).toBe(0x0102030405060708n);
    p.writeI32(a + 8, -2);
    expect(p.readI32(a + 8)).toBe(-2);
    expect(p.readU32(a + 8)).toBe(0xfffffffe);
  });
});

describe('VM_FAULT_RETRY returns its wait to the caller', () => {
  it('each fault on a migration entry names its own page in the caller FaultRetry; the wait ends when the migration does', async () => {
    const { m, p } = setup();
    const a = p.mmap(0, 2 * P, RW, ANON);
    p.writeU8(a, 1);
    p.writeU8(a + P, 2);
    const pfns = [pm(p, a).pfn, pm(p, a + P).pfn];
    const vma = p.mm.findVma(a)!;
    const args = newMigrateVma(vma, a, a + 2 * P, MIGRATE_VMA_SELECT_SYSTEM, null);
    migrateVmaSetup(args); // both pages locked, behind migration entries
    const r0 = newFaultRetry();
    const r1 = newFaultRetry();
    expect(handleMmFault(p.mm, vma, a, FAULT_FLAG_WRITE, r0)).toBe(VM_FAULT_RETRY);
    expect(handleMmFault(p.mm, vma, a + P, FAULT_FLAG_WRITE, r1)).toBe(VM_FAULT_RETRY);
    // A shared slot (machine.faultWait) would hold the second page for both.
    expect([r0.pfn, r1.pfn]).toEqual(pfns);
    let woke = false;
    const waiting = faultRetryWait(p.mm, r0)().then(() => void (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    migrateVmaFinalize(args); // nothing moved: the pages come back and are unlocked
    await waiting;
    expect(woke).toBe(true);
    expect(handleMmFault(p.mm, vma, a, FAULT_FLAG_WRITE, r0)).toBe(0);
    expect(p.readU8(a + P)).toBe(2);
    expectConsistent(m);
  });
});
