// Shared helpers of the mm tests: a machine and a process, pagemap views, a snapshot of the
// whole machine for "nothing changed" checks, and an oracle stronger than checkInvariants:
// every entry agrees with the VMA it lies in (page-cache page at the right index for shared
// mappings, writable private entries only on exclusive anonymous pages, rss counters exact).
import { expect } from 'vitest';
import {
  KernelError, Machine, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, pagemap, PAGE_SIZE, PROT_READ, PROT_WRITE,
  type MachineConfig, type Mm, type PagemapEntry, type Process, MmuNotifier, mmuNotifierRegister,
  type MmuNotifierRange,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, totalMapcount } from '../../src/mm/memory.js';
import { PG_anon, PG_anon_exclusive, PG_tail } from '../../src/mm/page.js';
import { rmapKey } from '../../src/mm/rmap.js';
import { E_SPECIAL, E_WRITE, K_PRESENT, K_SWAP, KIND_MASK, LEVEL_PAGES, type PtSlot } from '../../src/mm/pagetable.js';
import { VM_SHARED, VM_WRITE } from '../../src/mm/vma.js';

export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
export const SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS;
export const P = PAGE_SIZE;

export function setup(config: Partial<MachineConfig> = {}): { m: Machine; p: Process } {
  const m = new Machine({ ramBytes: 64 << 20, swapBytes: 64 << 20, ...config });
  return { m, p: m.spawn() };
}

export function pm(p: Process, addr: number): PagemapEntry {
  return pagemap(p.mm, addr);
}

export function vmaList(p: Process): string[] {
  return p.mm.vmas.all.map((v) => `${v.toString()} pgoff=${v.pgoff}`);
}

/** The errno a call throws (a KernelError), or a failure if it returns or throws something else. */
export function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof KernelError) return e.errno;
    throw e;
  }
  throw new Error('expected a KernelError, the call returned');
}

/** Everything observable about a machine: VMAs, every page-table entry, frame counts, swap, page cache (not the count of table pages: a failed fault may leave an empty table, as in the kernel). */
export function snapshot(m: Machine): unknown {
  const f = m.phys.frames;
  return {
    mms: m.liveMms.map((mm) => {
      const entries: string[] = [];
      const frames: string[] = [];
      mm.pt.forEach(0, mm.taskSize / PAGE_SIZE, (node, idx, level, vpn) => {
        const val = node.val[idx]!;
        entries.push(`${vpn}/${level}: ${node.flg[idx]} ${val}`);
        if ((node.flg[idx]! & KIND_MASK) === K_PRESENT) frames.push(`${val}: ref ${f.refcount[f.compoundHead(val)]} map ${f.mapcount[val]} flags ${f.flags[val]}`);
      });
      return { id: mm.id, vmas: mm.vmas.all.map((v) => `${v} ${v.pgoff} ${v.flags}`), entries, frames, rss: [...mm.rss] };
    }),
    used: m.phys.usedRamFrames,
    slots: m.phys.data.slotsInUse,
    swap: m.swap.used,
    cache: m.fs.files.map((file) => `${file.id}: size ${file.size} pages ${[...file.pages].join(',')}`),
  };
}

/**
 * Violations of what the page tables must say given the VMAs, beyond checkInvariants:
 * - every entry lies wholly inside one VMA of its mm;
 * - a present entry of a shared mapping maps the file's page-cache page at the VMA's index;
 * - a present entry of a private mapping maps an anonymous page, the zero page, or (file
 *   mappings) the page-cache page at its index, read-only;
 * - a writable entry is allowed by the VMA, and in a private mapping maps an exclusive
 *   anonymous page mapped once (otherwise a write would leak into another mapping);
 * - the reverse map of a mapped frame names the entry that maps it;
 * - swap entries lie in private mappings;
 * - the rss counters equal what the entries say.
 */
