// One page table drawn as a grid of cells, in address order, row by row. A cell is one page
// or, when the window holds more pages than cells, an aggregate of g pages (g a power of 8:
// 8 pages, 64, 2 MiB blocks, ...), coloured by its most common entry kind and faded by how
// many of its pages have an entry. Every grid shows the same window, so the CPU's table and
// the devices' line up cell for cell.

import { PMD_PAGES, ST_KIND_MASK, ST_MEM_SHIFT, ST_NONE, ST_OTHER, ST_SWAP, ST_ZERO, type TableInfo } from '../sim/record/format.js';
import { BLOCK_SLOTS } from '../sim/record/replay.js';
import {
  DEVICE_KIND_SWATCHES, EMPTY, HIGHLIGHT, HOLE, KIND_SWATCHES, RES_LOCAL, RES_REMOTE, RES_SWAP, RES_ZERO, SELECTED, type Swatch,
  memorySwatch,
} from './colors.js';
import type { Model } from './model.js';

export type ColourMode = 'kind' | 'residency';

/** Pages per cell, smallest first. */
export const LADDER = [1, 8, 64, 512, 4096, 32768, 262144, 2097152];
/** Most cells a grid draws. */
export const MAX_CELLS = 32768;

/** The window of the page space every grid shows: pages [start, start + cells * g). */
export interface View {
  start: number;
  g: number;
  cells: number;
}

export function makeView(total: number, start: number, span: number): View {
  span = Math.max(1, Math.min(span, total));
  let g = LADDER[0]!;
  for (const step of LADDER) {
    g = step;
    if (Math.ceil(span / step) <= MAX_CELLS) break;
  }
  start = Math.max(0, Math.min(start, total - span));
  start -= start % g;
  const cells = Math.ceil(Math.min(span, total - start) / g);
  return { start, g, cells };
}

export interface Layout {
  cols: number;
  px: number;
}

/** The largest cells (power-of-two columns, so each row is a round size) that fit the box. */
export function chooseLayout(cells: number, width: number, height: number): Layout {
  for (let px = 18; px >= 2; px--) {
    const cols = 2 ** Math.floor(Math.log2(Math.max(1, width / px)));
    if (Math.ceil(cells / cols) * px <= height) return { cols: Math.min(cols, 2 ** Math.ceil(Math.log2(Math.max(1, cells)))), px };
  }
  const cols = 2 ** Math.floor(Math.log2(Math.max(1, width / 2)));
  return { cols, px: 2 };
}

/** Page-index ranges to outline (what the current event touched). */
export interface Highlight {
  table: number;
  index: number;
  count: number;
}

export class PageGrid {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly title: HTMLElement;
  private readonly ctx: CanvasRenderingContext2D;
  private image: ImageData | null = null;
  private titleKey = '';
  /** What the image holds: its window, layout and mode, and the VMA list its holes were drawn for. */
  private drawnKey = '';
  private drawnVmas: unknown = null;
  /** Overlays drawn over the image last time (highlights, the selection), to erase. */
  private drawnOverlays: Highlight[] = [];
  private readonly counts = new Uint32Array(BLOCK_SLOTS);
  layout: Layout = { cols: 64, px: 4 };
  view: View = { start: 0, g: 1, cells: 0 };

  constructor(readonly table: TableInfo) {
    this.el = document.createElement('section');
    this.el.className = `grid-panel ${table.kind}`;
    this.el.dataset.table = String(table.id);
    this.title = document.createElement('h3');
    this.el.append(this.title);
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'grid';
    this.canvas.dataset.table = String(table.id);
    this.el.append(this.canvas);
    this.ctx = this.canvas.getContext('2d')!;
  }

  setTitle(text: string, sub: string): void {
    const key = `${text}\n${sub}`;
    if (this.titleKey === key) return;
    this.titleKey = key;
    this.title.textContent = text;
    const s = document.createElement('small');
    s.textContent = sub;
    this.title.append(' ', s);
  }

