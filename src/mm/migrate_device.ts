// Device memory migration (mm/migrate_device.c): moving the pages of a range between system and device memory in
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
// The encoding and struct migrate_vma are in migrate_pfn.ts, the page-table side (collection,
// migration entries, remap) in migrate_entries.ts, the checks of the driver's arrays in
// migrate_check.ts; migrate.ts is the public face (and holds 4.17's single call).

import { giveF64, giveI32, takeF64, takeI32 } from './buffers.js';
import { fail } from './errno.js';
import { PAGE_SIZE, PMD_NR, PMD_SIZE } from './constants.js';
import type { Machine } from './machine.js';
import type { Mm } from './mm.js';
import type { PhysMem } from './physmem.js';
import { VM_SPECIAL, VM_WRITE, type Vma } from './vma.js';
import {
  E_DIRTY, E_WRITE, E_YOUNG, entryKind, K_DEVICE_PRIVATE, K_NONE, K_PRESENT, mkDevicePrivateEntry, PageTable, pteNone, ptFlags, ptKind,
  type PtSlot, ptVal,
} from './pagetable.js';
import { addMapping } from './memory.js';
import { PG_active, PG_anon, PG_anon_exclusive, PG_dirty, PG_referenced, PG_swapbacked, PG_tail } from './page.js';
import {
  isPfnArray, MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, migratePfn, migratePfnFlags, migratePfnHas, migratePfnOf,
  migratePfnToPage, migratePfnWithout, type MigratePfnArray, type MigrateVma,
} from './migrate_pfn.js';
import { collect, MIGRATE_CHUNK, removeMigrationPtes, splitPmdNotify, splitUnmappedFolio, unmapPages } from './migrate_entries.js';
import { checkDeviceArgs, checkDst, checkEntries } from './migrate_check.js';
import { mainlineMigratePolicy, type MigratePolicy } from './migrate_policy.js';

const slot: PtSlot = { node: null!, idx: 0, level: 0 };

// ---- the state of a migration between setup and finalize ----

const NONE = -1; // src entry with nothing collected
const EMPTY = -2; // src entry collected as an empty (MIGRATE, no page)

interface Flight {
  mm: Mm;
  /** What setup left in src: the pfn, NONE or EMPTY; pages and finalize check the driver did not change it. */
  collected: Float64Array;
  policy: MigratePolicy;
  /** dst's pfns as migrate_vma_pages used them (finalize checks the driver left them), or null before it. */
  paged: Float64Array | null;
}
const flights = new WeakMap<MigrateVma, Flight>();

// ---- migrate_vma_setup ----

/**
 * migrate_vma_setup: validate, collect, lock and unmap. Returns normally even when nothing was
 * collected. `policy` (mainline's by default) holds for this migration until its finalize.
 */
export function migrateVmaSetup(args: MigrateVma, policy: MigratePolicy = mainlineMigratePolicy): void {
  const mm = validateSetup(args);
  const npages = (args.end - args.start) / PAGE_SIZE;
  args.src.fill(0, 0, npages);
  args.dst.fill(0, 0, npages);
  args.npages = npages;
  args.cpages = 0;
  const range = mm.invalidateStart('MIGRATE', args.start, args.end, args.pgmapOwner);
  try {
    collect(mm, args, policy);
  } finally {
    mm.invalidateEnd(range);
  }
  if (args.cpages > 0) args.cpages = unmapPages(mm.machine, args.src, npages, args.faultPage, policy);
  flights.set(args, { mm, collected: collectedOf(args.src, npages), policy, paged: null });
}

/**
 * What setup left in src, for the checks of pages and finalize. A function of its own, as
 * every per-page loop of a per-call function here: V8 optimizes the loop alone, and the call
 * around it (run once per migration) stays unoptimized rather than being compiled twice, on
 * stack and for its next call.
 */
function collectedOf(src: MigratePfnArray, npages: number): Float64Array {
  const collected = takeF64(npages);
  for (let i = 0; i < npages; i++) {
    const s = src[i]!;
    collected[i] = s === 0 ? NONE : migratePfnHas(s, MIGRATE_PFN_VALID) ? migratePfnToPage(s) : EMPTY;
  }
  return collected;
}

