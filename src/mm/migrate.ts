// migrate_vma (mm/migrate_device.c): moving anonymous pages of a range between system and
// device memory in three steps around the driver's copy. setup collects and locks the pages
// and replaces their mappings with migration entries (everywhere, through the reverse map);
// the driver allocates and fills destination pages; pages moves the struct-page state (and
// inserts pages into empty entries); finalize remaps every migration entry to the new page,
// or back to the old one where the driver declined or the move failed.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import type { Mm } from './mm.js';
import type { Vma } from './vma.js';
import { VM_SPECIAL, VM_WRITE } from './vma.js';
import {
  E_DIRTY, E_SPECIAL, E_WRITE, E_YOUNG, K_DEVICE_PRIVATE, K_MIGRATION, K_NONE, K_PRESENT, KIND_MASK, LEVEL_PAGES, PageTable,
  type PtSlot,
} from './pagetable.js';
import { addMapping, MM_ANONPAGES, splitHugePmd } from './memory.js';
import { keyLevel, keyVpn, rmapKey } from './rmap.js';
import { PG_anon, PG_anon_exclusive, PG_head, PG_scratch, PG_swapbacked, PG_tail } from './page.js';
import type { Machine } from './machine.js';

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
/** A pgmapOwner that selects device-private pages of any owner (4.17 had no owners). */
export const MIGRATE_ANY_OWNER: unique symbol = Symbol('any pgmap owner');

// Encoded values reach 2^38: test and set bits arithmetically, never with 32-bit operators.
const has = (v: number, bit: number): boolean => v % (2 * bit) >= bit;

/** migrate_pfn(pfn): the pfn, shifted, with VALID. */
export function migratePfn(pfn: number): number {
  return pfn * 2 ** MIGRATE_PFN_SHIFT + MIGRATE_PFN_VALID;
}
/** migrate_pfn_to_page: the pfn of an entry, or -1 without VALID. */
export function migratePfnToPage(v: number): number {
  return has(v, MIGRATE_PFN_VALID) ? Math.floor(v / 2 ** MIGRATE_PFN_SHIFT) : -1;
}
export function migratePfnHas(v: number, bit: number): boolean {
  return has(v, bit);
}

/** struct migrate_vma */
export interface MigrateVma {
  vma: Vma;
  start: number;
  end: number;
  src: Float64Array;
  dst: Float64Array;
  /** Out: pages in the range, and pages collected. */
  npages: number;
  cpages: number;
  pgmapOwner: unknown;
  flags: number;
  /** The device page a migrate_to_ram is faulting on (already locked and referenced), or -1. */
  faultPage: number;
}

/** A MigrateVma for [start, end) of vma, with src/dst arrays of the right length. */
export function newMigrateVma(vma: Vma, start: number, end: number, flags: number, pgmapOwner: unknown, faultPage = -1): MigrateVma {
  const n = Math.max(0, Math.floor((end - start) / PAGE_SIZE));
  return { vma, start, end, src: new Float64Array(n), dst: new Float64Array(n), npages: 0, cpages: 0, pgmapOwner, flags, faultPage };
}

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

function mmOf(args: MigrateVma): Mm {
  const mm = args.vma.mm;
  if (!mm) fail('EINVAL', 'vma is not mapped in any mm');
  return mm;
}

