// Random sequences of address-space operations across several processes, against a flat
// reference model of memory contents. After every step: bytes read equal the reference, and
// every frame's refcount, mapcount and reverse map agree with the page tables.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KernelError, Machine, MADV_DONTNEED, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MREMAP_FIXED,
  MREMAP_MAYMOVE, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, type Process,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';

const BASE = 0x10000000;
const SLOT_PAGES = 8;
const SLOTS = 8;
const REGION_PAGES = SLOT_PAGES * SLOTS;

/** A page of memory contents; shared mappings of one shmem page share a Cell. */
interface Cell { data: Uint8Array }
interface RefPage { cell: Cell | null; shared: boolean; prot: number }
type RefProc = Map<number, RefPage>; // page index in the region -> page

type Op =
  | { k: 'mmap'; p: number; slot: number; n: number; shared: boolean; prot: number }
  | { k: 'munmap'; p: number; page: number; n: number }
  | { k: 'mprotect'; p: number; page: number; n: number; prot: number }
  | { k: 'dontneed'; p: number; page: number; n: number }
  | { k: 'pageout'; p: number; page: number; n: number }
  | { k: 'mremap'; p: number; page: number; n: number; slot: number }
  | { k: 'fork'; p: number }
  | { k: 'exit'; p: number }
  | { k: 'write'; p: number; page: number; off: number; len: number; v: number }
  | { k: 'read'; p: number; page: number; off: number; len: number };

const PROTS = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE];
const page = fc.nat(3 * SLOT_PAGES + 4); // mostly the populated slots
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  w(1, fc.record({ k: fc.constant('mmap' as const), p: fc.nat(3), slot: fc.nat(SLOTS - 1), n: fc.integer({ min: 1, max: SLOT_PAGES }), shared: fc.boolean(), prot: fc.constantFrom(...PROTS) })),
  w(1, fc.record({ k: fc.constant('munmap' as const), p: fc.nat(3), page, n: fc.integer({ min: 1, max: 6 }) })),
  w(1, fc.record({ k: fc.constant('mprotect' as const), p: fc.nat(3), page, n: fc.integer({ min: 1, max: 6 }), prot: fc.constantFrom(...PROTS) })),
  w(1, fc.record({ k: fc.constant('dontneed' as const), p: fc.nat(3), page, n: fc.integer({ min: 1, max: 6 }) })),
  w(2, fc.record({ k: fc.constant('pageout' as const), p: fc.nat(3), page, n: fc.integer({ min: 1, max: 6 }) })),
  w(1, fc.record({ k: fc.constant('mremap' as const), p: fc.nat(3), page, n: fc.integer({ min: 1, max: 4 }), slot: fc.nat(SLOTS - 1) })),
  w(2, fc.record({ k: fc.constant('fork' as const), p: fc.nat(3) })),
  w(1, fc.record({ k: fc.constant('exit' as const), p: fc.nat(3) })),
  w(5, fc.record({ k: fc.constant('write' as const), p: fc.nat(3), page, off: fc.nat(PAGE_SIZE - 1), len: fc.integer({ min: 1, max: 6000 }), v: fc.integer({ min: 1, max: 255 }) })),
  w(4, fc.record({ k: fc.constant('read' as const), p: fc.nat(3), page, off: fc.nat(PAGE_SIZE - 1), len: fc.integer({ min: 1, max: 6000 }) })),
);

function addr(pg: number): number {
  return BASE + pg * PAGE_SIZE;
}

/** Pages [first, first+n) clipped to the region. */
function pagesOf(first: number, n: number): number[] {
  const out: number[] = [];
  for (let i = first; i < Math.min(first + n, REGION_PAGES); i++) out.push(i);
  return out;
}

/** Byte-array equality; toEqual only on a mismatch (it is slow on typed arrays). */
function expectBytes(got: Uint8Array, want: Uint8Array): void {
  if (got.length !== want.length || Buffer.compare(got, want) !== 0) expect(Array.from(got)).toEqual(Array.from(want));
}

function expectKernelError(f: () => void): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    return;
  }
  throw new Error('expected a KernelError');
}

