// The visualizer of a recorded run: controls and timeline on top; the legend, VMAs and memory
// on the left; the page tables in the middle (the CPU's beside each device's, cell for cell);
// the current event and a page's history on the right.

import { STATE_KINDS, stateKind } from '../sim/record/format.js';
import {
  DEVICE_KIND_SWATCHES, EMPTY, HOLE, KIND_SWATCHES, RES_LOCAL, RES_REMOTE, RES_SWAP, RES_ZERO, type Swatch, memorySwatch,
} from './colors.js';
import { type ColourMode, type Highlight, type Layout, type View, PageGrid, chooseLayout, makeView } from './grid.js';
import { type HistoryRow, Model, hexAddr, pageRange, sizeWords, upperBound } from './model.js';
import { h } from './dom.js';
import { HistoryPanel } from './history_panel.js';
import { MemoryPanel } from './memory_panel.js';
import { Timeline } from './timeline.js';

const SPEEDS = [1, 5, 20, 100, 1000, 10000, 100000];

/** What tests and the console can reach: `window.hmmsim`. */
export interface ViewerHandle {
  ready: boolean;
  position: number;
  count: number;
  seek(p: number): void;
  step(d: number): void;
  /** Milliseconds the last render took. */
  lastRenderMs: number;
  /** Client rectangle of the cell showing page vpn of a table (null if not on screen). */
  cellRect(table: number, vpn: number): { x: number; y: number; w: number; h: number } | null;
  /** Recorded state of a page now (the replay's, not the picture's). */
  stateAt(table: number, vpn: number): number;
  select(table: number, vpn: number): void;
}

export class App {
  readonly model: Model;
  private view: View;
  private mode: ColourMode = 'kind';
  private readonly grids: PageGrid[];
  private readonly timeline: Timeline;
  private selected: { table: number; vpn: number } | null = null;
  private history: { rows: HistoryRow[]; total: number } | null = null;
  private playing = false;
  private speed = 0; // events per second; 0 = auto
  private carry = 0;
  private lastFrame = 0;
  private pendingSeek = -1;
  /** Tables whose grids were drawn by the last render. */
  private shownTables = new Set<number>();
  /** The position the page opens at. */
  private target = 0;
  private layoutCache: { key: string; layout: Layout } | null = null;
  readonly handle: ViewerHandle;

  // elements
  private readonly root: HTMLElement;
  private readonly posLabel = h('span', { id: 'position' });
  private readonly timeLabel = h('span', { id: 'time', class: 'muted' });
  private readonly stepLabel = h('span', { id: 'step-label' });
  private readonly playBtn = h('button', { id: 'play', title: 'play / pause (space)' }, '▶ play');
  private readonly gridsBox = h('div', { id: 'grids' });
  private readonly zoomBar = h('div', { id: 'zoom' });
  private readonly legendBox = h('div', { id: 'legend' });
  private readonly vmaBox = h('div', { id: 'vmas' });
  private readonly nowBox = h('div', { id: 'now' });
  private readonly logBox = h('ol', { id: 'log' });
  private readonly tooltip = h('div', { id: 'tooltip', class: 'tooltip' });
  private legendMode: ColourMode | null = null;
  private readonly memory: MemoryPanel;
  private readonly historyPanel: HistoryPanel;
  private vmaKey: unknown[] = [];

  constructor(root: HTMLElement, model: Model) {
    this.root = root;
    this.model = model;
    // A GPU simulation is about where pages live: its record opens coloured by residency.
    if (model.doc.meta.command === 'run') this.mode = 'residency';
    this.view = makeView(model.replay.space.total, 0, model.replay.space.total);
    this.grids = model.doc.tables.map((t) => new PageGrid(t));
    this.timeline = new Timeline(model, (p) => this.scrubTo(p));
    this.memory = new MemoryPanel(model);
    this.historyPanel = new HistoryPanel(model, (p) => this.seek(p));
    this.handle = {
      ready: false, position: 0, count: model.count, lastRenderMs: 0,
      seek: (p) => this.seek(p),
      step: (d) => this.seek(this.model.position + d),
      cellRect: (t, v) => this.cellRect(t, v),
      stateAt: (t, v) => this.model.replay.stateAt(t, v),
      select: (t, v) => this.select(t, v),
    };
    this.build();
    this.seekInitial();
  }

