// Device memory migration (mm/migrate_device.c, with the encoding and struct of
// include/linux/migrate.h): moving the pages of a range between system and device memory in
// three steps around the driver's copy.
//
//   migrateVmaSetup    collect the pages (splitting huge pages), lock them, replace their
//                      mappings with migration entries, everywhere, through the reverse map;
//                      restore and drop pinned ones.
//   (the driver)       allocate and lock destination pages, copy, fill dst.
//   migrateVmaPages    move the struct-page state to the destinations; populate empty entries
//                      of anonymous VMAs directly.
//   migrateVmaFinalize remap every migration entry to the new page (or back to the old one),
//                      unlock, drop the references; a device page whose last reference goes
//                      is handed back to its driver (page_free).
//
// migrateDeviceRange / migrateDevicePfns / migrateDevicePages / migrateDeviceFinalize do the
// same for device pages chosen by pfn, whoever maps them (evicting a device's memory).
// migrate.ts is the public face (and holds 4.17's single call); this module is one piece on
// purpose: its per-page loops would pay for every cross-module binding under tsx and vitest.
//
// Encoded values (pfn * 64 + flags) exceed 32 bits: they are tested and built with arithmetic,
// never with 32-bit bitwise operators, and stored in Float64Arrays (or plain number arrays).

import { fail } from './errno.js';
import { PAGE_SIZE, PMD_NR, PMD_SIZE } from './constants.js';
import type { Machine } from './machine.js';
import type { Mm } from './mm.js';
import { VM_SPECIAL, VM_WRITE, type Vma } from './vma.js';
import {
  E_DIRTY, E_SOFT_DIRTY, E_SPECIAL, E_UFFD_WP, E_WRITE, E_YOUNG, K_DEVICE_PRIVATE, K_MIGRATION, K_NONE, K_PRESENT, KIND_MASK,
  PageTable, type PtNode, type PtSlot,
} from './pagetable.js';
import { addMapping, mmCounter, splitHugePmd } from './memory.js';
import { keyLevel, keyVpn } from './rmap.js';
import {
  PG_anon, PG_anon_exclusive, PG_buddy, PG_device, PG_dirty, PG_head, PG_hugetlb, PG_locked, PG_reserved, PG_scratch,
  PG_swapbacked, PG_tail,
} from './page.js';

export const MIGRATE_VMA_SELECT_SYSTEM = 1;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 2;
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 4;

export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_WRITE = 1 << 3;
export const MIGRATE_PFN_SHIFT = 6;
// The 4.17 encoding's extra bits (include/linux/migrate.h of that era).
export const MIGRATE_PFN_LOCKED = 1 << 2;
export const MIGRATE_PFN_DEVICE = 1 << 4;
export const MIGRATE_PFN_ERROR = 1 << 5;
/** A pgmapOwner that selects device pages of any owner (4.17 had no owners). */
export const MIGRATE_ANY_OWNER: unique symbol = Symbol('any pgmap owner');

/** One encoded entry per page: a Float64Array, or a plain array of numbers. */
export type MigratePfnArray = Float64Array | number[];

const PFN_MUL = 2 ** MIGRATE_PFN_SHIFT;
const has = (v: number, bit: number): boolean => v % (2 * bit) >= bit;
const without = (v: number, bit: number): number => (has(v, bit) ? v - bit : v);

/** migrate_pfn(pfn): the pfn, shifted, with VALID. */
export function migratePfn(pfn: number): number {
  return pfn * PFN_MUL + MIGRATE_PFN_VALID;
}
/** migrate_pfn_to_page: the pfn of an entry, or -1 without VALID. */
export function migratePfnToPage(v: number): number {
  return has(v, MIGRATE_PFN_VALID) ? Math.floor(v / PFN_MUL) : -1;
}
/** Whether an encoded entry has a MIGRATE_PFN_* bit (use this, not `&`: entries exceed 32 bits). */
export function migratePfnHas(v: number, bit: number): boolean {
  return has(v, bit);
}

/** struct migrate_vma */
export interface MigrateVma {
  vma: Vma;
  start: number;
  end: number;
  /** Exactly npages entries each. */
  src: MigratePfnArray;
  dst: MigratePfnArray;
  /** Out: pages in the range, and pages collected. */
  npages: number;
  cpages: number;
  pgmapOwner: unknown;
  /** MIGRATE_VMA_SELECT_* */
  flags: number;
  /** The device page a migrate_to_ram is faulting on (already locked and referenced by the fault), or -1. */
  faultPage: number;
}

