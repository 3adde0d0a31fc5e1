// `--report out.html`: one self-contained HTML file (no script, no network) with the run's
// figures and plots as inline SVG — where the time went, fault batches (sizes and service
// times), VRAM residency, fault rate and copy bandwidth over time; for a sweep, the slowdown
// against oversubscription of each workload under each driver and policy.

import { histogram, renderSvg } from './charts.js';

/** What a report needs of one run (the --json record plus the series and batches). */
export interface ReportRun {
  /** Objects of named values (the run record's config, breakdown and GPU counters). */
  config: object;
  simulatedTimeUs: number;
  breakdownUs: object;
  gpu: object;
  wallMs: number;
  series?: {
    tUs: number[];
    vramPages: number[];
    faultsPerMs: number[];
    htodGBps: number[];
    dtohGBps: number[];
  };
  batches?: { sizes: ArrayLike<number>; us: ArrayLike<number> };
}

/** A sweep record: the --json record of one run (series and batches not needed). */
export type SweepRecord = Pick<ReportRun, 'config' | 'simulatedTimeUs' | 'breakdownUs' | 'gpu' | 'wallMs'>;

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

const CSS = `body{font-family:sans-serif;margin:2em auto;max-width:960px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
.note{color:#555;font-size:.9em}`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${esc(title)}</title>\n<style>${CSS}</style>\n</head>\n<body>\n${body}\n</body>\n</html>\n`;
}

function figure(id: string, caption: string, svg: string): string {
  return `<figure id="${id}">\n${svg}\n<figcaption>${esc(caption)}</figcaption>\n</figure>`;
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 3 });
  return esc(String(v));
}

function kvTable(obj: Record<string, unknown>): string {
  return `<table>\n${Object.entries(obj).map(([k, v]) => `<tr><th>${esc(k)}</th><td class="n">${fmt(typeof v === 'object' && v !== null ? JSON.stringify(v) : v)}</td></tr>`).join('\n')}\n</table>`;
}

const xTime = { type: 'value' as const, name: 'simulated time (µs)', nameLocation: 'middle' as const, nameGap: 28 };

/** The report of one run. */
export function renderRunReport(run: ReportRun, title = 'hmmsim run'): string {
  const r = run as ReportRun & { config: Record<string, unknown>; breakdownUs: Record<string, number>; gpu: Record<string, unknown> };
  const parts: string[] = [`<h1>${esc(title)}</h1>`];
  const total = r.simulatedTimeUs;
  parts.push(`<p>Simulated time <b>${fmt(total)} µs</b> (${fmt(total / 1e6)} s); simulated in ${fmt(r.wallMs)} ms of wall time.</p>`);
  parts.push('<h2>Configuration</h2>', kvTable(r.config));

  const keys = Object.keys(r.breakdownUs);
  parts.push('<h2>Where the time went</h2>');
  parts.push(figure('breakdown', 'Each instant of simulated time goes to the most important activity in progress (docs/validation.md, "Time breakdown").', renderSvg({
    tooltip: {},
    legend: { top: 0 },
    grid: { left: 60, right: 20, top: 40, bottom: 30 },
    xAxis: { type: 'value', name: 'µs', max: total || undefined },
    yAxis: { type: 'category', data: ['run'] },
    series: keys.map((k) => ({ name: k, type: 'bar' as const, stack: 'time', data: [r.breakdownUs[k]!] })),
  }, { width: 720, height: 160 })));
  parts.push(kvTable(Object.fromEntries(keys.map((k) => [k, `${fmt(r.breakdownUs[k])} µs (${total ? ((100 * r.breakdownUs[k]!) / total).toFixed(1) : '0'}%)`]))));

  parts.push('<h2>GPU</h2>', kvTable(r.gpu));

  if (r.batches && r.batches.sizes.length) {
    const hs = histogram(r.batches.sizes, 16);
    const ht = histogram(r.batches.us, 16, 1);
    parts.push('<h2>Fault batches</h2>');
    parts.push(figure('batch-sizes', `Faults serviced per batch (after coalescing), ${r.batches.sizes.length} batches.`, renderSvg({
      grid: { left: 60, right: 20, top: 20, bottom: 60 },
      xAxis: { type: 'category', data: hs.labels, name: 'faults per batch', nameLocation: 'middle', nameGap: 45, axisLabel: { rotate: 30 } },
      yAxis: { type: 'value', name: 'batches' },
      series: [{ name: 'batch sizes', type: 'bar', data: hs.counts }],
    })));
    parts.push(figure('batch-times', 'Batch service time (µs): from the driver fetching the batch to its replay.', renderSvg({
      grid: { left: 60, right: 20, top: 20, bottom: 60 },
      xAxis: { type: 'category', data: ht.labels, name: 'µs per batch', nameLocation: 'middle', nameGap: 45, axisLabel: { rotate: 30 } },
      yAxis: { type: 'value', name: 'batches' },
      series: [{ name: 'batch times', type: 'bar', data: ht.counts }],
    })));
  }

  if (r.series && r.series.tUs.length) {
    const s = r.series;
    const pts = (ys: number[]) => s.tUs.map((t, i) => [t, ys[i]!]);
    parts.push('<h2>Over time</h2>');
    parts.push(figure('residency', 'Pages resident in VRAM.', renderSvg({
      grid: { left: 70, right: 20, top: 30, bottom: 45 },
      xAxis: xTime, yAxis: { type: 'value', name: 'pages' },
      series: [{ name: 'VRAM residency', type: 'line', showSymbol: false, data: pts(s.vramPages) }],
    })));
    parts.push(figure('bandwidth', 'Copy bandwidth each way (GB/s).', renderSvg({
      legend: { top: 0 },
      grid: { left: 70, right: 20, top: 30, bottom: 45 },
      xAxis: xTime, yAxis: { type: 'value', name: 'GB/s' },
      series: [
        { name: 'host to device', type: 'line', showSymbol: false, data: pts(s.htodGBps) },
        { name: 'device to host', type: 'line', showSymbol: false, data: pts(s.dtohGBps) },
      ],
    })));
    parts.push(figure('fault-rate', 'GPU faults raised per ms.', renderSvg({
      grid: { left: 70, right: 20, top: 30, bottom: 45 },
      xAxis: xTime, yAxis: { type: 'value', name: 'faults/ms' },
      series: [{ name: 'fault rate', type: 'line', showSymbol: false, data: pts(s.faultsPerMs) }],
    })));
  }
  return page(title, parts.join('\n'));
}

/** A sweep's report: slowdown against oversubscription, one line per (workload, driver, policies, preset). */
export function renderSweepReport(runs: SweepRecord[], title = 'hmmsim sweep'): string {
  const records = runs as Array<SweepRecord & { config: Record<string, unknown>; gpu: Record<string, unknown> }>;
  const parts: string[] = [`<h1>${esc(title)}</h1>`, `<p>${records.length} runs.</p>`];
  const key = (c: Record<string, unknown>) => `${c.workload} · ${c.driver} · prefetch ${c.prefetch} · evict ${c.evict} · ${c.preset}`;
  const groups = new Map<string, typeof records>();
  for (const r of records) {
    const k = key(r.config);
    const g = groups.get(k) ?? [];
    g.push(r);
    groups.set(k, g);
  }
  const series = [...groups].map(([name, rs]) => {
    const sorted = [...rs].sort((a, b) => Number(a.config.oversub) - Number(b.config.oversub));
    const base = sorted[0]!.simulatedTimeUs || 1;
    return { name, type: 'line' as const, data: sorted.map((r) => [Number(r.config.oversub), r.simulatedTimeUs / base]) };
  });
  parts.push('<h2>Slowdown against oversubscription</h2>');
  parts.push(figure('slowdown', 'Simulated time relative to the lowest oversubscription of the same workload, driver, policies and preset.', renderSvg({
    tooltip: {},
    legend: { type: 'plain', bottom: 0 },
    grid: { left: 60, right: 20, top: 20, bottom: 40 + 20 * Math.ceil(series.length / 2) },
    xAxis: { type: 'value', name: 'oversubscription (footprint / VRAM)', nameLocation: 'middle', nameGap: 28, min: 'dataMin' },
    yAxis: { type: 'value', name: 'slowdown', min: 0 },
    series,
  }, { width: 900, height: 380 + 20 * Math.ceil(series.length / 2) })));
  parts.push('<h2>Runs</h2>');
  parts.push(`<table>\n<tr><th>run</th><th>oversub</th><th>simulated µs</th><th>faults</th><th>batches</th><th>evicted</th></tr>\n${records.map((r) =>
    `<tr><td>${esc(key(r.config))}</td><td class="n">${fmt(r.config.oversub)}</td><td class="n">${fmt(r.simulatedTimeUs)}</td><td class="n">${fmt(r.gpu.faults)}</td><td class="n">${fmt(r.gpu.batches)}</td><td class="n">${fmt(r.gpu.pagesEvicted)}</td></tr>`).join('\n')}\n</table>`);
  return page(title, parts.join('\n'));
}
