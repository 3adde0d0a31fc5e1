// The GPU hardware model alone: page table, TLBs, fault buffer, copy engines, SMs with fault
// and stall, replay and cancel. Drivers are tested in their own directories.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Machine } from '../../../src/mm/machine.js';
import { Engine } from '../../../src/sim/engine.js';
import { ACCESS_ATOMIC, ACCESS_PREFETCH, ACCESS_READ, ACCESS_WRITE, type AccessChunk, type AccessType, type WarpProgram } from '../../../src/drivers/gpu/access.js';
import { Gpu, type GpuDriver } from '../../../src/drivers/gpu/gpu.js';
import {
  GpuPageTable, PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC, PTE_BIG, PTE_SYSMEM, PTE_VALID, PTE_WRITE, SIZE_2M, SIZE_4K, SIZE_64K,
  SIZE_PAGES, type GpuPtLeaf,
} from '../../../src/drivers/gpu/page_table.js';
import { Tlb, tlbSetIndex } from '../../../src/drivers/gpu/tlb.js';
import { FaultBuffer, FAULT_BUFFER_ENTRY_SIZE } from '../../../src/drivers/gpu/fault_buffer.js';
import { XLATE_HIT } from '../../../src/drivers/gpu/mmu.js';
import { WARP_CANCELLED, WARP_DONE } from '../../../src/drivers/gpu/sm.js';
import { AccessCounters } from '../../../src/drivers/gpu/access_counters.js';

const leaf = (): GpuPtLeaf => ({ flags: 0, pfn: 0, size: 0, baseVpn: 0 });

/** A warp that issues the given (vpn, type) accesses, computeNs each. */
export function listProgram(accesses: Array<[number, AccessType]>, computeNs = 10): WarpProgram {
  let i = 0;
  return {
    next(chunk: AccessChunk): number {
      chunk.length = 0;
      while (i < accesses.length && chunk.push(accesses[i]![0] * 4096 + 8, accesses[i]![1], computeNs)) i++;
      return chunk.length;
    },
  };
}