  private build(): void {
    const doc = this.model.doc;
    const title = h('header', { class: 'top' },
      h('h1', {}, 'hmmsim ', h('span', { class: 'muted' }, 'visualizer')),
      h('div', { class: 'run-title', id: 'run-title' }, doc.meta.title),
      h('div', { class: 'muted' }, `${this.model.count.toLocaleString('en')} events · ${doc.tables.length} page tables · ${sizeWords(this.model.replay.space.total)} of address space`),
      this.modeSwitch(),
    );
    const btn = (label: string, id: string, tip: string, fn: () => void) => {
      const b = h('button', { id, title: tip }, label);
      b.addEventListener('click', fn);
      return b;
    };
    const speedSel = h('select', { id: 'speed', title: 'playback speed' },
      h('option', { value: '0' }, 'auto (a step in ~4 s)'),
      ...SPEEDS.map((s) => h('option', { value: String(s) }, `${s.toLocaleString('en')} events/s`)),
    );
    speedSel.addEventListener('change', () => (this.speed = Number(speedSel.value)));
    this.playBtn.addEventListener('click', () => this.togglePlay());
    const controls = h('nav', { class: 'controls' },
      btn('|◀', 'to-start', 'to the start (Home)', () => this.seek(0)),
      btn('◀◀ step', 'prev-mark', 'to the previous scenario step (Shift+←)', () => this.jumpMark(-1)),
      btn('◀ event', 'back', 'one event back (←)', () => this.seek(this.model.position - 1)),
      this.playBtn,
      btn('event ▶', 'forward', 'one event forward (→)', () => this.seek(this.model.position + 1)),
      btn('step ▶▶', 'next-mark', 'to the next scenario step (Shift+→)', () => this.jumpMark(1)),
      btn('▶|', 'to-end', 'to the end (End)', () => this.seek(this.model.count)),
      btn('next change', 'next-change', 'to the next event that changed a page table (N)', () => this.seek(this.model.nextChange(this.model.position) + 1)),
      speedSel,
      h('span', { class: 'pos' }, this.posLabel, ' ', this.timeLabel),
      this.stepLabel,
    );
    const left = h('aside', { class: 'left' },
      h('h2', {}, 'Colours'), this.legendBox,
      h('h2', {}, 'VMAs'), this.vmaBox,
      h('h2', {}, 'Frames in use'), this.memory.el,
    );
    const center = h('main', { class: 'center' }, this.zoomBar, this.gridsBox);
    const right = h('aside', { class: 'right' },
      h('h2', {}, 'Now'), this.nowBox, this.logBox,
      h('h2', {}, 'Page history'), this.historyPanel.el,
    );
    this.root.innerHTML = '';
    this.root.append(title, controls, this.timeline.el, h('div', { class: 'body' }, left, center, right), this.tooltip);
    for (const g of this.grids) {
      g.canvas.addEventListener('click', (e) => this.onGridClick(g, e));
      g.canvas.addEventListener('mousemove', (e) => this.onGridHover(g, e));
      g.canvas.addEventListener('mouseleave', () => (this.tooltip.style.display = 'none'));
    }
    window.addEventListener('keydown', (e) => this.onKey(e));
    window.addEventListener('resize', () => {
      this.layoutCache = null;
      this.timeline.resize(this.timelineWidth());
      this.render();
    });
  }

  private modeSwitch(): HTMLElement {
    const box = h('div', { class: 'mode', role: 'radiogroup' });
    for (const [mode, label] of [['kind', 'entry kind'], ['residency', 'residency']] as const) {
      const id = `mode-${mode}`;
      const input = h('input', { type: 'radio', name: 'mode', id, value: mode });
      if (mode === this.mode) input.checked = true;
      input.addEventListener('change', () => {
        this.mode = mode;
        this.render();
      });
      box.append(h('label', { for: id }, input, ` ${label}`));
    }
    return h('div', { class: 'mode-box' }, h('span', { class: 'muted' }, 'colour by: '), box);
  }