function run(ops: Op[]): void {
  const m = new Machine({ ramBytes: 4 << 20, swapBytes: 4 << 20 });
  const procs: Array<{ proc: Process; ref: RefProc } | null> = [{ proc: m.spawn(), ref: new Map() }];
  // Start from three populated mappings: private, shared, private (so most operations hit memory).
  {
    const { proc, ref } = procs[0]!;
    for (const [slot, shared] of [[0, false], [1, true], [2, false]] as const) {
      const first = slot * SLOT_PAGES;
      proc.mmap(addr(first), SLOT_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_ANONYMOUS | (shared ? MAP_SHARED : MAP_PRIVATE));
      for (const pg of pagesOf(first, SLOT_PAGES)) {
        const cell = { data: new Uint8Array(PAGE_SIZE).fill(pg + 1) };
        proc.write(addr(pg), cell.data);
        ref.set(pg, { cell, shared, prot: PROT_READ | PROT_WRITE });
      }
    }
  }
  const pick = (i: number) => {
    const live = procs.filter((x): x is { proc: Process; ref: RefProc } => x !== null);
    return live.length ? live[i % live.length]! : null;
  };
  for (const op of ops) {
    const t = pick(op.p);
    if (!t) break;
    const { proc, ref } = t;
    switch (op.k) {
      case 'mmap': {
        const first = op.slot * SLOT_PAGES;
        proc.mmap(addr(first), op.n * PAGE_SIZE, op.prot, MAP_FIXED | MAP_ANONYMOUS | (op.shared ? MAP_SHARED : MAP_PRIVATE));
        for (const pg of pagesOf(first, op.n)) ref.set(pg, { cell: op.shared ? { data: new Uint8Array(PAGE_SIZE) } : null, shared: op.shared, prot: op.prot });
        break;
      }
      case 'munmap':
        proc.munmap(addr(op.page), op.n * PAGE_SIZE);
        for (const pg of pagesOf(op.page, op.n)) ref.delete(pg);
        break;
      case 'mprotect': {
        const pgs = pagesOf(op.page, op.n);
        if (pgs.length < op.n || pgs.some((pg) => !ref.has(pg))) {
          expectKernelError(() => proc.mprotect(addr(op.page), op.n * PAGE_SIZE, op.prot));
          break;
        }
        proc.mprotect(addr(op.page), op.n * PAGE_SIZE, op.prot);
        for (const pg of pgs) ref.get(pg)!.prot = op.prot;
        break;
      }
      case 'dontneed': {
        const pgs = pagesOf(op.page, op.n);
        if (pgs.length < op.n || pgs.some((pg) => !ref.has(pg))) {
          expectKernelError(() => proc.madvise(addr(op.page), op.n * PAGE_SIZE, MADV_DONTNEED));
          break;
        }
        proc.madvise(addr(op.page), op.n * PAGE_SIZE, MADV_DONTNEED);
        // Private anonymous pages come back zero-filled; shared ones refault from shmem.
        for (const pg of pgs) if (!ref.get(pg)!.shared) ref.get(pg)!.cell = null;
        break;
      }
      case 'pageout': {
        const pgs = pagesOf(op.page, op.n);
        if (pgs.length < op.n || pgs.some((pg) => !ref.has(pg))) break;
        proc.madvise(addr(op.page), op.n * PAGE_SIZE, MADV_PAGEOUT);
        break;
      }
      case 'mremap': {
        const pgs = pagesOf(op.page, op.n);
        const dst = op.slot * SLOT_PAGES;
        if (pgs.length < op.n || dst + op.n > REGION_PAGES || (dst < op.page + op.n && op.page < dst + op.n)) break;
        const before = pgs.map((pg) => ref.get(pg));
        try {
          proc.mremap(addr(op.page), op.n * PAGE_SIZE, op.n * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, addr(dst));
        } catch (e) {
          // Only a range that is not one mapping may be refused (EFAULT), and nothing changes.
          expect(e).toBeInstanceOf(KernelError);
          expect((e as KernelError).errno).toBe('EFAULT');
          break;
        }
        for (const pg of pagesOf(dst, op.n)) ref.delete(pg);
        for (const pg of pgs) ref.delete(pg);
        before.forEach((p, i) => ref.set(dst + i, p!));
        break;
      }
      case 'fork': {
        if (procs.filter(Boolean).length >= 4) break;
        const child = proc.fork();
        const cref: RefProc = new Map();
        for (const [pg, p] of ref) {
          cref.set(pg, { shared: p.shared, prot: p.prot, cell: p.shared ? p.cell : p.cell && { data: p.cell.data.slice() } });
        }
        procs.push({ proc: child, ref: cref });
        break;
      }
      case 'exit':
        proc.exit();
        procs[procs.indexOf(t)] = null;
        break;
      case 'write':
      case 'read': {
        const start = addr(op.page) + op.off;
        const len = Math.min(op.len, addr(REGION_PAGES) - start);
        const pgs = pagesOf(op.page, Math.ceil((op.off + len) / PAGE_SIZE));
        const write = op.k === 'write';
        const ok = pgs.every((pg) => {
          const p = ref.get(pg);
          return p !== undefined && (write ? (p.prot & PROT_WRITE) !== 0 : p.prot !== PROT_NONE);
        });
        if (!ok) {
          const snapshot = checkInvariants(m);
          expectKernelError(() => (write ? proc.write(start, new Uint8Array(len).fill(1)) : proc.read(start, len)));
          expect(checkInvariants(m)).toEqual(snapshot);
          break;
        }
        if (write) {
          const buf = new Uint8Array(len);
          for (let i = 0; i < len; i++) buf[i] = (op.v + i) & 0xff;
          proc.write(start, buf);
          for (let i = 0; i < len; i++) {
            const a = op.off + i;
            const p = ref.get(op.page + Math.floor(a / PAGE_SIZE))!;
            p.cell ??= { data: new Uint8Array(PAGE_SIZE) };
            p.cell.data[a % PAGE_SIZE] = buf[i]!;
          }
        } else {
          const got = proc.read(start, len);
          const want = new Uint8Array(len);
          for (let i = 0; i < len; i++) {
            const a = op.off + i;
            const p = ref.get(op.page + Math.floor(a / PAGE_SIZE))!;
            want[i] = p.cell ? p.cell.data[a % PAGE_SIZE]! : 0;
          }
          expectBytes(got, want);
        }
        break;
      }
    }
    expect(checkInvariants(m)).toEqual([]);
  }
  // Every page of every live process reads as the reference says.
  for (const t of procs) {
    if (!t) continue;
    for (const [pg, p] of t.ref) {
      if (p.prot === PROT_NONE) continue;
      const want = p.cell ? p.cell.data : new Uint8Array(PAGE_SIZE);
      expectBytes(t.proc.read(addr(pg), PAGE_SIZE), want);
    }
  }
  for (const t of procs) t?.proc.exit();
  expect(checkInvariants(m)).toEqual([]);
  expect(m.phys.usedRamFrames).toBe(0);
  expect(m.swap.used).toBe(0);
  expect(m.fs.cachedPages).toBe(0);
}

describe('mm property: random operations across processes against a flat reference', () => {
  it('bytes, refcounts, mapcounts and rmap stay right; nothing leaks after exit', () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), run), { numRuns: 500 });
  });
});
