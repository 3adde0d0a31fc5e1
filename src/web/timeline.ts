// The timeline: the run's events along the x axis (by position), one row per kind of event
// (faults, device faults, batches, migrations, invalidations, evictions, ...) drawn as
// density, the scenario's steps as a band above, and a cursor. Click or drag to scrub.

import { CATEGORY_COLORS } from './colors.js';
import type { Model } from './model.js';

const ORDER = ['fault', 'device-fault', 'batch', 'migrate', 'invalidate', 'evict', 'map', 'unmap', 'free', 'other'];
const LABELS: Record<string, string> = {
  fault: 'CPU faults', 'device-fault': 'device faults', batch: 'fault batches', migrate: 'migrations', invalidate: 'invalidations',
  evict: 'evictions', map: 'maps', unmap: 'unmaps', free: 'frees', other: 'other',
};
const LABEL_W = 96;

function rgba(css: string): number {
  const v = parseInt(css.slice(1), 16);
  return ((255 << 24) | ((v & 255) << 16) | (v & 0xff00) | ((v >> 16) & 255)) >>> 0;
}
const MARK_H = 18;
const ROW_H = 11;

export class Timeline {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private rows: string[] = [];
  private density: Uint32Array[] = [];
  private max: number[] = [];
  private plotW = 0;
  private dragging = false;
  private base: HTMLCanvasElement | null = null;

  constructor(private readonly model: Model, private readonly onSeek: (p: number) => void) {
    this.el = document.createElement('div');
    this.el.className = 'timeline';
    this.canvas = document.createElement('canvas');
    this.canvas.id = 'timeline';
    this.el.append(this.canvas);
    this.ctx = this.canvas.getContext('2d')!;
    const present = new Set<string>();
    const ev = model.rec.events;
    const seen = new Uint8Array(model.doc.eventTypes.length);
    for (let e = 0; e < ev.count; e++) seen[ev.type[e]!] = 1;
    seen.forEach((s, t) => s && present.add(model.categories[t] ?? 'other'));
    this.rows = ORDER.filter((c) => present.has(c));
    const seekAt = (e: MouseEvent) => {
      const r = this.canvas.getBoundingClientRect();
      const x = e.clientX - r.left - LABEL_W;
      this.onSeek(Math.round((Math.max(0, Math.min(this.plotW, x)) / this.plotW) * this.model.count));
    };
    this.canvas.addEventListener('mousedown', (e) => {
      this.dragging = true;
      seekAt(e);
    });
    window.addEventListener('mousemove', (e) => this.dragging && seekAt(e));
    window.addEventListener('mouseup', () => (this.dragging = false));
    this.canvas.addEventListener('mousemove', (e) => {
      const r = this.canvas.getBoundingClientRect();
      const x = e.clientX - r.left - LABEL_W;
      const p = Math.round((Math.max(0, Math.min(this.plotW, x)) / this.plotW) * this.model.count);
      const m = this.model.markAt(p + 1);
      this.canvas.title = `event ${p}${m >= 0 ? ` — ${this.model.doc.marks[m]!.label}` : ''}`;
    });
  }

  get height(): number {
    return MARK_H + this.rows.length * ROW_H + 4;
  }