/** migrate_vma_setup: validate, collect, lock and unmap. */
export function migrateVmaSetup(args: MigrateVma): void {
  const { vma, start, end, src, dst, flags } = args;
  if (!vma) fail('EINVAL', 'no vma');
  const mm = mmOf(args);
  mm.assertLive();
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start % PAGE_SIZE || end % PAGE_SIZE) fail('EINVAL', 'start and end must be page aligned');
  if (start >= end) fail('EINVAL', 'empty range');
  if (mm.vmas.lookup(vma.start) !== vma) fail('EINVAL', 'vma is no longer mapped');
  if (start < vma.start || end > vma.end) fail('EINVAL', 'range outside the vma');
  if (vma.isHugetlb() || vma.flags & VM_SPECIAL) fail('EINVAL', `cannot migrate a hugetlb or special vma ${vma}`);
  const npages = (end - start) / PAGE_SIZE;
  if (!src || !dst || src.length < npages || dst.length < npages) fail('EINVAL', 'src and dst must hold one entry per page');
  if (!Number.isInteger(flags) || flags & ~7) fail('EINVAL', 'unknown select flags');
  const machine = mm.machine;
  if (args.faultPage >= 0 && !machine.phys.isDevicePrivate(args.faultPage)) fail('EINVAL', 'fault_page is not a device-private page');

  src.fill(0, 0, npages);
  dst.fill(0, 0, npages);
  args.npages = npages;
  args.cpages = 0;
  const range = mm.invalidateStart('MIGRATE', start, end, args.pgmapOwner);
  splitHugeLeaves(mm, start, end);
  const phys = machine.phys;
  const f = phys.frames;
  splitFolios(mm, start, end);
  for (let i = 0; i < npages; i++) {
    const addr = start + i * PAGE_SIZE;
    const vpn = addr / PAGE_SIZE;
    mm.pt.lookup(vpn, slot);
    const { node, idx, level } = slot;
    const flg = level === 0 ? node.flg[idx]! : K_NONE;
    const kind = flg & KIND_MASK;
    const val = node.val[idx]!;
    if (kind === K_NONE || (kind === K_PRESENT && phys.isZeroPfn(val))) {
      // An empty (or zero-page) address: the driver may populate it directly.
      if (vma.isAnonymous() && flags & MIGRATE_VMA_SELECT_SYSTEM) {
        src[i] = MIGRATE_PFN_MIGRATE;
        args.cpages++;
      }
      continue;
    }
    let selected = false;
    if (kind === K_PRESENT && !(flg & E_SPECIAL)) {
      const pgmap = phys.pagemapOf(val);
      if (!pgmap) selected = (flags & MIGRATE_VMA_SELECT_SYSTEM) !== 0;
      else selected = pgmap.type === 'coherent' && (flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) !== 0 && pgmap.owner === args.pgmapOwner;
    } else if (kind === K_DEVICE_PRIVATE) {
      const pgmap = phys.pagemapOf(val);
      selected = (flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) !== 0 && (pgmap?.owner === args.pgmapOwner || args.pgmapOwner === MIGRATE_ANY_OWNER);
    }
    // Only small, anonymous pages move (a PTE-mapped piece of a larger folio stays).
    if (!selected || f.compoundHead(val) !== val || f.order(val) !== 0 || !phys.isAnon(val)) continue;
    if (val !== args.faultPage && !phys.trylockPage(val)) continue;
    phys.getPage(val); // the migration's own reference
    const write = (flg & E_WRITE) !== 0;
    src[i] = migratePfn(val) + MIGRATE_PFN_MIGRATE + (write ? MIGRATE_PFN_WRITE : 0);
    args.cpages++;
    installMigrationEntry(mm, node, idx, val, write);
  }
  mm.invalidateEnd(range);
  args.cpages -= unmapOthers(machine, args.src, args.npages, args.faultPage);
}

/** Split any huge PMD leaf overlapping [start, end) (migrate_vma_collect_pmd). */
function splitHugeLeaves(mm: Mm, start: number, end: number): void {
  const leaves: Array<[PtSlot['node'], number, number]> = [];
  mm.pt.forEachTable(start / PAGE_SIZE, end / PAGE_SIZE, (node, first, last, base) => {
    if (node.level !== 1) return;
    for (let i = first; i <= last; i++) if ((node.flg[i]! & KIND_MASK) !== K_NONE && (node.flg[i]! & KIND_MASK) !== 1) leaves.push([node, i, base + i * LEVEL_PAGES[1]!]);
  });
  for (const [node, i, vpn] of leaves) splitHugePmd(mm, node, i, vpn);
}

/** Split the THPs mapped by PTEs in [start, end) into small pages where they allow it (migrate_vma_split_folio). */
function splitFolios(mm: Mm, start: number, end: number): void {
  const phys = mm.machine.phys;
  const f = phys.frames;
  const heads = new Set<number>();
  for (const { node, first, last } of mm.pt.tables(start / PAGE_SIZE, end / PAGE_SIZE)) {
    if (node.level !== 0) continue;
    for (let i = first; i <= last; i++) {
      if ((node.flg[i]! & KIND_MASK) !== K_PRESENT) continue;
      const pfn = node.val[i]!;
      if (f.flags[pfn]! & PG_tail || (f.flags[pfn]! & PG_head && !phys.isZeroPfn(pfn))) heads.add(f.compoundHead(pfn));
    }
  }
  for (const head of heads) phys.splitFolio(head);
}

