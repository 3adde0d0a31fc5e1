import { describe, expect, it } from 'vitest';
import {
  Machine, MAP_ANONYMOUS, MAP_PRIVATE, MIGRATE_PFN_DEVICE, MIGRATE_PFN_ERROR, MIGRATE_PFN_LOCKED, MIGRATE_PFN_MIGRATE,
  migratePfn, migratePfnHas, migratePfnToPage, migrateVma417, PAGE_SIZE, PROT_READ, PROT_WRITE, type MigrateVmaOps417,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { TestDevice } from './device.js';

function setup() {
  const m = new Machine({ ramBytes: 16 << 20 });
  const dev = new TestDevice(m, 16);
  const p = m.spawn();
  const a = p.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  return { m, dev, p, a, vma: p.mm.findVma(a)! };
}

describe('4.17 migrate_vma(ops, vma, start, end, src, dst, private)', () => {
  it('moves pages to device memory through the two callbacks; src carries LOCKED and, coming back, DEVICE', () => {
    const { m, dev, p, a, vma } = setup();
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, 10 + i);
    let next = dev.pgmap.firstPfn;
    const calls: string[] = [];
    const toDevice: MigrateVmaOps417 = {
      allocAndCopy: (_v, src, dst) => {
        calls.push('alloc');
        for (let i = 0; i < 4; i++) {
          expect(migratePfnHas(src[i]!, MIGRATE_PFN_LOCKED)).toBe(true);
          const d = next++;
          m.phys.deviceFrameInit(d);
          m.phys.trylockPage(d);
          m.phys.copyPage(d, migratePfnToPage(src[i]!));
          dst[i] = migratePfn(d) + MIGRATE_PFN_LOCKED;
        }
      },
      finalizeAndMap: (_v, src) => {
        calls.push('finalize');
        expect([...src].every((v) => migratePfnHas(v, MIGRATE_PFN_MIGRATE))).toBe(true);
      },
    };
    const src = new Float64Array(4);
    const dst = new Float64Array(4);
    migrateVma417(toDevice, vma, a, a + 4 * PAGE_SIZE, src, dst, null);
    expect(calls).toEqual(['alloc', 'finalize']);
    expect(m.phys.usedRamFrames).toBe(0);
    // Back to system memory; the driver fails page 2 with MIGRATE_PFN_ERROR (4.17 #44).
    const back: MigrateVmaOps417 = {
      allocAndCopy: (_v, s, d) => {
        for (let i = 0; i < 4; i++) {
          expect(migratePfnHas(s[i]!, MIGRATE_PFN_DEVICE)).toBe(true);
          if (i === 2) { d[i] = MIGRATE_PFN_ERROR; continue; }
          const page = m.phys.allocPages(0);
          m.phys.trylockPage(page);
          m.phys.copyPage(page, migratePfnToPage(s[i]!));
          d[i] = migratePfn(page) + MIGRATE_PFN_LOCKED;
        }
      },
      finalizeAndMap: () => {},
    };
    migrateVma417(back, vma, a, a + 4 * PAGE_SIZE, src, dst, null);
    expect(migratePfnHas(src[2]!, MIGRATE_PFN_MIGRATE)).toBe(false);
    expect(m.phys.usedRamFrames).toBe(3);
    for (let i = 0; i < 4; i++) expect(p.readU32(a + i * PAGE_SIZE)).toBe(10 + i); // page 2 via migrate_to_ram
    expect(checkInvariants(m)).toEqual([]);
  });

  it('4.17 #39: nothing migratable (a swapped-out page, #41): returns, callbacks not called', () => {
    const { m, p, a, vma } = setup();
    p.writeU32(a, 1);
    p.madvise(a, PAGE_SIZE, 21 /* MADV_PAGEOUT */);
    let called = false;
    const ops: MigrateVmaOps417 = { allocAndCopy: () => { called = true; }, finalizeAndMap: () => { called = true; } };
    const src = new Float64Array(1);
    migrateVma417(ops, vma, a, a + PAGE_SIZE, src, new Float64Array(1), null);
    expect(called).toBe(false);
    expect(src[0]).toBe(0);
    expect(p.readU32(a)).toBe(1);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('4.17 #38: bad arguments are EINVAL (no ops, no src, empty range, outside the vma)', () => {
    const { a, vma } = setup();
    const ops: MigrateVmaOps417 = { allocAndCopy: () => {}, finalizeAndMap: () => {} };
    const f = new Float64Array(4);
    expect(() => migrateVma417(null as unknown as MigrateVmaOps417, vma, a, a + PAGE_SIZE, f, f, null)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => migrateVma417(ops, vma, a, a + PAGE_SIZE, null as unknown as Float64Array, f, null)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => migrateVma417(ops, vma, a, a, f, f, null)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => migrateVma417(ops, vma, a, a + 8 * PAGE_SIZE, f, f, null)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });
});