/** A MigrateVma for [start, end) of vma, with src/dst arrays of the right length. */
export function newMigrateVma(vma: Vma, start: number, end: number, flags: number, pgmapOwner: unknown, faultPage = -1): MigrateVma {
  const n = Math.max(0, Math.floor((end - start) / PAGE_SIZE));
  return { vma, start, end, src: new Float64Array(n), dst: new Float64Array(n), npages: 0, cpages: 0, pgmapOwner, flags, faultPage };
}

function isPfnArray(a: unknown): a is MigratePfnArray {
  return a instanceof Float64Array || Array.isArray(a);
}

/** Whether a pagemap's owner is the one a migration selects. */
function ownerMatches(pgmapOwner: unknown, wanted: unknown): boolean {
  return wanted === MIGRATE_ANY_OWNER || pgmapOwner === wanted;
}

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

// 4.17's do_swap_page took no reference on a device-private page before calling the driver;
// hmmsim's fault path (mainline's) does. hmm_devmem's fault trampoline registers that
// reference here so that the 4.17 migration (which has no fault_page) expects it.
const faultRefs417 = new WeakMap<Machine, Map<number, number>>();
let faults417 = 0; // registered in any machine: the lookup is skipped while there are none
/** @internal */
export function enterFault417(machine: Machine, pfn: number): void {
  let m = faultRefs417.get(machine);
  if (!m) faultRefs417.set(machine, (m = new Map()));
  m.set(pfn, (m.get(pfn) ?? 0) + 1);
  faults417++;
}
/** @internal */
export function leaveFault417(machine: Machine, pfn: number): void {
  const m = faultRefs417.get(machine);
  const n = m?.get(pfn) ?? 0;
  if (n === 0) return;
  faults417--;
  if (n === 1) m!.delete(pfn);
  else m!.set(pfn, n - 1);
}
function faultRef417(machine: Machine, pfn: number): number {
  return faults417 === 0 ? 0 : (faultRefs417.get(machine)?.get(pfn) ?? 0);
}

/** migrate_vma_collect: walk [start, end) one PMD range at a time. */
function collect(mm: Mm, args: MigrateVma, v417: boolean): void {
  // Only anonymous memory can be populated; 4.17 collected the holes of any VMA and let the
  // insertion refuse them (4.17 #42).
  const holes = v417 || args.vma.isAnonymous();
  for (let cs = args.start; cs < args.end; ) {
    const ce = Math.min(args.end, (Math.floor(cs / PMD_SIZE) + 1) * PMD_SIZE);
    collectPmd(mm, args, cs, ce, holes, v417);
    cs = ce;
  }
}

function collectHole(args: MigrateVma, i0: number, n: number, holes: boolean): void {
  if (!holes) return;
  for (let i = i0; i < i0 + n; i++) args.src[i] = MIGRATE_PFN_MIGRATE;
  args.cpages += n;
}

/** migrate_vma_collect_pmd for [cs, ce), inside one PMD range. */
function collectPmd(mm: Mm, args: MigrateVma, cs: number, ce: number, holes: boolean, v417: boolean): void {
  const machine = mm.machine;
  const phys = machine.phys;
  const i0 = (cs - args.start) / PAGE_SIZE;
  const n = (ce - cs) / PAGE_SIZE;
  const vpn = cs / PAGE_SIZE;
  mm.pt.lookup(vpn, slot);
  if (slot.level > 0) {
    const kind = slot.node.flg[slot.idx]! & KIND_MASK;
    if (kind === K_NONE) return collectHole(args, i0, n, holes);
    // A bad entry, or a non-present huge entry (swap, migration, device): the chunk is skipped.
    if (slot.level !== 1 || kind !== K_PRESENT) return;
    const pmd = slot.node;
    const pidx = slot.idx;
    const val = pmd.val[pidx]!;
    const base = vpn - (vpn % PMD_NR);
    if (phys.isZeroPfn(val)) splitPmdNotify(mm, pmd, pidx, base);
    else if (val === args.faultPage || !splitFolio(machine, val)) return; // the THP stays: chunk skipped
    mm.pt.lookup(vpn, slot);
    if ((slot.level as number) !== 0) return;
  }
  const pte = slot.node;
  for (let j = 0; j < n; j++) {
    const r = collectPte(mm, args, pte, (vpn + j) & 511, i0 + j, holes, v417);
    if (r === RETRY) j--;
    else if (r === SKIP_REST) return;
  }
}

const NEXT = 0;
const RETRY = 1;
const SKIP_REST = 2;

