// The migrate_vma arguments of UVM's migrations, with src and dst arrays that belong to the
// driver, as the kernel's struct migrate_vma leaves them to the caller: UVM keeps them in its
// service context (va_block_context->hmm.src_pfns / dst_pfns), so a migration allocates
// nothing. One pair of 512-entry buffers, handed out as views of the exact length migrate_vma
// wants; a migration started while the pair is in use gets arrays of its own.

import { newMigrateVma, type MigrateVma } from '../../../mm/migrate_pfn.js';
import type { Vma } from '../../../mm/vma.js';
import { PAGES_PER_UVM_VA_BLOCK } from './policy_types.js';

const src = new Float64Array(PAGES_PER_UVM_VA_BLOCK);
const dst = new Float64Array(PAGES_PER_UVM_VA_BLOCK);
const srcViews: Float64Array[] = [];
const dstViews: Float64Array[] = [];
let inUse: MigrateVma | null = null;
// The one MigrateVma handed out on the shared arrays, refilled per migration (no object per migration either).
const shared: MigrateVma = { vma: null!, start: 0, end: 0, src, dst, npages: 0, cpages: 0, pgmapOwner: null, flags: 0, faultPage: -1 };

/** A MigrateVma for [start, end) of vma (at most one VA block), on the shared arrays when they are free. */
export function blockMigrateVma(vma: Vma, start: number, end: number, flags: number, owner: unknown, faultPage = -1): MigrateVma {
  const n = (end - start) / 4096;
  if (inUse || !(n >= 1 && n <= PAGES_PER_UVM_VA_BLOCK) || !Number.isInteger(n)) return newMigrateVma(vma, start, end, flags, owner, faultPage);
  const s = (srcViews[n] ??= src.subarray(0, n));
  const d = (dstViews[n] ??= dst.subarray(0, n));
  s.fill(0);
  d.fill(0);
  const a = shared;
  a.vma = vma;
  a.start = start;
  a.end = end;
  a.src = s;
  a.dst = d;
  a.npages = 0;
  a.cpages = 0;
  a.pgmapOwner = owner;
  a.flags = flags;
  a.faultPage = faultPage;
  inUse = a;
  return a;
}

/** The migration of `args` is over (finalized, or its setup failed): its arrays are free again. */
export function releaseMigrateVma(args: MigrateVma): void {
  if (args === inUse) inUse = null;
}
