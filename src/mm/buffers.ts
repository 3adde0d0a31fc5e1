// Per-call buffers of the migration paths (the arrays the kernel kvcalloc's and kvfree's around
// one migrate_vma: src and dst, drm_pagemap's pfn lists, release_pages' batch), reused from
// call to call. A typed array of a few KiB is a host allocation with a GC finalizer, ~10 µs
// to make and collect: more than the 512 pages of a 2 MiB migration that it describes take to
// move. A buffer is taken zeroed, as kvcalloc gives it; one never given back (an error path,
// a caller that keeps it) is garbage like any other, so giving back is an optimisation only.

/**
 * Buffers kept per element type: a few migrations in flight at once, as drivers nest them. One
 * take/give pair per type rather than one generic pair: each call site then sees one kind of
 * array, and V8 keeps the loops that index them monomorphic.
 */
const MAX_KEPT = 8;
const f64: Float64Array[] = [];
const i32: Int32Array[] = [];

/** A zeroed Float64Array of n entries (kvcalloc). */
export function takeF64(n: number): Float64Array {
  for (let i = f64.length - 1; i >= 0; i--) {
    const a = f64[i]!;
    if (a.length !== n) continue;
    f64[i] = f64[f64.length - 1]!;
    f64.pop();
    return a.fill(0);
  }
  return new Float64Array(n);
}

/** A buffer from takeF64 (or any) back for reuse (kvfree): the caller no longer reads or writes it. */
export function giveF64(a: Float64Array): void {
  if (f64.length < MAX_KEPT) f64.push(a);
}

/** A zeroed Int32Array of n entries (kvcalloc). */
export function takeI32(n: number): Int32Array {
  for (let i = i32.length - 1; i >= 0; i--) {
    const a = i32[i]!;
    if (a.length !== n) continue;
    i32[i] = i32[i32.length - 1]!;
    i32.pop();
    return a.fill(0);
  }
  return new Int32Array(n);
}

/** A buffer from takeI32 (or any) back for reuse (kvfree): the caller no longer reads or writes it. */
export function giveI32(a: Int32Array): void {
  if (i32.length < MAX_KEPT) i32.push(a);
}