/** One PTE of migrate_vma_collect_pmd. */
function collectPte(mm: Mm, args: MigrateVma, pte: PtNode, idx: number, i: number, holes: boolean, v417: boolean): number {
  const machine = mm.machine;
  const phys = machine.phys;
  const f = phys.frames;
  const flg = pte.flg[idx]!;
  const kind = flg & KIND_MASK;
  const val = pte.val[idx]!;
  const select = args.flags;
  if (kind === K_NONE) {
    collectHole(args, i, 1, holes);
    return NEXT;
  }
  if (kind === K_PRESENT) {
    if (phys.isZeroPfn(val)) {
      if (select & MIGRATE_VMA_SELECT_SYSTEM) collectHole(args, i, 1, true);
      return NEXT;
    }
    if (flg & E_SPECIAL) return NEXT; // no struct page (vm_normal_page is NULL)
    const pgmap = phys.pagemapOf(val);
    if (!pgmap) {
      if (!(select & MIGRATE_VMA_SELECT_SYSTEM)) return NEXT;
    } else if (pgmap.type !== 'coherent' || !(select & MIGRATE_VMA_SELECT_DEVICE_COHERENT) || !ownerMatches(pgmap.owner, args.pgmapOwner)) {
      return NEXT;
    }
    if (f.flags[val]! & (PG_head | PG_tail)) {
      // A PTE-mapped piece of a large folio: split the folio (migrate_vma_split_folio) and look
      // again; if it cannot be split, the rest of this PMD range is skipped. 4.17 skipped the page.
      if (v417) return NEXT;
      return splitFolio(machine, f.compoundHead(val)) ? RETRY : SKIP_REST;
    }
  } else if (kind === K_DEVICE_PRIVATE) {
    const pgmap = phys.pagemapOf(val);
    if (!pgmap || !(select & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || !ownerMatches(pgmap.owner, args.pgmapOwner)) return NEXT;
    if (f.flags[val]! & (PG_head | PG_tail)) return NEXT; // device folios (MIGRATE_PFN_COMPOUND) are not modelled
  } else {
    return NEXT; // swap, migration, device-exclusive, hwpoison entries are not migrated
  }
  const pflags = f.flags[val]!;
  if (!(pflags & PG_anon) && f.mapping[val] === 0) return NEXT; // page->mapping is NULL
  const fault = val === args.faultPage;
  if (!fault && !phys.trylockPage(val)) return NEXT; // best effort: a locked page is left alone
  if (pflags & PG_anon && pflags & PG_anon_exclusive && phys.pinned(val) > 0) {
    // folio_try_share_anon_rmap_pte refuses a pinned exclusive page: it stays mapped.
    if (!fault) phys.unlockPage(val);
    return NEXT;
  }
  phys.getPage(val); // the migration's own reference
  if (flg & E_DIRTY) phys.setDirty(val);
  const write = (flg & E_WRITE) !== 0;
  installMigrationEntry(mm, pte, idx, val, write);
  args.src[i] = migratePfn(val) + MIGRATE_PFN_MIGRATE + (write ? MIGRATE_PFN_WRITE : 0);
  args.cpages++;
  return NEXT;
}

/** Replace a present or device-private entry with a migration entry; the mapping's reference goes (rmap and rss stay). */
function installMigrationEntry(mm: Mm, node: PtNode, idx: number, pfn: number, write: boolean): void {
  const phys = mm.machine.phys;
  const old = node.flg[idx]!;
  node.flg[idx] = K_MIGRATION | (write ? E_WRITE : 0) | (old & (E_DIRTY | E_YOUNG | E_SOFT_DIRTY | E_UFFD_WP));
  phys.frames.mapcount[pfn]!--;
  phys.putPage(pfn);
}

function splitPmdNotify(mm: Mm, pmd: PtNode, idx: number, baseVpn: number): void {
  const r = mm.invalidateStart('CLEAR', baseVpn * PAGE_SIZE, (baseVpn + PMD_NR) * PAGE_SIZE);
  splitHugePmd(mm, pmd, idx, baseVpn);
  mm.invalidateEnd(r);
}

/**
 * split_folio for an anonymous THP: every huge (PMD) mapping of it, in any process, is split
 * into PTEs under a CLEAR invalidation of its 2 MiB range (found through the reverse map, as
 * split_huge_page unmaps and remaps the folio), then the folio is split into small pages, each
 * with a refcount of its own mappings (plus `extra`, references the caller holds, on the
 * head). Returns false, having changed nothing, for a folio that cannot be split: hugetlb,
 * device, locked, pinned, or referenced beyond its mappings and `extra`.
 */
export function splitFolio(machine: Machine, head: number, extra = 0): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const flags = f.flags[head]!;
  if (!(flags & PG_head) || flags & (PG_hugetlb | PG_device | PG_locked | PG_reserved) || !(flags & PG_anon)) return false;
  if (phys.pinned(head) > 0) return false;
  const huge = phys.entireMapcount.get(head) ?? 0;
  let mapped = huge;
  for (let i = 0, n = 1 << f.order(head); i < n; i++) mapped += f.mapcount[head + i]!;
  if (f.refcount[head] !== mapped + extra) return false;
  if (huge > 0) {
    const entries = machine.rmap.entries(head);
    for (let e = 0; e < entries.length; e += 2) {
      const key = entries[e + 1]!;
      if (keyLevel(key) !== 1) continue;
      const mm = machine.mmById(entries[e]!)!;
      const vpn = keyVpn(key);
      const pmd = mm.pt.tableAt(vpn, 1)!;
      splitPmdNotify(mm, pmd, PageTable.index(vpn, 1), vpn);
    }
  }
  return phys.splitFolio(head, extra);
}

