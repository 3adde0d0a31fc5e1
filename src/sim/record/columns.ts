// Growable typed columns for the recorder: one typed array per field, doubled when full, so
// recording an event allocates nothing.

import { type Column, type ColumnType, type NumArray, columnBytes, newArray, toBase64 } from './format.js';

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

export function encodeColumn(type: ColumnType, values: ArrayLike<number>, n: number, delta: boolean, gzip: Compress | null): Column {
  const raw = columnBytes(type, values, n, delta);
  const data = gzip ? gzip(raw) : raw;
  const col: Column = { type, length: n, data: toBase64(data) };
  if (delta) col.delta = true;
  if (gzip) col.gzip = true;
  return col;
}

export function encodeGrow(c: GrowColumn, delta: boolean, gzip: Compress | null): Column {
  return encodeColumn(c.type, c.arr, c.n, delta, gzip);
}
