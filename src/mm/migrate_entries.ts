// Migration entries, the page-table side of device migration (mm/migrate_device.c's collection
// and unmap, mm/migrate.c's remove_migration_ptes): collecting a range's pages (splitting huge
// pages) and replacing their mappings with migration entries, in the collecting process and,
// through the reverse map, in every other; checking no one else holds a page; and remapping
// each migration entry to the new page, or back to the old one.

import { PAGE_SIZE, PMD_NR, PMD_SIZE } from './constants.js';
import type { Machine } from './machine.js';
import type { Mm } from './mm.js';
import { VM_WRITE } from './vma.js';
import {
  E_DIRTY, E_WRITE, E_YOUNG, entryKeepBits, entryKind, K_DEVICE_PRIVATE, K_NONE, K_PRESENT, mkDevicePrivateEntry, mkMigrationEntry,
  PageTable, pteDirty, isMigrationEntry, pteSpecial, pteWrite, ptFlags, ptKind, type PtNode, type PtSlot, ptVal, setPtFlags,
} from './pagetable.js';
import { addMapping, mmCounter, splitHugePmd } from './memory.js';
import { keyLevel, keyVpn } from './rmap.js';
import { PG_anon, PG_anon_exclusive, PG_device, PG_head, PG_hugetlb, PG_locked, PG_reserved, PG_tail } from './page.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas, migratePfnToPage, migratePfnWithout, type MigratePfnArray,
  type MigrateVma,
} from './migrate_pfn.js';
import type { MigratePolicy } from './migrate_policy.js';

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

/** @internal migrate_vma_collect: walk [start, end) one PMD range at a time. */
export function collect(mm: Mm, args: MigrateVma, policy: MigratePolicy): void {
  const holes = policy.collectsHoles(args.vma);
  for (let cs = args.start; cs < args.end; ) {
    const ce = Math.min(args.end, (Math.floor(cs / PMD_SIZE) + 1) * PMD_SIZE);
    collectPmd(mm, args, cs, ce, holes, policy);
    cs = ce;
  }
}

function collectHole(args: MigrateVma, i0: number, n: number, holes: boolean): void {
  if (!holes) return;
  for (let i = i0; i < i0 + n; i++) args.src[i] = MIGRATE_PFN_MIGRATE;
  args.cpages += n;
}

/** migrate_vma_collect_pmd for [cs, ce), inside one PMD range. */
function collectPmd(mm: Mm, args: MigrateVma, cs: number, ce: number, holes: boolean, policy: MigratePolicy): void {
  const machine = mm.machine;
  const phys = machine.phys;
  const i0 = (cs - args.start) / PAGE_SIZE;
  const n = (ce - cs) / PAGE_SIZE;
  const vpn = cs / PAGE_SIZE;
  mm.pt.lookup(vpn, slot);
  if (slot.level > 0) {
    const kind = ptKind(slot.node, slot.idx);
    if (kind === K_NONE) return collectHole(args, i0, n, holes);
    // A bad entry, or a non-present huge entry (swap, migration, device): the chunk is skipped.
    if (slot.level !== 1 || kind !== K_PRESENT) return;
    const pmd = slot.node;
    const pidx = slot.idx;
    const val = ptVal(pmd, pidx);
    const base = vpn - (vpn % PMD_NR);
    if (phys.isZeroPfn(val)) splitPmdNotify(mm, pmd, pidx, base);
    else if (val === args.faultPage || !splitFolio(machine, val)) return; // the THP stays: chunk skipped
    mm.pt.lookup(vpn, slot);
    if ((slot.level as number) !== 0) return;
  }
  const pte = slot.node;
  for (let j = 0; j < n; j++) {
    const r = collectPte(mm, args, pte, (vpn + j) & 511, i0 + j, holes, policy);
    if (r === RETRY) j--;
    else if (r === SKIP_REST) return;
  }
}

const NEXT = 0;
const RETRY = 1;
const SKIP_REST = 2;

