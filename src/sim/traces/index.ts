// Trace files: which reader a file needs, and the workload it becomes.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { readLackeyTrace } from './lackey.js';
import { readNvbitTrace } from './nvbit.js';
import { readTextTrace } from './text.js';
import { TraceError, traceWorkload, type TraceWorkload } from './trace.js';

export { readLackeyTrace, readNvbitTrace, readTextTrace, TraceError, traceWorkload };
export type { TraceWorkload };

export type TraceFormat = 'text' | 'nvbit' | 'lackey';

/** The format of a trace, from its first meaningful lines. */
export function detectFormat(text: string): TraceFormat {
  for (const raw of text.split('\n', 200)) {
    const line = raw.trimEnd();
    if (!line || line.startsWith('==')) continue;
    if (line.includes('MEMTRACE') || /CTA \d+,\d+,\d+ - warp \d+/.test(line)) return 'nvbit';
    if (/^(I | [LSM]) [0-9a-fA-F]+,\d+$/.test(line)) return 'lackey';
    if (/^#|^(kernel|cpu) |^\S+\s+\S+\s+\d+\s+[RWAPrwap]\b/.test(line)) return 'text';
  }
  return 'text';
}

/** Read a trace file of any supported format into a workload. */
export function loadTrace(path: string, opts: { format?: TraceFormat; computeScale?: number } = {}): TraceWorkload {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TraceError(path, 0, `cannot read: ${(e as Error).message}`);
  }
  const format = opts.format ?? detectFormat(text);
  const b = format === 'nvbit' ? readNvbitTrace(text, path) : format === 'lackey' ? readLackeyTrace(text, path) : readTextTrace(text, path);
  return traceWorkload(b, `trace:${basename(path)}`, opts.computeScale);
}
