// `hmmsim view <record>`: the visualizer of a recorded run. It serves the page and the record
// on the loopback interface and prints the address, or with --out writes static files that
// open from disk. The page (src/web) is built by vite: `npm run build` puts it in dist/web;
// run from source, the command builds it into node_modules/.cache first.

import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError } from 'commander';
import { gunzipSync } from 'node:zlib';
import { type CheckTraceDoc, RECORD_FORMAT, type RecordDoc, fromBase64 } from '../sim/record/format.js';
import { readRecordFile, readRecordText } from '../sim/record/io.js';
import { recordColumns } from '../sim/record/replay.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The package root: this file is src/cli/view.ts or dist/cli/view.js. */
const ROOT = resolve(here, '..', '..');
const PAGE_SOURCES = join(ROOT, 'src', 'web');
const PAGE_BUILT = join(ROOT, 'dist', 'web');
const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** Build the page with vite into outDir (index.html and assets/). Needs vite (a dev dependency). */
export async function buildViewerPage(outDir: string): Promise<void> {
  const { build } = await import('vite');
  await build({
    root: PAGE_SOURCES,
    base: './',
    configFile: false,
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      modulePreload: false,
      cssCodeSplit: false,
      target: 'es2022',
      reportCompressedSize: false,
      rollupOptions: { output: { inlineDynamicImports: true } },
    },
  });
}

/** The built page as one HTML file (script and style inlined), so it needs no other request and opens from disk. */
export function inlineViewerPage(dir: string): string {
  let html = readFileSync(join(dir, 'index.html'), 'utf8');
  html = html.replace(/<script type="module" crossorigin src="\.\/([^"]+)"><\/script>/g, (_m, src: string) =>
    `<script type="module">${readFileSync(join(dir, src), 'utf8').replace(/<\/script/gi, '<\\/script')}</script>`);
  html = html.replace(/<link rel="stylesheet" crossorigin href="\.\/([^"]+)">/g, (_m, href: string) =>
    `<style>${readFileSync(join(dir, href), 'utf8')}</style>`);
  if (/src="\.\/assets|href="\.\/assets/.test(html)) throw new Error(`the page in ${dir} refers to assets that were not inlined`);
  return html;
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    t = Math.max(t, f.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** The page's HTML: dist/web when installed, a fresh build when run from source. */
export async function viewerPage(): Promise<string> {
  if (!FROM_SOURCE) {
    if (!existsSync(join(PAGE_BUILT, 'index.html'))) throw new Error(`the visualizer page is not built (${PAGE_BUILT}): run npm run build`);
    return inlineViewerPage(PAGE_BUILT);
  }
  const cache = join(ROOT, 'node_modules', '.cache', 'hmmsim-viewer');
  const stamp = join(cache, 'stamp');
  const want = String(Math.max(newestMtime(PAGE_SOURCES), newestMtime(join(ROOT, 'src', 'sim', 'record'))));
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== want) {
    await buildViewerPage(cache);
    writeFileSync(stamp, want);
  }
  return inlineViewerPage(cache);
}

/** The page with the record embedded (a script that sets it), for static files. */
function withRecordScript(html: string): string {
  return html.replace('<script type="module">', '<script src="./record.js"></script>\n    <script type="module">');
}

/** Write the page and the record into outDir: index.html opens from disk or any static server. */
export function writeView(record: string | RecordDoc | CheckTraceDoc, outDir: string, page: string): string[] {
  const text = typeof record === 'string' ? readRecordText(record).trim() : JSON.stringify(record);
  if (typeof record === 'string') readRecordFile(record);
  mkdirSync(outDir, { recursive: true });
  const index = join(outDir, 'index.html');
  const data = join(outDir, 'record.js');
  writeFileSync(index, withRecordScript(page));
  writeFileSync(data, `window.HMMSIM_RECORD = ${text};\n`);
  return [index, data];
}