// ---- migrate_device_unmap ----

/**
 * migrate_device_unmap: a collected page still mapped elsewhere (other processes, through the
 * reverse map) is unmapped into migration entries there too (try_to_migrate); a page still
 * mapped, or with references beyond its mappings and the migration's (a pin), is restored and
 * dropped from src. Returns the entries still migrating, empties included.
 */
function unmapPages(machine: Machine, src: MigratePfnArray, npages: number, faultPage: number, v417: boolean): number {
  const f = machine.phys.frames;
  let unmapped = 0;
  let restore = 0;
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn < 0) {
      if (has(s, MIGRATE_PFN_MIGRATE)) unmapped++;
      continue;
    }
    if (f.mapcount[pfn]! > 0) tryToMigrate(machine, pfn);
    if (f.mapcount[pfn]! > 0 || !checkPage(machine, pfn, faultPage, v417)) {
      src[i] = without(s, MIGRATE_PFN_MIGRATE);
      restore++;
      continue;
    }
    unmapped++;
  }
  for (let i = 0; i < npages && restore > 0; i++) {
    const s = src[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn < 0 || has(s, MIGRATE_PFN_MIGRATE)) continue;
    removeMigrationPtes(machine, pfn, pfn);
    src[i] = 0;
    if (pfn !== faultPage) machine.phys.unlockPage(pfn);
    machine.phys.putPage(pfn);
    restore--;
  }
  return unmapped;
}

/** try_to_migrate: every present or device-private PTE mapping of pfn becomes a migration entry, each under a CLEAR invalidation. */
function tryToMigrate(machine: Machine, pfn: number): void {
  const entries = machine.rmap.entries(pfn);
  for (let e = 0; e < entries.length; e += 2) {
    const key = entries[e + 1]!;
    if (keyLevel(key) !== 0) continue;
    const mm = machine.mmById(entries[e]!);
    if (!mm) continue;
    const vpn = keyVpn(key);
    mm.pt.lookup(vpn, slot);
    if (slot.level !== 0) continue;
    const node = slot.node;
    const idx = slot.idx;
    const kind = node.flg[idx]! & KIND_MASK;
    if ((kind !== K_PRESENT && kind !== K_DEVICE_PRIVATE) || node.val[idx] !== pfn) continue;
    const r = mm.invalidateStart('CLEAR', vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE);
    if (node.flg[idx]! & E_DIRTY) machine.phys.setDirty(pfn);
    installMigrationEntry(mm, node, idx, pfn, (node.flg[idx]! & E_WRITE) !== 0);
    mm.invalidateEnd(r);
  }
}

/**
 * migrate_vma_check_page: false if the page has references nobody can account for (a pin).
 * Expected: the migration's, the fault's (for fault_page), one more for a ZONE_DEVICE page
 * (as the kernel's check allows), the page cache's for a file page. 4.17 let device-private
 * pages always pass.
 */
function checkPage(machine: Machine, pfn: number, faultPage: number, v417: boolean): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const pgmap = phys.pagemapOf(pfn);
  if (v417 && pgmap?.type === 'private') return true;
  if (f.flags[pfn]! & (PG_head | PG_tail)) return false;
  const extra = 1 + (pfn === faultPage ? 1 : 0) + (pgmap ? 1 : 0) + (f.mapping[pfn] !== 0 ? 1 : 0) + faultRef417(machine, pfn);
  return f.refcount[pfn]! - extra <= f.mapcount[pfn]!;
}

/**
 * remove_migration_ptes: every migration entry for `old` becomes a mapping of `page` (old
 * itself when restoring): a device-private entry for device-private memory, else a present
 * PTE; writable only if the migration entry was and the VMA allows it.
 */