/** Replace a present or device-private entry with a migration entry; the mapping's reference goes. */
function installMigrationEntry(mm: Mm, node: PtSlot['node'], idx: number, pfn: number, write: boolean): void {
  const phys = mm.machine.phys;
  const old = node.flg[idx]!;
  node.flg[idx] = K_MIGRATION | (write ? E_WRITE : 0) | (old & E_DIRTY);
  phys.frames.mapcount[pfn]!--;
  phys.putPage(pfn);
}

/**
 * migrate_vma_unmap: a collected page still mapped by other processes is unmapped there too
 * (try_to_migrate); a page with references beyond its mappings and the migration's (a pin)
 * is restored and not migrated.
 */
function unmapOthers(machine: Machine, src: Float64Array, npages: number, faultPage: number, ownEntry = true): number {
  const phys = machine.phys;
  let dropped = 0;
  for (let i = 0; i < npages; i++) {
    const pfn = migratePfnToPage(src[i]!);
    if (pfn < 0) continue;
    // Only our own migration entry (the common case): nothing else maps it.
    if (!ownEntry || machine.rmap.count(pfn) > 1) for (const [mmId, key] of pairs(machine.rmap.entries(pfn))) {
      const mm = machine.mmById(mmId);
      if (!mm) continue;
      const vpn = keyVpn(key);
      mm.pt.lookup(vpn, slot);
      const kind = slot.node.flg[slot.idx]! & KIND_MASK;
      if (keyLevel(key) !== 0 || (kind !== K_PRESENT && kind !== K_DEVICE_PRIVATE)) continue;
      const r = mm.invalidateStart('CLEAR', vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE);
      installMigrationEntry(mm, slot.node, slot.idx, pfn, (slot.node.flg[slot.idx]! & E_WRITE) !== 0);
      mm.invalidateEnd(r);
    }
    // A device-private page always passes: an extra reference may be a CPU fault waiting on
    // it, which cannot be told from a pin (and device memory is never pinned).
    const expected = 1 + (pfn === faultPage ? 1 : 0);
    if (!phys.isDevicePrivate(pfn) && (phys.frames.refcount[pfn]! > expected || phys.pinned(pfn) > 0)) {
      restore(machine, pfn, pfn);
      if (pfn !== faultPage) phys.unlockPage(pfn);
      phys.putPage(pfn);
      src[i] = 0;
      dropped++;
    }
  }
  return dropped;
}

function* pairs(list: number[]): Generator<[number, number]> {
  for (let i = 0; i < list.length; i += 2) yield [list[i]!, list[i + 1]!];
}

/** remove_migration_ptes: every migration entry for `old` becomes a mapping of `page`. */
function restore(machine: Machine, old: number, page: number): void {
  const phys = machine.phys;
  const devicePrivate = phys.isDevicePrivate(page);
  const f = phys.frames;
  // One entry (the common case) is read from the frame itself, with no array built.
  const list = machine.rmap.count(old) === 1 ? null : machine.rmap.entries(old);
  const n = list ? list.length / 2 : machine.rmap.count(old);
  for (let e = 0; e < n; e++) {
    const mmId = list ? list[2 * e]! : f.rmapMm[old]!;
    const key = list ? list[2 * e + 1]! : f.rmapKey[old]!;
    const mm = machine.mmById(mmId);
    if (!mm) continue;
    const vpn = keyVpn(key);
    mm.pt.lookup(vpn, slot);
    const flg = slot.node.flg[slot.idx]!;
    if ((flg & KIND_MASK) !== K_MIGRATION || slot.node.val[slot.idx] !== old || slot.level !== 0) continue;
    const vma = mm.vmas.lookup(vpn * PAGE_SIZE);
    const write = (flg & E_WRITE) !== 0 && vma !== undefined && (vma.flags & VM_WRITE) !== 0;
    const kind = devicePrivate ? K_DEVICE_PRIVATE : K_PRESENT | E_YOUNG | (write ? E_DIRTY : 0);
    PageTable.set(slot.node, slot.idx, kind | (write ? E_WRITE : 0), page);
    phys.getPage(page);
    if (page === old) {
      phys.frames.mapcount[page]!++;
    } else {
      machine.rmap.remove(old, mm.id, rmapKey(vpn, 0));
      // addMapping counts rss again: take back the migration entry's count first.
      mm.rss[MM_ANONPAGES]!--;
      addMapping(mm, page, vpn, 0);
    }
  }
}

