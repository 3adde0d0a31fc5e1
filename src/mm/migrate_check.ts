// The checks migrate_vma_pages / _finalize and migrate_device_pages / _finalize make of the
// driver's arrays (mm/migrate_device.c trusts its driver; hmmsim says EINVAL where the kernel
// would corrupt memory): every entry encoded, and the destination pages real, allocated, given
// once and none of them a source. @internal to migrate_device.ts.

import { fail } from './errno.js';
import { HPAGE_PMD_ORDER, PMD_NR } from './constants.js';
import type { Machine } from './machine.js';
import type { PhysMem } from './physmem.js';
import { PG_buddy, PG_head, PG_reserved, PG_scratch, PG_tail } from './page.js';
import { isPfnArray, MIGRATE_PFN_COMPOUND, migratePfnHas, migratePfnToPage, type MigratePfnArray } from './migrate_pfn.js';
import { MIGRATE_CHUNK } from './migrate_entries.js';

/** Every entry an encoded migrate pfn (a non-negative integer): NaN or -1 is EINVAL, not "no page". */
export function checkEntries(a: MigratePfnArray, n: number, what: string): void {
  for (let i = 0; i < n; i++) {
    const v = a[i]!;
    if (!Number.isSafeInteger(v) || v < 0) fail('EINVAL', `${what}[${i}] = ${v} is not a migrate pfn entry`);
  }
}

/** The arrays and count of the by-pfn calls: npages a non-negative integer, both arrays that long, every entry encoded. */
export function checkDeviceArgs(src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  if (!Number.isSafeInteger(npages) || npages < 0) fail('EINVAL', `bad page count ${npages}`);
  if (!isPfnArray(src) || !isPfnArray(dst) || src.length < npages || dst.length < npages) fail('EINVAL', 'bad src or dst array');
  checkEntries(src, npages, 'src');
  checkEntries(dst, npages, 'dst');
}

/**
 * The driver's destination pages: each must be an allocated (referenced) small page, or the
 * head of a PMD-size folio given with MIGRATE_PFN_COMPOUND, given once, and not one of the
 * pages being migrated. EINVAL before anything moves otherwise (the kernel would corrupt
 * memory).
 */
export function checkDst(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  // The common case in one pass: destinations in rising (or falling) order are distinct, and
  // sources outside their span are none of them. Anything else is decided by marking
  // (checkDstMarked), which gives the same answer, the same first problem included.
  // Both loops run MIGRATE_CHUNK entries a call; `run` carries first, last, dir.
  const run = dstRun;
  run[0] = -1;
  run[1] = -1;
  run[2] = 0;
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) {
    if (!dstRunChunk(machine.phys, dst, i, Math.min(npages, i + MIGRATE_CHUNK), npages, run)) return checkDstMarked(machine, src, dst, npages);
  }
  const first = run[0]!;
  const last = run[1]!;
  if (last < 0) return;
  const lo = Math.min(first, last);
  const hi = Math.max(first, last);
  for (let i = 0; i < npages; i += MIGRATE_CHUNK) {
    if (anyInSpan(src, i, Math.min(npages, i + MIGRATE_CHUNK), lo, hi)) return checkDstMarked(machine, src, dst, npages);
  }
}

/** checkDst's first, last destination and direction so far (a frame number fits an int32). */
const dstRun = new Int32Array(3);

/**
 * checkDst's first pass over dst[from, to): each destination checked on its own (EINVAL), in
 * rising or falling order with the ones before it (run: first, last, dir); false when not.
 */
function dstRunChunk(phys: PhysMem, dst: MigratePfnArray, from: number, to: number, npages: number, run: Int32Array): boolean {
  let last = run[1]!;
  let dir = run[2]!;
  for (let i = from; i < to; i++) {
    const d = migratePfnToPage(dst[i]!);
    if (d < 0) continue;
    if (last < 0) run[0] = d;
    else {
      const step = d > last ? 1 : d < last ? -1 : 0;
      if (step === 0 || step === -dir) return false;
      dir = step;
    }
    const bad = dstProblem(phys, dst[i]!, d, i, npages);
    if (bad) fail('EINVAL', bad);
    last = d;
  }
  run[1] = last;
  run[2] = dir;
  return true;
}

/** Whether a source page of src[from, to) lies in [lo, hi]. */
function anyInSpan(src: MigratePfnArray, from: number, to: number, lo: number, hi: number): boolean {
  for (let i = from; i < to; i++) {
    const s = migratePfnToPage(src[i]!);
    if (s <= hi && s >= lo) return true;
  }
  return false;
}

/** checkDst for any order: a scratch page flag marks the destinations seen, so the check allocates nothing. */
function checkDstMarked(machine: Machine, src: MigratePfnArray, dst: MigratePfnArray, npages: number): void {
  const phys = machine.phys;
  const f = phys.frames;
  let bad = '';
  let marked = 0;
  for (; marked < npages; marked++) {
    const d = migratePfnToPage(dst[marked]!);
    if (d < 0) continue;
    bad = d < f.capacity && f.flags[d]! & PG_scratch ? `destination page ${d} given twice` : dstProblem(phys, dst[marked]!, d, marked, npages);
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

/** What is wrong with destination page d (dst entry `entry`, at index i) on its own, or ''. */
function dstProblem(phys: Machine['phys'], entry: number, d: number, i: number, npages: number): string {
  const f = phys.frames;
  if (!Number.isSafeInteger(d) || d >= f.capacity) return `destination pfn ${d} does not exist`;
  const flags = f.flags[d]!;
  const compound = migratePfnHas(entry, MIGRATE_PFN_COMPOUND);
  if (f.refcount[d]! <= 0 || flags & (PG_buddy | PG_tail | PG_reserved)) return `destination page ${d} is not allocated`;
  if (flags & PG_head && !(compound && f.order(d) === HPAGE_PMD_ORDER)) return `destination page ${d} is a compound page without MIGRATE_PFN_COMPOUND`;
  if (compound && !(flags & PG_head)) return `destination page ${d} has MIGRATE_PFN_COMPOUND but is a small page`;
  if (flags & PG_head && i + PMD_NR > npages) return `destination folio ${d} at entry ${i} does not fit the range`;
  if (d >= phys.ramFrames && !phys.pagemapOf(d)) return `destination pfn ${d} is not memory`;
  return '';
}