describe('GPU page table (4 KiB, 64 KiB and 2 MiB leaves)', () => {
  it('maps and walks each leaf size, with aperture and permissions', () => {
    const pt = new GpuPageTable();
    const l = leaf();
    pt.map(0x100, 7000, SIZE_4K, PROT_READ);
    pt.map(0x210, 8000, SIZE_64K, PROT_READ_WRITE | PTE_SYSMEM);
    pt.map(0x400, 9216, SIZE_2M, PROT_READ_WRITE_ATOMIC);
    pt.walk(0x100, l);
    expect([l.flags, l.pfn, l.size, l.baseVpn]).toEqual([PROT_READ, 7000, SIZE_4K, 0x100]);
    pt.walk(0x21f, l);
    expect([l.flags & ~PTE_BIG, l.pfn, l.size, l.baseVpn]).toEqual([PROT_READ_WRITE | PTE_SYSMEM, 8015, SIZE_64K, 0x210]);
    pt.walk(0x5ff, l);
    expect([l.flags, l.pfn, l.size, l.baseVpn]).toEqual([PROT_READ_WRITE_ATOMIC, 9216 + 0x1ff, SIZE_2M, 0x400]);
    pt.walk(0x101, l);
    expect(l.flags).toBe(0);
    expect(pt.mappedPages).toBe(1 + 16 + 512);
  });

  it('refuses misaligned leaves', () => {
    const pt = new GpuPageTable();
    expect(() => pt.map(0x401, 0, SIZE_2M, PROT_READ)).toThrow(RangeError);
    expect(() => pt.map(0x10, 3, SIZE_64K, PROT_READ)).toThrow(RangeError);
    expect(() => pt.map(0x10, 0, SIZE_4K, 0)).toThrow(RangeError);
  });

  it('unmapping part of a 2 MiB or 64 KiB leaf splits it and keeps the rest', () => {
    const pt = new GpuPageTable();
    const l = leaf();
    pt.map(0x400, 9216, SIZE_2M, PROT_READ_WRITE);
    pt.map(0x1000, 4096, SIZE_64K, PROT_READ);
    expect(pt.unmap(0x401, 0x402)).toBe(1);
    expect(pt.unmap(0x1003, 0x1004)).toBe(1);
    pt.walk(0x400, l);
    expect([l.flags, l.pfn, l.size]).toEqual([PROT_READ_WRITE, 9216, SIZE_4K]);
    pt.walk(0x401, l);
    expect(l.flags).toBe(0);
    pt.walk(0x5ff, l);
    expect(l.pfn).toBe(9216 + 0x1ff);
    pt.walk(0x1004, l);
    expect([l.flags, l.pfn, l.size]).toEqual([PROT_READ, 4100, SIZE_4K]);
    expect(pt.mappedPages).toBe(511 + 15);
    // block_gpu_split_2m: the 64 KiB regions the unmap did not touch stay 64 KiB leaves.
    pt.walk(0x410, l);
    expect([l.flags & ~PTE_BIG, l.pfn, l.size, l.baseVpn]).toEqual([PROT_READ_WRITE, 9216 + 0x10, SIZE_64K, 0x410]);
    pt.walk(0x40f, l);
    expect(l.size).toBe(SIZE_4K);
  });

  it('downgrading part of a 2 MiB leaf splits it: the touched 64 KiB region to 4 KiB PTEs, the rest 64 KiB leaves', () => {
    const pt = new GpuPageTable();
    const l = leaf();
    pt.map(0x400, 9216, SIZE_2M, PROT_READ_WRITE_ATOMIC);
    expect(pt.protect(0x423, 0x425, PROT_READ)).toBe(2);
    pt.walk(0x423, l);
    expect([l.flags, l.pfn, l.size]).toEqual([PROT_READ, 9216 + 0x23, SIZE_4K]);
    pt.walk(0x420, l);
    expect([l.flags, l.size]).toEqual([PROT_READ_WRITE_ATOMIC, SIZE_4K]);
    pt.walk(0x5f0, l);
    expect([l.flags & ~PTE_BIG, l.size, l.baseVpn]).toEqual([PROT_READ_WRITE_ATOMIC, SIZE_64K, 0x5f0]);
    expect(pt.mappedPages).toBe(512);
    // A whole 64 KiB leaf downgraded stays one leaf.
    expect(pt.protect(0x430, 0x440, PROT_READ)).toBe(16);
    pt.walk(0x43f, l);
    expect([l.flags & ~PTE_BIG, l.size]).toEqual([PROT_READ, SIZE_64K]);
  });

  it('uniform: whether a run of pages could be one leaf (same flags, consecutive frames from an aligned one)', () => {
    const pt = new GpuPageTable();
    const l = leaf();
    for (let k = 0; k < 16; k++) pt.map(0x20 + k, 1600 + k, SIZE_4K, PROT_READ_WRITE);
    expect(pt.uniform(0x20, SIZE_64K, l)).toBe(true);
    expect([l.flags, l.pfn]).toEqual([PROT_READ_WRITE, 1600]);
    pt.map(0x25, 1605, SIZE_4K, PROT_READ);
    expect(pt.uniform(0x20, SIZE_64K, l)).toBe(false); // mixed permissions
    pt.map(0x25, 1705, SIZE_4K, PROT_READ_WRITE);
    expect(pt.uniform(0x20, SIZE_64K, l)).toBe(false); // not contiguous
    for (let k = 0; k < 16; k++) pt.map(0x30 + k, 1601 + k, SIZE_4K, PROT_READ_WRITE);
    expect(pt.uniform(0x30, SIZE_64K, l)).toBe(false); // contiguous, misaligned
    expect(pt.uniform(0x40, SIZE_64K, l)).toBe(false); // unmapped
    pt.map(0x400, 9216, SIZE_2M, PROT_READ);
    expect(pt.uniform(0x400, SIZE_2M, l) && pt.uniform(0x470, SIZE_64K, l)).toBe(true);
    expect(l.pfn).toBe(9216 + 0x70);
  });

  it('protect downgrades, unmaps with PROT_NONE, and an empty table is freed', () => {
    const pt = new GpuPageTable();
    const l = leaf();
    pt.map(0x10, 1, SIZE_4K, PROT_READ_WRITE_ATOMIC | PTE_SYSMEM);
    expect(pt.protect(0x10, 0x11, PROT_READ)).toBe(1);
    pt.walk(0x10, l);
    expect(l.flags).toBe(PROT_READ | PTE_SYSMEM);
    const tables = pt.tables;
    expect(pt.protect(0, 0x1000, 0)).toBe(1);
    expect(pt.mappedPages).toBe(0);
    expect(pt.tables).toBeLessThan(tables);
  });

  it('agrees with a per-page model under random maps, unmaps and downgrades', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('map' as const), vpn: fc.nat(2047), size: fc.constantFrom(0, 1, 2), prot: fc.constantFrom(PROT_READ, PROT_READ_WRITE, PROT_READ_WRITE_ATOMIC), sys: fc.boolean() }),
      fc.record({ k: fc.constant('unmap' as const), vpn: fc.nat(2047), n: fc.integer({ min: 1, max: 700 }) }),
      fc.record({ k: fc.constant('protect' as const), vpn: fc.nat(2047), n: fc.integer({ min: 1, max: 700 }), prot: fc.constantFrom(0, PROT_READ, PROT_READ_WRITE) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const pt = new GpuPageTable();
      const model = new Map<number, [number, number]>(); // vpn -> [pfn, flags]
      for (const o of ops) {
        if (o.k === 'map') {
          const n = [1, 16, 512][o.size]!;
          const vpn = o.vpn - (o.vpn % n);
          const pfn = 102400 + vpn;
          pt.map(vpn, pfn, o.size as 0 | 1 | 2, o.prot | (o.sys ? PTE_SYSMEM : 0));
          for (let i = 0; i < n; i++) model.set(vpn + i, [pfn + i, o.prot | (o.sys ? PTE_SYSMEM : 0)]);
        } else if (o.k === 'unmap') {
          pt.unmap(o.vpn, o.vpn + o.n);
          for (let v = o.vpn; v < o.vpn + o.n; v++) model.delete(v);
        } else {
          pt.protect(o.vpn, o.vpn + o.n, o.prot);
          for (let v = o.vpn; v < o.vpn + o.n; v++) {
            const e = model.get(v);
            if (!e) continue;
            if (o.prot === 0) model.delete(v);
            else model.set(v, [e[0], e[1] & (o.prot | PTE_SYSMEM)]);
          }
        }
      }
      const l = leaf();
      const wrong: number[] = [];
      for (let v = 0; v < 2048 + 700; v++) {
        pt.walk(v, l);
        const e = model.get(v);
        if (e ? l.pfn !== e[0] || (l.flags & ~PTE_BIG) !== e[1] : l.flags & PTE_VALID) wrong.push(v);
        // A larger leaf is one: its pages alike, its frames consecutive (else a TLB would cache a wrong leaf).
        if (l.flags & PTE_VALID && l.size !== SIZE_4K && !pt.uniform(l.baseVpn, l.size as 1 | 2, leaf())) wrong.push(-v);
      }
      expect(wrong).toEqual([]);
      let seen = 0;
      pt.forEach(0, 4096, (_v, n) => void (seen += n));
      expect(seen).toBe(model.size);
      expect(pt.mappedPages).toBe(model.size);
    }));
  });
});