function validateSetup(args: MigrateVma): Mm {
  if (!args || typeof args !== 'object') fail('EINVAL', 'no migrate_vma');
  const { vma, start, end, src, dst, flags } = args;
  if (!vma) fail('EINVAL', 'no vma');
  const mm = vma.mm;
  if (!mm) fail('EINVAL', 'vma is not mapped in any mm');
  mm.mmapLock('migrate_vma_setup');
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
  if (!Number.isInteger(flags) || flags & ~15) fail('EINVAL', 'unknown select flags');
  const fp = args.faultPage;
  if (fp !== -1) {
    if (!Number.isSafeInteger(fp) || !mm.machine.phys.isDevicePrivate(fp)) fail('EINVAL', 'fault_page is not a device-private page');
    if (!mm.machine.phys.isLocked(fp)) fail('EINVAL', 'fault_page is not locked');
  }
  return mm;
}

// ---- migrate_vma_pages ----

function flightOf(args: MigrateVma, what: string): Flight {
  const fl = args && typeof args === 'object' ? flights.get(args) : undefined;
  if (!fl) fail('EINVAL', `${what} without a migrate_vma_setup in progress for these args`);
  fl.mm.mmapLockDeadlock(what);
  const n = args.npages;
  if (!isPfnArray(args.src) || !isPfnArray(args.dst) || args.src.length !== n || args.dst.length !== n || n !== fl.collected.length) {
    fail('EINVAL', `src and dst must still hold exactly ${fl.collected.length} entries`);
  }
  checkEntries(args.src, n, 'src');
  checkEntries(args.dst, n, 'dst');
  checkSrcUnchanged(args.src, fl.collected, n);
  return fl;
}

/** The driver left src as setup made it (a per-page loop in a function of its own: see collectedOf). */
function checkSrcUnchanged(src: MigratePfnArray, collected: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = src[i]!;
    const c = collected[i]!;
    const pfn = migratePfnToPage(s);
    if (pfn !== (c >= 0 ? c : -1) || (c === NONE && migratePfnHas(s, MIGRATE_PFN_MIGRATE))) fail('EINVAL', `src[${i}] was changed by the driver`);
  }
}

/**
 * migrate_vma_pages: move struct-page state to the destinations; populate empty entries. A
 * compound entry (a whole PMD-size folio, or an empty PMD range) given small destination
 * pages is split first (migrate_vma_split_unmapped_folio; an empty range is populated page by
 * page); a small page given a compound destination does not move.
 */
