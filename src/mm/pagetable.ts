// The multi-level page table. Every node is one table page of 512 entries held in two typed
// arrays (value and flags), never an object per entry. An entry at any level is one of the
// kinds below; at PMD and PUD level a PRESENT entry is a huge leaf. Levels: 0 = PTE, 1 = PMD,
// 2 = PUD, 3 = P4D or PGD, 4 = PGD with 5-level paging.

import { HPAGE_PMD_ORDER, HPAGE_PUD_ORDER, PTRS_PER_TABLE } from './constants.js';

export const KIND_MASK = 0xf;
export const K_NONE = 0;
export const K_TABLE = 1; // points at a lower-level table (child[idx])
export const K_PRESENT = 2; // val = pfn
export const K_SWAP = 3; // val = swap slot
export const K_MIGRATION = 4; // val = pfn of the page under migration
export const K_DEVICE_PRIVATE = 5; // val = device pfn
export const K_DEVICE_EXCLUSIVE = 6; // val = pfn, the CPU mapping is revoked for a device
export const K_HWPOISON = 7; // val = pfn; "other special" swap entry
export const K_BAD = 8; // a corrupt directory entry (pmd_bad)

/** The kinds an entry can be; a switch over one ends with `default: return badKind(kind)`. */
export type EntryKind =
  | typeof K_NONE | typeof K_TABLE | typeof K_PRESENT | typeof K_SWAP | typeof K_MIGRATION | typeof K_DEVICE_PRIVATE
  | typeof K_DEVICE_EXCLUSIVE | typeof K_HWPOISON | typeof K_BAD;

export const E_WRITE = 1 << 4;
export const E_DIRTY = 1 << 5;
export const E_YOUNG = 1 << 6;
export const E_SPECIAL = 1 << 7; // no struct page behind it (pfnmap, zero page)
export const E_PROTNONE = 1 << 8; // NUMA hinting: present but inaccessible
export const E_SOFT_DIRTY = 1 << 9;
export const E_DEVMAP = 1 << 10; // maps ZONE_DEVICE memory (coherent)
export const E_UFFD_WP = 1 << 11;

// ---- reading an entry ----
// An entry is two words: its flags (kind and bits) and its value (a pfn, a swap slot). Code
// outside this file reads them through the functions below, as the kernel reads a pte_t
// through pte_present(), pte_write(), is_migration_entry() ...: a new kind or bit changes
// this file and the switches over EntryKind that the compiler then points at. Every accessor
// is a one-line monomorphic function, which V8 inlines into its callers.

/** The flags word of entry idx (its kind and bits). */
export function ptFlags(node: PtNode, idx: number): number {
  return node.flg[idx]!;
}
/** The value of entry idx: the pfn of a present, migration, device or hwpoison entry, the slot of a swap entry. */
export function ptVal(node: PtNode, idx: number): number {
  return node.val[idx]!;
}
/**
 * The flags words of all of a table's entries, for a loop over a whole table (the kernel's
 * ptep++ in zap_pte_range, copy_pte_range, hmm_vma_walk_pmd): index it, then test each word
 * with the functions below. Writes go through setPtFlags / PageTable.set.
 */
export function ptFlagsArray(node: PtNode): Readonly<Uint16Array> {
  return node.flg;
}
/** The values of all of a table's entries, for the same loops (read only). */
export function ptValArray(node: PtNode): Readonly<Uint32Array> {
  return node.val;
}
/**
 * A table's flags and values, writable, for a loop that rewrites a table's entries as a whole
 * (copy_pte_range's write-protect of the parent and fill of the child, zap_pte_range's
 * clear): the caller keeps the node's `used` count right for the entries it turns from none
 * to something or back.
 */
export function ptFlagsArrayMut(node: PtNode): Uint16Array {
  return node.flg;
}
export function ptValArrayMut(node: PtNode): Uint32Array {
  return node.val;
}
/** The kind of entry idx. */
export function ptKind(node: PtNode, idx: number): EntryKind {
  return (node.flg[idx]! & KIND_MASK) as EntryKind;
}
/** Replace the flags of a non-none entry with flags of a non-none kind (a bit change, or one kind for another); the value stays. */
export function setPtFlags(node: PtNode, idx: number, flags: number): void {
  node.flg[idx] = flags;
}