describe('TLB', () => {
  it('hits on any page of a cached leaf, per address space', () => {
    const t = new Tlb(16, 4);
    t.fill(1, 0x200, SIZE_2M, 5000, PROT_READ);
    t.fill(1, 0x10, SIZE_64K, 600, PROT_READ_WRITE);
    expect(t.lookup(1, 0x3ff)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(1, 0x1f)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(2, 0x3ff)).toBe(-1);
    expect(t.lookup(1, 0x20)).toBe(-1);
  });

  it('replaces the least recently used way of a set', () => {
    const t = new Tlb(2, 2); // one set of two ways
    t.fill(0, 1, SIZE_4K, 1, PROT_READ);
    t.fill(0, 2, SIZE_4K, 2, PROT_READ);
    t.lookup(0, 1); // 2 is now the LRU
    t.fill(0, 3, SIZE_4K, 3, PROT_READ);
    expect(t.lookup(0, 1)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(0, 2)).toBe(-1);
    expect(t.lookup(0, 3)).toBeGreaterThanOrEqual(0);
  });

  it('keeps exact LRU order when its 32-bit stamp clock runs out (renumber), against a model', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 9 })), { minLength: 1, maxLength: 120 }), fc.integer({ min: 1, max: 60 }), (ops, left) => {
      const t = new Tlb(4, 4); // one set: fully associative, so the model is one recency list
      t.clock = 2 ** 32 - 1 - left;
      const recent: number[] = []; // most recent first
      for (const [isFill, v] of ops) {
        const at = recent.indexOf(v);
        if (isFill) {
          t.fill(0, v, SIZE_4K, v, PROT_READ);
          if (at >= 0) recent.splice(at, 1);
          else if (recent.length === 4) recent.pop();
          recent.unshift(v);
        } else {
          if ((t.lookup(0, v) >= 0) !== at >= 0) return false;
          if (at >= 0) recent.unshift(...recent.splice(at, 1));
        }
      }
      return t.clock < 2 ** 32 && recent.every((v) => t.lookup(0, v) >= 0);
    }), { numRuns: 200 });
  });

  it('fillAbsent, after a lookup miss, takes the slot fill would (a twin TLB filled through fill)', () => {
    const SIZES = [SIZE_4K, SIZE_64K, SIZE_2M] as const;
    const op = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 1 }));
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 150 }), (ops) => {
      const a = new Tlb(32, 4);
      const b = new Tlb(32, 4);
      for (const [sz, i, asid] of ops) {
        const size = SIZES[sz]!;
        const base = 2 ** 33 + i * SIZE_PAGES[size];
        const vpn = base + (i % SIZE_PAGES[size]);
        const sa = a.lookup(asid, vpn);
        if (sa !== b.lookup(asid, vpn)) return false;
        if (sa >= 0) continue;
        if (a.fill(asid, base, size, i, PROT_READ) !== b.fillAbsent(asid, base, size, i, PROT_READ)) return false;
      }
      return a.valid === b.valid && a.key.every((k, w) => k === b.key[w]) && a.meta.every((m, w) => m === b.meta[w]);
    }), { numRuns: 300 });
    // and a new TLB is empty after its warm-up fills
    const t = new Tlb(4096, 16);
    expect([t.valid, t.clock, t.key.every((k) => k === -1), t.meta.every((m) => m === 0)]).toEqual([0, 0, true, true]);
  });

  it('invalidates exactly the translations overlapping a range', () => {
    const t = new Tlb(64, 4);
    t.fill(0, 0x200, SIZE_2M, 0, PROT_READ);
    t.fill(0, 0x10, SIZE_4K, 1, PROT_READ);
    t.fill(0, 0x11, SIZE_4K, 2, PROT_READ);
    t.fill(1, 0x10, SIZE_4K, 3, PROT_READ);
    expect(t.invalidate(0, 0x11, 0x201)).toBe(2); // 0x11 and the 2 MiB leaf
    expect(t.lookup(0, 0x10)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(1, 0x10)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(0, 0x300)).toBe(-1);
    expect(t.valid).toBe(2);
  });

  it('invalidate drops exactly the overlapping leaves of the asid, by set or by scan, against a model', () => {
    const SIZES = [SIZE_4K, SIZE_64K, SIZE_2M] as const;
    // leaves of every size near vpn 0 and near 2^33 (where a tag passes 2^32), two address spaces
    const leafArb = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 7 }), fc.boolean(), fc.integer({ min: 0, max: 1 }));
    fc.assert(fc.property(fc.array(leafArb, { maxLength: 40 }), fc.integer({ min: 0, max: 1 }), fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 2 ** 33 - 1500, max: 2 ** 33 + 1500 })), fc.integer({ min: 1, max: 2000 }), (leaves, asid, start, len) => {
      const t = new Tlb(64, 4);
      const held = new Map<string, { a: number; base: number; size: number }>();
      for (const [sz, i, high, a] of leaves) {
        const size = SIZES[sz]!;
        const pages = SIZE_PAGES[size];
        const base = (high ? 2 ** 33 - 2048 : 0) + i * pages;
        t.fill(a, base, size, 1, PROT_READ);
        held.set(`${a}:${base}:${size}`, { a, base, size });
      }
      // the slot holding leaf l (a set keeps 4: later fills evict)
      const slotOf = (l: { a: number; base: number; size: number }) => t.key.findIndex((k, w) => k === l.base * 4 + l.size && t.asidOf(w) === l.a);
      for (const [k, l] of held) if (slotOf(l) < 0) held.delete(k);
      const end = start + len;
      const gone = [...held.values()].filter((l) => l.a === asid && l.base < end && l.base + SIZE_PAGES[l.size] > start);
      if (t.invalidate(asid, start, end) !== gone.length) return false;
      for (const l of held.values()) if ((slotOf(l) < 0) !== gone.includes(l)) return false;
      return t.valid === held.size - gone.length;
    }), { numRuns: 300 });
  });

  // tlbSetIndex: with `leaf mod sets` a grid-stride warp's pages (1792 warps = 7 x 256 sets apart)
  // all land in one set of 16 ways, and all but the last 16 miss.
  it('a grid stride does not alias into one set: a warp\'s pages of three arrays all stay cached', () => {
    const t = new Tlb(4096, 16);
    const base = 0x7f0000000;
    const pages: number[] = [];
    for (let a = 0; a < 3; a++) for (let j = 0; j < 40; j++) pages.push(base + a * 65536 + 5 + 1792 * j);
    for (const v of pages) t.fill(0, v, SIZE_4K, 1, PROT_READ);
    expect(pages.filter((v) => t.lookup(0, v) < 0)).toEqual([]);
  });

  it('consecutive leaves fill distinct sets: any 3840 consecutive pages fit a 4096-entry TLB', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 0, max: 0xffff }), (start, asid) => {
      const t = new Tlb(4096, 16);
      for (let v = start; v < start + 3840; v++) t.fill(asid, v, SIZE_4K, 1, PROT_READ);
      for (let v = start; v < start + 3840; v++) if (t.lookup(asid, v) < 0) return false;
      return t.valid === 3840;
    }), { numRuns: 20 });
  });

  it('the set index is in range for any set count, power of two or not', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 1, max: 5000 }), (leaf, asid, sets) => {
      let bits = 0;
      while (2 ** bits < sets) bits++;
      const s = tlbSetIndex(leaf, asid, sets, bits);
      return Number.isInteger(s) && s >= 0 && s < sets;
    }));
    const t = new Tlb(48 * 4, 4); // 48 sets: a fill and its lookup agree on the set
    for (const v of [47, 63, 2 ** 40 + 5]) t.fill(3, v, SIZE_4K, 1, PROT_READ);
    for (const v of [47, 63, 2 ** 40 + 5]) expect(t.lookup(3, v)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(3, 48)).toBe(-1);
  });
});

