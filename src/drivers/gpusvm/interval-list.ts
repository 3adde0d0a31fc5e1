// The kernel keeps notifiers and ranges in interval trees with a list beside each in address
// order. gpusvm's intervals never overlap (notifiers are aligned windows, ranges are cut so
// as not to overlap), so a sorted array and a binary search give the same lookups.

/** Index of the first interval of a sorted, non-overlapping list that ends above addr (list.length if none). */
export function firstEndingAbove(list: ReadonlyArray<{ readonly end: number }>, addr: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The intervals of a sorted, non-overlapping list that overlap [start, end), in order. */
export function intervalsIn<T extends { readonly start: number; readonly end: number }>(list: readonly T[], start: number, end: number): T[] {
  const out: T[] = [];
  for (let i = firstEndingAbove(list, start); i < list.length && list[i]!.start < end; i++) out.push(list[i]!);
  return out;
}
