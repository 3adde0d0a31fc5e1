// The encoding and the struct of a migration (include/linux/migrate.h): MIGRATE_PFN_* entries,
// one per page, in src and dst, and struct migrate_vma.
//
// Encoded values (pfn * 64 + flags) exceed 32 bits: they are built and split with arithmetic,
// never with 32-bit shifts, and stored in Float64Arrays (or plain number arrays). A flag is
// tested with `&` all the same: ToInt32 keeps an integer's low 32 bits exactly, and it is a
// machine instruction where `%` of a double is a call to fmod.

import { giveF64, takeF64 } from './buffers.js';
import { PAGE_SIZE } from './constants.js';
import type { Vma } from './vma.js';

export const MIGRATE_VMA_SELECT_SYSTEM = 1;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 2;
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 4;
/** Take a THP or device folio mapped by a PMD whole, as one MIGRATE_PFN_COMPOUND entry (6.19+). */
export const MIGRATE_VMA_SELECT_COMPOUND = 8;

export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_WRITE = 1 << 3;
/** The entry stands for a whole PMD-size folio (src) or destination folio (dst); the entries it covers are 0. */
export const MIGRATE_PFN_COMPOUND = 1 << 4;
export const MIGRATE_PFN_SHIFT = 6;

/** One encoded entry per page: a Float64Array, or a plain array of numbers. */
export type MigratePfnArray = Float64Array | number[];

const PFN_MUL = 2 ** MIGRATE_PFN_SHIFT;

/** migrate_pfn(pfn): the pfn, shifted, with VALID. */
export function migratePfn(pfn: number): number {
  return pfn * PFN_MUL + MIGRATE_PFN_VALID;
}
/** migrate_pfn_to_page: the pfn of an entry, or -1 without VALID. */
export function migratePfnToPage(v: number): number {
  return migratePfnHas(v, MIGRATE_PFN_VALID) ? Math.floor(v / PFN_MUL) : -1;
}
/** Whether an encoded entry has a MIGRATE_PFN_* bit (use this, not `&`: entries exceed 32 bits). */
export function migratePfnHas(v: number, bit: number): boolean {
  return v >= 0 && (v & bit) !== 0; // a negative value (no entry) has no bit, as with the remainder
}
/** @internal The MIGRATE_PFN_* bits of an entry (its low MIGRATE_PFN_SHIFT bits). */
export function migratePfnFlags(v: number): number {
  return v % PFN_MUL;
}
/** @internal An entry for pfn with the given MIGRATE_PFN_* bits (VALID among them). */
export function migratePfnOf(pfn: number, flags: number): number {
  return pfn * PFN_MUL + flags;
}
/** @internal An entry with a MIGRATE_PFN_* bit cleared. */
export function migratePfnWithout(v: number, bit: number): number {
  return migratePfnHas(v, bit) ? v - bit : v;
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

/** A MigrateVma for [start, end) of vma, with zeroed src/dst arrays of the right length. */
export function newMigrateVma(vma: Vma, start: number, end: number, flags: number, pgmapOwner: unknown, faultPage = -1): MigrateVma {
  const n = Math.max(0, Math.floor((end - start) / PAGE_SIZE));
  return { vma, start, end, src: takeF64(n), dst: takeF64(n), npages: 0, cpages: 0, pgmapOwner, flags, faultPage };
}

/** @internal The kvfree of a finished migration's src and dst: newMigrateVma may hand them out again. */
export function freeMigrateVma(args: MigrateVma): void {
  if (args.src instanceof Float64Array) giveF64(args.src);
  if (args.dst instanceof Float64Array) giveF64(args.dst);
}

/** @internal */
export function isPfnArray(a: unknown): a is MigratePfnArray {
  return a instanceof Float64Array || Array.isArray(a);
}
