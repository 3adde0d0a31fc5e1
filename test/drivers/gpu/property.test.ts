// The property across drivers: random GPU kernels (many warps; reads, writes, atomics,
// prefetches) on a VRAM smaller than the footprint, interleaved with CPU reads and writes,
// munmap, mprotect, fork, explicit migration and exit, under uvm, kfd and nouveau and their
// policy alternatives. After every event the GPU maps only what the CPU maps with no more
// permission and no TLB holds a stale translation; every byte a warp or the CPU reads is what
// the reference says; after teardown every frame is back. HMMSIM_SOAK=<runs> runs longer.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/mm/constants.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { KernelError } from '../../../src/mm/errno.js';
import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_READ, ACCESS_WRITE, type AccessType } from '../../../src/drivers/gpu/access.js';
import { checkGpuInvariants } from '../../../src/drivers/gpu/check.js';
import { createGpuSystem, type GpuSystemOptions } from '../../../src/drivers/gpu/system.js';
import { KfdDriver } from '../../../src/drivers/gpu/kfd/kfd_svm.js';
import type { Process } from '../../../src/mm/process.js';
import { Machine } from '../../../src/mm/machine.js';
import { Engine } from '../../../src/sim/engine.js';
import { DataCheck, listProgram } from './helpers.js';

const PAGES = 1536; // 6 MiB footprint
const runs = Number(process.env.HMMSIM_SOAK ?? 3);

type Op =
  | { k: 'launch'; warps: Array<Array<[number, number]>> }
  | { k: 'advance'; us: number }
  | { k: 'cpuRead'; page: number }
  | { k: 'cpuWrite'; page: number }
  | { k: 'munmap'; page: number; n: number }
  | { k: 'mprotect'; page: number; n: number; write: boolean }
  | { k: 'fork'; childWrites: number[] }
  | { k: 'migrate'; page: number; n: number; to: 'gpu' | 'cpu' };