function removeMigrationPtes(machine: Machine, old: number, page: number): void {
  const phys = machine.phys;
  const f = phys.frames;
  const devicePrivate = phys.isDevicePrivate(page);
  // One entry (the common case) is read from the frame itself, with no array built.
  const list = machine.rmap.count(old) === 1 ? null : machine.rmap.entries(old);
  const n = list ? list.length / 2 : machine.rmap.count(old);
  for (let e = 0; e < n; e++) {
    const mmId = list ? list[2 * e]! : f.rmapMm[old]!;
    const key = list ? list[2 * e + 1]! : f.rmapKey[old]!;
    if (keyLevel(key) !== 0) continue;
    const mm = machine.mmById(mmId);
    if (!mm) continue;
    const vpn = keyVpn(key);
    mm.pt.lookup(vpn, slot);
    const node = slot.node;
    const idx = slot.idx;
    const flg = node.flg[idx]!;
    if (slot.level !== 0 || (flg & KIND_MASK) !== K_MIGRATION || node.val[idx] !== old) continue;
    const vma = mm.vmas.lookup(vpn * PAGE_SIZE);
    const write = (flg & E_WRITE) !== 0 && vma !== undefined && (vma.flags & VM_WRITE) !== 0;
    const keep = flg & (E_SOFT_DIRTY | E_UFFD_WP);
    const entry = devicePrivate
      ? K_DEVICE_PRIVATE | (write ? E_WRITE : 0) | keep
      : K_PRESENT | E_YOUNG | (write ? E_WRITE | E_DIRTY : flg & E_DIRTY) | keep;
    PageTable.set(node, idx, entry, page);
    phys.getPage(page);
    if (page === old) {
      f.mapcount[page]!++;
    } else {
      machine.rmap.remove(old, mm.id, key);
      // addMapping counts rss again: take back the migration entry's count first.
      mm.rss[mmCounter(mm, old)]!--;
      addMapping(mm, page, vpn, 0);
    }
  }
}

// ---- the state of a migration between setup and finalize ----

const NONE = -1; // src entry with nothing collected
const EMPTY = -2; // src entry collected as an empty (MIGRATE, no page)

interface Flight {
  mm: Mm;
  /** What setup left in src: the pfn, NONE or EMPTY; pages and finalize check the driver did not change it. */
  collected: Float64Array;
  v417: boolean;
  /** dst's pfns as migrate_vma_pages used them (finalize checks the driver left them), or null before it. */
  paged: Float64Array | null;
}
const flights = new WeakMap<MigrateVma, Flight>();

// ---- migrate_vma_setup ----

/** migrate_vma_setup: validate, collect, lock and unmap. Returns normally even when nothing was collected. */
export function migrateVmaSetup(args: MigrateVma): void {
  setup(args, false);
}

/** @internal The 4.17 collection rules, for migrate.ts's migrateVma417. */
export function migrateVmaSetup417(args: MigrateVma): void {
  setup(args, true);
}

function validateSetup(args: MigrateVma): Mm {
  if (!args || typeof args !== 'object') fail('EINVAL', 'no migrate_vma');
  const { vma, start, end, src, dst, flags } = args;
  if (!vma) fail('EINVAL', 'no vma');
  const mm = vma.mm;
  if (!mm) fail('EINVAL', 'vma is not mapped in any mm');
  mm.assertLive();
  if (flights.has(args)) fail('EINVAL', 'this migrate_vma is already being migrated (setup again before finalize)');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start % PAGE_SIZE || end % PAGE_SIZE) fail('EINVAL', 'start and end must be page aligned');
  if (start >= end) fail('EINVAL', 'empty range');
  if (mm.vmas.lookup(vma.start) !== vma) fail('EINVAL', 'vma is no longer mapped');
  if (vma.isHugetlb() || vma.flags & VM_SPECIAL) fail('EINVAL', `cannot migrate a hugetlb or special vma ${vma}`);
  if (start < vma.start || end > vma.end) fail('EINVAL', `range [0x${start.toString(16)}, 0x${end.toString(16)}) is outside ${vma}`);
  const npages = (end - start) / PAGE_SIZE;
  if (!isPfnArray(src) || !isPfnArray(dst)) fail('EINVAL', 'src and dst arrays are required');
  if (src === dst) fail('EINVAL', 'src and dst must be different arrays');
  if (src.length !== npages || dst.length !== npages) fail('EINVAL', `src and dst must hold exactly ${npages} entries (${src.length}, ${dst.length} given)`);
  if (!Number.isInteger(flags) || flags & ~7) fail('EINVAL', 'unknown select flags');
  const fp = args.faultPage;
  if (fp !== -1) {
    if (!Number.isSafeInteger(fp) || !mm.machine.phys.isDevicePrivate(fp)) fail('EINVAL', 'fault_page is not a device-private page');
    if (!mm.machine.phys.isLocked(fp)) fail('EINVAL', 'fault_page is not locked');
  }
  return mm;
}

