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
  badKind, E_DIRTY, E_WRITE, E_YOUNG, entryKeepBits, entryKind, isMigrationEntry, K_BAD, K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_HWPOISON,
  K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE, LEVEL_PAGES, mkDevicePrivateEntry, mkMigrationEntry, PageTable, pteDirty, pteNone,
  pteSpecial, pteWrite, ptFlags, type PtNode, type PtSlot, ptVal, setPtFlags,
} from './pagetable.js';
import { addMapping, mmCounter, splitHugePmd } from './memory.js';
import { keyLevel, keyVpn } from './rmap.js';
import { PG_anon, PG_anon_exclusive, PG_head, PG_hugetlb, PG_locked, PG_reserved, PG_tail } from './page.js';
import {
  MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnHas, migratePfnToPage, migratePfnWithout, type MigratePfnArray,
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

/** Whether [cs, ce) is one whole PMD range that a MIGRATE_VMA_SELECT_COMPOUND migration takes as one entry. */
function wholePmd(args: MigrateVma, cs: number, ce: number): boolean {
  return (args.flags & MIGRATE_VMA_SELECT_COMPOUND) !== 0 && cs % PMD_SIZE === 0 && ce % PMD_SIZE === 0;
}

/**
 * migrate_vma_collect_hole: empty entries, each MIGRATE with no page; a whole empty PMD range
 * of a compound migration is one MIGRATE | COMPOUND entry (its other entries 0).
 */
function collectHole(args: MigrateVma, i0: number, n: number, holes: boolean, compound: boolean): void {
  if (!holes) return;
  if (compound) {
    args.src[i0] = MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND;
    args.cpages++;
    return;
  }
  for (let i = i0; i < i0 + n; i++) args.src[i] = MIGRATE_PFN_MIGRATE;
  args.cpages += n;
}

const DONE = 0;
const PTES = 1;

/** migrate_vma_collect_pmd for [cs, ce), inside one PMD range. */
function collectPmd(mm: Mm, args: MigrateVma, cs: number, ce: number, holes: boolean, policy: MigratePolicy): void {
  const i0 = (cs - args.start) / PAGE_SIZE;
  const n = (ce - cs) / PAGE_SIZE;
  const vpn = cs / PAGE_SIZE;
  mm.pt.lookup(vpn, slot);
  if (slot.level > 1) {
    // No PMD table (a missing directory is pte_hole), or a PUD-level entry (none of a migratable VMA's): skipped.
    if (pteNone(ptFlags(slot.node, slot.idx))) collectHole(args, i0, n, holes, wholePmd(args, cs, ce));
    return;
  }
  if (slot.level === 1) {
    if (collectHugePmd(mm, args, slot.node, slot.idx, cs, ce, holes, policy) === DONE) return;
    mm.pt.lookup(vpn, slot);
    if ((slot.level as number) !== 0) {
      if (pteNone(ptFlags(slot.node, slot.idx))) collectHole(args, i0, n, holes, false);
      return;
    }
  }
  const pte = slot.node;
  for (let j = 0; j < n; j++) {
    const r = collectPte(mm, args, pte, (vpn + j) & 511, i0 + j, holes, policy);
    if (r === RETRY) j--;
    else if (r === SKIP_REST) return;
  }
}

/**
 * migrate_vma_collect_huge_pmd: a PMD leaf (a THP, the huge zero page, a device-private
 * folio) or a none PMD. A compound migration of the whole PMD range takes a THP or device
 * folio whole: one MIGRATE | COMPOUND entry, the PMD replaced by a PMD migration entry.
 * Otherwise the folio is split (split_folio) and its pages are collected one by one (PTES);
 * a folio that cannot be locked or split is skipped.
 */
function collectHugePmd(mm: Mm, args: MigrateVma, pmd: PtNode, pidx: number, cs: number, ce: number, holes: boolean, policy: MigratePolicy): number {
  const phys = mm.machine.phys;
  const select = args.flags;
  const i0 = (cs - args.start) / PAGE_SIZE;
  const compound = wholePmd(args, cs, ce);
  const flg = ptFlags(pmd, pidx);
  const kind = entryKind(flg);
  const head = ptVal(pmd, pidx);
  switch (kind) {
    case K_NONE:
      collectHole(args, i0, (ce - cs) / PAGE_SIZE, holes, compound);
      return DONE;
    case K_PRESENT:
      if (!(select & MIGRATE_VMA_SELECT_SYSTEM)) return DONE;
      // The huge zero page is an empty range to a migration; the insertion splits it.
      if (phys.isZeroPfn(head)) {
        collectHole(args, i0, (ce - cs) / PAGE_SIZE, holes, compound);
        return DONE;
      }
      break;
    case K_DEVICE_PRIVATE: {
      const pgmap = phys.pagemapOf(head);
      if (!pgmap || !(select & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || !policy.ownerMatches(pgmap.owner, args.pgmapOwner)) return DONE;
      break;
    }
    case K_MIGRATION: // another migration holds the folio: the kernel waits for it; setup cannot sleep and leaves it
    case K_SWAP:
    case K_DEVICE_EXCLUSIVE:
    case K_HWPOISON:
    case K_BAD:
    case K_TABLE:
      return DONE;
    default:
      return badKind(kind);
  }
  const faultFolio = args.faultPage >= 0 ? phys.frames.compoundHead(args.faultPage) : -1;
  const fault = head === faultFolio;
  if (!fault && !phys.trylockPage(head)) return DONE;
  const f = phys.frames;
  const pinnedExclusive = (f.flags[head]! & (PG_anon | PG_anon_exclusive)) === (PG_anon | PG_anon_exclusive) && phys.pinned(head) > 0;
  if (compound && !pinnedExclusive) {
    // set_pmd_migration_entry; a pinned exclusive folio cannot be shared (folio_try_share_anon_rmap_pmd) and falls back.
    phys.getPage(head); // the migration's own reference
    if (pteDirty(flg)) phys.setDirty(head);
    const write = pteWrite(flg);
    installPmdMigrationEntry(mm, pmd, pidx, head, write);
    args.src[i0] = migratePfn(head) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND + (write ? MIGRATE_PFN_WRITE : 0);
    args.cpages++;
    return DONE;
  }
  if (!fault) phys.unlockPage(head);
  // split_folio: the fault's lock and reference stay with the fault page.
  if (!policy.splitsLargeFolios && kind === K_DEVICE_PRIVATE) return DONE;
  return splitFolioHeld(mm.machine, head, fault ? args.faultPage : head, fault ? 1 : 0, fault) ? PTES : DONE;
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
  const faultFolio = args.faultPage >= 0 ? f.compoundHead(args.faultPage) : -1;
  if (kind === K_NONE) {
    collectHole(args, i, 1, holes, false);
    return NEXT;
  }
  if (kind === K_PRESENT) {
    if (phys.isZeroPfn(val)) {
      if (select & MIGRATE_VMA_SELECT_SYSTEM) collectHole(args, i, 1, true, false);
      return NEXT;
    }
    if (pteSpecial(flg)) return NEXT; // no struct page (vm_normal_page is NULL)
    const pgmap = phys.pagemapOf(val);
    if (!pgmap) {
      if (!(select & MIGRATE_VMA_SELECT_SYSTEM)) return NEXT;
    } else if (pgmap.type !== 'coherent' || !(select & MIGRATE_VMA_SELECT_DEVICE_COHERENT) || !policy.ownerMatches(pgmap.owner, args.pgmapOwner)) {
      return NEXT;
    }
  } else if (kind === K_DEVICE_PRIVATE) {
    const pgmap = phys.pagemapOf(val);
    if (!pgmap || !(select & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || !policy.ownerMatches(pgmap.owner, args.pgmapOwner)) return NEXT;
  } else {
    return NEXT; // swap, migration, device-exclusive, hwpoison entries are not migrated
  }
  if (f.flags[val]! & (PG_head | PG_tail)) {
    // A PTE-mapped piece of a large folio: split the folio (migrate_vma_split_folio, the
    // fault's lock and reference moving to the fault page) and look again; if it cannot be
    // split, the rest of this PMD range is skipped.
    if (!policy.splitsLargeFolios) return NEXT;
    const head = f.compoundHead(val);
    const fault = head === faultFolio;
    return splitFolioHeld(machine, head, fault ? args.faultPage : head, fault ? 1 : 0, fault) ? RETRY : SKIP_REST;
  }
  const pflags = f.flags[val]!;
  if (!(pflags & PG_anon) && f.mapping[val] === 0) return NEXT; // page->mapping is NULL
  const fault = val === faultFolio;
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

/** set_pmd_migration_entry: a PMD leaf (THP or device folio) becomes a PMD migration entry; its mapping's reference goes (rmap and rss stay). */
function installPmdMigrationEntry(mm: Mm, pmd: PtNode, pidx: number, head: number, write: boolean): void {
  const phys = mm.machine.phys;
  setPtFlags(pmd, pidx, mkMigrationEntry(ptFlags(pmd, pidx), write));
  const n = (phys.entireMapcount.get(head) ?? 0) - 1;
  if (n > 0) phys.entireMapcount.set(head, n);
  else phys.entireMapcount.delete(head);
  phys.putPage(head);
}

/** @internal split_huge_pmd with the invalidation __split_huge_pmd sends for the whole 2 MiB range. */
export function splitPmdNotify(mm: Mm, pmd: PtNode, idx: number, baseVpn: number): void {
  const r = mm.invalidateStart('CLEAR', baseVpn * PAGE_SIZE, (baseVpn + PMD_NR) * PAGE_SIZE);
  splitHugePmd(mm, pmd, idx, baseVpn);
  mm.invalidateEnd(r);
}

/** Every PMD entry (a leaf or a PMD migration entry) that maps the folio at `head`, in any process, split into PTEs. */
function splitPmdMappings(machine: Machine, head: number): void {
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

/**
 * split_folio for an anonymous THP or device-private folio: every huge (PMD) mapping of it, in
 * any process, is split into PTEs under a CLEAR invalidation of its 2 MiB range (found
 * through the reverse map, as split_huge_page unmaps and remaps the folio), then the folio is
 * split into small pages, each with a refcount of its own mappings (plus `extra`, references
 * the caller holds, on the head). Returns false, having changed nothing, for a folio that
 * cannot be split: hugetlb, locked, pinned, or referenced beyond its mappings and `extra`.
 */
export function splitFolio(machine: Machine, head: number, extra = 0): boolean {
  if (machine.phys.frames.flags[head]! & PG_locked) return false;
  return splitFolioHeld(machine, head, head, extra, false);
}

/**
 * split_folio by a caller that holds `extra` references (and, with `locked`, the folio lock):
 * afterwards the page `keep` holds them (migrate_vma_split_folio keeps the fault page locked).
 */
function splitFolioHeld(machine: Machine, head: number, keep: number, extra: number, locked: boolean): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const flags = f.flags[head]!;
  if (!(flags & PG_head) || flags & (PG_hugetlb | PG_reserved) || !(flags & PG_anon)) return false;
  if (flags & PG_locked && !locked) return false;
  if (phys.pinned(head) > 0) return false;
  const huge = phys.entireMapcount.get(head) ?? 0;
  let mapped = huge;
  for (let i = 0, n = 1 << f.order(head); i < n; i++) mapped += f.mapcount[head + i]!;
  if (f.refcount[head] !== mapped + extra) return false;
  if (huge > 0) splitPmdMappings(machine, head);
  phys.splitFolioFrames(head, 0, keep, extra, false);
  return true;
}

/**
 * migrate_vma_split_unmapped_folio: a folio collected whole (every mapping of it a migration
 * entry) is split for destinations that are small pages: its PMD migration entries become 512
 * PTE migration entries each (split_huge_pmd_address with freeze), and the folio 512 small
 * pages, each locked and holding the migration's reference (folio_split_unmapped); the fault's
 * reference stays with the fault page.
 */
export function splitUnmappedFolio(machine: Machine, head: number, faultPage: number): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const fault = faultPage >= 0 && f.compoundHead(faultPage) === head;
  if (!(f.flags[head]! & PG_head) || phys.pinned(head) > 0 || f.refcount[head] !== 1 + (fault ? 1 : 0)) return false;
  splitPmdMappings(machine, head);
  phys.splitFolioFrames(head, 1, fault ? faultPage : head, fault ? 1 : 0, true);
  return true;
}

// ---- migrate_device_unmap ----

/** folio_mapcount: PTE mappings of every page plus the folio's PMD mappings. */
function folioMapcount(machine: Machine, head: number): number {
  const phys = machine.phys;
  const f = phys.frames;
  const nr = 1 << f.order(head);
  let n = nr > 1 ? (phys.entireMapcount.get(head) ?? 0) : 0; // only a large folio has huge mappings
  for (let i = 0; i < nr; i++) n += f.mapcount[head + i]!;
  return n;
}

/**
 * migrate_device_unmap: a collected folio still mapped elsewhere (other processes, through the
 * reverse map) is unmapped into migration entries there too (try_to_migrate); a folio still
 * mapped, or with references beyond its mappings and the migration's (a pin), is restored and
 * dropped from src. A large folio is marked MIGRATE_PFN_COMPOUND and its entry covers its
 * pages. Returns the entries still migrating, empties included.
 */
export function unmapPages(machine: Machine, src: MigratePfnArray, npages: number, faultPage: number, policy: MigratePolicy): number {
  const f = machine.phys.frames;
  const faultFolio = faultPage >= 0 ? f.compoundHead(faultPage) : -1;
  const counts = new Int32Array(2); // unmapped, restore
  for (let i = 0; i < npages; ) i = unmapChunk(machine, src, i, Math.min(npages, i + MIGRATE_CHUNK), faultPage, policy, counts);
  const unmapped = counts[0]!;
  let restore = counts[1]!;
  for (let i = 0; i < npages && restore > 0; i++) {
    const s = src[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn < 0 || migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
    removeMigrationPtes(machine, pfn, pfn);
    src[i] = 0;
    if (pfn !== faultFolio) machine.phys.unlockPage(pfn);
    machine.phys.putPage(pfn);
    restore--;
  }
  return unmapped;
}

/**
 * Entries per call of the per-page loops of migrate_vma_* and migrate_device_* that run once
 * per migration (unmapChunk, finalizeChunk), and of the drivers' around them (gpusvm's pagemap.ts
 * and vram.ts): a call ends soon, so V8 compiles the loop once, for its next call, rather than
 * twice (once more to replace a running call); and the function around it, run once per
 * migration, loops twice for a 2 MiB range, too little for V8 to compile it (at 64 it did,
 * with the loop inlined again: a fresh process compiled each per-page loop twice).
 */
export const MIGRATE_CHUNK = 256;

/**
 * unmapPages' first pass, over the folios starting in [i, end): returns the index after the
 * last folio (a folio may end past `end`), and adds to counts [unmapped, to restore].
 */
function unmapChunk(machine: Machine, src: MigratePfnArray, i: number, end: number, faultPage: number, policy: MigratePolicy, counts: Int32Array): number {
  const f = machine.phys.frames;
  let unmapped = 0;
  let restore = 0;
  while (i < end) {
    const s = src[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn < 0) {
      if (migratePfnHas(s, MIGRATE_PFN_MIGRATE)) unmapped++;
      i++;
      continue;
    }
    const nr = 1 << f.order(pfn);
    if (nr > 1 && !migratePfnHas(s, MIGRATE_PFN_COMPOUND)) src[i] = s + MIGRATE_PFN_COMPOUND;
    if (folioMapcount(machine, pfn) > 0) tryToMigrate(machine, pfn);
    if (folioMapcount(machine, pfn) > 0 || !checkPage(machine, pfn, faultPage, policy)) {
      src[i] = migratePfnWithout(src[i]!, MIGRATE_PFN_MIGRATE);
      restore++;
    } else {
      unmapped++;
    }
    i += nr;
  }
  counts[0]! += unmapped;
  counts[1]! += restore;
  return i;
}

/**
 * try_to_migrate: every present or device-private mapping of the folio at `head` becomes a
 * migration entry, each under a CLEAR invalidation: PTEs of each of its pages, and PMDs
 * (set_pmd_migration_entry) of the whole folio.
 */
function tryToMigrate(machine: Machine, head: number): void {
  const f = machine.phys.frames;
  for (let p = head, end = head + (1 << f.order(head)); p < end; p++) {
    if (f.mapcount[p] === 0 && p !== head) continue;
    // One entry (the common case) is read from the frame itself, with no array built.
    const count = machine.rmap.count(p);
    if (count === 1) tryToMigrateOne(machine, p, f.rmapMm[p]!, f.rmapKey[p]!);
    else if (count > 1) {
      const list = machine.rmap.entries(p);
      for (let e = 0; e < list.length; e += 2) tryToMigrateOne(machine, p, list[e]!, list[e + 1]!);
    }
  }
}

/** try_to_migrate_one for the entry of page p at `key` in mm `mmId`, if it still maps p. */
function tryToMigrateOne(machine: Machine, p: number, mmId: number, key: number): void {
  const mm = rmapEntry(machine, mmId, key);
  if (!mm) return;
  const { node, idx, level, vpn } = at;
  const flg = ptFlags(node, idx);
  const kind = entryKind(flg);
  if ((kind !== K_PRESENT && kind !== K_DEVICE_PRIVATE) || ptVal(node, idx) !== p) return;
  const r = mm.invalidateStart('CLEAR', vpn * PAGE_SIZE, (vpn + LEVEL_PAGES[level]!) * PAGE_SIZE);
  if (pteDirty(flg)) machine.phys.setDirty(p);
  if (level === 0) installMigrationEntry(mm, node, idx, p, pteWrite(flg));
  else installPmdMigrationEntry(mm, node, idx, p, pteWrite(flg));
  mm.invalidateEnd(r);
}

/** The page-table entry rmapEntry found: its table, index in it, level and first vpn. */
const at = { node: null as unknown as PtNode, idx: 0, level: 0, vpn: 0 };

/**
 * The entry a reverse-map record (mm mmId, key) names: its mm, with the entry left in `at`; null
 * if the mm is gone or the walk ends above the entry's level. A PTE table comes from the page
 * table's last-table cache (a range's pages share theirs). One lookup for try_to_migrate_one and
 * remove_migration_pte, so the way back to RAM runs the code the way out ran.
 */
function rmapEntry(machine: Machine, mmId: number, key: number): Mm | null {
  const mm = machine.mmById(mmId);
  if (!mm) return null;
  const level = keyLevel(key);
  const vpn = keyVpn(key);
  let node: PtNode | undefined;
  if (level === 0) {
    node = mm.pt.pteTable(vpn);
    at.idx = vpn & 511;
  } else {
    mm.pt.lookup(vpn, slot);
    node = slot.level === level ? slot.node : undefined;
    at.idx = slot.idx;
  }
  if (!node) return null;
  at.node = node;
  at.level = level;
  at.vpn = vpn;
  return mm;
}

/**
 * migrate_vma_check_page: false if the folio has references nobody can account for (a pin).
 * Expected: the migration's, the fault's (for fault_page), one more for a ZONE_DEVICE page
 * (as the kernel's check allows), the page cache's for a file page. Called only for an
 * unmapped folio, whose mapcount (which the kernel's check adds) is 0. A policy may let
 * device-private pages pass unchecked.
 */
function checkPage(machine: Machine, pfn: number, faultPage: number, policy: MigratePolicy): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const pgmap = phys.pagemapOf(pfn);
  if (policy.devicePrivateSkipsRefCheck && pgmap?.type === 'private') return true;
  if (f.flags[pfn]! & PG_tail) return false;
  const extra = 1 + (pfn === faultPage ? 1 : 0) + (pgmap ? 1 : 0) + (f.mapping[pfn] !== 0 ? 1 : 0);
  return f.refcount[pfn]! - extra <= 0;
}

/**
 * remove_migration_ptes: every migration entry for the folio `old` becomes a mapping of
 * `folio` (old itself when restoring), page for page, a PMD migration entry a PMD mapping of
 * the whole folio (remove_migration_pmd): device-private entries for device-private memory,
 * else present ones; writable only if the migration entry was and the VMA allows it.
 */
export function removeMigrationPtes(machine: Machine, old: number, folio: number): void {
  const phys = machine.phys;
  const f = phys.frames;
  const devicePrivate = phys.isDevicePrivate(folio);
  const nr = 1 << f.order(old);
  for (let k = 0; k < nr; k++) {
    const o = old + k;
    // One entry (the common case) is read from the frame itself, with no array built.
    const count = machine.rmap.count(o);
    if (count === 1) removeMigrationPte(machine, o, folio + k, f.rmapMm[o]!, f.rmapKey[o]!, devicePrivate);
    else if (count > 1) {
      const list = machine.rmap.entries(o);
      for (let e = 0; e < list.length; e += 2) removeMigrationPte(machine, o, folio + k, list[e]!, list[e + 1]!, devicePrivate);
    }
  }
}

/** remove_migration_pte for the entry of page o at `key` in mm `mmId`: if it is still o's migration entry, map `page` there. */
function removeMigrationPte(machine: Machine, o: number, page: number, mmId: number, key: number, devicePrivate: boolean): void {
  const mm = rmapEntry(machine, mmId, key);
  if (!mm) return;
  const { node, idx, level, vpn } = at;
  const flg = ptFlags(node, idx);
  if (!isMigrationEntry(flg) || ptVal(node, idx) !== o) return;
  const phys = machine.phys;
  const vma = mm.vmas.lookupCached(vpn * PAGE_SIZE);
  const write = pteWrite(flg) && vma !== undefined && (vma.flags & VM_WRITE) !== 0;
  const keep = entryKeepBits(flg);
  // Both forms computed: the way back to RAM then runs the code the way out to the device ran.
  const present = K_PRESENT | E_YOUNG | (write ? E_WRITE | E_DIRTY : pteDirty(flg) ? E_DIRTY : 0) | keep;
  const entry = devicePrivate ? mkDevicePrivateEntry(write, keep) : present;
  PageTable.set(node, idx, entry, page);
  phys.getPage(page);
  if (page === o) {
    if (level === 0) phys.frames.mapcount[page]!++;
    else phys.entireMapcount.set(page, (phys.entireMapcount.get(page) ?? 0) + 1);
  } else {
    machine.rmap.remove(o, mm.id, key);
    // addMapping counts rss again: take back the migration entry's count first.
    mm.rss[mmCounter(mm, o)]! -= LEVEL_PAGES[level]!;
    addMapping(mm, page, vpn, level);
  }
}
