// Property: a device on gpusvm (svmdev) maps only what the CPU maps, with no more permission,
// and every byte it or the CPU reads is what was last written, whatever the CPU does under it.
// Random CPU operations (writes, reads, munmap and mmap back, mprotect, MADV_DONTNEED and
// MADV_PAGEOUT, fork with the child's writes, reads and exit, migrations to device memory and
// back by CPU fault and eviction) are interleaved with device reads, writes and faults, some of
// them async with a CPU operation run in the window between hmm_range_fault's snapshot and the
// notifier lock. The child mirrors itself through a second device of the same owner (the owner
// filter must not hide the parent's migrations from it). After every step: no mirror violation
// on either device, checkInvariants clean; at the end, after exit, no frame, device page or
// swap slot left. GPUSVM_PROPERTY_RUNS raises the run count for a soak.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkInvariants } from '../../../src/mm/check.js';
import {
  gpusvmHandleFaultAsync, SvmDevice, type Vram, KernelError, Machine, MADV_DONTNEED, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE,
  type Process, type SvmDevice as SvmDeviceT,
} from '../../../src/index.js';

const P = 4096;
const BASE = 0x40000000; // 2 MiB aligned
const PAGES = 1024; // two 2 MiB ranges
const PROTS = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE];
const OWNER = { device: 'prop' };
const RUNS = Number(process.env.GPUSVM_PROPERTY_RUNS ?? 25);

type Op =
  | { t: 'cpuWrite'; page: number; v: number }
  | { t: 'cpuRead'; page: number }
  | { t: 'devRead'; page: number }
  | { t: 'devWrite'; page: number; v: number }
  | { t: 'devReadRacy'; page: number; race: Op }
  | { t: 'munmap'; page: number; n: number }
  | { t: 'mmap'; page: number; n: number }
  | { t: 'mprotect'; page: number; n: number; prot: number }
  | { t: 'dontneed'; page: number; n: number }
  | { t: 'pageout'; page: number }
  | { t: 'fork' }
  | { t: 'childWrite'; page: number; v: number }
  | { t: 'childDevRead'; page: number }
  | { t: 'childExit' }
  | { t: 'toDevice'; page: number; n: number }
  | { t: 'evict' };

const pageArb = fc.oneof(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 500, max: 530 }), fc.integer({ min: 0, max: PAGES - 1 }));
const nArb = fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 600 }));
const vArb = fc.integer({ min: 1, max: 0xffff });
const cpuOpArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('cpuWrite' as const), page: pageArb, v: vArb }),
  fc.record({ t: fc.constant('munmap' as const), page: pageArb, n: nArb }),
  fc.record({ t: fc.constant('mprotect' as const), page: pageArb, n: nArb, prot: fc.constantFrom(...PROTS) }),
  fc.record({ t: fc.constant('dontneed' as const), page: pageArb, n: nArb }),
  fc.record({ t: fc.constant('pageout' as const), page: pageArb }),
  fc.constant({ t: 'fork' as const }),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('cpuWrite' as const), page: pageArb, v: vArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cpuRead' as const), page: pageArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('devRead' as const), page: pageArb }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('devWrite' as const), page: pageArb, v: vArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('devReadRacy' as const), page: pageArb, race: cpuOpArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('munmap' as const), page: pageArb, n: nArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('mmap' as const), page: pageArb, n: nArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('mprotect' as const), page: pageArb, n: nArb, prot: fc.constantFrom(...PROTS) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dontneed' as const), page: pageArb, n: nArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pageout' as const), page: pageArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'fork' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('childWrite' as const), page: pageArb, v: vArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('childDevRead' as const), page: pageArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'childExit' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('toDevice' as const), page: pageArb, n: nArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'evict' as const }) },
);

/** A process and what each of its pages should read: -1 where nothing is mapped. */
interface Side {
  proc: Process;
  dev: SvmDeviceT;
  ref: Int32Array;
  prot: Uint8Array;
}

class World {
  readonly m = new Machine({ ramBytes: 32 << 20, swapBytes: 16 << 20, thp: 'never' });
  readonly parent: Side;
  child: Side | null = null;
  readonly vram: Vram;
  readonly buf = new Uint8Array(4);