export function migrateVmaPages(args: MigrateVma): void {
  const fl = flightOf(args, 'migrate_vma_pages');
  if (fl.paged) fail('EINVAL', 'migrate_vma_pages called twice');
  const { mm } = fl;
  const machine = mm.machine;
  const { src, dst, npages } = args;
  checkDst(machine, src, dst, npages);
  fl.paged = pagedOf(dst, npages);
  let range: ReturnType<Mm['invalidateStart']> = null;
  let notified = false;
  for (let i = 0; i < npages; ) {
    // The common entries (a small page to a small page, or no destination) a chunk at a time;
    // the loop body below takes the others, one entry (or folio) each.
    const next = pagesChunk(machine, src, dst, i, Math.min(npages, i + MIGRATE_CHUNK), args.faultPage, fl.policy);
    if (next > i) {
      i = next;
      continue;
    }
    // pagesChunk stopped at entry i: it has a destination, and a hole or a compound page at one end
    const s = src[i]!;
    const dEntry = dst[i]!;
    const srcCompound = migratePfnHas(s, MIGRATE_PFN_COMPOUND);
    const dstCompound = migratePfnHas(dEntry, MIGRATE_PFN_COMPOUND);
    const old = migratePfnToPage(s);
    if (old < 0) {
      if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) {
        i++;
        continue;
      }
      // migrate_vma_insert_page: anonymous VMAs only, and only while the entry is still empty.
      const addr = args.start + i * PAGE_SIZE;
      if (!notified) {
        notified = true;
        range = mm.invalidateStart('MIGRATE', addr, args.end, args.pgmapOwner);
      }
      let nr = 1;
      if (srcCompound && !dstCompound) {
        nr = PMD_NR;
        src[i] = migratePfnWithout(s, MIGRATE_PFN_COMPOUND);
      }
      for (let j = 0; j < nr && i + j < npages; j++) {
        const dj = migratePfnToPage(dst[i + j]!);
        if (!migratePfnHas(src[i + j]!, MIGRATE_PFN_MIGRATE)) {
          src[i + j] = src[i + j]! + MIGRATE_PFN_MIGRATE;
          fl.collected[i + j] = EMPTY; // an entry of the split compound hole
        }
        if (dj < 0) {
          src[i + j] = migratePfnWithout(src[i + j]!, MIGRATE_PFN_MIGRATE);
          continue;
        }
        if (dstCompound) {
          if (!insertHugePage(mm, args.vma, addr, dj)) {
            for (let k = i; k < Math.min(npages, i + PMD_NR); k++) src[k] = migratePfnWithout(src[k]!, MIGRATE_PFN_MIGRATE);
          }
        } else if (!insertPage(mm, args.vma, addr + j * PAGE_SIZE, dj)) {
          src[i + j] = migratePfnWithout(src[i + j]!, MIGRATE_PFN_MIGRATE);
        }
      }
      i += nr;
      continue;
    }
    let nr = 1;
    if (migratePfnHas(s, MIGRATE_PFN_MIGRATE) && srcCompound && !dstCompound) {
      nr = PMD_NR;
      if (!splitUnmappedFolio(machine, old, args.faultPage)) {
        src[i] = migratePfnWithout(migratePfnWithout(s, MIGRATE_PFN_MIGRATE), MIGRATE_PFN_COMPOUND);
        i += nr;
        continue;
      }
      // The entries of the folio's pages, which collection left 0, now name them.
      const bits = migratePfnFlags(migratePfnWithout(s, MIGRATE_PFN_COMPOUND));
      for (let k = 0; k < nr && i + k < npages; k++) {
        src[i + k] = migratePfnOf(old + k, bits);
        fl.collected[i + k] = old + k;
      }
    } else if (migratePfnHas(s, MIGRATE_PFN_MIGRATE) && dstCompound && !srcCompound) {
      src[i] = migratePfnWithout(s, MIGRATE_PFN_MIGRATE);
    }
    for (let j = 0; j < nr && i + j < npages; j++) {
      const o = migratePfnToPage(src[i + j]!);
      const dj = migratePfnToPage(dst[i + j]!);
      if (o < 0) continue;
      if (dj < 0 || !migrateFolio(machine, o, dj, o === args.faultPage ? 1 : 0, fl.policy)) src[i + j] = migratePfnWithout(src[i + j]!, MIGRATE_PFN_MIGRATE);
    }
    i += nr;
  }
  mm.invalidateEnd(range);
}

/** dst's pfns as migrate_vma_pages uses them (a per-page loop in a function of its own: see collectedOf). */
function pagedOf(dst: MigratePfnArray, npages: number): Float64Array {
  const used = takeF64(npages);
  for (let i = 0; i < npages; i++) used[i] = migratePfnToPage(dst[i]!);
  return used;
}

/**
 * migrate_vma_pages for the common entries of [from, to): no destination (the entry stops
 * migrating), or a small source page with a small destination page (migrateFolio). Returns
 * the index of the first entry it left to the caller (a hole to populate, a compound source
 * or destination), or `to`.
 */
function pagesChunk(
  machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, from: number, to: number, faultPage: number, policy: MigratePolicy,
): number {
  for (let i = from; i < to; i++) {
    const s = src[i]!;
    const dEntry = dst[i]!;
    const d = migratePfnToPage(dEntry);
    if (d < 0) {
      src[i] = migratePfnWithout(s, MIGRATE_PFN_MIGRATE);
      continue;
    }
    const old = migratePfnToPage(s);
    if (old < 0 || migratePfnHas(s, MIGRATE_PFN_COMPOUND) || migratePfnHas(dEntry, MIGRATE_PFN_COMPOUND)) return i;
    if (!migrateFolio(machine, old, d, old === faultPage ? 1 : 0, policy)) src[i] = migratePfnWithout(s, MIGRATE_PFN_MIGRATE);
  }
  return to;
}