const page = fc.integer({ min: 0, max: PAGES - 1 });
const access = fc.tuple(page, fc.constantFrom(ACCESS_READ, ACCESS_READ, ACCESS_WRITE, ACCESS_WRITE, ACCESS_ATOMIC, ACCESS_PREFETCH));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('launch' as const), warps: fc.array(fc.array(access, { minLength: 1, maxLength: 24 }), { minLength: 1, maxLength: 12 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('advance' as const), us: fc.integer({ min: 1, max: 3000 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cpuRead' as const), page }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cpuWrite' as const), page }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('munmap' as const), page, n: fc.integer({ min: 1, max: 600 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('mprotect' as const), page, n: fc.integer({ min: 1, max: 64 }), write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fork' as const), childWrites: fc.array(page, { maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('migrate' as const), page, n: fc.integer({ min: 1, max: 600 }), to: fc.constantFrom('gpu' as const, 'cpu' as const) }) },
);

interface Variant {
  name: string;
  system: GpuSystemOptions;
  /** Register the buffer first (kfd with XNACK off needs its ranges before a kernel runs). */
  register?: boolean;
}

function scenario(v: Variant, seed: number, ops: Op[]): void {
  const machine = new Machine({ ramBytes: 48 << 20, swapBytes: 16 << 20 });
  const engine = new Engine();
  const opts: GpuSystemOptions = { ...v.system, config: { vramBytes: 4 << 20, sms: 4, warpsPerSm: 8, faultBufferEntries: 64, ...v.system.config } };
  if (opts.driver === 'uvm') opts.uvm = { faultBatchCount: 32, seed, ...opts.uvm };
  if (opts.driver === 'kfd') opts.kfd = { seed, ...opts.kfd };
  const { gpu, driver } = createGpuSystem(machine, engine, opts);
  const rig = { machine, engine, gpu };
  const p = machine.spawn();
  const raw = p.mmap(0, PAGES * 4096 + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const base = Math.ceil(raw / (2 << 20)) * (2 << 20);
  const vs = driver.attach(p).gpuVaSpace;
  if (v.register && driver instanceof KfdDriver) driver.register(p, base, PAGES * 4096);
  const data = new DataCheck(rig);
  const mapped = new Uint8Array(PAGES).fill(1);
  const writable = new Uint8Array(PAGES).fill(1);
  const children: Process[] = [];
  const word = (pg: number): number => base + pg * 4096 + 16;
  const check = (where: string): void => {
    const g = checkGpuInvariants(machine, gpu, { owner: driver.owner });
    if (g.length) throw new Error(`${where}: ${g.join('; ')}`);
  };
  const checkAll = (where: string): void => {
    check(where);
    const m = checkInvariants(machine);
    if (m.length) throw new Error(`${where}: ${m.join('; ')}`);
    if (data.errors.length) throw new Error(`${where}: ${data.errors.join('; ')}`);
  };
  const advance = (until: number): void => {
    while (engine.pending > 0 && engine.now() <= until) {
      if (!engine.step()) break;
      check(`event ${engine.executed}`);
      if (engine.executed > 200_000) throw new Error(`no end after ${engine.executed} events (t=${engine.now()})`);
    }
  };
  const allMapped = (a: number, n: number): boolean => {
    for (let q = a; q < a + n; q++) if (!mapped[q]) return false;
    return true;
  };
  for (const op of ops) {
    switch (op.k) {
      case 'launch':
        gpu.launch({ name: 'k', warps: op.warps.map((w) => listProgram(w.map(([pg, t]) => [word(pg), t as AccessType]), 30)) }, vs);
        break;
      case 'advance':
        advance(engine.now() + op.us * 1000);
        break;
      case 'cpuRead':
        if (mapped[op.page]) data.cpuRead(p, word(op.page));
        break;
      case 'cpuWrite':
        if (mapped[op.page] && writable[op.page]) data.cpuWrite(p, word(op.page));
        break;
      case 'munmap': {
        const n = Math.min(op.n, PAGES - op.page);
        p.munmap(base + op.page * 4096, n * 4096);
        mapped.fill(0, op.page, op.page + n);
        data.forget(base + op.page * 4096, base + (op.page + n) * 4096);
        break;
      }
      case 'mprotect': {
        const n = Math.min(op.n, PAGES - op.page);
        if (!allMapped(op.page, n)) break;
        p.mprotect(base + op.page * 4096, n * 4096, PROT_READ | (op.write ? PROT_WRITE : 0));
        writable.fill(op.write ? 1 : 0, op.page, op.page + n);
        break;
      }
      case 'fork': {
        const c = p.fork();
        children.push(c);
        for (const pg of op.childWrites) if (mapped[pg] && writable[pg]) c.writeU32(word(pg), 0xdead);
        break;
      }
      case 'migrate': {
        const n = Math.min(op.n, PAGES - op.page);
        if (!allMapped(op.page, n)) break;
        try {
          driver.migrate(p, base + op.page * 4096, n * 4096, op.to);
        } catch (e) {
          // nouveau binds to VRAM only: EINVAL for 'cpu', as the driver
          if (!(e instanceof KernelError && e.errno === 'EINVAL' && driver.name === 'nouveau' && op.to === 'cpu')) throw e;
        }
        break;
      }
    }
    checkAll(op.k);
  }
  advance(Infinity);
  checkAll('end');
  for (let pg = 0; pg < PAGES; pg += 37) if (mapped[pg]) data.cpuRead(p, word(pg));
  checkAll('final reads');
  for (const c of children) c.exit();
  p.exit();
  checkAll('exit');
  driver.detach(p);
  driver.shutdown();
  expect(checkInvariants(machine)).toEqual([]);
  expect(machine.phys.usedRamFrames).toBe(0);
  expect(driver.counters().vramPagesUsed).toBe(0);
  expect(gpu.vram.pgmap).toBeNull();
}

const variants: Variant[] = [
  { name: 'uvm defaults', system: { driver: 'uvm' } },
  { name: 'uvm prefetch none, evict lru', system: { driver: 'uvm', uvm: { prefetch: 'none', evict: 'lru' } } },
  { name: 'uvm largePages (2 MiB and 64 KiB leaves, a root chunk per block)', system: { driver: 'uvm', uvm: { largePages: true } } },
  { name: 'kfd defaults (XNACK on, 2 MiB, ttm)', system: { driver: 'kfd' } },
  { name: 'kfd evict lru, granularity 4', system: { driver: 'kfd', kfd: { evict: 'lru', granularity: 4 } } },
  { name: 'kfd evict random, native sysmem atomics', system: { driver: 'kfd', kfd: { evict: 'random' }, config: { nativeSysmemAtomics: true } } },
  { name: 'kfd XNACK off', system: { driver: 'kfd', kfd: { xnack: false } }, register: true },
  { name: 'nouveau (one page per fault)', system: { driver: 'nouveau' } },
  { name: 'nouveau 64 KiB window', system: { driver: 'nouveau', nouveau: { window: '64k' } } },
];

describe('drivers property: invariants after every event, data intact, frames balanced after teardown', () => {
  for (const v of variants) {
    it(v.name, () => {
      fc.assert(fc.property(fc.array(opArb, { minLength: 4, maxLength: 20 }), fc.integer({ min: 1, max: 1000 }), (ops, seed) => scenario(v, seed, ops)), { numRuns: runs });
    });
  }
});