/** The kind in a flags word. */
export function entryKind(flags: number): EntryKind {
  return (flags & KIND_MASK) as EntryKind;
}
/** pte_none / pmd_none */
export function pteNone(flags: number): boolean {
  return (flags & KIND_MASK) === K_NONE;
}
/** pte_present: a mapping the MMU walks (protnone included). */
export function ptePresent(flags: number): boolean {
  return (flags & KIND_MASK) === K_PRESENT;
}
/** A directory entry that points at a lower-level table. */
export function isTableEntry(flags: number): boolean {
  return (flags & KIND_MASK) === K_TABLE;
}
/** A leaf or special entry at any level: neither none nor a table. */
export function isLeafEntry(flags: number): boolean {
  const k = flags & KIND_MASK;
  return k !== K_NONE && k !== K_TABLE;
}
/** A swap entry that names a swap slot (the kernel's is_swap_entry() && !non_swap_entry()). */
export function isSwapEntry(flags: number): boolean {
  return (flags & KIND_MASK) === K_SWAP;
}
/** is_migration_entry */
export function isMigrationEntry(flags: number): boolean {
  return (flags & KIND_MASK) === K_MIGRATION;
}
/** is_device_private_entry */
export function isDevicePrivateEntry(flags: number): boolean {
  return (flags & KIND_MASK) === K_DEVICE_PRIVATE;
}
/** is_device_exclusive_entry */
export function isDeviceExclusiveEntry(flags: number): boolean {
  return (flags & KIND_MASK) === K_DEVICE_EXCLUSIVE;
}
/** is_hwpoison_entry */
export function isHwpoisonEntry(flags: number): boolean {
  return (flags & KIND_MASK) === K_HWPOISON;
}
/** pte_write, and for a migration or device entry is_writable_migration_entry / is_writable_device_private_entry. */
export function pteWrite(flags: number): boolean {
  return (flags & E_WRITE) !== 0;
}
/** pte_dirty */
export function pteDirty(flags: number): boolean {
  return (flags & E_DIRTY) !== 0;
}
/** pte_young */
export function pteYoung(flags: number): boolean {
  return (flags & E_YOUNG) !== 0;
}
/** pte_special: no struct page behind the pfn (a pfn map, the zero page). */
export function pteSpecial(flags: number): boolean {
  return (flags & E_SPECIAL) !== 0;
}
/** pte_devmap: maps ZONE_DEVICE memory the CPU can address. */
export function pteDevmap(flags: number): boolean {
  return (flags & E_DEVMAP) !== 0;
}
/** pte_protnone: a NUMA hinting entry, present but inaccessible. */
export function pteProtnone(flags: number): boolean {
  return (flags & E_PROTNONE) !== 0;
}

// ---- building entries from others ----

/** pte_mkwrite */
export function pteMkwrite(flags: number): number {
  return flags | E_WRITE;
}
/** pte_wrprotect */
export function pteWrprotect(flags: number): number {
  return flags & ~E_WRITE;
}
/** pte_mkclean */
export function pteMkclean(flags: number): number {
  return flags & ~E_DIRTY;
}
/** pte_mkyoung */
export function pteMkyoung(flags: number): number {
  return flags | E_YOUNG;
}
/** pte_mkold (what ptep_clear_flush_young leaves) */
export function pteMkold(flags: number): number {
  return flags & ~E_YOUNG;
}
/** pte_mkyoung, and pte_mkdirty for a write. */
export function pteMkaccessed(flags: number, write: boolean): number {
  return flags | E_YOUNG | (write ? E_DIRTY : 0);
}
/** The entry a write fault leaves: writable, dirty, young (maybe_mkwrite(pte_mkdirty(pte_mkyoung()))). */
export function pteMkwriteDirty(flags: number): number {
  return flags | E_WRITE | E_DIRTY | E_YOUNG;
}
/** pte_modify to the VMA's protection after a NUMA hinting fault: accessible again. */
export function pteClearProtnone(flags: number): number {
  return flags & ~E_PROTNONE;
}
/** The same bits under another kind (a present entry becoming device-exclusive and back). */
export function entryWithKind(flags: number, kind: EntryKind): number {
  return kind | (flags & ~KIND_MASK);
}
/** restore_exclusive_pte: the present entry a device-exclusive one stood for, young, with its write, dirty and special bits. */
export function restoreExclusivePte(flags: number): number {
  return K_PRESENT | E_YOUNG | (flags & (E_WRITE | E_DIRTY | E_SPECIAL));
}
/** The bits a swap-like entry carries over from the entry it replaces and back (soft-dirty, uffd-wp). */
export function entryKeepBits(flags: number): number {
  return flags & (E_SOFT_DIRTY | E_UFFD_WP);
}
/** make_migration_entry (make_writable_migration_entry for a writable one): dirty and young are kept, as the kernel keeps them in the entry. */
export function mkMigrationEntry(flags: number, write: boolean): number {
  return K_MIGRATION | (write ? E_WRITE : 0) | (flags & (E_DIRTY | E_YOUNG | E_SOFT_DIRTY | E_UFFD_WP));
}
/** make_(writable_)device_private_entry */
export function mkDevicePrivateEntry(write: boolean, keep = 0): number {
  return K_DEVICE_PRIVATE | (write ? E_WRITE : 0) | keep;
}

