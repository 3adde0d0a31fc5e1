// What the model spends in memory, in two parts: what a machine pays for all of its RAM up
// front (per-frame metadata, the buddy allocator's free lists included), and what each touched
// page costs beyond that (its 4 KiB of data, the data slot's holder count, its share of the
// page tables). Each from the model's own accounting and cross-checked against the
// ArrayBuffer growth Node reports; plus the sparse case (1 TiB mapped, 1,000 pages touched).

import { Machine, MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, MADV_NOHUGEPAGE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import { BYTES_PER_FRAME } from '../src/mm/page.js';
import { BYTES_PER_DATA_SLOT, setSlabPoolBytes } from '../src/mm/physmem.js';
import { SeededRandom } from '../src/sched/random.js';
import { textTable } from '../src/cli/table.js';

/** The buddy allocator's free lists: a next and a prev link (Int32) per frame. */
const FREE_LIST_BYTES_PER_FRAME = 8;

/** Bytes of one page-table node: 512 x (u32 value + u16 flags), plus the child array above PTE level, plus object headers. */
export function ptNodeBytes(level: number): number {
  return 512 * 6 + (level > 0 ? 512 * 8 : 0) + 3 * 64;
}

function ptBytes(nodes: { pte: number; upper: number }): number {
  return nodes.pte * ptNodeBytes(0) + nodes.upper * ptNodeBytes(1);
}

export interface MemoryFigures {
  /** Paid for every frame of RAM when the machine is built, used or not. */
  perFrame: { accounted: number; measured: number; perGiBOfRam: number };
  /** Per touched 4 KiB page, beyond the per-frame metadata. */
  /**
   * Per touched 4 KiB page, beyond the per-frame metadata: a page written only in its first
   * HEAD_BYTES holds a head slot (data), one written past it a whole page (wholePageTotal).
   */
  perTouchedPage: { data: number; slot: number; pageTables: number; total: number; measured: number; wholePageTotal: number };
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

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): void {
  gc?.();
  gc?.(); // twice: the first may leave finalizable garbage behind
}
function external(): number {
  const u = process.memoryUsage();
  return u.arrayBuffers + u.heapUsed;
}

export function measureMemory(populateBytes = 256 << 20): MemoryFigures {
  const pool = setSlabPoolBytes(0); // fresh data slabs only, so that their growth shows
  try {
    return measure(populateBytes);
  } finally {
    setSlabPoolBytes(pool);
  }
}

// Each part in a function of its own, so that the machine it built is garbage when the next
// part starts: a machine left in a local of one long function stayed alive until V8 optimized
// the next part's loop, and its frames, collected inside that part's window, made the touched
// pages' measured growth negative (-180 bytes a page).
function measure(populateBytes: number): MemoryFigures {
  const accounted = BYTES_PER_FRAME + FREE_LIST_BYTES_PER_FRAME;
  return {
    perFrame: { accounted, measured: measurePerFrame(), perGiBOfRam: accounted * (2 ** 30 / PAGE_SIZE) },
    perTouchedPage: measurePerTouchedPage(populateBytes),
    sparse: measureSparse(accounted),
  };
}

/** Per frame: a machine with 1 GiB of RAM, nothing touched; the growth Node reports per frame. */
function measurePerFrame(): number {
  settle();
  const e0 = external();
  const ramBytes = 2 ** 30;
  const bare = new Machine({ ramBytes, swapBytes: 0, thp: 'never' });
  settle();
  const measured = (external() - e0) / (ramBytes / PAGE_SIZE);
  bare.dispose();
  return measured;
}

/** Per touched page: a populated region, every page touched once (no slab pool: fresh data). */
function measurePerTouchedPage(populateBytes: number): MemoryFigures['perTouchedPage'] {
  const m = new Machine({ ramBytes: populateBytes * 2, swapBytes: 0, thp: 'never' });
  const p = m.spawn();
  const a = p.mmap(0, populateBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, populateBytes, MADV_NOHUGEPAGE);
  settle();
  const t0 = external();
  const one = Uint8Array.of(1);
  const pages = populateBytes / PAGE_SIZE;
  for (let i = 0; i < pages; i++) p.write(a + i * PAGE_SIZE, one);
  settle();
  const measured = (external() - t0) / pages;
  const data = m.phys.data.bytesInUse / pages;
  const pageTables = ptBytes(countNodes(m)) / pages;
  m.dispose();
  return {
    data, slot: BYTES_PER_DATA_SLOT, pageTables, total: data + BYTES_PER_DATA_SLOT + pageTables, measured,
    wholePageTotal: PAGE_SIZE + BYTES_PER_DATA_SLOT + pageTables,
  };
}

/** Sparse: 1 TiB mapped, 1,000 pages touched at random. */
function measureSparse(accounted: number): MemoryFigures['sparse'] {
  settle();
  const before = external();
  const sm = new Machine({ ramBytes: 64 << 20, swapBytes: 0, thp: 'never' });
  const sp = sm.spawn();
  const tib = 2 ** 40;
  const base = sp.mmap(0, tib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  const rand = SeededRandom.of(42);
  const one = Uint8Array.of(1);
  for (let i = 0; i < 1000; i++) sp.write(base + rand.below(tib / PAGE_SIZE) * PAGE_SIZE, one);
  settle();
  const heapGrowthBytes = external() - before;
  const modelBytes = ptBytes(countNodes(sm)) + sm.phys.data.bytesInUse + 1000 * BYTES_PER_DATA_SLOT + (sm.config.ramBytes / PAGE_SIZE) * accounted;
  sm.dispose();
  return { mappedBytes: tib, touchedPages: 1000, modelBytes, heapGrowthBytes };
}

export function formatMemory(mem: MemoryFigures): string {
  const b = (x: number) => x.toFixed(1);
  const mb = (x: number) => `${(x / 2 ** 20).toFixed(1)} MiB`;
  return textTable(
    ['figure', 'accounted', 'measured (Node)', 'target'],
    [
      ['per frame of RAM, paid up front (struct page arrays + free lists), bytes', b(mem.perFrame.accounted), b(mem.perFrame.measured), '-'],
      ['  that is, per GiB of RAM', mb(mem.perFrame.perGiBOfRam), mb(mem.perFrame.measured * 2 ** 18), '-'],
      ['per touched page (one byte written): data + slot holder count + page tables, bytes', `${b(mem.perTouchedPage.data)} + ${mem.perTouchedPage.slot} + ${b(mem.perTouchedPage.pageTables)}`, b(mem.perTouchedPage.measured), 'page tables <= 16'],
      ['per touched page written past its first 64 bytes (a whole 4 KiB slot), bytes', b(mem.perTouchedPage.wholePageTotal), '-', '-'],
      ['sparse: 1 TiB mapped, 1,000 pages touched, 64 MiB RAM', mb(mem.sparse.modelBytes), mb(mem.sparse.heapGrowthBytes), 'what it touches'],
    ],
    { align: ['left', 'right', 'right', 'left'] },
  );
}