describe('replayable fault buffer (32-byte entries, put/get)', () => {
  it('keeps entries in order with their fields; get/put wrap', () => {
    const fb = new FaultBuffer(4);
    expect(fb.bytes).toBe(4 * FAULT_BUFFER_ENTRY_SIZE);
    expect(fb.write(0x1000, ACCESS_WRITE, 1, 3, 7, 11, 500)).toBe(true);
    expect(fb.readPut()).toBe(1);
    expect([fb.addr[0], fb.access[0], fb.utlb[0], fb.asid[0], fb.warp[0], fb.timestamp[0], fb.entryIsValid(0)]).toEqual([0x1000, ACCESS_WRITE, 3, 7, 11, 500, true]);
    fb.entryClearValid(0);
    fb.writeGet(1);
    for (let i = 0; i < 3; i++) expect(fb.write(0x2000 + i, ACCESS_READ, 1, 0, 0, 0, 0)).toBe(true);
    expect(fb.readPut()).toBe(0); // wrapped
    expect(fb.pending).toBe(3);
  });

  it('when PUT == GET - 1 a new fault is dropped and OVERFLOW set until GET is written (uvm_hal_turing_fault_buffer_write_get)', () => {
    const fb = new FaultBuffer(4);
    for (let i = 0; i < 3; i++) expect(fb.write(i, ACCESS_READ, 1, 0, 0, 0, 0)).toBe(true);
    expect(fb.write(9, ACCESS_READ, 1, 0, 0, 0, 0)).toBe(false);
    expect(fb.overflow).toBe(true);
    expect(fb.dropped).toBe(1);
    fb.writeGet(1); // one entry consumed: there is room, and OVERFLOW clears
    expect(fb.overflow).toBe(false);
    expect(fb.write(9, ACCESS_READ, 1, 0, 0, 0, 0)).toBe(true);
  });
});

