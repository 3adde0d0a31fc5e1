// Growable typed columns for the recorder: one typed array per field, doubled when full, so
// recording an event allocates nothing.

import { type Column, type ColumnType, type NumArray, columnBytes, newArray, toBase64, varintBytes } from './format.js';

export class GrowColumn {
  arr: NumArray;
  n = 0;
  constructor(readonly type: ColumnType, capacity = 1024) {
    this.arr = newArray(type, capacity);
  }

  push(v: number): void {
    if (this.n === this.arr.length) {
      const g = newArray(this.type, this.arr.length * 2);
      g.set(this.arr as never);
      this.arr = g;
    }
    this.arr[this.n++] = v;
  }

  get last(): number {
    return this.arr[this.n - 1]!;
  }
  set last(v: number) {
    this.arr[this.n - 1] = v;
  }
}

/** Compress bytes (gzip); the recorder is given one so that this module needs no Node API. */
export type Compress = (bytes: Uint8Array) => Uint8Array;

/**
 * How columns are written. 'fixed': absolute values at their type's width, so a reader gets
 * typed arrays straight from the inflated bytes (no per-value work: the fastest to load).
 * 'varint': integer columns wider than a byte as zigzag varints of their differences (the
 * smallest files, about half the size, but a reader decodes every value).
 */
export type Encoding = 'fixed' | 'varint';

export function encodeColumn(type: ColumnType, values: ArrayLike<number>, n: number, delta: boolean, gzip: Compress | null, encoding: Encoding = 'fixed'): Column {
  let varint = encoding === 'varint' && type !== 'u8';
  for (let i = 0; varint && i < n; i++) varint = Number.isSafeInteger(values[i]!);
  if (!varint) {
    delta = false;
    type = narrowest(values, n);
  }
  const raw = varint ? varintBytes(values, n, delta) : columnBytes(type, values, n, delta);
  const data = gzip ? gzip(raw) : raw;
  const col: Column = { type, length: n, data: toBase64(data) };
  if (delta) col.delta = true;
  if (varint) col.enc = 'varint';
  if (gzip) col.gzip = true;
  return col;
}

/** The narrowest type that holds every value exactly. */
function narrowest(values: ArrayLike<number>, n: number): ColumnType {
  let min = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v)) return 'f64';
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min >= 0) return max < 2 ** 8 ? 'u8' : max < 2 ** 16 ? 'u16' : max < 2 ** 32 ? 'u32' : 'f64';
  return min >= -(2 ** 31) && max < 2 ** 31 ? 'i32' : 'f64';
}

export function encodeGrow(c: GrowColumn, delta: boolean, gzip: Compress | null, encoding: Encoding = 'fixed'): Column {
  return encodeColumn(c.type, c.arr, c.n, delta, gzip, encoding);
}