/** Entries that reference a frame in val (for the reverse map and refcounting). */
export function kindHasPfn(kind: number): boolean {
  return kind === K_PRESENT || kind === K_MIGRATION || kind === K_DEVICE_PRIVATE || kind === K_DEVICE_EXCLUSIVE || kind === K_HWPOISON;
}

/** For the default of an exhaustive switch over EntryKind: a kind that cannot be. */
export function badKind(kind: never): never {
  throw new Error(`page-table entry of unknown kind ${String(kind)}`);
}

/** Order (log2 of the pages) of a leaf at each level: 0, HPAGE_PMD_ORDER, HPAGE_PUD_ORDER, ... */
export const LEVEL_ORDER = [0, HPAGE_PMD_ORDER, HPAGE_PUD_ORDER, 27, 36];

// Table storage is carved out of shared chunks: one backing store per 64 tables instead of
// two per table keeps allocation (and the GC's external-memory accounting) off fork's and
// the fault path's critical path. Views never overlap; a chunk is freed with its last view.
const CHUNK_TABLES = 64;
let valChunk = new Uint32Array(0);
let flgChunk = new Uint16Array(0);
let chunkUsed = CHUNK_TABLES;

function tableStorage(node: { val: Uint32Array; flg: Uint16Array }): void {
  if (chunkUsed === CHUNK_TABLES) {
    valChunk = new Uint32Array(CHUNK_TABLES * PTRS_PER_TABLE);
    flgChunk = new Uint16Array(CHUNK_TABLES * PTRS_PER_TABLE);
    chunkUsed = 0;
  }
  const off = chunkUsed++ * PTRS_PER_TABLE;
  node.val = valChunk.subarray(off, off + PTRS_PER_TABLE);
  node.flg = flgChunk.subarray(off, off + PTRS_PER_TABLE);
}

export class PtNode {
  val!: Uint32Array;
  flg!: Uint16Array;
  /** Lower-level tables, for levels above PTE. */
  readonly child: (PtNode | undefined)[] | null;
  /** Non-none entries. */
  used = 0;
  constructor(readonly level: number) {
    tableStorage(this);
    this.child = level > 0 ? new Array<PtNode | undefined>(PTRS_PER_TABLE) : null;
  }
}

/** Pages covered by one entry at each level. */
export const LEVEL_PAGES = [1, 512, 262144, 134217728, 68719476736];

/** Where a lookup ended: the node and index of the entry that covers the address. */
export interface PtSlot {
  node: PtNode;
  idx: number;
  level: number;
}

export class PageTable {
  readonly root: PtNode;
  /** Table pages allocated, for the memory accounting of benchmarks. */
  nodes = 1;

  constructor(readonly levels: 4 | 5) {
    this.root = new PtNode(levels - 1);
  }

  static index(vpn: number, level: number): number {
    // vpn < 2^45 and every quotient is exact in a double; `& 511` takes its low bits.
    return level === 0 ? vpn & 511 : Math.floor(vpn / LEVEL_PAGES[level]!) & 511;
  }