/** A driver for hardware tests: maps every faulting page to a fixed frame (system memory) and replays. */
class MapAllDriver implements GpuDriver {
  readonly name = 'map-all';
  handled = 0;
  fatal = new Set<number>();
  constructor(readonly gpu: Gpu, readonly prot = PROT_READ_WRITE_ATOMIC) {
    gpu.bindDriver(this);
  }
  replayableFaultInterrupt(): void {
    const fb = this.gpu.faultBuffer;
    let get = fb.readGet();
    const put = fb.readPut();
    while (get !== put) {
      const vs = this.gpu.mmu.vaSpace(fb.asid[get]!)!;
      const vpn = fb.addr[get]! / 4096;
      if (this.fatal.has(vpn)) this.gpu.cancel(vs.asid, fb.addr[get]!);
      else this.gpu.mmu.map(vs, vpn, 1000 + vpn, SIZE_4K, this.prot | PTE_SYSMEM);
      fb.entryClearValid(get);
      get = (get + 1) % fb.maxFaults;
      this.handled++;
    }
    fb.writeGet(get);
    this.gpu.replay();
    this.gpu.enableFaultInterrupt();
  }
}

function rig(config: Partial<ConstructorParameters<typeof Gpu>[2]> = {}) {
  const machine = new Machine({ ramBytes: 16 << 20 });
  const engine = new Engine();
  const gpu = new Gpu(machine, engine, { vramBytes: 4 << 20, ...config });
  const vs = gpu.mmu.createVaSpace();
  return { machine, engine, gpu, vs };
}