function setup(args: MigrateVma, v417: boolean): void {
  const mm = validateSetup(args);
  const npages = (args.end - args.start) / PAGE_SIZE;
  args.src.fill(0, 0, npages);
  args.dst.fill(0, 0, npages);
  args.npages = npages;
  args.cpages = 0;
  const range = mm.invalidateStart('MIGRATE', args.start, args.end, args.pgmapOwner);
  try {
    collect(mm, args, v417);
  } finally {
    mm.invalidateEnd(range);
  }
  if (args.cpages > 0) args.cpages = unmapPages(mm.machine, args.src, npages, args.faultPage, v417);
  const collected = new Float64Array(npages);
  for (let i = 0; i < npages; i++) {
    const s = args.src[i]!;
    collected[i] = s === 0 ? NONE : has(s, MIGRATE_PFN_VALID) ? migratePfnToPage(s) : EMPTY;
  }
  flights.set(args, { mm, collected, v417, paged: null });
}

// ---- migrate_vma_pages ----

function flightOf(args: MigrateVma, what: string): Flight {
  const fl = args && typeof args === 'object' ? flights.get(args) : undefined;
  if (!fl) fail('EINVAL', `${what} without a migrate_vma_setup in progress for these args`);
  const n = args.npages;
  if (!isPfnArray(args.src) || !isPfnArray(args.dst) || args.src.length !== n || args.dst.length !== n || n !== fl.collected.length) {
    fail('EINVAL', `src and dst must still hold exactly ${fl.collected.length} entries`);
  }
  for (let i = 0; i < n; i++) {
    const s = args.src[i]!;
    const c = fl.collected[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn !== (c >= 0 ? c : -1) || (c === NONE && has(s, MIGRATE_PFN_MIGRATE))) fail('EINVAL', `src[${i}] was changed by the driver`);
  }
  return fl;
}

/** migrate_vma_pages: move struct-page state to the destinations; populate empty entries. */
export function migrateVmaPages(args: MigrateVma): void {
  const fl = flightOf(args, 'migrate_vma_pages');
  if (fl.paged) fail('EINVAL', 'migrate_vma_pages called twice');
  const { mm } = fl;
  const machine = mm.machine;
  const { src, dst, npages } = args;
  checkDst(machine, src, dst, npages);
  const used = new Float64Array(npages);
  for (let i = 0; i < npages; i++) used[i] = migratePfnToPage(dst[i]!);
  fl.paged = used;
  let range: ReturnType<Mm['invalidateStart']> = null;
  let notified = false;
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    const d = migratePfnToPage(dst[i]!);
    if (d < 0) {
      src[i] = without(s, MIGRATE_PFN_MIGRATE);
      continue;
    }
    const old = migratePfnToPage(s);
    if (old < 0) {
      if (!has(s, MIGRATE_PFN_MIGRATE)) continue;
      // migrate_vma_insert_page: anonymous VMAs only, and only while the entry is still empty.
      const addr = args.start + i * PAGE_SIZE;
      if (!notified) {
        notified = true;
        range = mm.invalidateStart('MIGRATE', addr, args.end, args.pgmapOwner);
      }
      if (!insertPage(mm, args.vma, addr, d)) src[i] = without(s, MIGRATE_PFN_MIGRATE);
      continue;
    }
    if (!migrateFolio(machine, old, d, old === args.faultPage ? 1 : 0, fl.v417)) src[i] = without(s, MIGRATE_PFN_MIGRATE);
  }
  mm.invalidateEnd(range);
}

/**
 * The driver's destination pages: each must be an allocated (referenced) small page, given
 * once, and not one of the pages being migrated. EINVAL before anything moves otherwise (the
 * kernel would corrupt memory).
 */
function checkDst(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  const phys = machine.phys;
  const f = phys.frames;
  let bad = '';
  let marked = 0;
  // A scratch page flag marks the pages seen, so the check allocates nothing.
  for (; marked < npages; marked++) {
    const d = migratePfnToPage(dst[marked]!);
    if (d < 0) continue;
    if (!Number.isSafeInteger(d) || d >= f.capacity) bad = `destination pfn ${d} does not exist`;
    else if (f.flags[d]! & PG_scratch) bad = `destination page ${d} given twice`;
    else if (f.refcount[d]! <= 0 || f.flags[d]! & (PG_buddy | PG_tail | PG_reserved)) bad = `destination page ${d} is not allocated`;
    else if (f.flags[d]! & PG_head) bad = `destination page ${d} is a compound page`;
    else if (d < phys.ramFrames ? false : !phys.pagemapOf(d)) bad = `destination pfn ${d} is not memory`;
    if (bad) break;
    f.flags[d]! |= PG_scratch;
  }
  if (!bad) {
    for (let i = 0; i < npages; i++) {
      const s = migratePfnToPage(src[i]!);
      if (s >= 0 && f.flags[s]! & PG_scratch) {
        bad = `page ${s} is both a source and a destination`;
        break;
      }
    }
  }
  for (let j = 0; j < marked; j++) {
    const d = migratePfnToPage(dst[j]!);
    if (d >= 0 && d < f.capacity) f.flags[d]! &= ~PG_scratch;
  }
  if (bad) fail('EINVAL', bad);
}