  /** Lay out for a width in CSS pixels (recomputes the density). */
  resize(width: number): void {
    const dpr = devicePixelRatio;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${this.height}px`;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(this.height * dpr);
    this.plotW = Math.max(10, width - LABEL_W - 8);
    const cols = Math.ceil(this.plotW);
    this.density = this.rows.map(() => new Uint32Array(cols));
    const rowOfType = this.model.categories.map((c) => this.rows.indexOf(c));
    const ev = this.model.rec.events;
    const n = ev.count;
    const scale = cols / Math.max(1, n);
    for (let e = 0; e < n; e++) {
      const r = rowOfType[ev.type[e]!]!;
      if (r >= 0) this.density[r]![Math.min(cols - 1, Math.floor(e * scale))]!++;
    }
    this.max = this.density.map((d) => d.reduce((a, b) => Math.max(a, b), 0));
    this.base = null;
  }

  /** Draw the rows and steps (once per size) into a backing canvas; draw() copies it and adds the cursor. */
  private paintBase(): void {
    const base = document.createElement('canvas');
    base.width = this.canvas.width;
    base.height = this.canvas.height;
    const ctx = base.getContext('2d')!;
    const dpr = devicePixelRatio;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const count = Math.max(1, this.model.count);
    const xOf = (p: number) => LABEL_W + (p / count) * this.plotW;
    const marks = this.model.doc.marks;
    marks.forEach((m, i) => {
      const x0 = xOf(m.start);
      const x1 = Math.max(x0 + 1, xOf(m.end));
      ctx.fillStyle = i % 2 ? '#e3e8ef' : '#eef2f6';
      ctx.fillRect(x0, 0, x1 - x0, MARK_H - 2);
    });
    ctx.fillStyle = '#556';
    if (marks.length) ctx.fillText('steps', 4, MARK_H / 2 - 1);
    // The rows' density, as pixels (one column of the plot per slice of the run).
    const img = ctx.getImageData(0, 0, base.width, base.height);
    const pix = new Uint32Array(img.data.buffer);
    const W = base.width;
    const x0 = Math.round(LABEL_W * dpr);
    this.rows.forEach((c, r) => {
      const y = MARK_H + r * ROW_H;
      const top = Math.round(y * dpr);
      const bottom = Math.round((y + ROW_H - 1) * dpr);
      const bg = rgba('#f4f6f9');
      const fg = rgba(CATEGORY_COLORS[c] ?? '#777777');
      const d = this.density[r]!;
      const lm = Math.log1p(this.max[r]!);
      const plotPx = Math.round(this.plotW * dpr);
      for (let px = 0; px < plotPx; px++) {
        const v = d[Math.min(d.length - 1, Math.floor(px / dpr))]!;
        const h = v ? Math.max(1.5, ((ROW_H - 2) * Math.log1p(v)) / lm) * dpr : 0;
        const cut = bottom - h;
        for (let yy = top; yy < bottom; yy++) pix[yy * W + x0 + px] = yy >= cut ? fg : bg;
      }
    });
    ctx.putImageData(img, 0, 0);
    this.rows.forEach((c, r) => {
      ctx.fillStyle = '#556';
      ctx.fillText(LABELS[c] ?? c, 4, MARK_H + r * ROW_H + ROW_H / 2);
    });
    this.base = base;
  }

  draw(position: number): void {
    if (!this.base) this.paintBase();
    const ctx = this.ctx;
    const dpr = devicePixelRatio;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(this.base!, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const count = Math.max(1, this.model.count);
    const xOf = (p: number) => LABEL_W + (p / count) * this.plotW;
    // The current step, highlighted, and every step's label.
    const marks = this.model.doc.marks;
    const cur = this.model.markAt(position);
    marks.forEach((m, i) => {
      const x0 = xOf(m.start);
      const x1 = Math.max(x0 + 1, xOf(m.end));
      if (i === cur) {
        ctx.fillStyle = '#ffe08a';
        ctx.fillRect(x0, 0, x1 - x0, MARK_H - 2);
      }
      if (x1 - x0 > 40) {
        ctx.fillStyle = '#334';
        ctx.save();
        ctx.beginPath();
        ctx.rect(x0, 0, x1 - x0, MARK_H);
        ctx.clip();
        ctx.fillText(`${i + 1}. ${m.label}`, x0 + 3, MARK_H / 2 - 1);
        ctx.restore();
      }
    });
    // Cursor.
    const x = xOf(position);
    ctx.fillStyle = '#d62828';
    ctx.fillRect(x - 1, 0, 2, this.height);
    ctx.beginPath();
    ctx.moveTo(x - 5, 0);
    ctx.lineTo(x + 5, 0);
    ctx.lineTo(x, 6);
    ctx.fill();
  }
}