export function checkMappings(m: Machine): string[] {
  const errors: string[] = [];
  const phys = m.phys;
  const f = phys.frames;
  for (const mm of m.liveMms) {
    const rss = [0, 0, 0, 0];
    mm.pt.forEach(0, mm.taskSize / PAGE_SIZE, (node, idx, level, vpn) => {
      const flg = node.flg[idx]!;
      const val = node.val[idx]!;
      const kind = flg & KIND_MASK;
      const n = LEVEL_PAGES[level]!;
      const addr = vpn * PAGE_SIZE;
      const where = `mm ${mm.id} 0x${addr.toString(16)}/${level}`;
      const vma = mm.vmas.lookup(addr);
      if (!vma || vma.end < addr + n * PAGE_SIZE) {
        errors.push(`${where}: entry ${flg}/${val} outside any VMA`);
        return;
      }
      const shared = (vma.flags & VM_SHARED) !== 0;
      if (kind === K_SWAP) {
        rss[MM_SWAPENTS]++;
        if (shared) errors.push(`${where}: swap entry in a shared mapping`);
        return;
      }
      if (kind !== K_PRESENT) return;
      if (flg & E_WRITE && !(vma.flags & VM_WRITE)) errors.push(`${where}: writable entry in ${vma}`);
      if (phys.isZeroPfn(val)) {
        if (shared || vma.file) errors.push(`${where}: zero page in ${vma}`);
        if (flg & E_WRITE) errors.push(`${where}: writable zero page`);
        return;
      }
      if (flg & E_SPECIAL) return;
      // The reverse map names this very entry (checkInvariants counts them; this checks where they point).
      const r = m.rmap.entries(val);
      let found = false;
      for (let i = 0; i < r.length && !found; i += 2) found = r[i] === mm.id && r[i + 1] === rmapKey(vpn, level);
      if (!found) errors.push(`${where}: frame ${val} has no rmap entry for this mapping`);
      const head = f.compoundHead(val);
      const anon = (f.flags[head]! & PG_anon) !== 0;
      rss[anon ? MM_ANONPAGES : f.mapping[head] !== 0 ? MM_SHMEMPAGES : MM_FILEPAGES] += n;
      if (f.flags[val]! & PG_tail && level > 0) errors.push(`${where}: huge leaf on a tail frame`);
      const cached = vma.file?.pages.get(vma.pgoffOf(addr));
      if (shared) {
        if (level !== 0 || cached !== val) errors.push(`${where}: shared mapping maps frame ${val}, page cache has ${cached}`);
      } else if (!anon) {
        if (cached !== val) errors.push(`${where}: private mapping maps non-anonymous frame ${val}, page cache has ${cached}`);
        if (flg & E_WRITE) errors.push(`${where}: private mapping of a page-cache page is writable`);
      } else if (flg & E_WRITE) {
        if (!(f.flags[val]! & PG_anon_exclusive) || totalMapcount(mm, val) !== 1) errors.push(`${where}: writable private entry on a page that is not exclusive`);
      }
    });
    for (let i = 0; i < 4; i++) if (mm.rss[i] !== rss[i]) errors.push(`mm ${mm.id}: rss[${i}] = ${mm.rss[i]}, entries say ${rss[i]}`);
  }
  return errors;
}

/** checkInvariants and checkMappings are both empty. */
export function expectConsistent(m: Machine): void {
  expect(checkInvariants(m)).toEqual([]);
  expect(checkMappings(m)).toEqual([]);
}

/** Fill a page (or any range) with a byte value through the CPU. */
export function fill(p: Process, addr: number, len: number, v: number): void {
  p.write(addr, new Uint8Array(len).fill(v));
}

export function rssOf(mm: Mm): { anon: number; file: number; shmem: number; swap: number } {
  return { anon: mm.rss[MM_ANONPAGES]!, file: mm.rss[MM_FILEPAGES]!, shmem: mm.rss[MM_SHMEMPAGES]!, swap: mm.rss[MM_SWAPENTS]! };
}

/** A free, aligned address range of `len` bytes in p (mapped and unmapped again to find it). */
export function freeRange(p: Process, len: number, align = P): number {
  const a = p.mmap(0, len + align, PROT_READ, ANON);
  p.munmap(a, len + align);
  return Math.ceil(a / align) * align;
}

/** The entry that maps addr: its kind, whether it is writable, its value (a pfn) and its level. */
export function ptEntry(p: Process, addr: number): { kind: number; write: boolean; val: number; level: number } {
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  p.mm.pt.lookup(Math.floor(addr / PAGE_SIZE), s);
  const flg = s.node.flg[s.idx]!;
  return { kind: flg & KIND_MASK, write: (flg & E_WRITE) !== 0, val: s.node.val[s.idx]!, level: s.level };
}

/** A machine with `ram` bytes of RAM and the default swap, and a process on it. */
export function newProcess(ram = 64 << 20): { m: Machine; p: Process } {
  const m = new Machine({ ramBytes: ram });
  return { m, p: m.spawn() };
}

/** The VMAs as their toString() (without the pgoff vmaList adds). */
export function vmaStrings(p: Process): string[] {
  return p.mm.vmas.all.map((v) => v.toString());
}

/** A classic notifier that collects every range it is told of (start), in order. */
export function ranges(p: Process): MmuNotifierRange[] {
  const out: MmuNotifierRange[] = [];
  mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: (_s, r) => void out.push(r) }), p.mm);
  return out;
}
