// A failing `hmmsim check` schedule as swim lanes: one lane per thread, its steps in the
// order the schedule ran them, the step after which the invariant broke marked. SVG, so the
// labels stay sharp and each step can be clicked.

import type { CheckTraceDoc } from '../sim/record/format.js';

const SVG = 'http://www.w3.org/2000/svg';
const LANE_H = 46;
const STEP_W = 132;
const HEAD_W = 150;

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Draw the lanes into root; `onStep(k)` is called when step k (0-based) is chosen. */
export function renderLanes(root: HTMLElement, doc: CheckTraceDoc, onStep?: (k: number) => void): void {
  root.innerHTML = '';
  root.className = 'lanes-page';
  const head = document.createElement('header');
  head.className = 'check-head';
  const h = document.createElement('h1');
  h.textContent = `hmmsim check: ${doc.driver}`;
  const about = document.createElement('p');
  about.className = 'muted';
  about.textContent = [doc.scenario ? `scenario ${doc.scenario}` : '', doc.schedules ? `${doc.schedules.toLocaleString('en')} schedules run` : '',
    `${doc.steps.length} steps, ${doc.threads.length} threads`].filter(Boolean).join(' · ');
  const v = document.createElement('p');
  v.className = 'violation';
  if (doc.invariant) {
    const strong = document.createElement('strong');
    strong.textContent = `${doc.invariant}: `;
    v.append(strong, doc.message);
  } else {
    v.textContent = 'No violation.';
  }
  const tok = document.createElement('p');
  tok.className = 'token';
  tok.textContent = doc.token ? `replay: hmmsim check ${doc.driver} --replay ${doc.token}` : '';
  head.append(h, about, v, tok);
  root.append(head);

  const detail = document.createElement('div');
  detail.className = 'step-detail';
  detail.id = 'step-detail';

  const wrap = document.createElement('div');
  wrap.className = 'lanes';
  const width = HEAD_W + doc.steps.length * STEP_W + 20;
  const height = doc.threads.length * LANE_H + 30;
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, id: 'lanes' });
  doc.threads.forEach((name, i) => {
    const y = 24 + i * LANE_H;
    svg.append(el('rect', { x: 0, y, width, height: LANE_H - 4, fill: i % 2 ? '#f3f5f8' : '#eaeef3', rx: 4 }));
    svg.append(el('text', { x: 10, y: y + LANE_H / 2, 'dominant-baseline': 'middle', class: 'lane-name' }, name));
  });
  doc.steps.forEach((s, k) => {
    const x = HEAD_W + k * STEP_W;
    svg.append(el('text', { x: x + 4, y: 14, class: 'step-no' }, `#${k + 1}`));
    if (k > 0) {
      const prev = doc.steps[k - 1]!;
      if (prev.thread !== s.thread) {
        // A context switch: the arrow from the previous step's lane to this one's.
        const y0 = 24 + prev.thread * LANE_H + LANE_H / 2;
        const y1 = 24 + s.thread * LANE_H + LANE_H / 2;
        svg.append(el('path', { d: `M${x - 8} ${y0} C ${x} ${y0}, ${x - 8} ${y1}, ${x + 2} ${y1}`, class: 'switch' }));
      }
    }
    const y = 24 + s.thread * LANE_H + 5;
    const bad = k === doc.violation;
    const g = el('g', { class: `step${bad ? ' violating' : ''}${s.preemption ? ' preemption' : ''}`, 'data-step': k, tabindex: 0 });
    g.append(el('rect', { x: x + 2, y, width: STEP_W - 8, height: LANE_H - 14, rx: 5 }));
    // A preemption: the scheduler switched away from a thread that could have gone on.
    if (s.preemption) g.append(el('path', { d: `M${x + 2} ${y + 4} l0 ${LANE_H - 22}`, class: 'preempt-bar' }));
    const label = s.label.length > 19 ? s.label.slice(0, 18) + '…' : s.label;
    g.append(el('text', { x: x + 8, y: y + (LANE_H - 14) / 2, 'dominant-baseline': 'middle' }, label));
    const title = el('title', {}, `#${k + 1} ${doc.threads[s.thread]}${s.preemption ? ' (a preemption)' : ''}: ${s.label}${s.detail ? `\n${s.detail}` : ''}${bad ? `\nVIOLATION: ${doc.invariant}` : ''}`);
    g.append(title);
    const show = () => {
      svg.querySelectorAll('.step.selected').forEach((n) => n.classList.remove('selected'));
      g.classList.add('selected');
      detail.textContent = `#${k + 1} — ${doc.threads[s.thread]}${s.preemption ? ' (preempting a thread that could have gone on)' : ''}: ${s.label}`
        + `${s.detail ? `\n${s.detail}` : ''}${bad ? `\nThe invariant broke here: ${doc.message}` : ''}`;
      onStep?.(k);
    };
    g.addEventListener('click', show);
    g.addEventListener('keydown', (e) => (e.key === 'Enter' || e.key === ' ') && show());
    svg.append(g);
    if (bad) {
      svg.append(el('text', { x: x + 6, y: height - 4, class: 'violation-mark' }, '▲ violation'));
    }
  });
  wrap.append(svg);
  root.append(wrap, detail);
  const bad = doc.steps[doc.violation];
  detail.textContent = bad
    ? `The invariant broke after step #${doc.violation + 1} (${doc.threads[bad.thread]}: ${bad.label}). Click a step for its detail; an orange bar marks a preemption.`
    : `${doc.invariant ? 'The invariant broke during setup, before the first step. ' : ''}Click a step for its detail; an orange bar marks a preemption.`;
}