  constructor() {
    const proc = this.m.spawn();
    proc.mmap(BASE, PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    const dev = new SvmDevice(proc.mm, OWNER);
    this.vram = dev.attachMemory(PAGES);
    this.parent = { proc, dev, ref: new Int32Array(PAGES), prot: new Uint8Array(PAGES).fill(PROT_READ | PROT_WRITE) };
  }

  private clip(page: number, n: number): [number, number] {
    return [page, Math.min(PAGES, page + n)];
  }

  private value(bytes: Uint8Array): number {
    return bytes[0]! | (bytes[1]! << 8);
  }

  cpuWrite(s: Side, page: number, v: number): void {
    if (s.ref[page]! < 0 || !(s.prot[page]! & PROT_WRITE)) {
      expect(() => s.proc.writeU32(BASE + page * P, v)).toThrow(KernelError);
      return;
    }
    s.proc.writeU32(BASE + page * P, v);
    s.ref[page] = v;
  }

  cpuRead(s: Side, page: number): void {
    if (s.ref[page]! < 0 || !(s.prot[page]! & PROT_READ)) {
      expect(() => s.proc.readU32(BASE + page * P)).toThrow(KernelError);
      return;
    }
    expect(s.proc.readU32(BASE + page * P)).toBe(s.ref[page]);
  }

  devRead(s: Side, page: number): void {
    const ok = s.ref[page]! >= 0 && (s.prot[page]! & PROT_READ) !== 0;
    try {
      s.dev.readInto(BASE + page * P, this.buf, 0, 4);
    } catch (e) {
      if (!(e instanceof KernelError) || ok) throw e;
      return;
    }
    expect(ok).toBe(true);
    expect(this.value(this.buf) | (this.buf[2]! << 16) | (this.buf[3]! << 24)).toBe(s.ref[page]);
  }

  devWrite(s: Side, page: number, v: number): void {
    const ok = s.ref[page]! >= 0 && (s.prot[page]! & PROT_WRITE) !== 0;
    const b = new Uint8Array([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24]);
    try {
      s.dev.write(BASE + page * P, b);
    } catch (e) {
      if (!(e instanceof KernelError) || ok) throw e;
      return;
    }
    expect(ok).toBe(true);
    s.ref[page] = v;
  }

  async apply(op: Op): Promise<void> {
    const p = this.parent;
    switch (op.t) {
      case 'cpuWrite': return this.cpuWrite(p, op.page, op.v);
      case 'cpuRead': return this.cpuRead(p, op.page);
      case 'devRead': return this.devRead(p, op.page);
      case 'devWrite': return this.devWrite(p, op.page, op.v);
      case 'devReadRacy': {
        // The device faults the page in asynchronously; the CPU operation runs in the window
        // between hmm_range_fault's snapshot and the notifier lock.
        let raced = false;
        try {
          await gpusvmHandleFaultAsync(p.dev.gpusvm, BASE + op.page * P, false, { devicePrivatePageOwner: OWNER, devmemPossible: true }, {}, {
            yield: async (label) => {
              if (raced || label !== 'gpusvm: get_pages, before the notifier lock') return;
              raced = true;
              await this.apply(op.race);
            },
          });
        } catch (e) {
          if (!(e instanceof KernelError)) throw e;
        }
        return this.devRead(p, op.page);
      }
      case 'munmap': {
        const [s, e] = this.clip(op.page, op.n);
        p.proc.munmap(BASE + s * P, (e - s) * P);
        p.ref.fill(-1, s, e);
        return;
      }
      case 'mmap': {
        const [s, e] = this.clip(op.page, op.n);
        p.proc.mmap(BASE + s * P, (e - s) * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        p.ref.fill(0, s, e);
        p.prot.fill(PROT_READ | PROT_WRITE, s, e);
        return;
      }
      case 'mprotect': {
        const [s, e] = this.clip(op.page, op.n);
        for (let i = s; i < e; i++) if (p.ref[i]! < 0) return; // mprotect of a hole is ENOMEM: skip
        p.proc.mprotect(BASE + s * P, (e - s) * P, op.prot);
        p.prot.fill(op.prot, s, e);
        return;
      }
      case 'dontneed': {
        const [s, e] = this.clip(op.page, op.n);
        try {
          p.proc.madvise(BASE + s * P, (e - s) * P, MADV_DONTNEED);
        } catch (err) {
          if (!(err instanceof KernelError)) throw err;
          return; // a hole in the range: ENOMEM, as the kernel
        }
        for (let i = s; i < e; i++) if (p.ref[i]! >= 0) p.ref[i] = 0;
        return;
      }
      case 'pageout':
        if (p.ref[op.page]! >= 0) p.proc.madvise(BASE + op.page * P, P, MADV_PAGEOUT);
        return;
      case 'fork': {
        if (this.child) return;
        const proc = p.proc.fork();
        this.child = { proc, dev: new SvmDevice(proc.mm, OWNER), ref: p.ref.slice(), prot: p.prot.slice() };
        return;
      }
      case 'childWrite': return this.child ? this.cpuWrite(this.child, op.page, op.v) : undefined;
      case 'childDevRead': return this.child ? this.devRead(this.child, op.page) : undefined;
      case 'childExit':
        if (!this.child) return;
        this.child.dev.close();
        this.child.proc.exit();
        this.child = null;
        return;
      case 'toDevice': {
        const [s, e] = this.clip(op.page, op.n);
        try {
          p.dev.migrateToDevice(BASE + s * P, BASE + e * P);
        } catch (err) {
          if (!(err instanceof KernelError)) throw err; // no VMA there
        }
        return;
      }
      case 'evict':
        this.vram.evictAll();
        return;
    }
  }

  check(): void {
    for (const s of [this.parent, this.child]) {
      if (!s) continue;
      const c = s.dev.check();
      expect(c.messages).toEqual([]);
    }
    expect(checkInvariants(this.m)).toEqual([]);
  }

  teardown(): void {
    if (this.child) {
      this.child.dev.close();
      this.child.proc.exit();
    }
    this.parent.dev.close();
    this.parent.proc.exit();
    expect(this.m.phys.usedRamFrames).toBe(0);
    expect(this.vram.usedPages).toBe(0);
    expect(this.m.swap.used).toBe(0);
    expect(checkInvariants(this.m)).toEqual([]);
  }
}

describe('gpusvm property: the device maps only what the CPU maps, data intact, nothing leaked', () => {
  it('random CPU operations interleaved with device accesses, faults and migrations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), async (ops) => {
        const w = new World();
        for (const op of ops) {
          await w.apply(op);
          w.check();
        }
        w.teardown();
      }),
      { numRuns: RUNS },
    );
  });
});