/**
 * The struct-page half of migrate_folio (folio_migrate_mapping + folio_migrate_flags): the
 * new page takes over the old one's identity (anon state, dirty, the page-cache slot of a file
 * page). False if it may not: a file page to device memory the policy keeps it from, or a
 * page with references beyond the migration's (and the fault's, the page cache's).
 */
function migrateFolio(machine: Machine, old: number, d: number, extraCount: number, policy: MigratePolicy): boolean {
  const phys = machine.phys;
  const f = phys.frames;
  const id = f.mapping[old]!;
  const target = phys.pagemapOf(d);
  if (id !== 0 && target && !policy.fileMayMoveTo(target.type)) return false;
  const expected = 1 + (id !== 0 ? 1 : 0) + extraCount;
  if (f.refcount[old] !== expected) return false;
  const tf = id !== 0 ? machine.fs.fileById(id) : undefined;
  if (id !== 0 && (!tf || tf.pages.get(f.index[old]!) !== old)) return false;
  // folio_migrate_flags: the new page is on the LRU list the old one was on once it is mapped.
  const keep = PG_anon | PG_swapbacked | PG_anon_exclusive | PG_dirty | PG_active | PG_referenced;
  f.flags[d] = (f.flags[d]! & ~keep) | (f.flags[old]! & keep);
  // A large folio: each page's PageAnonExclusive goes to the page at the same index.
  for (let i = 1, n = 1 << f.order(old); i < n; i++) f.flags[d + i] = (f.flags[d + i]! & ~PG_anon_exclusive) | (f.flags[old + i]! & PG_anon_exclusive);
  if (tf) {
    tf.pages.set(f.index[old]!, d);
    f.mapping[d] = id;
    f.index[d] = f.index[old]!;
    phys.getPage(d); // the page cache's reference moves to the new page
    if (phys.lru.evictable(d)) phys.lru.add(d);
    phys.putPage(old);
  }
  return true;
}

/** migrate_vma_insert_page: map a new page at an empty address (or over the zero page) of an anonymous VMA. */
function insertPage(mm: Mm, vma: Vma, addr: number, page: number): boolean {
  if (!vma.isAnonymous() || mm.dead) return false;
  const phys = mm.machine.phys;
  const vpn = addr / PAGE_SIZE;
  mm.pt.lookup(vpn, slot);
  if (slot.level === 1 && ptKind(slot.node, slot.idx) === K_PRESENT && phys.isZeroPfn(ptVal(slot.node, slot.idx))) {
    // The huge zero page, collected as empty: split it (split_huge_pmd) and insert over a small zero page.
    splitPmdNotify(mm, slot.node, slot.idx, vpn - (vpn % PMD_NR));
    mm.pt.lookup(vpn, slot);
  }
  if (slot.level !== 0 && ptKind(slot.node, slot.idx) !== K_NONE) return false; // a huge entry
  const pte = mm.pt.ensureTable(vpn, 0);
  if (!pte) return false;
  const idx = vpn & 511;
  const flg = ptFlags(pte, idx);
  const zero = entryKind(flg) === K_PRESENT && phys.isZeroPfn(ptVal(pte, idx));
  if (!pteNone(flg) && !zero) return false;
  const write = (vma.flags & VM_WRITE) !== 0;
  phys.setAnon(page);
  const kind = phys.isDevicePrivate(page) ? K_DEVICE_PRIVATE : K_PRESENT | E_YOUNG | (write ? E_DIRTY : 0);
  PageTable.set(pte, idx, kind | (write ? E_WRITE : 0), page);
  phys.getPage(page);
  addMapping(mm, page, vpn, 0);
  vma.anonVma = true;
  return true;
}

/**
 * migrate_vma_insert_huge_pmd_page: map a new PMD-size folio (a THP, or a device-private
 * folio as a device-private PMD) at an empty PMD range, or over the huge zero page, of an
 * anonymous VMA, as __do_huge_pmd_anonymous_page does. False (nothing mapped) if the range is
 * not a whole PMD inside the VMA or is no longer empty.
 */