describe('SMs: fault and stall, replay, cancel', () => {
  it('a faulting warp stalls until the replay, the others go on', () => {
    const { engine, gpu, vs } = rig();
    const d = new MapAllDriver(gpu);
    gpu.mmu.map(vs, 5, 1005, SIZE_4K, PROT_READ_WRITE);
    const faulting = listProgram([[100, ACCESS_READ], [5, ACCESS_READ]]);
    const resident = listProgram(Array.from({ length: 50 }, () => [5, ACCESS_READ] as [number, AccessType]));
    const run = gpu.launch({ name: 'k', warps: [faulting, resident] }, vs);
    engine.run();
    expect(run.done).toBe(true);
    expect(run.error).toBeNull();
    expect(d.handled).toBe(1);
    const [w0, w1] = run.warps;
    expect(w0!.state).toBe(WARP_DONE);
    // The resident warp finished long before the faulting one got its replay.
    expect(w1!.time).toBeLessThan(gpu.costs.faultInterruptNs);
    expect(w0!.time).toBeGreaterThan(gpu.costs.faultInterruptNs + gpu.costs.replayNs);
    const s = gpu.stats();
    expect(s.faultsRaised).toBe(1);
    expect(s.replays).toBe(1);
    expect(s.stallNs).toBeGreaterThan(gpu.costs.faultInterruptNs);
    expect(s.accesses).toBe(52);
  });

  it('a write to a read-only translation faults even on a TLB hit, and the retry walks again', () => {
    const { engine, gpu, vs } = rig();
    gpu.mmu.map(vs, 7, 1007, SIZE_4K, PROT_READ | PTE_SYSMEM);
    new MapAllDriver(gpu); // maps RWA on fault
    const run = gpu.launch({ name: 'k', warps: [listProgram([[7, ACCESS_READ], [7, ACCESS_WRITE], [7, ACCESS_ATOMIC]])] }, vs);
    engine.run();
    expect(run.done).toBe(true);
    expect(gpu.stats().faultsRaised).toBe(1);
  });

  it('prefetch accesses fault but never stall', () => {
    const { engine, gpu, vs } = rig();
    new MapAllDriver(gpu);
    const run = gpu.launch({ name: 'k', warps: [listProgram([[9, ACCESS_PREFETCH], [10, ACCESS_PREFETCH]])] }, vs);
    engine.run(gpu.costs.faultInterruptNs / 2);
    expect(run.done).toBe(true);
    expect(gpu.stats().prefetchFaultsRaised).toBe(2);
    expect(gpu.stats().stallNs).toBe(0);
    engine.run();
    gpu.prefetchFaultsEnabled = false;
    const run2 = gpu.launch({ name: 'k2', warps: [listProgram([[11, ACCESS_PREFETCH]])] }, vs);
    engine.run();
    expect(run2.done).toBe(true);
    expect(gpu.stats().prefetchFaultsRaised).toBe(2);
  });

  it('cancel kills every warp of the address space and the kernel ends with an error', () => {
    const { engine, gpu, vs } = rig();
    const d = new MapAllDriver(gpu);
    d.fatal.add(66);
    const long = listProgram(Array.from({ length: 10000 }, (_, i) => [i % 3, ACCESS_READ] as [number, AccessType]));
    const run = gpu.launch({ name: 'k', warps: [listProgram([[66, ACCESS_WRITE]]), long] }, vs);
    engine.run();
    expect(run.done).toBe(true);
    expect(run.error).toMatch(/fatal GPU fault/);
    expect(run.warps.every((w) => w.state === WARP_CANCELLED || w.state === WARP_DONE)).toBe(true);
    expect(run.warps[0]!.state).toBe(WARP_CANCELLED);
  });

  it('a full fault buffer drops faults; the dropped warps fault again after the replay', () => {
    const { engine, gpu, vs } = rig({ faultBufferEntries: 4, sms: 4, warpsPerSm: 4 });
    const d = new MapAllDriver(gpu);
    const warps = Array.from({ length: 12 }, (_, i) => listProgram([[200 + i, ACCESS_READ]]));
    const run = gpu.launch({ name: 'k', warps }, vs);
    engine.run();
    expect(run.done).toBe(true);
    expect(gpu.faultBuffer.dropped).toBeGreaterThan(0);
    expect(d.handled).toBe(12);
    expect(gpu.stats().faultsRaised).toBe(12 + gpu.faultBuffer.dropped);
  });

  it('warps beyond the SMs\' slots wait for a slot', () => {
    const { engine, gpu, vs } = rig({ sms: 1, warpsPerSm: 2 });
    gpu.mmu.map(vs, 1, 1001, SIZE_4K, PROT_READ);
    const warps = Array.from({ length: 6 }, () => listProgram(Array.from({ length: 100 }, () => [1, ACCESS_READ] as [number, AccessType]), 100));
    const run = gpu.launch({ name: 'k', warps }, vs);
    engine.run();
    // Three waves of two warps, each 100 accesses of ~101 ns.
    expect(run.endNs).toBeGreaterThan(3 * 100 * 100);
    expect(run.endNs).toBeLessThan(3 * 100 * 120);
  });

  it('on an idle GPU warp i of every launch runs on SM i mod sms (the block scheduler\'s round-robin issue), however the last launch\'s warps ended', () => {
    const { engine, gpu, vs } = rig({ sms: 4, warpsPerSm: 2, smsPerUtlb: 1 });
    gpu.mmu.map(vs, 1, 1001, SIZE_4K, PROT_READ);
    const seen: number[][] = [];
    const runs: unknown[] = [];
    gpu.observeAccesses((w) => {
      (seen[w.run.warps.indexOf(w) + 8 * runs.indexOf(w.run)] ??= []).push(w.sm);
    });
    for (let k = 0; k < 3; k++) {
      // warp i ends before warp i + 1 (the order that put warp 0 of the next launch on the last SM freed)
      const warps = Array.from({ length: 8 }, (_, i) => listProgram(Array.from({ length: (i + 1) * 10 }, () => [1, ACCESS_READ] as [number, AccessType])));
      const run = gpu.launch({ name: `k${k}`, warps }, vs);
      runs.push(run);
      engine.run();
      expect(run.done).toBe(true);
    }
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < 8; i++) expect(new Set(seen[8 * k + i]), `launch ${k} warp ${i}`).toEqual(new Set([i % 4]));
    }
    // so a grid-stride warp finds its translations in its own uTLB again: all but the first launch's walks hit
    expect(gpu.mmu.stats.walks).toBe(1);
  });

  it('while slots are busy a waiting warp takes the SM that frees one', () => {
    const { engine, gpu, vs } = rig({ sms: 2, warpsPerSm: 1, smsPerUtlb: 1 });
    gpu.mmu.map(vs, 1, 1001, SIZE_4K, PROT_READ);
    const sms = new Map<number, number>();
    gpu.observeAccesses((w) => sms.set(w.id, w.sm));
    // 100 ns an access: warp 1 ends (and frees SM 1) several quanta before warp 0
    const len = [1000, 100, 100];
    const run = gpu.launch({ name: 'k', warps: len.map((n) => listProgram(Array.from({ length: n }, () => [1, ACCESS_READ] as [number, AccessType]), 100)) }, vs);
    engine.run();
    expect(run.done).toBe(true);
    expect(run.warps.map((w) => sms.get(w.id))).toEqual([0, 1, 1]);
  });

  it('costs: a uTLB miss pays the L2 hit, an L2 miss the walk; remote accesses pay the interconnect', () => {
    const { engine, gpu, vs } = rig({ sms: 1, smsPerUtlb: 1 });
    gpu.mmu.map(vs, 1, 1001, SIZE_4K, PROT_READ | PTE_SYSMEM);
    const c = gpu.costs;
    const run = gpu.launch({ name: 'k', warps: [listProgram([[1, ACCESS_READ], [1, ACCESS_READ]], 0)] }, vs);
    engine.run();
    expect(run.endNs).toBe(c.l2TlbHitNs + c.pageWalkNs + 2 * (c.vramAccessNs + c.remoteAccessNs));
    expect(gpu.mmu.translate(vs.asid, 1, ACCESS_READ, 0)).toBe(XLATE_HIT);
  });
});

