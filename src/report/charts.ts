// Charts rendered to SVG in Node with echarts' server-side renderer: no browser, no script in
// the page. The namespace attributes echarts writes are dropped (inline SVG in HTML needs
// none), so a report holds no URL at all.

import * as echarts from 'echarts';

export interface ChartSize { width: number; height: number }

const PALETTE = ['#4269d0', '#efb118', '#ff725c', '#6cc5b0', '#3ca951', '#ff8ab7', '#a463f2', '#97bbf5', '#9c6b4e', '#9498a0'];

/** Render an echarts option to an SVG string. */
export function renderSvg(option: echarts.EChartsOption, size: ChartSize = { width: 720, height: 320 }): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: size.width, height: size.height });
  try {
    chart.setOption({ animation: false, color: PALETTE, textStyle: { fontFamily: 'sans-serif' }, ...option });
    return chart.renderToSVGString().replace(/\s+xmlns(:xlink)?="[^"]*"/g, '');
  } finally {
    chart.dispose();
  }
}

/** Bucket values into `bins` equal bins over [min, max]; returns labels and counts. */
export function histogram(values: ArrayLike<number>, bins: number, digits = 0): { labels: string[]; counts: number[] } {
  if (values.length === 0) return { labels: [], counts: [] };
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (hi === lo) return { labels: [lo.toFixed(digits)], counts: [values.length] };
  const w = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor((values[i]! - lo) / w))]!++;
  const labels = counts.map((_, b) => `${(lo + b * w).toFixed(digits)}-${(lo + (b + 1) * w).toFixed(digits)}`);
  return { labels, counts };
}
