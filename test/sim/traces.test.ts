import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, AccessChunk } from '../../src/drivers/gpu/access.js';
import {
  detectFormat, loadTrace, readLackeyTrace, readNvbitTrace, readTextTrace, TraceError, traceWorkload,
} from '../../src/sim/traces/index.js';
import { opcodeAccess } from '../../src/sim/traces/nvbit.js';
import { BASE, record } from './workload-helpers.js';

const ex = (f: string) => `examples/traces/${f}`;

describe('text traces', () => {
  it('reads the sample: a CPU phase, a kernel of 4 warps, a CPU phase; sizes split at page boundaries', () => {
    const w = loadTrace(ex('vecadd.trace'));
    expect(w.format).toBe('text');
    const r = record(w);
    expect(r.phases.map((p) => `${p.kind}:${p.name}`)).toEqual(['cpu:init', 'gpu:add', 'cpu:check']);
    expect(new Set(r.phases[1]!.warp).size).toBe(4);
    expect(r.phases[1]!.addr.length).toBe(48);
    expect(w.distinctPages).toBe(48);
    // the layout keeps the pages' relative placement: A, B and C are 16 pages apart
    const k = r.phases[1]!;
    expect(k.addr[1]! - k.addr[0]!).toBe(16 * 4096);
    expect(k.type.slice(0, 3)).toEqual([ACCESS_READ, ACCESS_READ, ACCESS_WRITE]);
  });

  it('a kernel line\'s compute and a CPU phase\'s time gaps become compute before the access', () => {
    const b = readTextTrace('cpu c\n100 0x1000 4 R\n350 0x2000 4 W\nkernel k\n0 0x1000 8192 R 25\n');
    const w = traceWorkload(b, 't');
    const phases = [...w.phases(BASE)];
    const ch = new AccessChunk(16);
    const cpu = phases[0]!;
    if (cpu.kind !== 'cpu') throw new Error('cpu phase expected');
    expect(cpu.program.next(ch)).toBe(2);
    expect([...ch.computeNs.subarray(0, 2)]).toEqual([100, 250]);
    const gpu = phases[1]!;
    if (gpu.kind !== 'gpu') throw new Error('kernel expected');
    expect(gpu.kernel.warps[0]!.next(ch)).toBe(2); // 8192 bytes: two pages
    expect([...ch.computeNs.subarray(0, 2)]).toEqual([25, 0]);
  });

  it('names the line of a bad access', () => {
    expect(() => readTextTrace('kernel k\n0 0x1000 4 R\n0 0x1000 4 X\n', 'f.trace')).toThrow('f.trace:3: bad access type');
    expect(() => readTextTrace('kernel k\n0 zz 4 R\n')).toThrow(/:2: bad address/);
    expect(() => readTextTrace('cpu c\n10 0x1000 4 R\n5 0x1000 4 R\n')).toThrow(/:3: time 5 is before/);
    expect(() => traceWorkload(readTextTrace('# nothing\n'), 'empty')).toThrow(TraceError);
  });

  it('shrinks gaps of more than 1 GiB, keeping each cluster\'s place within its 2 MiB block', () => {
    const b = readTextTrace('kernel k\n0 0x55550001000 4 R\n0 0x7f0000203000 4 W\n');
    const w = traceWorkload(b, 't');
    expect(w.mappingBytes).toBeLessThanOrEqual(8 << 20);
    const r = record(w);
    const [a0, a1] = r.phases[0]!.addr;
    expect((a0! - BASE) % (2 << 20)).toBe(0x1000);
    expect((a1! - BASE) % (2 << 20)).toBe(0x3000);
    expect(a1! - a0!).toBeGreaterThan(2 << 20);
  });
});

