// hmmsim's own trace format, one access per line (docs/traces.md):
//
//   # comment
//   kernel <name>                      a GPU kernel launch; the lines after it are its accesses
//   <warp> <address> <size> <type> [<compute ns>]
//   cpu <name>                         a CPU phase
//   <time ns> <address> <size> <type>  in a CPU phase the first column is the time of the access
//
// <address> is hex (0x...) or decimal; <size> in bytes; <type> is R, W, A (atomic) or P
// (prefetch). In a kernel, a line's optional compute is the warp's work before the access; in a
// CPU phase the gap between successive times is.

import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_READ, ACCESS_WRITE, type AccessType } from '../../drivers/gpu/access.js';
import { TraceBuilder, TraceError } from './trace.js';

const TYPES: Record<string, AccessType> = { R: ACCESS_READ, W: ACCESS_WRITE, A: ACCESS_ATOMIC, P: ACCESS_PREFETCH };

export function parseNumber(s: string): number {
  const n = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : /^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN;
  return n;
}

export function readTextTrace(text: string, file = 'trace'): TraceBuilder {
  const b = new TraceBuilder('text');
  const lines = text.split('\n');
  let phase: ReturnType<TraceBuilder['begin']> | null = null;
  let lastTime = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if (f[0] === 'kernel' || f[0] === 'cpu') {
      if (f.length < 2) throw new TraceError(file, i + 1, `'${f[0]}' needs a name`);
      phase = b.begin(f[0] === 'kernel' ? 'gpu' : 'cpu', f.slice(1).join(' '));
      lastTime = 0;
      continue;
    }
    if (f.length < 4 || f.length > 5) throw new TraceError(file, i + 1, 'expected <warp|time> <address> <size> <type> [<compute ns>]');
    if (!phase) phase = b.begin('gpu', 'kernel');
    const first = parseNumber(f[0]!);
    const addr = parseNumber(f[1]!);
    const size = parseNumber(f[2]!);
    const type = TYPES[f[3]!.toUpperCase()];
    if (!Number.isFinite(first) || first < 0) throw new TraceError(file, i + 1, `bad ${phase.kind === 'gpu' ? 'warp' : 'time'} '${f[0]}'`);
    if (!Number.isSafeInteger(addr)) throw new TraceError(file, i + 1, `bad address '${f[1]}'`);
    if (!Number.isSafeInteger(size) || size <= 0) throw new TraceError(file, i + 1, `bad size '${f[2]}'`);
    if (type === undefined) throw new TraceError(file, i + 1, `bad access type '${f[3]}' (R, W, A or P)`);
    let cns = 0;
    if (phase.kind === 'gpu') {
      if (f[4] !== undefined) {
        cns = parseNumber(f[4]);
        if (!Number.isFinite(cns)) throw new TraceError(file, i + 1, `bad compute time '${f[4]}'`);
      }
      b.add(phase, String(first), addr, size, type, cns);
    } else {
      if (first < lastTime) throw new TraceError(file, i + 1, `time ${first} is before the previous line's ${lastTime}`);
      cns = first - lastTime;
      lastTime = first;
      b.add(phase, '0', addr, size, type, cns);
    }
  }
  return b;
}