  /**
   * Walk down towards `vpn` and stop at the lowest existing entry: a PTE slot, or a huge
   * leaf, non-present or none entry at a higher level. Allocation-free: fills `out`.
   */
  lookup(vpn: number, out: PtSlot): void {
    let node = this.root;
    for (;;) {
      const idx = PageTable.index(vpn, node.level);
      if (node.level === 0 || (node.flg[idx]! & KIND_MASK) !== K_TABLE) {
        out.node = node;
        out.idx = idx;
        out.level = node.level;
        return;
      }
      node = node.child![idx]!;
    }
  }

  // The last PTE table pteTable found, and the vpn its first entry maps (-1: none).
  private cachedBase = -1;
  private cachedPte: PtNode | undefined = undefined;

  /**
   * tableAt(vpn, 0), keeping the table found for the next call: reverse-map walks over a
   * range's pages (migration's unmap and remap) look up the same table page after page. A
   * table freed drops it.
   */
  pteTable(vpn: number): PtNode | undefined {
    const base = vpn - (vpn & 511);
    if (base === this.cachedBase) return this.cachedPte;
    const t = this.tableAt(vpn, 0);
    if (t) {
      this.cachedBase = base;
      this.cachedPte = t;
    }
    return t;
  }

  private forgetPteTable(): void {
    this.cachedBase = -1;
    this.cachedPte = undefined;
  }

  /** The table at `level` covering vpn, or undefined if a level above it is not a table. */
  tableAt(vpn: number, level: number): PtNode | undefined {
    let node = this.root;
    while (node.level > level) {
      const idx = PageTable.index(vpn, node.level);
      if ((node.flg[idx]! & KIND_MASK) !== K_TABLE) return undefined;
      node = node.child![idx]!;
    }
    return node;
  }

  /**
   * The table at `level` covering vpn, allocating the tables above it. Returns undefined if a
   * non-table entry (a huge leaf, a special entry) sits above that level.
   */
  ensureTable(vpn: number, level: number): PtNode | undefined {
    let node: PtNode | undefined = this.root;
    while (node && node.level > level) node = this.ensureChild(node, PageTable.index(vpn, node.level));
    return node;
  }

  /**
   * The lower-level table under entry idx of an upper-level table, allocated if the entry is
   * none (pmd_alloc, pte_alloc); undefined if the entry is a leaf or a special entry.
   */
  ensureChild(node: PtNode, idx: number): PtNode | undefined {
    const kind = node.flg[idx]! & KIND_MASK;
    if (kind === K_TABLE) return node.child![idx]!;
    if (kind !== K_NONE) return undefined;
    const c = new PtNode(node.level - 1);
    this.nodes++;
    node.child![idx] = c;
    node.flg[idx] = K_TABLE;
    node.used++;
    return c;
  }

  /** Replace a table entry with a fresh table of the level below (used to split a huge leaf). */
  installTable(parent: PtNode, idx: number, table: PtNode): void {
    if ((parent.flg[idx]! & KIND_MASK) === K_NONE) parent.used++;
    parent.child![idx] = table;
    parent.flg[idx] = K_TABLE;
    parent.val[idx] = 0;
    this.nodes++;
  }

  /** pmd_free after the table was emptied (collapse_huge_page): the entry above becomes none. */
  freeTable(parent: PtNode, idx: number): void {
    parent.child![idx] = undefined;
    PageTable.clear(parent, idx);
    this.nodes--;
    this.forgetPteTable();
  }

  /** Set an entry, keeping the node's used count. */
  static set(node: PtNode, idx: number, flags: number, val: number): void {
    const was = node.flg[idx]! & KIND_MASK;
    const now = flags & KIND_MASK;
    // Without a branch per case: code that has only filled entries so far keeps its
    // optimized code when it first clears one.
    node.used += (now !== K_NONE ? 1 : 0) - (was !== K_NONE ? 1 : 0);
    node.flg[idx] = flags;
    node.val[idx] = val;
  }

  static clear(node: PtNode, idx: number): void {
    if ((node.flg[idx]! & KIND_MASK) !== K_NONE) node.used--;
    node.flg[idx] = 0;
    node.val[idx] = 0;
  }

