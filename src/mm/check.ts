// A consistency check of the whole machine, for tests and for debugging a driver: every
// frame's refcount, mapcount and reverse map must be exactly what the page tables, the page
// cache, the swap device and pins say. Costs a walk of every page table: not for hot paths.

import type { Machine } from './machine.js';
import {
  badKind, entryKind, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE, pteSpecial,
  ptFlags, ptVal,
} from './pagetable.js';
import { PG_anon, PG_buddy, PG_device, PG_hugetlb, PG_reserved, PG_tail } from './page.js';

export interface CheckOptions {
  /** References held outside page tables and the page cache (a driver's, a migration's), by folio head. */
  extraRefs?: Map<number, number>;
}

/** Returns a list of violations; empty when the machine is consistent. */
export function checkInvariants(machine: Machine, opts: CheckOptions = {}): string[] {
  const phys = machine.phys;
  const f = phys.frames;
  const errors: string[] = [];
  const refs = new Map<number, number>(); // head -> expected refcount
  const maps = new Map<number, number>(); // pfn -> expected PTE mapcount
  const entire = new Map<number, number>(); // head -> expected huge mappings
  const rmaps = new Map<number, number>(); // pfn -> expected rmap entries
  const swaps = new Map<number, number>(); // slot -> entries
  const inc = (m: Map<number, number>, k: number, by = 1): void => void m.set(k, (m.get(k) ?? 0) + by);

  for (const mm of machine.liveMms) {
    mm.pt.forEach(0, mm.taskSize / 4096, (node, idx, level) => {
      const flg = ptFlags(node, idx);
      const val = ptVal(node, idx);
      const kind = entryKind(flg);
      switch (kind) {
        case K_SWAP:
          return inc(swaps, val);
        case K_PRESENT:
        case K_DEVICE_PRIVATE:
        case K_DEVICE_EXCLUSIVE:
          if (kind === K_PRESENT && (pteSpecial(flg) || phys.isZeroPfn(val))) return;
          inc(refs, f.compoundHead(val));
          if (level === 0) inc(maps, val);
          else inc(entire, val);
          return inc(rmaps, val);
        case K_MIGRATION:
          return inc(rmaps, val);
        case K_HWPOISON:
        case K_BAD:
        case K_NONE:
        case K_TABLE:
          return;
        default:
          return badKind(kind);
      }
    });
  }
  for (const file of machine.fs.files) {
    for (const [index, pfn] of file.pages) {
      inc(refs, pfn);
      if (f.mapping[pfn] !== file.id || f.index[pfn] !== index) errors.push(`page-cache frame ${pfn} has mapping ${f.mapping[pfn]} index ${f.index[pfn]}, expected ${file.id}/${index}`);
    }
    for (const [index, slot] of file.swapped) {
      inc(swaps, slot);
      if (file.pages.has(index)) errors.push(`file ${file.id} index ${index} is both cached and in swap slot ${slot}`);
    }
  }
  for (const [head, n] of phys.pincount) inc(refs, head, n);
  for (const [head, n] of phys.gupcount) inc(refs, head, n);
  for (const [head, n] of opts.extraRefs ?? []) inc(refs, head, n);

  let used = 0;
  const free = new Uint8Array(phys.ramFrames);
  for (let pfn = 0; pfn < f.capacity; pfn++) {
    const flags = f.flags[pfn]!;
    if (flags & PG_buddy) {
      free.fill(1, pfn, pfn + (1 << f.order(pfn)));
      pfn += (1 << f.order(pfn)) - 1;
      continue;
    }
    if (flags & PG_reserved) continue;
    if (pfn < phys.ramFrames && !(flags & PG_tail)) used++;
    if (!(flags & PG_tail) && (pfn < phys.ramFrames || flags & PG_device)) {
      const want = refs.get(pfn) ?? 0;
      if (f.refcount[pfn] !== want && !(flags & PG_device && f.refcount[pfn] === 0 && want === 0)) {
        errors.push(`frame ${pfn}: refcount ${f.refcount[pfn]}, page tables and caches account for ${want}`);
      }
      if (pfn < phys.ramFrames && f.refcount[pfn] === 0) errors.push(`frame ${pfn} is neither free nor referenced (leaked)`);
      if ((phys.entireMapcount.get(pfn) ?? 0) !== (entire.get(pfn) ?? 0)) {
        errors.push(`folio ${pfn}: entire mapcount ${phys.entireMapcount.get(pfn) ?? 0}, expected ${entire.get(pfn) ?? 0}`);
      }
    }
    if (f.mapcount[pfn] !== (maps.get(pfn) ?? 0)) errors.push(`frame ${pfn}: mapcount ${f.mapcount[pfn]}, expected ${maps.get(pfn) ?? 0}`);
    if (machine.rmap.count(pfn) !== (rmaps.get(pfn) ?? 0)) errors.push(`frame ${pfn}: ${machine.rmap.count(pfn)} rmap entries, expected ${rmaps.get(pfn) ?? 0}`);
  }
  // Nothing may map or reference a frame of a free block (a use after free: the next
  // allocation hands it to someone else).
  for (const m of [refs, maps, entire, rmaps]) {
    for (const p of m.keys()) {
      if (p < phys.ramFrames && free[p]) errors.push(`frame ${p} is free but still mapped or referenced (${refs.get(p) ?? 0} references, ${rmaps.get(p) ?? 0} mappings)`);
    }
  }
  for (const [slot, n] of swaps) {
    if (machine.swap.users(slot) !== n) errors.push(`swap slot ${slot}: count ${machine.swap.users(slot)}, ${n} entries`);
  }
  if (machine.swap.used !== swaps.size) errors.push(`swap: ${machine.swap.used} slots in use, ${swaps.size} referenced`);
  // Each data slot is held by exactly the frames and swap slots that name it (lazy page copies share one).
  const holders = new Map<number, number>();
  for (let pfn = 0; pfn < f.capacity; pfn++) if (f.dataSlot[pfn]! >= 0) inc(holders, f.dataSlot[pfn]!);
  for (const slot of swaps.keys()) if (machine.swap.dataOf(slot) >= 0) inc(holders, machine.swap.dataOf(slot));
  for (const [slot, n] of holders) {
    if (phys.data.slotHolders(slot) !== n) errors.push(`data slot ${slot}: ${phys.data.slotHolders(slot)} holders recorded, ${n} found`);
  }
  if (phys.data.slotsInUse !== holders.size) errors.push(`data: ${phys.data.slotsInUse} slots in use, ${holders.size} held`);
  // The LRU lists are well formed, and every folio of RAM that is mapped or cached is on one.
  const onLru = phys.lru.check(errors);
  const inUse = new Set<number>();
  for (const pfn of rmaps.keys()) inUse.add(f.compoundHead(pfn));
  for (const file of machine.fs.files) for (const pfn of file.pages.values()) inUse.add(pfn);
  for (const head of inUse) {
    const flags = f.flags[head]!;
    if (head >= phys.ramFrames || flags & (PG_reserved | PG_hugetlb | PG_device) || !(flags & PG_anon || f.mapping[head] !== 0)) continue;
    if (!onLru.has(head)) errors.push(`frame ${head} is mapped or cached but on no LRU list`);
  }
  void used;
  return errors;
}