function insertHugePage(mm: Mm, vma: Vma, addr: number, page: number): boolean {
  if (!vma.isAnonymous() || mm.dead || addr % PMD_SIZE || addr < vma.start || addr + PMD_SIZE > vma.end) return false;
  const phys = mm.machine.phys;
  const vpn = addr / PAGE_SIZE;
  const pmd = mm.pt.ensureTable(vpn, 1);
  if (!pmd) return false;
  const pidx = PageTable.index(vpn, 1);
  const flg = ptFlags(pmd, pidx);
  if (!pteNone(flg) && !(entryKind(flg) === K_PRESENT && phys.isZeroPfn(ptVal(pmd, pidx)))) return false;
  const write = (vma.flags & VM_WRITE) !== 0;
  phys.setAnon(page);
  for (let i = 1; i < PMD_NR; i++) phys.frames.flags[page + i]! |= PG_anon_exclusive;
  const entry = phys.isDevicePrivate(page) ? mkDevicePrivateEntry(write) : K_PRESENT | E_YOUNG | (write ? E_WRITE | E_DIRTY : 0);
  PageTable.set(pmd, pidx, entry, page); // over the huge zero page: it was not refcounted by its mapping
  phys.getPage(page);
  addMapping(mm, page, vpn, 1);
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
    checkDstUnchanged(dst, fl.paged, npages);
  } else {
    checkDst(machine, src, dst, npages); // released below: they must be pages
    for (let i = 0; i < npages; i++) src[i] = migratePfnWithout(src[i]!, MIGRATE_PFN_MIGRATE);
  }
  flights.delete(args);
  finalizePages(machine, src, dst, npages, args.faultPage, fl.mm.id, args.start);
  giveF64(fl.collected);
  if (fl.paged) giveF64(fl.paged);
}

/** The driver left dst as migrate_vma_pages used it (a per-page loop in a function of its own: see collectedOf). */
function checkDstUnchanged(dst: MigratePfnArray, paged: Float64Array, npages: number): void {
  for (let i = 0; i < npages; i++) if (migratePfnToPage(dst[i]!) !== paged[i]) fail('EINVAL', `dst[${i}] was changed after migrate_vma_pages`);
}

/** The remap, unlock and release of migrate_vma_finalize and migrate_device_finalize. */
function finalizePages(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number, faultPage: number, mmId: number, start: number): void {
  const phys = machine.phys;
  // The sources' references to system memory go in one release_pages at the end (the kernel
  // frees them in batches too: folio_putback_lru's per-CPU LRU batch holds them until it
  // drains), unless someone listens to frees: then each goes at its page, in event order.
  // Device pages go back to their driver at once.
  const batch = phys.events.on.free ? null : takeI32(npages);
  let batched = 0;
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) {
    batched = finalizeChunk(machine, src, dst, i, Math.min(npages, i + MIGRATE_CHUNK), faultPage, mmId, start, batch, batched);
  }
  // release_pages a chunk at a time, as the loops here run (see MIGRATE_CHUNK): runs of freed
  // frames end at a chunk's end, which leaves the free lists as freeing them in one call does.
  for (let i = 0; i < batched; i += MIGRATE_CHUNK) phys.releasePages(batch!.subarray(i), Math.min(MIGRATE_CHUNK, batched - i));
  if (batch) giveI32(batch);
}

/** finalizePages for entries [from, to); returns the sources batched so far. */
function finalizeChunk(
  machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, from: number, to: number, faultPage: number, mmId: number, start: number,
  batch: Int32Array | null, batched: number,
): number {
  const phys = machine.phys;
  for (let i = from; i < to; i++) {
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
    const moved = migratePfnHas(s, MIGRATE_PFN_MIGRATE) && d >= 0;
    removeMigrationPtes(machine, old, moved ? d : old);
    if (moved && machine.events.on.migrate) {
      machine.events.emit({ type: 'migrate', mmId, addr: start < 0 ? -1 : start + i * PAGE_SIZE, from: old, to: d, toDevice: phys.pagemapOf(d) !== undefined });
    }
    if (old !== faultPage) phys.unlockPage(old);
    batched = releaseRef(phys, old, batch, batched);
    if (d >= 0) {
      phys.unlockPage(d);
      batched = releaseRef(phys, d, null, batched);
    }
  }
  return batched;
}

/**
 * finalizePages' drop of a page's reference: a system source's into the batch when there is
 * one (folio_putback_lru), any other now (folio_put). One function for sources and
 * destinations, so that the way back to RAM (a device source, put now) runs code the way out
 * ran (a device destination, put now) and its optimized code stays.
 */
