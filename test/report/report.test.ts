import { describe, expect, it } from 'vitest';
import { renderRunReport, renderSweepReport, type ReportRun } from '../../src/report/report.js';
import { histogram } from '../../src/report/charts.js';

const VOID = new Set(['meta', 'br', 'img', 'input', 'link', 'hr']);

/** Every tag closed in order (void elements aside), one html/head/body: well-formed enough to open anywhere. */
function checkWellFormed(html: string): void {
  expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
  const stack: string[] = [];
  const body = html.replace(/<!DOCTYPE html>/, '').replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, selfClose] = m;
    const tag = name!.toLowerCase();
    if (selfClose || VOID.has(tag)) continue;
    if (close) expect(stack.pop(), `closing </${tag}>`).toBe(tag);
    else stack.push(tag);
  }
  expect(stack).toEqual([]);
  for (const t of ['html', 'head', 'body', 'title']) expect(html.match(new RegExp(`<${t}[ >]`, 'g'))?.length).toBe(1);
}

function noNetwork(html: string): void {
  expect(html).not.toMatch(/https?:|\/\/[a-z]/i);
  expect(html).not.toMatch(/<script|<link|<img|src=|@import/i);
}

const run: ReportRun = {
  config: { workload: 'bfs', driver: 'uvm', preset: 'gtx1080ti-pcie3', oversub: 1.25 },
  simulatedTimeUs: 1000,
  breakdownUs: { compute: 400, faultService: 200, htod: 150, dtoh: 50, eviction: 100, remote: 0, stall: 80, launch: 20 },
  gpu: { faults: 1234, batches: 10, avgBatchSize: 123.4 },
  wallMs: 42,
  series: { tUs: [250, 500, 750, 1000], vramPages: [10, 200, 300, 300], faultsPerMs: [1, 2, 3, 0], htodGBps: [1, 5, 2, 0], dtohGBps: [0, 0, 1, 0] },
  batches: { sizes: Float64Array.from({ length: 10 }, (_, i) => 10 * i + 5), us: Float64Array.from({ length: 10 }, (_, i) => 45 + i) },
};

describe('run report', () => {
  const html = renderRunReport(run);

  it('is one well-formed, self-contained HTML page: no script, no link, no URL', () => {
    checkWellFormed(html);
    noNetwork(html);
  });

  it('has the expected plots, each an inline SVG with its series', () => {
    for (const id of ['breakdown', 'batch-sizes', 'batch-times', 'residency', 'bandwidth', 'fault-rate']) {
      const fig = html.match(new RegExp(`<figure id="${id}">([\\s\\S]*?)</figure>`));
      expect(fig, id).not.toBeNull();
      expect(fig![1]).toMatch(/<svg[\s\S]*<\/svg>/);
      expect(fig![1]).toMatch(/<path/);
    }
    const breakdown = html.match(/<figure id="breakdown">([\s\S]*?)<\/figure>/)![1]!;
    for (const k of Object.keys(run.breakdownUs)) expect(breakdown).toContain(`>${k}<`); // legend entries
    const bw = html.match(/<figure id="bandwidth">([\s\S]*?)<\/figure>/)![1]!;
    expect(bw).toContain('host to device');
    expect(bw).toContain('device to host');
    expect(html).toContain('1,234');
  });

  it('leaves out the plots a run has no data for', () => {
    const bare = renderRunReport({ ...run, series: undefined, batches: undefined });
    checkWellFormed(bare);
    expect(bare).toContain('id="breakdown"');
    expect(bare).not.toContain('id="residency"');
    expect(bare).not.toContain('id="batch-sizes"');
  });

  it('escapes what the configuration holds', () => {
    const h = renderRunReport({ ...run, config: { trace: '<script>x</script>&' } });
    expect(h).not.toContain('<script>');
    expect(h).toContain('&lt;script&gt;');
  });
});

describe('sweep report', () => {
  it('plots slowdown against oversubscription, one line per workload and policy, relative to the lowest point', () => {
    const rec = (workload: string, prefetch: string, oversub: number, t: number) => ({
      config: { workload, driver: 'uvm', prefetch, evict: 'uvm', preset: 'p', oversub }, simulatedTimeUs: t, breakdownUs: {}, gpu: { faults: 1, batches: 1, pagesEvicted: 0 }, wallMs: 1,
    });
    const html = renderSweepReport([
      rec('stream', 'tree', 1, 100), rec('stream', 'tree', 1.5, 110), rec('bfs', 'tree', 1.5, 900), rec('bfs', 'tree', 1, 300), rec('bfs', 'none', 1, 600),
    ]);
    checkWellFormed(html);
    noNetwork(html);
    const fig = html.match(/<figure id="slowdown">([\s\S]*?)<\/figure>/)![1]!;
    expect(fig).toContain('stream · uvm · prefetch tree');
    expect(fig).toContain('bfs · uvm · prefetch none');
    expect((fig.match(/<path/g) ?? []).length).toBeGreaterThan(3);
    expect(html).toContain('<td class="n">900</td>');
  });
});

describe('histogram', () => {
  it('bins values over their range; one bin for a constant', () => {
    expect(histogram([1, 2, 3, 4], 2).counts).toEqual([2, 2]);
    expect(histogram([5, 5, 5], 4)).toEqual({ labels: ['5'], counts: [3] });
    expect(histogram([], 3)).toEqual({ labels: [], counts: [] });
  });
});