/**
 * The struct-page half of migrate_folio (folio_migrate_mapping + folio_migrate_flags): the
 * new page takes over the old one's identity (anon state, dirty, the page-cache slot of a file
 * page). False if it may not: a file page to device memory (4.17 allowed coherent memory), or
 * a page with references beyond the migration's (and the fault's, the page cache's).
 */
function migrateFolio(machine: Machine, old: number, d: number, extraCount: number, v417: boolean): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const id = f.mapping[old]!;
  const target = phys.pagemapOf(d);
  if (id !== 0 && target && !(v417 && target.type === 'coherent')) return false;
  const expected = 1 + (id !== 0 ? 1 : 0) + extraCount + faultRef417(machine, old);
  if (f.refcount[old] !== expected) return false;
  const tf = id !== 0 ? machine.fs.files.find((x) => x.id === id) : undefined;
  if (id !== 0 && (!tf || tf.pages.get(f.index[old]!) !== old)) return false;
  const keep = PG_anon | PG_swapbacked | PG_anon_exclusive | PG_dirty;
  f.flags[d] = (f.flags[d]! & ~keep) | (f.flags[old]! & keep);
  if (tf) {
    tf.pages.set(f.index[old]!, d);
    f.mapping[d] = id;
    f.index[d] = f.index[old]!;
    phys.getPage(d); // the page cache's reference moves to the new page
    phys.putPage(old);
  }
  return true;
}

function insertPage(mm: Mm, vma: Vma, addr: number, page: number): boolean {
  if (!vma.isAnonymous() || mm.dead) return false;
  const phys = mm.machine.phys;
  const vpn = addr / PAGE_SIZE;
  mm.pt.lookup(vpn, slot);
  if (slot.level !== 0 && (slot.node.flg[slot.idx]! & KIND_MASK) !== K_NONE) return false; // a huge entry
  const pte = mm.pt.ensureTable(vpn, 0);
  if (!pte) return false;
  const idx = vpn & 511;
  const flg = pte.flg[idx]!;
  const zero = (flg & KIND_MASK) === K_PRESENT && phys.isZeroPfn(pte.val[idx]!);
  if ((flg & KIND_MASK) !== K_NONE && !zero) return false;
  const write = (vma.flags & VM_WRITE) !== 0;
  phys.setAnon(page);
  const kind = phys.isDevicePrivate(page) ? K_DEVICE_PRIVATE : K_PRESENT | E_YOUNG | (write ? E_DIRTY : 0);
  PageTable.set(pte, idx, kind | (write ? E_WRITE : 0), page);
  phys.getPage(page);
  addMapping(mm, page, vpn, 0);
  vma.anonVma = true;
  return true;
}

// ---- migrate_vma_finalize ----

/**
 * migrate_vma_finalize: remap to the new pages (or back to the old), unlock, drop references.
 * Called without migrate_vma_pages, nothing moves: every page is restored and every
 * destination released.
 */
export function migrateVmaFinalize(args: MigrateVma): void {
  const fl = flightOf(args, 'migrate_vma_finalize');
  const machine = fl.mm.machine;
  const { src, dst, npages } = args;
  if (fl.paged) {
    for (let i = 0; i < npages; i++) if (migratePfnToPage(dst[i]!) !== fl.paged[i]) fail('EINVAL', `dst[${i}] was changed after migrate_vma_pages`);
  } else {
    checkDst(machine, src, dst, npages); // released below: they must be pages
    for (let i = 0; i < npages; i++) src[i] = without(src[i]!, MIGRATE_PFN_MIGRATE);
  }
  flights.delete(args);
  finalizePages(machine, src, dst, npages, args.faultPage, fl.mm.id, args.start);
}

/** The remap, unlock and release of migrate_vma_finalize and migrate_device_finalize. */
function finalizePages(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number, faultPage: number, mmId: number, start: number): void {
  const phys = machine.phys;
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    const old = migratePfnToPage(s);
    const d = migratePfnToPage(dst[i]!);
    if (old < 0) {
      if (d >= 0) {
        // An inserted page keeps its mapping's reference; the driver's goes.
        phys.unlockPage(d);
        phys.putPage(d);
      }
      continue;
    }
    const moved = has(s, MIGRATE_PFN_MIGRATE) && d >= 0;
    removeMigrationPtes(machine, old, moved ? d : old);
    if (moved && machine.events.on.migrate) {
      machine.events.emit({ type: 'migrate', mmId, addr: start < 0 ? -1 : start + i * PAGE_SIZE, from: old, to: d, toDevice: phys.pagemapOf(d) !== undefined });
    }
    if (old !== faultPage) phys.unlockPage(old);
    phys.putPage(old);
    if (d >= 0) {
      phys.unlockPage(d);
      phys.putPage(d);
    }
  }
}

