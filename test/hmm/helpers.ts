// TEST-ONLY helpers for the HMM tests. They put entries into a process's page table that no
// system call of the model creates by itself (migration entries, hwpoison entries, bad PMDs,
// NUMA-hinting protnone, device-exclusive entries, pfnmap VMAs), using only the src/mm
// primitives (PageTable.set, the rmap, page locks, invalidations), with the same bookkeeping
// the kernel's paths would do, so that checkInvariants(machine) still holds. Device-private
// entries come from the test device, through migrate_vma. They are not part of hmmsim.

import {
  allocPages, Machine, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, mmapDevice, PAGE_SIZE, PROT_READ, PROT_WRITE,
  putPage, remapPfnRange, VM_DONTEXPAND, vmInsertPage, type Mm, type Process,
} from '../../src/index.js';
import {
  E_DIRTY, E_PROTNONE, E_WRITE, E_YOUNG, K_BAD, K_DEVICE_EXCLUSIVE, K_HWPOISON, K_MIGRATION, K_NONE,
  K_PRESENT, KIND_MASK, PageTable, type PtSlot,
} from '../../src/mm/pagetable.js';
import { rmapKey } from '../../src/mm/rmap.js';
import { HmmRange as HmmRange417 } from '../../src/hmm/v417/index.js';

export { errnoOf } from '../mm/helpers.js';

export const P = PAGE_SIZE;

export function newMachine(ramMiB = 128, thp: 'always' | 'madvise' | 'never' = 'madvise'): Machine {
  return new Machine({ ramBytes: ramMiB * 2 ** 20, thp });
}

/** A private anonymous RW mapping of n pages. */
export function anon(p: Process, pages: number, prot = PROT_READ | PROT_WRITE): number {
  return p.mmap(0, pages * P, prot, MAP_PRIVATE | MAP_ANONYMOUS);
}

/** The page-table slot of addr (the lowest existing entry). */
export function slotOf(mm: Mm, addr: number): PtSlot {
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  mm.pt.lookup(addr / P, s);
  return s;
}

/** The frame the CPU maps at addr (present entries only, huge leaves included), or -1. */
export function cpuPfn(mm: Mm, addr: number): number {
  const s = slotOf(mm, addr);
  const flg = s.node.flg[s.idx]!;
  if ((flg & KIND_MASK) !== K_PRESENT) return -1;
  const span = [1, 512, 262144][s.level]!;
  return s.node.val[s.idx]! + ((addr / P) % span);
}

export function cpuKind(mm: Mm, addr: number): number {
  const s = slotOf(mm, addr);
  return s.node.flg[s.idx]! & KIND_MASK;
}

export function cpuWritable(mm: Mm, addr: number): boolean {
  const s = slotOf(mm, addr);
  return (s.node.flg[s.idx]! & E_WRITE) !== 0;
}

/** The 4.17 driver encoding the tests use: VALID=1, WRITE=2, DEVICE_PRIVATE=4; ERROR=8, NONE=0x10, SPECIAL=0x20; pfn << 6. */
export const F_VALID = 1;
export const F_WRITE = 2;
export const F_DP = 4;
export const V_ERROR = 8;
export const V_NONE = 0x10;
export const V_SPECIAL = 0x20;
export const SHIFT = 6;

export function range417(p: Process, start: number, end: number, opts: { dp?: number; shift?: number } = {}): HmmRange417 {
  const vma = p.mm.findVma(start)!;
  return new HmmRange417({
    vma, start, end, flags: [F_VALID, F_WRITE, opts.dp ?? F_DP], values: [V_ERROR, V_NONE, V_SPECIAL], pfnShift: opts.shift ?? SHIFT,
  });
}

export function enc(pfn: number, flags: number, shift = SHIFT): number {
  return pfn * 2 ** shift + flags;
}

// ---- device-private memory (a stand-in for the migration API when it is not there) ----

// The test device (a dev_pagemap with private memory, migration through migrate_vma, a
// migrate_to_ram that brings the page back) is test/mm/migrate/device.ts's, shared by every test.
export { TestDevice } from '../mm/migrate/device.js';

// ---- migration entries ----

export interface PendingMigration {
  pfn: number;
  /** Restore the mapping (to a new copy of the page if `move`), and unlock the page. */
  finish(move?: boolean): number;
}