/** migrate_vma_pages: move struct-page state to the destinations; populate empty entries. */
export function migrateVmaPages(args: MigrateVma): void {
  const mm = mmOf(args);
  const machine = mm.machine;
  checkDst(machine, args.dst, args.npages);
  let range: ReturnType<Mm['invalidateStart']> | undefined;
  for (let i = 0; i < args.npages; i++) {
    const s = args.src[i]!;
    if (!has(s, MIGRATE_PFN_MIGRATE)) continue;
    const d = migratePfnToPage(args.dst[i]!);
    if (d < 0) {
      args.src[i] = s - MIGRATE_PFN_MIGRATE;
      continue;
    }
    const old = migratePfnToPage(s);
    if (old < 0) {
      // migrate_vma_insert_page: anonymous VMAs only, and only while the entry is still empty.
      const addr = args.start + i * PAGE_SIZE;
      range ??= mm.invalidateStart('MIGRATE', addr, args.end, args.pgmapOwner);
      if (!insertPage(mm, args.vma, addr, d)) args.src[i] = s - MIGRATE_PFN_MIGRATE;
      continue;
    }
    if (!movePageState(machine, old, d)) args.src[i] = s - MIGRATE_PFN_MIGRATE;
  }
  if (range !== undefined) mm.invalidateEnd(range);
}

/** migrate_folio: the new page takes over the old one's identity; false if it may not (a file page to device-private memory). */
function movePageState(machine: Machine, old: number, d: number): boolean {
  const phys = machine.phys;
  if (phys.frames.mapping[old] !== 0 && phys.isDevicePrivate(d)) return false;
  const keep = PG_anon | PG_swapbacked | PG_anon_exclusive;
  phys.frames.flags[d] = (phys.frames.flags[d]! & ~keep) | (phys.frames.flags[old]! & keep);
  return true;
}

/** The driver handed the same destination page out twice: refuse before anything moves (the kernel would corrupt memory). */
function checkDst(machine: Machine, dst: Float64Array, npages: number): void {
  // A scratch page flag marks pages seen, so the check costs no allocation.
  const f = machine.phys.frames;
  let dup = -1;
  let i = 0;
  for (; i < npages; i++) {
    const d = migratePfnToPage(dst[i]!);
    if (d < 0) continue;
    if (f.flags[d]! & PG_scratch) {
      dup = d;
      break;
    }
    f.flags[d]! |= PG_scratch;
  }
  for (let j = 0; j < i; j++) {
    const d = migratePfnToPage(dst[j]!);
    if (d >= 0) f.flags[d]! &= ~PG_scratch;
  }
  if (dup >= 0) fail('EINVAL', `destination page ${dup} given twice`);
}