describe('NVBit mem_trace', () => {
  it('reads the sample: two launches, warps by (CTA, warp), one access per distinct page of the 32 lanes, shared memory skipped', () => {
    const text = readFileSync(ex('vecadd.nvbit.txt'), 'utf8');
    expect(detectFormat(text)).toBe('nvbit');
    const b = readNvbitTrace(text);
    const w = traceWorkload(b, 'nv');
    const r = record(w);
    expect(r.phases.map((p) => p.name)).toEqual(['vecAdd(float const*, float const*, float*, int)#0', 'sum(float const*, float*, int)#1']);
    expect(new Set(r.phases[0]!.warp).size).toBe(8); // 2 CTAs x 4 warps
    // lanes 128 bytes apart: 32 lanes span 4 KiB = one page per instruction
    expect(r.phases[0]!.addr.length).toBe(2 * 2 * 4 * 3);
    // sum: a load over 32 pages (lanes 256 bytes apart -> 2 pages), the STS skipped, a RED on one lane
    const s = r.phases[1]!;
    expect(s.type.filter((t) => t === ACCESS_ATOMIC).length).toBe(2);
    expect(s.addr.length).toBe(2 * (2 + 1));
  });

  it('reads the older format without the MEMTRACE prefix, and refuses an access before any launch', () => {
    const old = 'MEMTRACE: CTX 0x1 - LAUNCH - Kernel pc 0x1 - Kernel name k\nCTA 0,0,0 - warp 3 - STG.E - 0x0000000000001000 0x0000000000000000\n';
    const r = record(traceWorkload(readNvbitTrace(old), 'o'));
    expect(r.phases[0]!.type).toEqual([ACCESS_WRITE]);
    expect(() => readNvbitTrace('MEMTRACE: CTX 0x1 - grid_launch_id 4 - CTA 0,0,0 - warp 0 - LDG.E - 0x1000\n', 'x')).toThrow(/grid launch 4 before its LAUNCH/);
  });

  it('maps SASS opcodes to access types: LDG read, STG write, ATOM/RED atomic, shared and local memory none', () => {
    expect(opcodeAccess('LDG.E.64.SYS')).toBe(ACCESS_READ);
    expect(opcodeAccess('LD.E')).toBe(ACCESS_READ);
    expect(opcodeAccess('STG.E.128')).toBe(ACCESS_WRITE);
    expect(opcodeAccess('ATOMG.E.ADD.STRONG.GPU')).toBe(ACCESS_ATOMIC);
    expect(opcodeAccess('RED.E.ADD')).toBe(ACCESS_ATOMIC);
    for (const op of ['LDS.U.128', 'STS', 'LDL', 'STL.64', 'ATOMS.ADD']) expect(opcodeAccess(op)).toBeNull();
  });
});

describe('valgrind lackey', () => {
  it('reads the sample: loads, stores and modifies as one CPU thread; instruction fetches only as time', () => {
    const text = readFileSync(ex('sum.lackey.txt'), 'utf8');
    expect(detectFormat(text)).toBe('lackey');
    const b = readLackeyTrace(text, 'sum', 0.5);
    const w = traceWorkload(b, 'l');
    const r = record(w);
    expect(r.phases.length).toBe(1);
    expect(r.phases[0]!.kind).toBe('cpu');
    expect(r.phases[0]!.addr.length).toBe(64 + 16 + 4);
    const writes = r.phases[0]!.type.filter((t) => t === ACCESS_WRITE).length;
    expect(writes).toBe(16 + 4);
  });

  it('refuses a line that is not lackey\'s', () => {
    expect(() => readLackeyTrace(' L 1000,8\nhello\n', 'f')).toThrow('f:2: not a lackey line');
  });
});

describe('format detection', () => {
  it('tells the three apart', () => {
    expect(detectFormat('# hmmsim trace\nkernel k\n0 0x1000 4 R\n')).toBe('text');
    expect(detectFormat('==1== Lackey\nI  0400,3\n L 0500,8\n')).toBe('lackey');
    expect(detectFormat('CTA 0,0,0 - warp 0 - LDG.E - 0x1\n')).toBe('nvbit');
  });
});
