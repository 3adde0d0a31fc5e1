// The page's entry: load the record (embedded by `hmmsim view --out`, or run.json next to the
// page, or ?src=), decode it, and show it; a check trace is shown as swim lanes.

import { CHECK_FORMAT, type CheckTraceDoc, RECORD_FORMAT, type RecordDoc } from '../sim/record/format.js';
import { decodeRecord } from '../sim/record/replay.js';
import { App } from './app.js';
import { renderLanes } from './lanes.js';
import { Model } from './model.js';
import './style.css';

declare global {
  interface Window {
    HMMSIM_RECORD?: RecordDoc | CheckTraceDoc;
    hmmsim?: App['handle'];
    hmmsimTimings?: { loadedMs: number; decodedMs: number; paintedMs: number; readyMs: number };
  }
}

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function loadDoc(): Promise<RecordDoc | CheckTraceDoc> {
  if (window.HMMSIM_RECORD) return window.HMMSIM_RECORD;
  const src = new URLSearchParams(location.search).get('src') ?? 'run.json';
  const res = await fetch(src);
  if (!res.ok) throw new Error(`could not load ${src}: HTTP ${res.status}`);
  return (await res.json()) as RecordDoc | CheckTraceDoc;
}

async function show(root: HTMLElement, doc: RecordDoc | CheckTraceDoc): Promise<void> {
  if (doc.format === CHECK_FORMAT) {
    const record = doc.record;
    if (!record) {
      renderLanes(root, doc);
      document.body.dataset.ready = '1';
      return;
    }
    // The lanes above, the recorded schedule's page tables below: a step goes to the end of its mark.
    const lanes = document.createElement('div');
    const tables = document.createElement('div');
    tables.id = 'check-record';
    root.replaceChildren(lanes, tables);
    renderLanes(lanes, doc, (k) => {
      const m = record.marks[k + 1];
      if (m && window.hmmsim) window.hmmsim.seek(m.end);
    });
    await show(tables, record);
    return;
  }
  if (doc.format !== RECORD_FORMAT) throw new Error(`not an hmmsim record (format ${JSON.stringify((doc as { format?: unknown }).format)})`);
  const t1 = performance.now();
  // The first picture needs the event types and the snapshots; the rest comes next.
  // Served by `hmmsim view`, columns come apart from the document: byte ranges of a blob.
  const blobs = new Map<string, Promise<ArrayBuffer>>();
  const fetchRef = async (ref: string) => {
    const m = /^([^#]+)#(\d+),(\d+)$/.exec(ref);
    if (!m) throw new Error(`bad column reference ${ref}`);
    let blob = blobs.get(m[1]!);
    if (!blob) {
      blob = fetch(m[1]!).then((res) => {
        if (!res.ok) throw new Error(`could not load ${m[1]}: HTTP ${res.status}`);
        return res.arrayBuffer();
      });
      blobs.set(m[1]!, blob);
    }
    return new Uint8Array(await blob, Number(m[2]), Number(m[3]));
  };
  const rec = await decodeRecord(doc, inflate, { deferDetails: true, fetchRef });
  const t2 = performance.now();
  document.title = `hmmsim — ${doc.meta.title}`;
  const app = new App(root, new Model(rec));
  window.hmmsim = app.handle;
  // Painted: the frame after the first render starts.
  await new Promise((r) => requestAnimationFrame(r));
  const timings = { loadedMs: t1, decodedMs: t2, paintedMs: performance.now(), readyMs: 0 };
  window.hmmsimTimings = timings;
  await rec.loadDetails();
  app.detailsLoaded();
  timings.readyMs = performance.now();
}

function openFilePrompt(root: HTMLElement, message: string): void {
  root.innerHTML = '';
  const box = document.createElement('div');
  box.className = 'open';
  const p = document.createElement('p');
  p.textContent = message;
  const input = document.createElement('input');
  input.type = 'file';
  input.accept = '.json,application/json';
  input.addEventListener('change', async () => {
    const f = input.files?.[0];
    if (!f) return;
    try {
      await show(root, JSON.parse(await f.text()) as RecordDoc);
    } catch (e) {
      p.textContent = String(e);
    }
  });
  const hint = document.createElement('p');
  hint.className = 'muted';
  hint.textContent = 'Record a run with `hmmsim demo --record run.json`, then `hmmsim view run.json`.';
  box.append(p, input, hint);
  root.append(box);
}

const root = document.getElementById('app')!;
loadDoc().then(
  (doc) => show(root, doc).catch((e) => openFilePrompt(root, `This record could not be shown: ${String(e)}`)),
  (e) => openFilePrompt(root, `No record loaded (${String(e)}). Open one:`),
);