describe('access counters', () => {
  it('notify once per `threshold` remote accesses to a 2 MiB region, then count again', () => {
    const ac = new AccessCounters({ granularity: 2 << 20, threshold: 256, batchCount: 256, bufferEntries: 4 });
    let intr = 0;
    ac.onNotify = () => intr++;
    for (let i = 0; i < 255; i++) ac.record(3, 512 + (i % 512));
    expect(ac.pending).toBe(0);
    ac.record(3, 700);
    expect(ac.pending).toBe(1);
    expect(intr).toBe(1);
    const out: { addr: number; asid: number; count: number }[] = [];
    expect(ac.fetch(out)).toBe(1);
    expect(out[0]).toEqual({ addr: 2 << 20, asid: 3, count: 256 });
    for (let i = 0; i < 256; i++) ac.record(3, 512);
    expect(ac.pending).toBe(1);
  });
});

describe('GPU configuration', () => {
  it('bad options are EINVAL before anything is built', () => {
    const machine = new Machine({ ramBytes: 16 << 20 });
    const e = new Engine();
    expect(() => new Gpu(machine, e, { sms: 0 })).toThrow(/EINVAL|positive/);
    expect(() => new Gpu(machine, e, { vramBytes: 3 << 20 })).toThrow(/2 MiB/);
    expect(() => new Gpu(machine, e, { bogus: 1 } as never)).toThrow(/unknown GPU option/);
    expect(() => new Gpu(machine, e, {}, { bogus: 1 } as never)).toThrow(/unknown GPU cost/);
    expect(machine.phys.pagemapList.length).toBe(0);
  });

  it('PTE_WRITE without VALID is not a mapping', () => {
    const pt = new GpuPageTable();
    expect(() => pt.map(0, 0, SIZE_4K, PTE_WRITE)).toThrow(RangeError);
  });
});