  /** The cell under a mouse event, or -1. */
  cellAt(ev: MouseEvent): number {
    const r = this.canvas.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - r.left) * (this.canvas.width / r.width)) / this.layout.px);
    const y = Math.floor(((ev.clientY - r.top) * (this.canvas.height / r.height)) / this.layout.px);
    if (x < 0 || x >= this.layout.cols || y < 0) return -1;
    const c = y * this.layout.cols + x;
    return c < this.view.cells ? c : -1;
  }

  /**
   * Draw the grid. With `changed` (the page ranges whose entries changed since the last call,
   * when nothing else did) only their cells and the previous highlights are drawn again: a step
   * costs what it changed, not the whole grid.
   */
  render(model: Model, view: View, layout: Layout, mode: ColourMode, highlights: Highlight[], selected: number, changed: Highlight[] | null): void {
    const { cols, px } = layout;
    const rows = Math.max(1, Math.ceil(view.cells / cols));
    const w = cols * px;
    const h = rows * px;
    const key = `${view.start}:${view.g}:${view.cells}:${cols}:${px}:${mode}`;
    let full = changed === null || key !== this.drawnKey || model.vmas(this.table.id) !== this.drawnVmas;
    this.view = view;
    this.layout = layout;
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.image = null;
    }
    if (!this.image) {
      this.image = this.ctx.createImageData(w, h);
      full = true;
    }
    this.drawnKey = key;
    this.drawnVmas = model.vmas(this.table.id);
    if (full) {
      new Uint32Array(this.image.data.buffer).fill(0);
      this.paintCells(model, mode, 0, view.cells - 1);
      this.ctx.putImageData(this.image, 0, 0);
    } else {
      // Cells whose colour may have changed, and cells the previous overlays covered.
      let rowLo = Infinity;
      let rowHi = -1;
      const redo = (ranges: Highlight[]) => {
        for (const r of ranges) {
          if (r.table !== this.table.id) continue;
          const cr = this.cellRange(r.index, r.count);
          if (!cr) continue;
          this.paintCells(model, mode, cr[0], cr[1]);
          rowLo = Math.min(rowLo, Math.floor(cr[0] / cols));
          rowHi = Math.max(rowHi, Math.floor(cr[1] / cols));
        }
      };
      redo(changed!);
      redo(this.drawnOverlays);
      if (rowHi >= 0) {
        // The selection marker reaches a cell beyond its own: a row of margin each side.
        const y0 = Math.max(0, (rowLo - 2) * px);
        const y1 = Math.min(h, (rowHi + 3) * px);
        this.ctx.putImageData(this.image, 0, 0, 0, y0, w, y1 - y0);
      }
    }
    this.drawHighlights(highlights, selected);
    this.drawnOverlays = highlights.filter((x) => x.table === this.table.id);
    if (selected >= 0) this.drawnOverlays.push({ table: this.table.id, index: selected, count: 1 });
  }

  /** The cells (first, last) showing page-index range [index, index + count), or null if none is in the window. */
  private cellRange(index: number, count: number): [number, number] | null {
    const v = this.view;
    const a = Math.max(index, v.start);
    const b = Math.min(index + count, v.start + v.cells * v.g);
    if (b <= a) return null;
    return [Math.floor((a - v.start) / v.g), Math.floor((b - 1 - v.start) / v.g)];
  }

  /** Colour cells c0..c1 into the image buffer. */
  private paintCells(model: Model, mode: ColourMode, c0: number, c1: number): void {
    const { view } = this;
    const { cols, px } = this.layout;
    const w = cols * px;
    const pix = new Uint32Array(this.image!.data.buffer);
    const t = this.table.id;
    const st = model.replay.states[t]!;
    const bc = model.replay.blockCounts[t]!;
    const mask = model.vmaMask(t);
    const total = model.replay.space.total;
    const gap = px >= 6 ? 1 : 0;
    const cnt = this.counts;
    for (let c = c0; c <= c1; c++) {
      const i0 = view.start + c * view.g;
      const n = Math.min(view.g, total - i0);
      let inVma = 0;
      let rgba: number;
      if (n === 1) {
        // One page: its colour straight from its state.
        const s = st[i0]!;
        cnt.fill(0);
        cnt[s & ST_KIND_MASK] = 1;
        if ((s & ST_KIND_MASK) !== ST_NONE) cnt[16 + (s >>> ST_MEM_SHIFT)] = 1;
        rgba = this.colour(cnt, 1, mask.pages[i0]!, mode);
      } else {
        cnt.fill(0);
        if (view.g >= PMD_PAGES) {
          for (let b = i0 / PMD_PAGES, e = b + Math.ceil(n / PMD_PAGES); b < e; b++) {
            inVma += mask.blocks[b]!;
            for (let k = 0; k < BLOCK_SLOTS; k++) cnt[k]! += bc[b * BLOCK_SLOTS + k]!;
          }
        } else {
          for (let i = i0; i < i0 + n; i++) {
            const s = st[i]!;
            inVma += mask.pages[i]!;
            cnt[s & ST_KIND_MASK]!++;
            if ((s & ST_KIND_MASK) !== ST_NONE) cnt[16 + (s >>> ST_MEM_SHIFT)]!++;
          }
        }
        rgba = this.colour(cnt, n, inVma, mode);
      }
      const x0 = (c % cols) * px;
      const y0 = Math.floor(c / cols) * px;
      for (let y = y0; y < y0 + px - gap; y++) pix.fill(rgba, y * w + x0, y * w + x0 + px - gap);
    }
  }

  private colour(cnt: Uint32Array, n: number, inVma: number, mode: ColourMode): number {
    const mapped = n - cnt[ST_NONE]!;
    if (mapped === 0) return inVma > 0 ? EMPTY.rgba : HOLE.rgba;
    let sw: Swatch;
    if (mode === 'kind') {
      let best = 1;
      for (let k = 2; k < 16; k++) if (cnt[k]! > cnt[best]!) best = k;
      sw = (this.table.kind === 'device' ? DEVICE_KIND_SWATCHES[best] : KIND_SWATCHES[best]) ?? KIND_SWATCHES[ST_OTHER]!;
    } else if (this.table.kind === 'device') {
      const local = this.table.memory > 0 ? cnt[16 + this.table.memory]! : 0;
      const remote = cnt[16]!;
      sw = local >= remote ? RES_LOCAL : RES_REMOTE;
      if (local === 0 && remote === 0) sw = memorySwatch(1);
    } else {
      // Where the data is: swap, the zero page, or a memory (system RAM is memory 0).
      let best: Swatch = RES_SWAP;
      let bestN = cnt[ST_SWAP]!;
      if (cnt[ST_ZERO]! > bestN) {
        best = RES_ZERO;
        bestN = cnt[ST_ZERO]!;
      }
      const sys = cnt[16]! - cnt[ST_SWAP]! - cnt[ST_ZERO]! - cnt[ST_OTHER]!;
      if (sys > bestN) {
        best = memorySwatch(0);
        bestN = sys;
      }
      for (let m = 1; m < 16; m++) {
        if (cnt[16 + m]! > bestN) {
          best = memorySwatch(m);
          bestN = cnt[16 + m]!;
        }
      }
      sw = best;
    }
    if (mapped === n) return sw.rgba;
    return blend(sw.rgba, EMPTY.rgba, 0.3 + (0.7 * mapped) / n);
  }

  private drawHighlights(highlights: Highlight[], selected: number): void {
    const { cols, px } = this.layout;
    const ctx = this.ctx;
    const cellRange = (index: number, count: number) => this.cellRange(index, count);
    ctx.save();
    for (const h of highlights) {
      if (h.table !== this.table.id) continue;
      const r = cellRange(h.index, h.count);
      if (!r) continue;
      const [c0, c1] = r;
      if (c1 - c0 < 2048 && px >= 4) {
        ctx.strokeStyle = HIGHLIGHT;
        ctx.lineWidth = Math.max(1, Math.floor(px / 4));
        for (let c = c0; c <= c1; c++) ctx.strokeRect((c % cols) * px + 0.5, Math.floor(c / cols) * px + 0.5, px - 1, px - 1);
      } else {
        ctx.fillStyle = 'rgba(255, 195, 0, 0.55)';
        for (let c = c0; c <= c1; ) {
          const row = Math.floor(c / cols);
          const end = Math.min(c1, (row + 1) * cols - 1);
          ctx.fillRect((c % cols) * px, row * px, (end - c + 1) * px, px);
          c = end + 1;
        }
      }
    }
    if (selected >= 0) {
      const r = cellRange(selected, 1);
      if (r) {
        const c = r[0];
        const x = (c % cols) * px;
        const y = Math.floor(c / cols) * px;
        const m = Math.max(2, px);
        ctx.strokeStyle = '#fff';
        ctx.lineWidth = 3;
        ctx.strokeRect(x - m + px / 2 - 1, y - m + px / 2 - 1, 2 * m + 2, 2 * m + 2);
        ctx.strokeStyle = SELECTED;
        ctx.lineWidth = 1.5;
        ctx.strokeRect(x - m + px / 2 - 1, y - m + px / 2 - 1, 2 * m + 2, 2 * m + 2);
      }
    }
    ctx.restore();
  }
}

function blend(a: number, b: number, t: number): number {
  const ch = (s: number) => Math.round(((a >>> s) & 255) * t + ((b >>> s) & 255) * (1 - t));
  return ((255 << 24) | (ch(16) << 16) | (ch(8) << 8) | ch(0)) >>> 0;
}