export interface ViewServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * A record split for serving: the document without its column bytes (small, parsed at once)
 * and the bytes, inflated, in two blobs: what the first picture needs (event types,
 * snapshots) and the rest (entry changes, frames, the events' details), fetched after it. The browser
 * makes each column a typed array over the blob, without parsing or decoding anything.
 */
function splitRecord(doc: RecordDoc): { head: string; blobs: Map<string, Uint8Array> } {
  // The first picture needs the event types (the timeline) and the snapshots; all else is detail.
  const first = new Set([doc.events.type, ...doc.snapshots.flatMap((s) => s.tables.flatMap((t) => [t.vpn, t.n, t.state]))]);
  const parts = new Map<string, Uint8Array[]>([['first.bin', []], ['details.bin', []]]);
  const size = new Map<string, number>([['first.bin', 0], ['details.bin', 0]]);
  for (const col of recordColumns(doc)) {
    let bytes = fromBase64(col.data ?? '');
    if (col.gzip) bytes = new Uint8Array(gunzipSync(bytes));
    const blob = first.has(col) ? 'first.bin' : 'details.bin';
    const at = size.get(blob)!;
    const pad = (8 - (bytes.length % 8)) % 8; // keep every column 8-byte aligned for typed-array views
    parts.get(blob)!.push(bytes, new Uint8Array(pad));
    size.set(blob, at + bytes.length + pad);
    delete col.data;
    col.gzip = false;
    col.ref = `${blob}#${at},${bytes.length}`;
  }
  const blobs = new Map([...parts].map(([k, v]) => [k, new Uint8Array(Buffer.concat(v))]));
  return { head: JSON.stringify(doc), blobs };
}

/**
 * Serve the page at / and the record at /run.json (its columns in /first.bin and /details.bin) on 127.0.0.1
 * (port 0: any free port).
 */
export function serveView(record: string | RecordDoc | CheckTraceDoc, page: string, port = 0): Promise<ViewServer> {
  // A document given is split in place: its columns become references.
  const doc = typeof record === 'string' ? readRecordFile(record) : record;
  const { head, blobs } = doc.format === RECORD_FORMAT ? splitRecord(doc) : { head: JSON.stringify(doc), blobs: new Map<string, Uint8Array>() };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
    } else if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
    } else if (path === '/run.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(head);
    } else if (blobs.has(path.slice(1))) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' }).end(blobs.get(path.slice(1)));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      const p = typeof addr === 'object' && addr ? addr.port : port;
      resolvePromise({
        url: `http://127.0.0.1:${p}/`,
        server,
        close: () => new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections(); // a browser keeps its connections open
        }),
      });
    });
  });
}

function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port number (0-65535) is required');
  return n;
}

export function registerView(program: Command): void {
  program
    .command('view')
    .description('show a recorded run (hmmsim demo --record) in the browser: serves it on 127.0.0.1, or writes static files with --out')
    .argument('[record]', 'a record written by --record (or a check trace)')
    .option('--out <dir>', 'write static files (index.html, record.js) instead of serving')
    .option('--port <n>', 'port to serve on (default: any free port)', portNumber, 0)
    .option('--build <dir>', 'build the page into dir (npm run build does, into dist/web); needs vite')
    .action(async (file: string | undefined, o: { out?: string; port: number; build?: string }) => {
      try {
        if (o.build) {
          await buildViewerPage(resolve(o.build));
          inlineViewerPage(resolve(o.build));
          return;
        }
        if (!file) throw new Error('which record? hmmsim view <record>');
        const doc = readRecordFile(file);
        const page = await viewerPage();
        if (o.out) {
          const written = writeView(doc, o.out, page);
          process.stdout.write(`wrote ${written.join(', ')}; open ${written[0]} in a browser\n`);
          return;
        }
        const s = await serveView(doc, page, o.port);
        process.stdout.write(`hmmsim view: ${s.url} (${file}); Ctrl-C to stop\n`);
      } catch (e) {
        process.stderr.write(`hmmsim view: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 1;
      }
    });
}
