// The "Frames in use" panel: per memory (system RAM, each device's), the frames in use at the
// position as a bar, and a sparkline of the whole run with the position marked.

import { memorySwatch } from './colors.js';
import { h } from './dom.js';
import { type Model, sizeWords } from './model.js';

export class MemoryPanel {
  readonly el = h('div', { id: 'memory' });
  private readonly canvases: HTMLCanvasElement[] = [];
  private readonly bars: HTMLElement[] = [];
  private readonly labels: HTMLElement[] = [];
  /** Frames in use at each x of the sparklines; computed at the first render after reset(). */
  private series: Float64Array[] = [];

  constructor(private readonly model: Model) {
    const rows = model.doc.memories.map((mem) => {
      const bar = h('div', { class: 'bar-fill', style: `background:${memorySwatch(mem.id).css}` });
      const label = h('div', { class: 'mem-label' });
      const cv = h('canvas', { class: 'spark', width: '220', height: '28' });
      this.bars.push(bar);
      this.labels.push(label);
      this.canvases.push(cv);
      return h('div', { class: 'mem' }, label, h('div', { class: 'bar' }, bar), cv);
    });
    this.el.replaceChildren(...rows);
  }

  /** The record's frame counts are all decoded now: draw the sparklines again from them. */
  reset(): void {
    this.series = [];
  }

  render(): void {
    const m = this.model;
    if (!this.series.length) this.series = this.sample(this.canvases[0]?.width ?? 220);
    m.doc.memories.forEach((mem, i) => {
      const used = m.replay.frames[i] ?? 0;
      this.labels[i]!.textContent = `${mem.name}: ${used.toLocaleString('en')} / ${mem.frames.toLocaleString('en')} frames (${sizeWords(used)})`;
      this.bars[i]!.style.width = `${mem.frames ? Math.min(100, (100 * used) / mem.frames) : 0}%`;
      // The sparkline of this memory over the run, with the cursor.
      const cv = this.canvases[i]!;
      const ctx = cv.getContext('2d')!;
      const W = cv.width;
      const H = cv.height;
      ctx.clearRect(0, 0, W, H);
      ctx.fillStyle = memorySwatch(mem.id).css;
      ctx.globalAlpha = 0.5;
      const series = this.series[i]!;
      for (let x = 0; x < W; x++) {
        const hgt = mem.frames ? (H * series[x]!) / mem.frames : 0;
        if (hgt > 0) ctx.fillRect(x, H - hgt, 1, hgt);
      }
      ctx.globalAlpha = 1;
      ctx.fillStyle = '#d62828';
      ctx.fillRect((m.position / Math.max(1, m.count)) * W - 1, 0, 2, H);
    });
  }

  /** Frames in use per memory sampled at each x of the sparklines (the value at the end of each slice of the run). */
  private sample(width: number): Float64Array[] {
    const m = this.model;
    const f = m.rec.frames;
    const count = Math.max(1, m.count);
    return m.doc.memories.map((_, i) => {
      const out = new Float64Array(width);
      let last = 0;
      let k = 0;
      for (let x = 0; x < width; x++) {
        const upto = ((x + 1) / width) * count;
        while (k < f.count && f.event[k]! < upto) {
          if (f.memory[k] === i) last = f.used[k]!;
          k++;
        }
        out[x] = last;
      }
      return out;
    });
  }
}
