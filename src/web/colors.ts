// The visualizer's colours and the words that go with them. Each colour is given as CSS hex
// and as a little-endian RGBA word for ImageData.

import {
  ST_DEVICE_PRIVATE, ST_EXCLUSIVE, ST_MIGRATION, ST_NONE, ST_OTHER, ST_READ, ST_SWAP, ST_WRITE, ST_ZERO,
} from '../sim/record/format.js';

export { rgbaOf };

export interface Swatch {
  css: string;
  rgba: number;
  label: string;
  help: string;
}

function rgbaOf(css: string): number {
  const v = parseInt(css.slice(1), 16);
  const r = (v >> 16) & 255;
  const g = (v >> 8) & 255;
  const b = v & 255;
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

function swatch(css: string, label: string, help: string): Swatch {
  return { css, rgba: rgbaOf(css), label, help };
}

export const BACKGROUND = swatch('#ffffff', 'background', '');
/** A page inside a VMA with no entry: the next access faults. */
export const EMPTY = swatch('#e9edf2', 'none', 'inside a VMA, no entry: the next access faults');
/** A page outside every VMA now (a hole, or a VMA that is gone). */
export const HOLE = swatch('#c5ccd6', 'no VMA', 'not mapped at all: an access is a segmentation fault');

/** CPU entry kinds (colour by entry kind). */
export const KIND_SWATCHES: Swatch[] = [];
KIND_SWATCHES[ST_NONE] = EMPTY;
KIND_SWATCHES[ST_ZERO] = swatch('#a9cbe8', 'zero page', 'present, read-only, mapping the shared zero page (a read of untouched memory)');
KIND_SWATCHES[ST_READ] = swatch('#3aa6a8', 'present, read', 'present and read-only: a write faults (copy-on-write, or write-protected)');
KIND_SWATCHES[ST_WRITE] = swatch('#2760b0', 'present, write', 'present and writable');
KIND_SWATCHES[ST_SWAP] = swatch('#9a7b5c', 'swap', 'a swap entry: the data is in a swap slot, an access faults it back in');
KIND_SWATCHES[ST_MIGRATION] = swatch('#f4a63a', 'migration', 'a migration entry: the page is being moved, an access waits');
KIND_SWATCHES[ST_DEVICE_PRIVATE] = swatch('#2e9e57', 'device-private', 'a device-private entry: the data is in device memory the CPU cannot address; a CPU access migrates it back (migrate_to_ram)');
KIND_SWATCHES[ST_EXCLUSIVE] = swatch('#d9483b', 'device-exclusive', 'a device holds the page for atomics: the CPU entry is revoked until the next CPU access');
KIND_SWATCHES[ST_OTHER] = swatch('#6d597a', 'other', 'hwpoison or another special entry');

/** Device page-table entries (colour by entry kind). */
export const DEVICE_KIND_SWATCHES: Swatch[] = [];
DEVICE_KIND_SWATCHES[ST_NONE] = swatch('#e9edf2', 'none', 'the device has no entry: its access faults (a device page fault)');
DEVICE_KIND_SWATCHES[ST_READ] = swatch('#3aa6a8', 'read', 'the device may read the page');
DEVICE_KIND_SWATCHES[ST_WRITE] = swatch('#2760b0', 'write', 'the device may read and write the page');

/** Residency: where a page's data is, and how a device reaches it. */
export const RES_SYSTEM = swatch('#2760b0', 'system RAM', 'the data is in system memory');
export const RES_ZERO = swatch('#a9cbe8', 'zero page', 'reads as zeros: no memory of its own yet');
export const RES_SWAP = swatch('#9a7b5c', 'swap', 'the data is on the swap device');
export const RES_LOCAL = swatch('#2e9e57', 'device, local', 'the device maps a page of its own memory (VRAM)');
export const RES_REMOTE = swatch('#f08a24', 'device, remote-mapped', 'the device maps a page of system memory, across the bus');
/** Device memories by memory id (1..), in residency mode. */
export const MEMORY_SWATCHES = ['#2760b0', '#2e9e57', '#8a5cc2', '#c2a02e', '#c25c8a', '#2ea3c2'].map((c, i) =>
  swatch(c, i === 0 ? 'system RAM' : `device memory ${i}`, ''),
);

export function memorySwatch(mem: number): Swatch {
  return MEMORY_SWATCHES[mem % MEMORY_SWATCHES.length]!;
}

/** The highlight of what the current event touched. */
export const HIGHLIGHT = '#ffc300';
export const SELECTED = '#111111';

/** Timeline rows, by event category. */
export const CATEGORY_COLORS: Record<string, string> = {
  fault: '#2760b0',
  'device-fault': '#1b998b',
  batch: '#5e548e',
  migrate: '#2e9e57',
  invalidate: '#d9483b',
  evict: '#9a7b5c',
  map: '#3aa6a8',
  unmap: '#e07a5f',
  free: '#8d99ae',
  other: '#6d597a',
};

