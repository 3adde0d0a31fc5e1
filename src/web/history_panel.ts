// The "Page history" panel: the selected page's state now in each table of its address space,
// and every event that touched it, styled past / current / future as the position moves.

import { h } from './dom.js';
import { type HistoryRow, type Model, hexAddr, upperBound } from './model.js';

export class HistoryPanel {
  readonly el = h('div', { id: 'history' }, h('p', { class: 'muted' }, 'Click a page (zoom in until cells are single pages) to see every event that touched it.'));
  private items: HTMLElement[] = [];
  /** The position the list was last styled for (-1: a new list). */
  private pos = -1;

  /** seek(p): move the run to position p (a click on an event). */
  constructor(private readonly model: Model, private readonly seek: (p: number) => void) {}

  render(sel: { table: number; vpn: number }, history: { rows: HistoryRow[]; total: number }): void {
    const m = this.model;
    const t = m.doc.tables[sel.table]!;
    const related = m.doc.tables.filter((x) => x.mm === t.mm);
    const now = h('ul', { class: 'state-now', id: 'state-now' },
      ...related.map((x) => h('li', { 'data-table': String(x.id) }, `${x.name}: `, h('strong', {}, m.stateWords(m.replay.stateAt(x.id, sel.vpn), x.id)))));
    const vma = m.vmas(t.id).find((v) => v.start <= sel.vpn && sel.vpn < v.start + v.pages);
    const head = h('p', {}, h('strong', { id: 'history-page' }, `page ${hexAddr(sel.vpn)}`), ' ',
      h('span', { class: 'muted' }, vma ? `in VMA ${hexAddr(vma.start)} ${vma.flags} ${vma.label}` : 'not in a VMA now'));
    const rows = history.rows;
    let list = this.el.querySelector<HTMLElement>('#history-list');
    if (!list || this.items.length !== rows.length || list.dataset.vpn !== String(sel.vpn) || list.dataset.mm !== String(t.mm)) {
      // A new selection: build the list once; moving through the run only restyles it.
      list = h('ol', { class: 'history', id: 'history-list', 'data-vpn': String(sel.vpn), 'data-mm': String(t.mm) });
      this.items = rows.map((r) => {
        const li = h('li', { class: 'future', 'data-event': String(r.event) },
          h('span', { class: 'ev' }, `#${r.event}`), ' ', m.describe(r.event),
          ...r.changes.map(([tb, st]) => h('div', { class: 'change' }, `→ ${m.tableName(tb)}: ${m.stateWords(st, tb)}`)));
        li.addEventListener('click', () => this.seek(r.event + 1));
        return li;
      });
      list.append(...this.items);
      this.pos = -1;
    }
    const total = history.total;
    this.el.replaceChildren(head, now,
      h('p', { class: 'muted small' }, `${total} event${total === 1 ? '' : 's'} touched it${total > rows.length ? ` (the last ${rows.length} shown)` : ''}; click one to go there.`),
      list);
    // Restyle: rows before the position are past, the event just applied is current.
    const p = m.position;
    const events = rows.map((r) => r.event);
    const k = upperBound(events, p - 1); // rows [0, k) have event <= p - 1
    const prevK = this.pos < 0 ? 0 : upperBound(events, this.pos - 1);
    const lo = this.pos < 0 ? 0 : Math.min(k, prevK);
    const hi = this.pos < 0 ? rows.length : Math.max(k, prevK);
    for (let i = Math.max(0, lo - 1); i < Math.min(rows.length, hi + 1); i++) {
      const li = this.items[i]!;
      li.className = rows[i]!.event === p - 1 ? 'current' : i < k ? 'past' : 'future';
    }
    this.pos = p;
    // Keep the row at the position in view (scrolling the list only, not the page).
    const cur = list.querySelector<HTMLElement>('.current') ?? this.items[Math.min(k, rows.length - 1)] ?? null;
    if (cur) {
      const top = cur.offsetTop - list.offsetTop;
      if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - cur.offsetHeight) list.scrollTop = Math.max(0, top - list.clientHeight / 2);
    }
  }
}