function insertPage(mm: Mm, vma: Vma, addr: number, page: number): boolean {
  if (!vma.isAnonymous()) return false;
  const phys = mm.machine.phys;
  const vpn = addr / PAGE_SIZE;
  mm.pt.lookup(vpn, slot);
  if (slot.level !== 0 && (slot.node.flg[slot.idx]! & KIND_MASK) !== K_NONE) return false;
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

/** migrate_vma_finalize: remap to the new pages (or back to the old), unlock, drop references. */
export function migrateVmaFinalize(args: MigrateVma): void {
  const mm = mmOf(args);
  finalizePages(mm.machine, args.src, args.dst, args.npages, args.faultPage, mm.id, args.start);
}

/** The remap, unlock and release of migrate_vma_finalize and migrate_device_finalize. */
function finalizePages(machine: Machine, src: Float64Array, dst: Float64Array, npages: number, faultPage: number, mmId: number, start: number): void {
  const phys = machine.phys;
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    const old = migratePfnToPage(s);
    const d = migratePfnToPage(dst[i]!);
    if (old < 0) {
      if (d >= 0) {
        phys.unlockPage(d);
        phys.putPage(d);
      }
      continue;
    }
    const moved = has(s, MIGRATE_PFN_MIGRATE) && d >= 0;
    restore(machine, old, moved ? d : old);
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

// ---- migrate_device_range: device pages by pfn, whoever maps them (6.1+) ----

/**
 * migrate_device_range: collect the in-use device pages [startPfn, startPfn + npages) for
 * migration, unmapping them from every process (used to evict a device's memory). src[i]
 * gets migrate_pfn | MIGRATE for each page collected, 0 for free, locked or pinned pages.
 */
export function migrateDeviceRange(machine: Machine, src: Float64Array, startPfn: number, npages: number): void {
  if (!Number.isSafeInteger(startPfn) || !Number.isSafeInteger(npages) || npages <= 0 || src.length < npages) fail('EINVAL', 'bad pfn range or src array');
  const phys = machine.phys;
  for (let i = 0; i < npages; i++) {
    const pfn = startPfn + i;
    src[i] = 0;
    if (!phys.pagemapOf(pfn)) fail('EINVAL', `pfn ${pfn} is not device memory`);
  }
  for (let i = 0; i < npages; i++) {
    const pfn = startPfn + i;
    const f = phys.frames;
    if (f.refcount[pfn] === 0 || f.compoundHead(pfn) !== pfn || !phys.trylockPage(pfn)) continue;
    phys.getPage(pfn);
    src[i] = migratePfn(pfn) + MIGRATE_PFN_MIGRATE;
  }
  unmapOthers(machine, src, npages, -1, false);
}

/** migrate_device_pages: move struct-page state where the driver gave a destination. */
export function migrateDevicePages(machine: Machine, src: Float64Array, dst: Float64Array, npages: number): void {
  checkDst(machine, dst, npages);
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    if (!has(s, MIGRATE_PFN_MIGRATE)) continue;
    const d = migratePfnToPage(dst[i]!);
    const old = migratePfnToPage(s);
    if (d < 0 || old < 0 || !movePageState(machine, old, d)) src[i] = s - MIGRATE_PFN_MIGRATE;
  }
}

/** migrate_device_finalize: remap every migration entry, unlock, release. */
export function migrateDeviceFinalize(machine: Machine, src: Float64Array, dst: Float64Array, npages: number): void {
  finalizePages(machine, src, dst, npages, -1, -1, -1);
}

// ---- 4.17: migrate_vma(ops, vma, start, end, src, dst, private) ----

export interface MigrateVmaOps417 {
  /** Allocate destinations for src entries with MIGRATE, copy, set dst = migrate_pfn | LOCKED (or ERROR, or 0). Must not modify src. */
  allocAndCopy(vma: Vma, src: Float64Array, dst: Float64Array, start: number, end: number, priv: unknown): void;
  /** Entries still MIGRATE moved; update the device page table. Must not modify src or dst. */
  finalizeAndMap(vma: Vma, src: Float64Array, dst: Float64Array, start: number, end: number, priv: unknown): void;
}

/**
 * The 4.17 single call, on the mainline machinery: collect system pages and device-private
 * pages of any device, call the driver's two callbacks around the state move, remap. Returns
 * normally whenever the arguments are valid, even if nothing moved; with nothing to migrate
 * the callbacks are not called (4.17 #39). MIGRATE_PFN_ERROR in dst is just "no destination".
 */
export function migrateVma417(ops: MigrateVmaOps417, vma: Vma, start: number, end: number, src: Float64Array, dst: Float64Array, priv: unknown): void {
  if (!ops || typeof ops.allocAndCopy !== 'function' || typeof ops.finalizeAndMap !== 'function') fail('EINVAL', 'ops with allocAndCopy and finalizeAndMap are required');
  if (!src || !dst) fail('EINVAL', 'src and dst are required');
  start -= start % PAGE_SIZE;
  end -= end % PAGE_SIZE;
  const args: MigrateVma = {
    vma, start, end, src, dst, npages: 0, cpages: 0, pgmapOwner: MIGRATE_ANY_OWNER,
    flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_PRIVATE, faultPage: -1,
  };
  migrateVmaSetup(args);
  if (args.cpages === 0) return;
  const phys = mmOf(args).machine.phys;
  for (let i = 0; i < args.npages; i++) {
    const pfn = migratePfnToPage(src[i]!);
    if (pfn < 0) continue;
    src[i] = src[i]! + MIGRATE_PFN_LOCKED + (phys.isDevicePrivate(pfn) ? MIGRATE_PFN_DEVICE : 0);
  }
  ops.allocAndCopy(vma, src, dst, start, end, priv);
  migrateVmaPages(args);
  ops.finalizeAndMap(vma, src, dst, start, end, priv);
  migrateVmaFinalize(args);
}