// ---- device pages by pfn (6.1+) ----

function checkDevicePfn(machine: Machine, pfn: number): void {
  if (!Number.isSafeInteger(pfn) || !machine.phys.pagemapOf(pfn)) fail('EINVAL', `pfn ${pfn} is not device memory`);
}

/** migrate_device_pfn_lock: an in-use (referenced), small or head device page that can be locked now, or 0. */
function pfnLock(machine: Machine, pfn: number): number {
  const phys = machine.phys;
  const f = phys.frames;
  if (f.refcount[pfn] === 0 || f.flags[pfn]! & PG_tail || !phys.trylockPage(pfn)) return 0;
  phys.getPage(pfn);
  return migratePfn(pfn) + MIGRATE_PFN_MIGRATE;
}

/**
 * migrate_device_range: collect the in-use device pages [startPfn, startPfn + npages) for
 * migration, unmapping them from every process (used to evict a device's memory). src[i]
 * gets migrate_pfn | MIGRATE for each page collected, 0 for free, locked or pinned pages.
 * The driver then fills dst and calls migrateDevicePages and migrateDeviceFinalize.
 */
export function migrateDeviceRange(machine: Machine, src: MigratePfnArray, startPfn: number, npages: number): void {
  if (!Number.isSafeInteger(npages) || npages <= 0 || !isPfnArray(src) || src.length < npages) fail('EINVAL', 'bad page count or src array');
  for (let i = 0; i < npages; i++) checkDevicePfn(machine, startPfn + i);
  for (let i = 0; i < npages; i++) src[i] = pfnLock(machine, startPfn + i);
  unmapPages(machine, src, npages, -1, false);
}

/** migrate_device_pfns: as migrateDeviceRange for the (raw, not encoded) device pfns src holds on entry. */
export function migrateDevicePfns(machine: Machine, src: MigratePfnArray, npages: number): void {
  if (!Number.isSafeInteger(npages) || npages <= 0 || !isPfnArray(src) || src.length < npages) fail('EINVAL', 'bad page count or src array');
  for (let i = 0; i < npages; i++) checkDevicePfn(machine, src[i]!);
  for (let i = 0; i < npages; i++) src[i] = pfnLock(machine, src[i]!);
  unmapPages(machine, src, npages, -1, false);
}

/** migrate_device_pages: move struct-page state where the driver gave a destination. */
export function migrateDevicePages(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  if (!isPfnArray(src) || !isPfnArray(dst) || src.length < npages || dst.length < npages) fail('EINVAL', 'bad src or dst array');
  checkDst(machine, src, dst, npages);
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    if (!has(s, MIGRATE_PFN_MIGRATE)) continue;
    const d = migratePfnToPage(dst[i]!);
    const old = migratePfnToPage(s);
    if (d < 0 || old < 0 || !migrateFolio(machine, old, d, 0, false)) src[i] = without(s, MIGRATE_PFN_MIGRATE);
  }
}

/** migrate_device_finalize: remap every migration entry, unlock, release. */
export function migrateDeviceFinalize(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  if (!isPfnArray(src) || !isPfnArray(dst) || src.length < npages || dst.length < npages) fail('EINVAL', 'bad src or dst array');
  finalizePages(machine, src, dst, npages, -1, -1, -1);
}

/**
 * migrate_device_coherent_folio: move one device-coherent page to a new system page wherever
 * it is mapped (get_user_pages with FOLL_LONGTERM does this before pinning). Returns false
 * (EBUSY in the kernel) if it could not: locked, pinned, or no system page free.
 */
export function migrateDeviceCoherentFolio(machine: Machine, pfn: number): boolean {
  const phys = machine.phys;
  if (phys.pagemapOf(pfn)?.type !== 'coherent') fail('EINVAL', `pfn ${pfn} is not device-coherent memory`);
  const src = [pfnLock(machine, pfn)];
  if (src[0] === 0) return false;
  unmapPages(machine, src, 1, -1, false);
  if (!has(src[0]!, MIGRATE_PFN_MIGRATE)) return false;
  const dst = [0];
  const page = phys.tryAllocPages(0);
  if (page >= 0) {
    phys.trylockPage(page);
    dst[0] = migratePfn(page);
  }
  migrateDevicePages(machine, src, dst, 1);
  const moved = has(src[0]!, MIGRATE_PFN_MIGRATE);
  if (moved) phys.copyPage(page, pfn);
  migrateDeviceFinalize(machine, src, dst, 1);
  return moved;
}
