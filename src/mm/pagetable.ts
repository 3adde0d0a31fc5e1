// The multi-level page table. Every node is one table page of 512 entries held in two typed
// arrays (value and flags), never an object per entry. An entry at any level is one of the
// kinds below; at PMD and PUD level a PRESENT entry is a huge leaf. Levels: 0 = PTE, 1 = PMD,
// 2 = PUD, 3 = P4D or PGD, 4 = PGD with 5-level paging.

import { PTRS_PER_TABLE } from './constants.js';

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

export const E_WRITE = 1 << 4;
export const E_DIRTY = 1 << 5;
export const E_YOUNG = 1 << 6;
export const E_SPECIAL = 1 << 7; // no struct page behind it (pfnmap, zero page)
export const E_PROTNONE = 1 << 8; // NUMA hinting: present but inaccessible
export const E_SOFT_DIRTY = 1 << 9;
export const E_DEVMAP = 1 << 10; // maps ZONE_DEVICE memory (coherent)
export const E_UFFD_WP = 1 << 11;

/** Entries that reference a frame in val (for the reverse map and refcounting). */
export function kindHasPfn(kind: number): boolean {
  return kind === K_PRESENT || kind === K_MIGRATION || kind === K_DEVICE_PRIVATE || kind === K_DEVICE_EXCLUSIVE || kind === K_HWPOISON;
}

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
    let node = this.root;
    while (node.level > level) {
      const idx = PageTable.index(vpn, node.level);
      const kind = node.flg[idx]! & KIND_MASK;
      if (kind === K_NONE) {
        const c = new PtNode(node.level - 1);
        this.nodes++;
        node.child![idx] = c;
        node.flg[idx] = K_TABLE;
        node.used++;
        node = c;
      } else if (kind === K_TABLE) {
        node = node.child![idx]!;
      } else {
        return undefined;
      }
    }
    return node;
  }

  /** Replace a table entry with a fresh table of the level below (used to split a huge leaf). */
  installTable(parent: PtNode, idx: number, table: PtNode): void {
    if ((parent.flg[idx]! & KIND_MASK) === K_NONE) parent.used++;
    parent.child![idx] = table;
    parent.flg[idx] = K_TABLE;
    parent.val[idx] = 0;
    this.nodes++;
  }

  /** Set an entry, keeping the node's used count. */
  static set(node: PtNode, idx: number, flags: number, val: number): void {
    const was = node.flg[idx]! & KIND_MASK;
    const now = flags & KIND_MASK;
    if (was === K_NONE && now !== K_NONE) node.used++;
    else if (was !== K_NONE && now === K_NONE) node.used--;
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