  /**
   * free_pgtables: drop empty tables under [startVpn, endVpn), bottom up. Tables that still
   * hold entries stay.
   */
  freeEmpty(startVpn: number, endVpn: number): void {
    this.freeEmptyIn(this.root, startVpn, endVpn, 0);
  }

  private freeEmptyIn(node: PtNode, s: number, e: number, base: number): void {
    if (node.level === 0) return;
    const span = LEVEL_PAGES[node.level]!;
    const first = Math.max(0, Math.floor((s - base) / span));
    const last = Math.min(511, Math.floor((e - 1 - base) / span));
    for (let i = first; i <= last; i++) {
      if ((node.flg[i]! & KIND_MASK) !== K_TABLE) continue;
      const c = node.child![i]!;
      this.freeEmptyIn(c, s, e, base + i * span);
      if (c.used === 0) {
        node.child![i] = undefined;
        node.flg[i] = 0;
        node.used--;
        this.nodes--;
        this.forgetPteTable();
      }
    }
  }

  /**
   * Visit every non-none entry (leaf or special, at any level) in [startVpn, endVpn) in
   * address order, skipping missing tables. The visitor gets the node, index, level and the
   * vpn the entry starts at; huge leaves may start before startVpn.
   */
  forEach(startVpn: number, endVpn: number, fn: (node: PtNode, idx: number, level: number, vpn: number) => void): void {
    this.forEachIn(this.root, startVpn, endVpn, 0, fn);
  }

  private forEachIn(node: PtNode, s: number, e: number, base: number, fn: (node: PtNode, idx: number, level: number, vpn: number) => void): void {
    const span = LEVEL_PAGES[node.level]!;
    const first = Math.max(0, Math.floor((s - base) / span));
    const last = Math.min(511, Math.floor((e - 1 - base) / span));
    for (let i = first; i <= last; i++) {
      const kind = node.flg[i]! & KIND_MASK;
      if (kind === K_NONE) continue;
      if (kind === K_TABLE) this.forEachIn(node.child![i]!, s, e, base + i * span, fn);
      else fn(node, i, node.level, base + i * span);
    }
  }

  /**
   * Visit every table that may hold leaf entries in [startVpn, endVpn) (lower tables before
   * the huge leaves of the table above them):
   * fn(node, first, last, baseVpn) gets the index range of the table inside the span
   * (entry i covers vpn baseVpn + i * LEVEL_PAGES[node.level]). Upper-level tables are
   * visited too (for their huge leaves and special entries; their K_TABLE entries are the
   * callee's to skip). Lets hot loops run over the typed arrays without a call per entry.
   */
  forEachTable(startVpn: number, endVpn: number, fn: (node: PtNode, first: number, last: number, baseVpn: number) => void): void {
    this.forEachTableIn(this.root, startVpn, endVpn, 0, fn);
  }

  private forEachTableIn(node: PtNode, s: number, e: number, base: number, fn: (node: PtNode, first: number, last: number, baseVpn: number) => void): void {
    const span = LEVEL_PAGES[node.level]!;
    const first = Math.max(0, Math.floor((s - base) / span));
    const last = Math.min(511, Math.floor((e - 1 - base) / span));
    if (node.level === 0) {
      fn(node, first, last, base);
      return;
    }
    let leaves = false;
    for (let i = first; i <= last; i++) {
      const kind = node.flg[i]! & KIND_MASK;
      if (kind === K_TABLE) this.forEachTableIn(node.child![i]!, s, e, base + i * span, fn);
      else if (kind !== K_NONE) leaves = true;
    }
    if (leaves) fn(node, first, last, base);
  }

  /**
   * The tables forEachTable would visit, as a list: a hot loop over it in the caller needs no
   * callback (a fresh closure per call defeats V8's call-target feedback after a GC).
   */
  tables(startVpn: number, endVpn: number): TableSpan[] {
    const out: TableSpan[] = [];
    this.forEachTable(startVpn, endVpn, (node, first, last, base) => void out.push({ node, first, last, base }));
    return out;
  }
}

/** One table of a span: entries first..last of node, the first covering vpn base + first * LEVEL_PAGES[level]. */
export interface TableSpan {
  node: PtNode;
  first: number;
  last: number;
  base: number;
}