  /**
   * Where the page opens: ?at=N, else after the first step (so there is something to see),
   * else the start. Until the record's details are decoded only snapshots can be shown: the
   * first picture is the snapshot there (the recorder takes one where each step starts).
   */
  private seekInitial(): void {
    const param = new URLSearchParams(location.search).get('at');
    const at = Number(param);
    this.target = param !== null && Number.isFinite(at) ? Math.max(0, Math.min(this.model.count, Math.floor(at))) : this.model.doc.marks[0]?.end ?? 0;
    this.timeline.resize(this.timelineWidth());
    const snaps = this.model.rec.snapshots;
    let first = 0;
    for (const s of snaps) if (s.event <= this.target) first = s.event;
    this.model.seek(this.model.rec.detailed ? this.target : first);
    this.render();
    document.body.dataset.painted = '1';
    if (this.model.rec.detailed) this.detailsLoaded();
  }

  /** The record is decoded: every position can be shown, with descriptions, highlights and histories. */
  detailsLoaded(): void {
    if (this.handle.ready) return;
    this.handle.ready = true;
    this.model.replay.refresh();
    this.model.seek(this.target);
    this.memory.reset();
    if (this.selected) this.history = this.model.history(this.model.doc.tables[this.selected.table]!.mm, this.selected.vpn);
    this.render();
    document.body.dataset.ready = '1';
  }

  private timelineWidth(): number {
    return Math.max(300, this.root.clientWidth - 24);
  }

  // ---- moving through the run ----

  seek(p: number): void {
    if (!this.handle.ready) return; // the first picture is up, the events are still loading
    const from = this.model.position;
    this.model.seek(p);
    const to = this.model.position;
    // A short move redraws only the pages it changed.
    this.render(this.model.changedBetween(Math.min(from, to), Math.max(from, to)));
  }

  /** Scrubbing: coalesce to one seek per frame. */
  private scrubTo(p: number): void {
    const first = this.pendingSeek < 0;
    this.pendingSeek = p;
    if (first) {
      requestAnimationFrame(() => {
        const q = this.pendingSeek;
        this.pendingSeek = -1;
        this.seek(q);
      });
    }
  }

  private jumpMark(d: number): void {
    const starts = this.model.markStarts();
    const p = this.model.position;
    if (d > 0) {
      const i = upperBound(starts, p);
      this.seek(i < starts.length ? starts[i]! : this.model.count);
    } else {
      let i = upperBound(starts, p - 1) - 1;
      if (i >= 0 && starts[i] === p) i--;
      this.seek(i >= 0 ? starts[i]! : 0);
    }
  }

  private togglePlay(): void {
    this.playing = !this.playing;
    this.playBtn.textContent = this.playing ? '❚❚ pause' : '▶ play';
    if (this.playing) {
      if (this.model.position >= this.model.count) this.seek(0);
      this.lastFrame = performance.now();
      this.carry = 0;
      requestAnimationFrame((t) => this.frame(t));
    }
  }

  private frame(t: number): void {
    if (!this.playing) return;
    const dt = Math.min(0.25, (t - this.lastFrame) / 1000);
    this.lastFrame = t;
    let speed = this.speed;
    if (!speed) {
      // Auto: the current step (or the whole run without steps) plays in about 4 seconds.
      const m = this.model.markAt(this.model.position + 1);
      const span = m >= 0 ? this.model.doc.marks[m]!.end - this.model.doc.marks[m]!.start : this.model.count / 8;
      speed = Math.max(2, span / 4);
    }
    this.carry += speed * dt;
    const adv = Math.floor(this.carry);
    if (adv > 0) {
      this.carry -= adv;
      this.seek(this.model.position + adv);
    }
    if (this.model.position >= this.model.count) this.togglePlay();
    else requestAnimationFrame((t2) => this.frame(t2));
  }

  private onKey(e: KeyboardEvent): void {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    const p = this.model.position;
    if (e.key === 'ArrowRight') this.seek(e.shiftKey ? (this.jumpMark(1), this.model.position) : p + 1);
    else if (e.key === 'ArrowLeft') this.seek(e.shiftKey ? (this.jumpMark(-1), this.model.position) : p - 1);
    else if (e.key === ' ') this.togglePlay();
    else if (e.key === 'Home') this.seek(0);
    else if (e.key === 'End') this.seek(this.model.count);
    else if (e.key === 'n') this.seek(this.model.nextChange(p) + 1);
    else if (e.key === '-') this.zoomOut();
    else return;
    e.preventDefault();
  }

