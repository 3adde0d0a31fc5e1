// Prefetchers: which pages to bring along with the faulted ones of a VA block.
//
// * tree (uvm_perf_prefetch.c, UVM's default): a bitmap tree over the block's pages whose
//   leaves are the pages resident at the destination or faulting now. Pages are first grown
//   to whole big pages (64 KiB) where a page faulted and none is thrashing
//   (grow_fault_granularity). Then, for each faulted page, walk up the tree; the largest
//   subtree whose populated leaves are more than `threshold` percent of it (51 by default)
//   becomes the prefetch region (compute_prefetch_region). On first touch at the preferred
//   location the whole region is populated.
// * none: on demand only.
// * seq64k: the aligned 64 KiB around each faulted page (UVMSmart's sequential-local 64K).
// * random4k: one random page of the region per faulted page (UVMSmart's Random-4K).

import { BIG_PAGE_PAGES, type PrefetchInput, type PrefetchPolicy } from './policy_types.js';

function fill(out: Uint8Array, from: number, to: number): void {
  for (let p = from; p < to; p++) out[p] = 1;
}

/** The bitmap tree of one computation, in scratch arrays (no allocation per fault). */
class BitmapTree {
  readonly pages = new Uint8Array(512 + BIG_PAGE_PAGES);
  private readonly prefix = new Uint16Array(512 + BIG_PAGE_PAGES + 1);
  offset = 0;
  leafCount = 0;
  levelCount = 0;

  /** Count the leaves once (after the grow step), so each subregion count is O(1). */
  sum(): void {
    let s = 0;
    this.prefix[0] = 0;
    for (let i = 0; i < this.leafCount; i++) {
      s += this.pages[i]!;
      this.prefix[i + 1] = s;
    }
  }

  count(start: number, end: number): number {
    return this.prefix[end]! - this.prefix[start]!;
  }
}

/** grow_fault_granularity over pages [from, to) (one big page, or the region's unaligned ends): all leaves set if one faulted and none thrashes. */
function grow(tree: BitmapTree, first: number, faulted: Uint8Array, thrashing: Uint8Array | null, from: number, to: number): void {
  let any = false;
  for (let p = from; p < to; p++) {
    if (thrashing && thrashing[p]) return;
    if (faulted[p]) any = true;
  }
  if (any) for (let p = from; p < to; p++) tree.pages[p - first + tree.offset] = 1;
}

function ilog2RoundupPow2(n: number): number {
  let l = 0;
  while (1 << l < n) l++;
  return l;
}

export class TreePrefetcher implements PrefetchPolicy {
  readonly name = 'tree';
  private readonly tree = new BitmapTree();

  compute(input: PrefetchInput, out: Uint8Array): void {
    const { first, outer, faulted, resident, thrashing } = input;
    if (input.firstTouchAtPreferred) {
      fill(out, first, outer);
      return;
    }
    const tree = this.tree;
    // init_bitmap_tree_from_region: leaves = resident | faulted, shifted to the region start.
    const n = outer - first;
    // update_bitmap_tree_from_va_block: align the tree to big pages with ghost leaves.
    const bigFirst = Math.ceil(first / BIG_PAGE_PAGES) * BIG_PAGE_PAGES;
    const bigOuter = Math.floor(outer / BIG_PAGE_PAGES) * BIG_PAGE_PAGES;
    const hasBig = bigFirst < bigOuter;
    tree.offset = hasBig && bigFirst > first ? BIG_PAGE_PAGES - (bigFirst - first) : 0;
    tree.leafCount = n + tree.offset;
    tree.levelCount = ilog2RoundupPow2(tree.leafCount) + 1;
    tree.pages.fill(0, 0, tree.leafCount);
    for (let p = first; p < outer; p++) tree.pages[p - first + tree.offset] = resident[p]! | faulted[p]!;
    // grow_fault_granularity
    if (!hasBig) grow(tree, first, faulted, thrashing, first, outer);
    else {
      if (bigFirst > first) grow(tree, first, faulted, thrashing, first, bigFirst);
      for (let p = bigFirst; p < bigOuter; p += BIG_PAGE_PAGES) grow(tree, first, faulted, thrashing, p, p + BIG_PAGE_PAGES);
      if (bigOuter < outer) grow(tree, first, faulted, thrashing, bigOuter, outer);
    }
    tree.sum();
    // compute_prefetch_mask: faulted pages that are not thrashing, in order.
    const threshold = input.threshold;
    for (let p = first; p < outer; p++) {
      if (!faulted[p] || (thrashing && thrashing[p])) continue;
      // compute_prefetch_region: the largest subregion around the leaf over the threshold;
      // from the root down, the first one found (the kernel walks up and keeps the last).
      const leaf = p - first + tree.offset;
      let rs = 0;
      let re = 0;
      for (let level = 0; level < tree.levelCount; level++) {
        const maxLeaves = 1 << (tree.levelCount - 1 - level);
        const start = leaf - (leaf & (maxLeaves - 1));
        const end = Math.min(start + maxLeaves, tree.leafCount);
        if (tree.count(start, end) * 100 > (end - start) * threshold) {
          rs = start;
          re = end;
          break;
        }
      }
      if (re === 0) continue;
      // Clamp the region to real pages.
      const from = Math.max(first, rs + first - tree.offset);
      const to = Math.min(outer, Math.max(first, re + first - tree.offset));
      fill(out, from, to);
      if (to === outer) break; // prefetched to the end of the region
    }
  }
}

export class NoPrefetcher implements PrefetchPolicy {
  readonly name = 'none';
  compute(_input: PrefetchInput, _out: Uint8Array): void {}
}

export class Seq64kPrefetcher implements PrefetchPolicy {
  readonly name = 'seq64k';
  compute(input: PrefetchInput, out: Uint8Array): void {
    for (let p = input.first; p < input.outer; p++) {
      if (!input.faulted[p]) continue;
      const base = p - (p % BIG_PAGE_PAGES);
      fill(out, Math.max(input.first, base), Math.min(input.outer, base + BIG_PAGE_PAGES));
    }
  }
}

export class Random4kPrefetcher implements PrefetchPolicy {
  readonly name = 'random4k';
  compute(input: PrefetchInput, out: Uint8Array): void {
    const n = input.outer - input.first;
    for (let p = input.first; p < input.outer; p++) {
      if (!input.faulted[p]) continue;
      out[input.first + Math.floor(input.random() * n)] = 1;
    }
  }
}

export const PREFETCH_POLICIES: Record<string, () => PrefetchPolicy> = {
  tree: () => new TreePrefetcher(),
  none: () => new NoPrefetcher(),
  seq64k: () => new Seq64kPrefetcher(),
  random4k: () => new Random4kPrefetcher(),
};
