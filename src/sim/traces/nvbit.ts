// The output of NVBit's mem_trace tool (NVlabs/NVBit, tools/mem_trace): a LAUNCH line per
// kernel launch,
//   MEMTRACE: CTX 0x... - LAUNCH - Kernel pc 0x... - Kernel name <name> - grid launch id <n> - grid size x,y,z - block size x,y,z - nregs n - shmem n - cuda stream id n
// and a line per warp-level memory instruction, with the 32 lanes' addresses (0 for an
// inactive lane),
//   MEMTRACE: CTX 0x... - grid_launch_id <n> - CTA x,y,z - warp <w> - <SASS opcode> - 0x... 0x... (32 addresses)
// Older releases print the access lines without the MEMTRACE/CTX/grid_launch_id prefix
// ("CTA x,y,z - warp w - OPCODE - addresses"); both are read. A warp is (CTA, warp); each
// line's lanes become one access per distinct page, in lane order. Shared- and local-memory
// instructions (LDS, STS, LDL, STL, ATOMS, ...) address no page of the process and are skipped.

import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, type AccessType } from '../../drivers/gpu/access.js';
import { TraceBuilder, TraceError } from './trace.js';

const LAUNCH = /LAUNCH - .*?Kernel name (.*?) - grid launch id (\d+)/;
const LAUNCH_OLD = /LAUNCH - .*?Kernel name (.*?)(?: - grid size|$)/;
const ACCESS = /(?:grid_launch_id (\d+) - )?CTA (\d+),(\d+),(\d+) - warp (\d+) - (\S+) - (.*)$/;

/** The access type of a SASS memory opcode, or null for shared/local memory or a non-memory line. */
export function opcodeAccess(op: string): AccessType | null {
  const base = op.split('.')[0]!.toUpperCase();
  if (/^(LDS|STS|LDL|STL|ATOMS|LDSM)$/.test(base)) return null;
  if (/^(ATOM|ATOMG|RED|REDG)$/.test(base)) return ACCESS_ATOMIC;
  if (/^ST/.test(base)) return ACCESS_WRITE;
  if (/^LD/.test(base)) return ACCESS_READ;
  return null;
}

export function readNvbitTrace(text: string, file = 'trace'): TraceBuilder {
  const b = new TraceBuilder('nvbit');
  const byLaunch = new Map<string, ReturnType<TraceBuilder['begin']>>();
  let latest: ReturnType<TraceBuilder['begin']> | null = null;
  const lines = text.split('\n');
  const seen = new Set<number>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.includes('LAUNCH')) {
      const m = LAUNCH.exec(line) ?? LAUNCH_OLD.exec(line);
      if (!m) throw new TraceError(file, i + 1, 'a LAUNCH line without a kernel name');
      const id = m[2] ?? String(byLaunch.size);
      latest = b.begin('gpu', `${m[1]!.trim()}#${id}`);
      byLaunch.set(id, latest);
      continue;
    }
    const m = ACCESS.exec(line);
    if (!m) continue; // the tool's other output (headers, the application's own prints)
    const type = opcodeAccess(m[6]!);
    if (type === null) continue;
    const phase = m[1] !== undefined ? byLaunch.get(m[1]) : latest;
    if (!phase) throw new TraceError(file, i + 1, m[1] !== undefined ? `access of grid launch ${m[1]} before its LAUNCH line` : 'access before any LAUNCH line');
    const warp = `${m[2]},${m[3]},${m[4]}/${m[5]}`;
    seen.clear();
    for (const tok of m[7]!.trim().split(/\s+/)) {
      const t = tok.replace(/^T\d+:/, '');
      if (!/^0x[0-9a-f]+$/i.test(t)) throw new TraceError(file, i + 1, `bad address '${tok}'`);
      const a = parseInt(t.slice(2), 16);
      if (a === 0) continue;
      const page = Math.floor(a / 4096);
      if (seen.has(page)) continue;
      seen.add(page);
      b.add(phase, warp, a, 1, type, 0);
    }
  }
  return b;
}
