// CPU traces from valgrind's lackey tool (`valgrind --tool=lackey --trace-mem=yes prog`):
//   I  04016d9c,3     an instruction fetch (address, size)
//    L 7ff000a38,8    a load
//    S 7ff000a30,8    a store
//    M 0421c7f0,4     a modify (load and store)
// Addresses are hex without 0x. Lines valgrind itself prints start with "==pid==" and are
// skipped. Data accesses become one CPU thread's accesses; instruction fetches are not memory
// the GPU shares, and count only as time: each costs `instructionNs` of compute before the next
// data access.

import { ACCESS_READ, ACCESS_WRITE } from '../../drivers/gpu/access.js';
import { TraceBuilder, TraceError } from './trace.js';

const LINE = /^(I | [LSM]) ([0-9a-fA-F]+),(\d+)\s*$/;

export function readLackeyTrace(text: string, file = 'trace', instructionNs = 0.5): TraceBuilder {
  const b = new TraceBuilder('lackey');
  const phase = b.begin('cpu', 'lackey');
  let pending = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim() || line.startsWith('==') || line.startsWith('--')) continue;
    const m = LINE.exec(line);
    if (!m) throw new TraceError(file, i + 1, `not a lackey line: '${line.slice(0, 40)}'`);
    const kind = m[1]!.trim();
    if (kind === 'I') { pending += instructionNs; continue; }
    const addr = parseInt(m[2]!, 16);
    const size = Number(m[3]);
    b.add(phase, '0', addr, size, kind === 'L' ? ACCESS_READ : ACCESS_WRITE, pending);
    pending = 0;
  }
  return b;
}