/** try_to_migrate on the page mapped at addr (a 4 KiB PTE or a huge PMD): a locked page behind a migration entry. */
export function startMigration(mm: Mm, addr: number): PendingMigration {
  const machine = mm.machine;
  const phys = machine.phys;
  const s = slotOf(mm, addr);
  const { node, idx, level } = s;
  const flg = node.flg[idx]!;
  if ((flg & KIND_MASK) !== K_PRESENT) throw new Error('helper needs a present entry');
  const pfn = node.val[idx]!;
  const span = [1, 512][level]!;
  const base = (addr / P) - ((addr / P) % span);
  if (!phys.trylockPage(pfn)) throw new Error('page already locked');
  const r = mm.invalidateStart('CLEAR', base * P, (base + span) * P);
  if (level === 0) phys.frames.mapcount[pfn]!--;
  else phys.entireMapcount.delete(pfn);
  PageTable.set(node, idx, K_MIGRATION | (flg & E_WRITE), pfn);
  mm.invalidateEnd(r);
  return {
    pfn,
    finish(move = false): number {
      let to = pfn;
      if (move) {
        if (level !== 0) throw new Error('move only for 4 KiB pages');
        to = phys.allocPages(0);
        phys.setAnon(to);
        phys.copyPage(to, pfn);
        machine.rmap.remove(pfn, mm.id, rmapKey(base, 0));
        machine.rmap.add(to, mm.id, rmapKey(base, 0));
        phys.frames.mapcount[to]!++;
        phys.lru.add(to); // the new folio goes on the LRU (migrate_folio_done's putback)
      } else if (level === 0) phys.frames.mapcount[pfn]!++;
      else phys.entireMapcount.set(pfn, 1);
      PageTable.set(node, idx, K_PRESENT | E_YOUNG | (flg & (E_WRITE | E_DIRTY)), to);
      phys.unlockPage(pfn);
      if (move) phys.putPage(pfn);
      return to;
    },
  };
}

// ---- other entry kinds ----

/** A hwpoison entry at an empty address. */
export function installHwpoison(mm: Mm, addr: number): void {
  const pte = mm.pt.ensureTable(addr / P, 0)!;
  const idx = (addr / P) % 512;
  if ((pte.flg[idx]! & KIND_MASK) !== K_NONE) throw new Error('address not empty');
  PageTable.set(pte, idx, K_HWPOISON, 0);
}

/** A corrupt PMD (pmd_bad) over the empty 2 MiB region containing addr. */
export function installBadPmd(mm: Mm, addr: number): void {
  const vpn = addr / P;
  const pmd = mm.pt.ensureTable(vpn, 1)!;
  const idx = PageTable.index(vpn, 1);
  if ((pmd.flg[idx]! & KIND_MASK) !== K_NONE) throw new Error('PMD not empty');
  PageTable.set(pmd, idx, K_BAD, 0);
}

/** NUMA hinting: mark the entry mapping addr (PTE or huge PMD) protnone. */
export function setProtnone(mm: Mm, addr: number): void {
  const s = slotOf(mm, addr);
  s.node.flg[s.idx]! |= E_PROTNONE;
}

/** Turn the present PTE at addr into a device-exclusive entry (what make_device_exclusive leaves). */
export function makeExclusive(mm: Mm, addr: number, owner: unknown): void {
  const s = slotOf(mm, addr);
  const flg = s.node.flg[s.idx]!;
  if (s.level !== 0 || (flg & KIND_MASK) !== K_PRESENT) throw new Error('helper needs a present PTE');
  const r = mm.invalidateStart('EXCLUSIVE', addr, addr + P, owner);
  s.node.flg[s.idx] = (flg & ~KIND_MASK) | K_DEVICE_EXCLUSIVE;
  mm.invalidateEnd(r);
}

/**
 * A device file's mapping of `pages` pages, made as drivers make one from their mmap:
 * 'pfnmap' remaps I/O pfns (remap_pfn_range: VM_IO | VM_PFNMAP | VM_DONTEXPAND), 'mixedmap'
 * inserts pages the driver allocated (vm_insert_page: VM_MIXEDMAP), 'dontexpand' only sets
 * VM_DONTEXPAND (vm_flags_set) and maps nothing. Returns the address.
 */
export function driverMapping(p: Process, kind: 'pfnmap' | 'mixedmap' | 'dontexpand', pages: number, opts: { addr?: number; prot?: number } = {}): number {
  const m = p.machine;
  const flags = MAP_SHARED | (opts.addr !== undefined ? MAP_FIXED : 0);
  return mmapDevice(p.mm, opts.addr ?? 0, pages * P, opts.prot ?? PROT_READ | PROT_WRITE, flags, 0, {
    mmap: (vma) => {
      if (kind === 'pfnmap') remapPfnRange(vma, vma.start, m.phys.frames.capacity, pages * P);
      else if (kind === 'dontexpand') vma.flags |= VM_DONTEXPAND;
      else {
        for (let a = vma.start; a < vma.end; a += P) {
          const page = allocPages(m);
          vmInsertPage(vma, a, page);
          putPage(m, page);
        }
      }
    },
  });
}
