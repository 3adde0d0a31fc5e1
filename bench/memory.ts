// What the model spends in memory: metadata per mapped page (page tables), cost per touched
// page (data + frame metadata + page-table share), and the sparse case (map 1 TiB, touch
// 1,000 scattered pages), from the model's own accounting and cross-checked against the
// heap and ArrayBuffer growth that Node reports.

import { Machine, MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, MADV_NOHUGEPAGE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import { BYTES_PER_FRAME } from '../src/mm/page.js';
import { BYTES_PER_DATA_SLOT } from '../src/mm/physmem.js';
import { SeededRandom } from '../src/sched/random.js';

/** Bytes of one page-table node: 512 x (u32 value + u16 flags), plus the child array above PTE level, plus object headers. */
export function ptNodeBytes(level: number): number {
  return 512 * 6 + (level > 0 ? 512 * 8 : 0) + 3 * 64;
}

function ptBytes(nodes: { pte: number; upper: number }): number {
  return nodes.pte * ptNodeBytes(0) + nodes.upper * ptNodeBytes(1);
}

export interface MemoryFigures {
  /** Page-table bytes per mapped-and-touched 4 KiB page (a populated region). */
  metadataPerMappedPage: number;
  /** Frame metadata + data-slot holder count + page-table share of one touched page (beyond its 4 KiB of data). */
  overheadPerTouchedPage: number;
  sparse: { mappedBytes: number; touchedPages: number; modelBytes: number; heapGrowthBytes: number };
}

function countNodes(m: Machine): { pte: number; upper: number } {
  let pte = 0;
  let upper = 0;
  for (const mm of m.liveMms) {
    const walk = (n: { level: number; child: unknown[] | null }): void => {
      if (n.level === 0) pte++;
      else {
        upper++;
        for (const c of n.child!) if (c) walk(c as typeof n);
      }
    };
    walk(mm.pt.root);
  }
  return { pte, upper };
}

export function measureMemory(populateBytes = 256 << 20): MemoryFigures {
  // Populated region: every page touched once.
  const m = new Machine({ ramBytes: populateBytes * 2, swapBytes: 0, thp: 'never' });
  const p = m.spawn();
  const a = p.mmap(0, populateBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, populateBytes, MADV_NOHUGEPAGE);
  const one = Uint8Array.of(1);
  const pages = populateBytes / PAGE_SIZE;
  for (let i = 0; i < pages; i++) p.write(a + i * PAGE_SIZE, one);
  const pt = ptBytes(countNodes(m));
  const metadataPerMappedPage = pt / pages;
  const overheadPerTouchedPage = BYTES_PER_FRAME + BYTES_PER_DATA_SLOT + metadataPerMappedPage;
  p.exit();

  // Sparse: 1 TiB mapped, 1,000 pages touched at random.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.(); // twice: the first may leave finalizable garbage of the populated run behind
  const before = process.memoryUsage();
  const sm = new Machine({ ramBytes: 64 << 20, swapBytes: 0, thp: 'never' });
  const sp = sm.spawn();
  const tib = 2 ** 40;
  const base = sp.mmap(0, tib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  const rand = SeededRandom.of(42);
  for (let i = 0; i < 1000; i++) sp.write(base + rand.below(tib / PAGE_SIZE) * PAGE_SIZE, one);
  gc?.();
  const after = process.memoryUsage();
  const nodes = countNodes(sm);
  const modelBytes = ptBytes(nodes) + 1000 * (PAGE_SIZE + BYTES_PER_FRAME + BYTES_PER_DATA_SLOT);
  const heapGrowthBytes = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  sp.exit();
  return { metadataPerMappedPage, overheadPerTouchedPage, sparse: { mappedBytes: tib, touchedPages: 1000, modelBytes, heapGrowthBytes } };
}