function releaseRef(phys: PhysMem, p: number, batch: Int32Array | null, batched: number): number {
  if (batch && p < phys.ramFrames) {
    batch[batched] = p;
    return batched + 1;
  }
  phys.putPage(p);
  return batched;
}

// ---- device pages by pfn (6.1+) ----

function checkDevicePfn(machine: Machine, pfn: number): void {
  // Below the frame count, a pfn is a small integer: `| 0` passes it as one, not as the double src holds.
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= machine.phys.frames.capacity || !machine.phys.pagemapOf(pfn | 0)) {
    fail('EINVAL', `pfn ${pfn} is not device memory`);
  }
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
  unmapPages(machine, src, npages, -1, mainlineMigratePolicy);
}

/** migrate_device_pfns: as migrateDeviceRange for the (raw, not encoded) device pfns src holds on entry. */
export function migrateDevicePfns(machine: Machine, src: MigratePfnArray, npages: number): void {
  if (!Number.isSafeInteger(npages) || npages <= 0 || !isPfnArray(src) || src.length < npages) fail('EINVAL', 'bad page count or src array');
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) checkDevicePfns(machine, src, i, Math.min(npages, i + MIGRATE_CHUNK));
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) lockDevicePfns(machine, src, i, Math.min(npages, i + MIGRATE_CHUNK));
  unmapPages(machine, src, npages, -1, mainlineMigratePolicy);
}

/** migrateDevicePfns' check of src[from, to) (the per-page loops here run MIGRATE_CHUNK entries a call). */
function checkDevicePfns(machine: Machine, src: MigratePfnArray, from: number, to: number): void {
  for (let i = from; i < to; i++) checkDevicePfn(machine, src[i]!);
}

/** migrateDevicePfns' migrate_device_pfn_lock of src[from, to), each raw pfn replaced by its entry (or 0). */
function lockDevicePfns(machine: Machine, src: MigratePfnArray, from: number, to: number): void {
  for (let i = from; i < to; i++) src[i] = pfnLock(machine, src[i]! | 0); // checked: below the frame count
}

/**
 * migrate_device_pages: move struct-page state where the driver gave a destination. With no
 * VMA to split a folio in, a compound source needs a compound destination (else it stays),
 * and a small source a small one.
 */
export function migrateDevicePages(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  checkDeviceArgs(src, dst, npages);
  checkDst(machine, src, dst, npages);
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) devicePagesChunk(machine, src, dst, i, Math.min(npages, i + MIGRATE_CHUNK));
}

/** migrateDevicePages for entries [from, to). */
function devicePagesChunk(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const s = src[i]!;
    if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
    const d = migratePfnToPage(dst[i]!);
    const old = migratePfnToPage(s);
    if (migratePfnHas(s, MIGRATE_PFN_COMPOUND) !== migratePfnHas(dst[i]!, MIGRATE_PFN_COMPOUND)) {
      src[i] = migratePfnWithout(migratePfnWithout(s, MIGRATE_PFN_MIGRATE), MIGRATE_PFN_COMPOUND);
      continue;
    }
    if (d < 0 || old < 0 || !migrateFolio(machine, old, d, 0, mainlineMigratePolicy)) src[i] = migratePfnWithout(s, MIGRATE_PFN_MIGRATE);
  }
}

/** migrate_device_finalize: remap every migration entry, unlock, release. */
export function migrateDeviceFinalize(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  checkDeviceArgs(src, dst, npages);
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
  unmapPages(machine, src, 1, -1, mainlineMigratePolicy);
  if (!migratePfnHas(src[0]!, MIGRATE_PFN_MIGRATE)) return false;
  const dst = [0];
  const page = phys.tryAllocPages(0);
  if (page >= 0) {
    phys.trylockPage(page);
    dst[0] = migratePfn(page);
  }
  migrateDevicePages(machine, src, dst, 1);
  const moved = migratePfnHas(src[0]!, MIGRATE_PFN_MIGRATE);
  if (moved) phys.copyPage(page, pfn);
  migrateDeviceFinalize(machine, src, dst, 1);
  return moved;
}
