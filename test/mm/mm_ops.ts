// The operations of test/mm/property.test.ts: the region they act on (small slots and two 2 MiB
// slots from 1 GiB), the file they share, and the weighted mix fast-check draws sequences from.
import fc from 'fast-check';
import {
  MADV_COLLAPSE, MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_PAGEOUT, MREMAP_MAYMOVE, PAGE_SIZE, PROT_NONE, PROT_READ,
  PROT_WRITE, type Process,
} from '../../src/index.js';

export const P = PAGE_SIZE;
export const HUGE = 512; // pages in a 2 MiB huge page
export const BASE_VPN = 0x40000000 / P; // region start, 1 GiB: PMD aligned
export const SMALL_SLOTS = 6;
export const SLOT = 8; // pages per small slot
const SMALL_PAGES = SMALL_SLOTS * SLOT;
export const HUGE_SLOTS = [HUGE, 2 * HUGE]; // region page index of the two 2 MiB slots
export const FILE_PAGES = 16;
export const REGION = 3 * HUGE; // pages of the region the notification audit watches
const PROTS = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE];

export type MapType = 'anon' | 'shared-anon' | 'file' | 'shared-file' | 'hugetlb';
export type Op =
  | { k: 'mmap'; p: number; slot: number; n: number; prot: number; type: MapType; off: number; populate: boolean }
  | { k: 'munmap'; p: number; page: number; n: number }
  | { k: 'mprotect'; p: number; page: number; n: number; prot: number }
  | { k: 'madvise'; p: number; page: number; n: number; advice: number }
  | { k: 'move'; p: number; page: number; n: number; slot: number; dontunmap: boolean }
  | { k: 'resize'; p: number; page: number; n: number; to: number; maymove: boolean }
  | { k: 'fork'; p: number }
  | { k: 'exit'; p: number }
  | { k: 'swapout'; p: number; page: number }
  | { k: 'write'; p: number; page: number; off: number; len: number; v: number }
  | { k: 'read'; p: number; page: number; off: number; len: number }
  | { k: 'pwrite'; off: number; len: number; v: number }
  | { k: 'pread'; off: number; len: number }
  | { k: 'truncate'; pages: number }
  | { k: 'nomem'; after: number }
  | { k: 'nested'; p: number; inner: number; page: number };

/** A region page: mostly the small slots, sometimes the 2 MiB slots. */
const pageArb = fc.oneof(
  { weight: 8, arbitrary: fc.nat(SMALL_PAGES + 3) },
  { weight: 2, arbitrary: fc.integer({ min: HUGE, max: 3 * HUGE - 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(...HUGE_SLOTS) }, // whole huge pages: THPs move and collapse as one
);
const lenArb = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 1, max: 10 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 2 * HUGE }) },
  { weight: 1, arbitrary: fc.constant(HUGE) },
);
const slotArb = fc.integer({ min: 0, max: SMALL_SLOTS + HUGE_SLOTS.length - 1 });
const proc = fc.nat(3);
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
/** How many different calls a 'nested' op may make (nestedCall). */
const NESTED_CALLS = 8;
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  w(3, fc.record({ k: fc.constant('mmap' as const), p: proc, slot: slotArb, n: fc.integer({ min: 1, max: HUGE }), prot: fc.constantFrom(...PROTS), type: fc.constantFrom<MapType>('anon', 'anon', 'shared-anon', 'file', 'shared-file', 'hugetlb'), off: fc.nat(4), populate: fc.boolean() })),
  w(1, fc.record({ k: fc.constant('munmap' as const), p: proc, page: pageArb, n: lenArb })),
  w(2, fc.record({ k: fc.constant('mprotect' as const), p: proc, page: pageArb, n: lenArb, prot: fc.constantFrom(...PROTS) })),
  w(3, fc.record({ k: fc.constant('madvise' as const), p: proc, page: pageArb, n: lenArb, advice: fc.constantFrom(MADV_DONTNEED, MADV_FREE, MADV_PAGEOUT, MADV_PAGEOUT, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE) })),
  w(1, fc.record({ k: fc.constant('move' as const), p: proc, page: pageArb, n: lenArb, slot: slotArb, dontunmap: fc.boolean() })),
  w(1, fc.record({ k: fc.constant('resize' as const), p: proc, page: pageArb, n: fc.integer({ min: 1, max: 8 }), to: fc.integer({ min: 1, max: 12 }), maymove: fc.boolean() })),
  w(2, fc.record({ k: fc.constant('fork' as const), p: proc })),
  w(1, fc.record({ k: fc.constant('exit' as const), p: proc })),
  w(2, fc.record({ k: fc.constant('swapout' as const), p: proc, page: pageArb })),
  w(6, fc.record({ k: fc.constant('write' as const), p: proc, page: pageArb, off: fc.nat(P - 1), len: fc.integer({ min: 1, max: 6000 }), v: fc.integer({ min: 1, max: 255 }) })),
  w(5, fc.record({ k: fc.constant('read' as const), p: proc, page: pageArb, off: fc.nat(P - 1), len: fc.integer({ min: 1, max: 6000 }) })),
  w(1, fc.record({ k: fc.constant('pwrite' as const), off: fc.nat(FILE_PAGES * P - 1), len: fc.integer({ min: 1, max: 3 * P }), v: fc.integer({ min: 1, max: 255 }) })),
  w(1, fc.record({ k: fc.constant('pread' as const), off: fc.nat(FILE_PAGES * P - 1), len: fc.integer({ min: 1, max: 3 * P }) })),
  w(1, fc.record({ k: fc.constant('truncate' as const), pages: fc.nat(FILE_PAGES) })),
  // fail_page_alloc: one of the next few allocations fails, reclaim or not.
  w(1, fc.record({ k: fc.constant('nomem' as const), after: fc.nat(6) })),
  // An mm operation from inside the next invalidate callback of this mm: EDEADLK, nothing changes.
  w(1, fc.record({ k: fc.constant('nested' as const), p: proc, inner: fc.nat(NESTED_CALLS - 1), page: pageArb })),
);

/** The calls a 'nested' op makes from inside a callback, by number. */
export function nestedCall(p: Process, inner: number, vpn: number): () => unknown {
  const addr = vpn * P;
  switch (inner) {
    case 0: return () => p.munmap(addr, P);
    case 1: return () => p.mprotect(addr, P, PROT_READ);
    case 2: return () => p.madvise(addr, P, MADV_DONTNEED);
    case 3: return () => p.write(addr, Uint8Array.of(1));
    case 4: return () => p.read(addr, 1);
    case 5: return () => p.fork();
    case 6: return () => p.mremap(addr, P, 2 * P, MREMAP_MAYMOVE);
    default: return () => p.exit();
  }
}