  // ---- zoom and selection ----

  private zoomTo(start: number, span: number): void {
    this.view = makeView(this.model.replay.space.total, start, span);
    this.layoutCache = null;
    this.render();
  }

  private zoomOut(): void {
    const span = this.view.cells * this.view.g * 8;
    const centre = this.view.start + (this.view.cells * this.view.g) / 2;
    this.zoomTo(centre - span / 2, span);
  }

  private onGridClick(g: PageGrid, e: MouseEvent): void {
    const c = g.cellAt(e);
    if (c < 0) return;
    const idx = this.view.start + c * this.view.g;
    if (this.view.g > 1) {
      // Zoom in around the cell: an eighth of the window, at least 64 pages.
      const span = Math.max(64, (this.view.cells * this.view.g) / 8);
      this.zoomTo(idx + this.view.g / 2 - span / 2, span);
      return;
    }
    this.select(g.table.id, this.model.replay.space.vpnOf(idx));
  }

  select(table: number, vpn: number): void {
    this.selected = { table, vpn };
    const t = this.model.doc.tables[table]!;
    this.history = this.model.rec.detailed ? this.model.history(t.mm, vpn) : null;
    this.render([]);
  }

  private onGridHover(g: PageGrid, e: MouseEvent): void {
    const c = g.cellAt(e);
    if (c < 0) {
      this.tooltip.style.display = 'none';
      return;
    }
    const idx = this.view.start + c * this.view.g;
    const vpn = this.model.replay.space.vpnOf(idx);
    const n = Math.min(this.view.g, this.model.replay.space.total - idx);
    const t = g.table.id;
    let text: string;
    if (n === 1) {
      text = `${hexAddr(vpn)}\n${g.table.name}: ${this.model.stateWords(this.model.replay.states[t]![idx]!, t)}`;
    } else {
      const counts = new Map<string, number>();
      const st = this.model.replay.states[t]!;
      for (let i = idx; i < idx + n; i++) {
        const w = STATE_KINDS[stateKind(st[i]!)]!;
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
      text = `${pageRange(vpn, n)}\n${[...counts].map(([k, v]) => `${k}: ${v}`).join(', ')}\nclick to zoom in`;
    }
    this.tooltip.textContent = text;
    this.tooltip.style.display = 'block';
    this.tooltip.style.left = `${e.clientX + 14}px`;
    this.tooltip.style.top = `${e.clientY + 14}px`;
  }

  private cellRect(table: number, vpn: number): { x: number; y: number; w: number; h: number } | null {
    const g = this.grids[table];
    const idx = this.model.replay.space.indexOf(vpn);
    if (!g || idx < 0 || !g.el.isConnected) return null;
    const c = Math.floor((idx - this.view.start) / this.view.g);
    if (c < 0 || c >= this.view.cells) return null;
    const r = g.canvas.getBoundingClientRect();
    const sx = r.width / g.canvas.width;
    const { cols, px } = g.layout;
    return { x: r.left + (c % cols) * px * sx, y: r.top + Math.floor(c / cols) * px * sx, w: px * sx, h: px * sx };
  }

  // ---- drawing ----

  /** Draw everything; `changed`: the only pages whose entries changed since the last render, if known. */
  render(changed: Highlight[] | null = null): void {
    const t0 = performance.now();
    const m = this.model;
    const p = m.position;
    this.handle.position = p;
    document.body.dataset.position = String(p);
    this.posLabel.textContent = `event ${p.toLocaleString('en')} / ${m.count.toLocaleString('en')}${this.handle.ready ? '' : ' (loading the events…)'}`;
    const time = p > 0 ? m.timeOf(p - 1) : null;
    this.timeLabel.textContent = time !== null ? `t = ${(time / 1000).toFixed(1)} µs` : '';
    const mi = m.markAt(p);
    this.stepLabel.textContent = mi >= 0 ? `step ${mi + 1}/${m.doc.marks.length}: ${m.doc.marks[mi]!.label}` : '';
    this.renderGrids(changed);
    this.timeline.draw(p);
    this.renderLegend();
    this.renderVmas();
    this.memory.render();
    this.renderNow();
    if (this.selected && this.history) this.historyPanel.render(this.selected, this.history);
    this.handle.lastRenderMs = performance.now() - t0;
  }

  private renderGrids(changed: Highlight[] | null): void {
    const m = this.model;
    const live = m.liveTables();
    const want = live.map((t) => this.grids[t.id]!.el);
    if (want.length !== this.gridsBox.children.length || want.some((e, i) => this.gridsBox.children[i] !== e)) {
      this.gridsBox.replaceChildren(...want);
      this.layoutCache = null;
    }
    const space = m.replay.space;
    const v = this.view;
    // Zoom bar: where the window is, how big a cell is.
    const whole = v.start === 0 && v.cells * v.g >= space.total;
    this.zoomBar.replaceChildren(
      h('span', {}, whole ? 'whole address space' : `${pageRange(space.vpnOf(v.start), Math.min(v.cells * v.g, space.total - v.start))}`),
      h('span', { class: 'muted' }, ` · a cell is ${v.g === 1 ? 'one 4 KiB page' : `${sizeWords(v.g)} (${v.g} pages)`}`),
      ...(whole ? [] : [this.zoomButton('zoom out', () => this.zoomOut()), this.zoomButton('whole', () => this.zoomTo(0, space.total))]),
      v.g > 1 ? h('span', { class: 'hint' }, ' · click a cell to zoom in') : h('span', { class: 'hint' }, ' · click a page for its history'),
    );
    if (!live.length) return;
    // Measuring forces a layout: only when the window, the zoom or the set of tables changed.
    const key = `${live.length}:${v.cells}`;
    if (!this.layoutCache || this.layoutCache.key !== key) {
      const width = Math.max(120, (this.gridsBox.clientWidth - 16 * (live.length - 1)) / live.length - 4);
      const top = this.gridsBox.getBoundingClientRect().top + window.scrollY;
      const height = Math.max(160, window.innerHeight - top - 40);
      this.layoutCache = { key, layout: chooseLayout(v.cells, width, height) };
    }
    const layout = this.layoutCache.layout;
    const highlights = this.highlights();
    const sel = this.selected ? space.indexOf(this.selected.vpn) : -1;
    const shown = this.shownTables;
    this.shownTables = new Set(live.map((t) => t.id));
    for (const t of live) {
      const g = this.grids[t.id]!;
      const vmas = m.vmas(t.id);
      const mapped = vmas.reduce((a, x) => a + x.pages, 0);
      g.setTitle(t.kind === 'cpu' ? `CPU page table — ${t.name}` : `device page table — ${t.name}`,
        t.kind === 'cpu' ? `${vmas.length} VMA${vmas.length === 1 ? '' : 's'}, ${sizeWords(mapped)}` : `mirrors mm ${t.mm}`);
      // A grid that was not on screen last time missed the changes in between: draw it whole.
      g.render(m, v, layout, this.mode, highlights, this.selected && m.doc.tables[this.selected.table]!.mm === t.mm ? sel : -1, shown.has(t.id) ? changed : null);
    }
  }

  private zoomButton(label: string, fn: () => void): HTMLElement {
    const b = h('button', { class: 'small' }, label);
    b.addEventListener('click', fn);
    return b;
  }

  /** The pages the last event touched and changed, per table, in page-index ranges. */
  private highlights(): Highlight[] {
    const m = this.model;
    const p = m.position;
    if (p === 0) return [];
    const e = p - 1;
    const out: Highlight[] = [];
    const space = m.replay.space;
    const add = (table: number, vpn: number, n: number) =>
      space.forEachPart(vpn, n, (index, count) => void out.push({ table, index, count }));
    const ev = m.rec.events;
    if (m.rec.detailed && ev.vpn[e]! >= 0 && m.categories[ev.type[e]!] !== 'free') add(ev.table[e]!, ev.vpn[e]!, Math.max(1, ev.n[e]!));
    for (const [table, vpn, n] of m.changesOf(e)) add(table, vpn, n);
    return out;
  }

  private renderLegend(): void {
    if (this.legendMode === this.mode) return;
    this.legendMode = this.mode;
    const item = (s: Swatch) => h('li', { title: s.help }, h('span', { class: 'swatch', style: `background:${s.css}` }), s.label);
    const box = this.legendBox;
    box.replaceChildren();
    if (this.mode === 'kind') {
      box.append(h('h4', {}, 'CPU entries'), h('ul', { class: 'legend' }, ...KIND_SWATCHES.filter((s) => s !== EMPTY).map(item), item(EMPTY), item(HOLE)));
      if (this.model.doc.tables.some((t) => t.kind === 'device')) {
        box.append(h('h4', {}, 'device entries'), h('ul', { class: 'legend' }, ...DEVICE_KIND_SWATCHES.filter((s) => s && s.label !== 'none').map(item)));
      }
    } else {
      const mems = this.model.doc.memories.map((mm) => ({ ...memorySwatch(mm.id), label: mm.name, help: `the data is in ${mm.name}` }));
      box.append(h('h4', {}, 'where the data is (CPU)'), h('ul', { class: 'legend' }, ...mems.map(item), item(RES_ZERO), item(RES_SWAP), item(EMPTY), item(HOLE)));
      box.append(h('h4', {}, 'how a device reaches it'), h('ul', { class: 'legend' }, item(RES_LOCAL), item(RES_REMOTE)));
    }
    box.append(h('p', { class: 'muted small' }, 'A cell that holds several pages takes the colour of most of them, paler when few have an entry. Yellow: what the last event touched.'));
  }

  private renderVmas(): void {
    const m = this.model;
    const live = m.liveTables();
    const key = live.flatMap((t) => [t, m.vmas(t.id)]);
    if (key.length === this.vmaKey.length && key.every((k, i) => k === this.vmaKey[i])) return;
    this.vmaKey = key;
    const rows: HTMLElement[] = [];
    for (const t of live) {
      if (t.kind !== 'cpu') continue;
      rows.push(h('h4', {}, t.name));
      const list = m.vmas(t.id);
      if (!list.length) rows.push(h('p', { class: 'muted' }, 'no VMAs'));
      for (const v of list) {
        const row = h('div', { class: 'vma', title: 'click to zoom to this VMA' },
          h('code', {}, `${hexAddr(v.start)}`), ' ', h('span', {}, sizeWords(v.pages)), ' ', h('code', {}, v.flags), ' ', h('span', { class: 'muted' }, v.label));
        row.addEventListener('click', () => {
          const idx = m.replay.space.indexOf(v.start);
          if (idx >= 0) this.zoomTo(idx, v.pages);
        });
        rows.push(row);
      }
    }
    this.vmaBox.replaceChildren(...rows);
  }

  private renderNow(): void {
    const m = this.model;
    const p = m.position;
    const box = this.nowBox;
    box.replaceChildren();
    if (p === 0) {
      box.append(h('p', { class: 'muted', id: 'event-now' }, 'The start of the run: nothing has happened yet. Press ▶ or → to step.'));
    } else {
      const e = p - 1;
      const changes = m.changesOf(e);
      box.append(h('p', { id: 'event-now' }, h('strong', {}, `#${e} `), m.describe(e)));
      if (changes.length) {
        const ul = h('ul', { class: 'changes', id: 'changes' });
        for (const [t, vpn, n, st] of changes.slice(0, 12)) ul.append(h('li', {}, `${m.tableName(t)}: ${pageRange(vpn, n)} → ${m.stateWords(st, t)}`));
        if (changes.length > 12) ul.append(h('li', { class: 'muted' }, `… and ${changes.length - 12} more runs`));
        box.append(ul);
      } else {
        box.append(h('p', { class: 'muted small' }, 'No page-table entry changed.'));
      }
    }
    // The log around the position.
    const from = Math.max(0, p - 6);
    const to = Math.min(m.count, from + 13);
    const items: HTMLElement[] = [];
    for (let e = from; e < to; e++) {
      const li = h('li', { class: e === p - 1 ? 'current' : e >= p ? 'future' : '', value: String(e) }, m.describe(e));
      li.addEventListener('click', () => this.seek(e + 1));
      items.push(li);
    }
    this.logBox.replaceChildren(...items);
  }
}