/** One PTE of migrate_vma_collect_pmd. */
function collectPte(mm: Mm, args: MigrateVma, pte: PtNode, idx: number, i: number, holes: boolean, policy: MigratePolicy): number {
  const machine = mm.machine;
  const phys = machine.phys;
  const f = phys.frames;
  const flg = ptFlags(pte, idx);
  const kind = entryKind(flg);
  const val = ptVal(pte, idx);
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
    if (pteSpecial(flg)) return NEXT; // no struct page (vm_normal_page is NULL)
    const pgmap = phys.pagemapOf(val);
    if (!pgmap) {
      if (!(select & MIGRATE_VMA_SELECT_SYSTEM)) return NEXT;
    } else if (pgmap.type !== 'coherent' || !(select & MIGRATE_VMA_SELECT_DEVICE_COHERENT) || !policy.ownerMatches(pgmap.owner, args.pgmapOwner)) {
      return NEXT;
    }
    if (f.flags[val]! & (PG_head | PG_tail)) {
      // A PTE-mapped piece of a large folio: split the folio (migrate_vma_split_folio) and look
      // again; if it cannot be split, the rest of this PMD range is skipped.
      if (!policy.splitsLargeFolios) return NEXT;
      return splitFolio(machine, f.compoundHead(val)) ? RETRY : SKIP_REST;
    }
  } else if (kind === K_DEVICE_PRIVATE) {
    const pgmap = phys.pagemapOf(val);
    if (!pgmap || !(select & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || !policy.ownerMatches(pgmap.owner, args.pgmapOwner)) return NEXT;
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
  if (pteDirty(flg)) phys.setDirty(val);
  const write = pteWrite(flg);
  installMigrationEntry(mm, pte, idx, val, write);
  args.src[i] = migratePfn(val) + MIGRATE_PFN_MIGRATE + (write ? MIGRATE_PFN_WRITE : 0);
  args.cpages++;
  return NEXT;
}

/** Replace a present or device-private entry with a migration entry; the mapping's reference goes (rmap and rss stay). */
function installMigrationEntry(mm: Mm, node: PtNode, idx: number, pfn: number, write: boolean): void {
  const phys = mm.machine.phys;
  setPtFlags(node, idx, mkMigrationEntry(ptFlags(node, idx), write));
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
export function unmapPages(machine: Machine, src: MigratePfnArray, npages: number, faultPage: number, policy: MigratePolicy): number {
  const f = machine.phys.frames;
  let unmapped = 0;
  let restore = 0;
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn < 0) {
      if (migratePfnHas(s, MIGRATE_PFN_MIGRATE)) unmapped++;
      continue;
    }
    if (f.mapcount[pfn]! > 0) tryToMigrate(machine, pfn);
    if (f.mapcount[pfn]! > 0 || !checkPage(machine, pfn, faultPage, policy)) {
      src[i] = migratePfnWithout(s, MIGRATE_PFN_MIGRATE);
      restore++;
      continue;
    }
    unmapped++;
  }
  for (let i = 0; i < npages && restore > 0; i++) {
    const s = src[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn < 0 || migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
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
    const flg = ptFlags(node, idx);
    const kind = entryKind(flg);
    if ((kind !== K_PRESENT && kind !== K_DEVICE_PRIVATE) || ptVal(node, idx) !== pfn) continue;
    const r = mm.invalidateStart('CLEAR', vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE);
    if (pteDirty(flg)) machine.phys.setDirty(pfn);
    installMigrationEntry(mm, node, idx, pfn, pteWrite(flg));
    mm.invalidateEnd(r);
  }
}

/**
 * migrate_vma_check_page: false if the page has references nobody can account for (a pin).
 * Expected: the migration's, the fault's (for fault_page), one more for a ZONE_DEVICE page
 * (as the kernel's check allows), the page cache's for a file page. A policy may let
 * device-private pages pass unchecked.
 */
function checkPage(machine: Machine, pfn: number, faultPage: number, policy: MigratePolicy): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const pgmap = phys.pagemapOf(pfn);
  if (policy.devicePrivateSkipsRefCheck && pgmap?.type === 'private') return true;
  if (f.flags[pfn]! & (PG_head | PG_tail)) return false;
  const extra = 1 + (pfn === faultPage ? 1 : 0) + (pgmap ? 1 : 0) + (f.mapping[pfn] !== 0 ? 1 : 0);
  return f.refcount[pfn]! - extra <= f.mapcount[pfn]!;
}

/**
 * remove_migration_ptes: every migration entry for `old` becomes a mapping of `page` (old
 * itself when restoring): a device-private entry for device-private memory, else a present
 * PTE; writable only if the migration entry was and the VMA allows it.
 */
export function removeMigrationPtes(machine: Machine, old: number, page: number): void {
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
    const flg = ptFlags(node, idx);
    if (slot.level !== 0 || !isMigrationEntry(flg) || ptVal(node, idx) !== old) continue;
    const vma = mm.vmas.lookup(vpn * PAGE_SIZE);
    const write = pteWrite(flg) && vma !== undefined && (vma.flags & VM_WRITE) !== 0;
    const keep = entryKeepBits(flg);
    const entry = devicePrivate
      ? mkDevicePrivateEntry(write, keep)
      : K_PRESENT | E_YOUNG | (write ? E_WRITE | E_DIRTY : pteDirty(flg) ? E_DIRTY : 0) | keep;
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
