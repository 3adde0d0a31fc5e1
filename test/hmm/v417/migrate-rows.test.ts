// docs/edge-cases-4.17.md, rows 38-50 (migrate_vma, hmm_devmem, hmm_device): one test each,
// named after the row, driven by a 4.17-style driver (hmm_devmem + migrate_vma callbacks).
import { describe, expect, it } from 'vitest';
import {
  getUserPages, Machine, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, mmapDevice, remapPfnRange, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID,
  migratePfn, migratePfnHas, migratePfnToPage, PMD_SIZE, putUserPages, SignalError, unpinUserPages, VM_FAULT_OOM,
  VM_FAULT_SIGBUS, VM_PFNMAP, type MigratePfnArray, type Process, type Vma,
} from '../../../src/index.js';
import {
  hmmDeviceNew, hmmDevicePut, hmmDevmemAdd, hmmDevmemAddResource, hmmDevmemRemove, hmmVmaAllocLockedPage,
  IORES_DESC_DEVICE_PRIVATE_MEMORY, IORES_DESC_DEVICE_PUBLIC_MEMORY, MIGRATE_PFN_DEVICE, MIGRATE_PFN_ERROR, MIGRATE_PFN_LOCKED,
  migrateVma as migrateVma417, type HmmDevmem, type HmmDevmemOps, type MigrateVmaOps as MigrateVmaOps417,
} from '../../../src/hmm/v417/index.js';
import { ANON, entry, expectConsistent, K_DEVICE_PRIVATE, K_PRESENT, K_SWAP, P, pattern, RW } from '../../mm/migrate/helpers.js';

/** A 4.17-style driver: hmm_devmem memory, a free list, migrate_vma with alloc_and_copy / finalize_and_map. */
class Driver417 {
  readonly devmem: HmmDevmem;
  private readonly free: number[] = [];
  freed: number[] = [];
  faults = 0;
  /** The fault callback answers with this code without migrating. */
  faultResult = 0;
  /** dst ERROR for pages coming back (a dead device). */
  failBack = false;
  /** What alloc_and_copy saw in src. */
  seen: number[] = [];
  onFree: ((page: number) => void) | null = null;

  constructor(readonly m: Machine, pages = 16) {
    const ops: HmmDevmemOps = {
      free: (_d, page) => {
        this.onFree?.(page);
        this.freed.push(page);
        this.free.push(page);
      },
      fault: (_d, vma, addr) => {
        this.faults++;
        if (this.faultResult) return this.faultResult;
        const dst = new Float64Array(1);
        migrateVma417(this.back, vma, addr, addr + P, new Float64Array(1), dst, null);
        return dst[0] === MIGRATE_PFN_ERROR ? VM_FAULT_SIGBUS : 0;
      },
    };
    this.devmem = hmmDevmemAdd(m, ops, 'gpu', 1 << 20);
    for (let i = pages - 1; i >= 0; i--) this.free.push(this.devmem.pfnFirst + i);
  }

  /** Hand out a device page: 4.17's get_page + lock_page (idle at 0 here: deviceFrameInit). */
  alloc(): number {
    const d = this.free.pop()!;
    this.m.phys.deviceFrameInit(d);
    this.m.phys.trylockPage(d);
    return d;
  }

  readonly toDevice: MigrateVmaOps417 = {
    allocAndCopy: (_v, src, dst) => {
      this.seen = [...src];
      for (let i = 0; i < src.length; i++) {
        if (!migratePfnHas(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
        const d = this.alloc();
        const s = migratePfnToPage(src[i]!);
        if (s >= 0) this.m.phys.copyPage(d, s);
        dst[i] = migratePfn(d) + MIGRATE_PFN_LOCKED;
      }
    },
    finalizeAndMap: () => {},
  };

  readonly back: MigrateVmaOps417 = {
    allocAndCopy: (vma, src, dst, start) => {
      for (let i = 0; i < src.length; i++) {
        const s = migratePfnToPage(src[i]!);
        if (s < 0 || !migratePfnHas(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
        if (this.failBack) {
          dst[i] = MIGRATE_PFN_ERROR;
          continue;
        }
        const page = hmmVmaAllocLockedPage(this.m, vma, start + i * P)!;
        this.m.phys.copyPage(page, s);
        dst[i] = migratePfn(page) + MIGRATE_PFN_LOCKED;
      }
    },
    finalizeAndMap: () => {},
  };

  migrate(p: Process, start: number, end: number, ops: MigrateVmaOps417 = this.toDevice): MigratePfnArray {
    const n = (end - start) / P;
    const src = new Float64Array(n);
    migrateVma417(ops, p.mm.findVma(start)!, start, end, src, new Float64Array(n), null);
    return src;
  }
}

function setup417(pages = 4) {
  const m = new Machine({ ramBytes: 32 << 20 });
  const drv = new Driver417(m);
  const p = m.spawn();
  const a = p.mmap(0, pages * P, RW, ANON);
  return { m, drv, p, a };
}

const noop: MigrateVmaOps417 = { allocAndCopy: () => {}, finalizeAndMap: () => {} };

describe('docs/edge-cases-4.17.md rows 38-50', () => {
  it('4.17 #38: migrate_vma bad args (NULL vma, ops, src or dst; hugetlb, VM_SPECIAL; range outside the vma; start >= end): -EINVAL', () => {
    const { m, p, a } = setup417();
    p.write(a, pattern(1));
    const vma = p.mm.findVma(a)!;
    const h = p.mmap(0x200000000, 2 << 20, RW, ANON | 0x40000 /* MAP_HUGETLB */);
    const sp = mmapDevice(p.mm, 0x300000000, P, RW, MAP_SHARED | MAP_FIXED, 0, { mmap: (v) => remapPfnRange(v, v.start, m.phys.frames.capacity, P) });
    expect(p.mm.findVma(sp)!.flags & VM_PFNMAP).toBe(VM_PFNMAP);
    expect(p.mm.findVma(a)).toBe(vma); // a separate vma each: the errors below are the ones named
    const f1 = () => new Float64Array(1);
    const calls: Array<() => void> = [
      () => migrateVma417(noop, null as unknown as Vma, a, a + P, f1(), f1(), null),
      () => migrateVma417(null as unknown as MigrateVmaOps417, vma, a, a + P, f1(), f1(), null),
      () => migrateVma417(noop, vma, a, a + P, null as unknown as Float64Array, f1(), null),
      () => migrateVma417(noop, vma, a, a + P, f1(), null as unknown as Float64Array, null),
      () => migrateVma417(noop, p.mm.findVma(h)!, h, h + P, f1(), f1(), null),
      () => migrateVma417(noop, p.mm.findVma(sp)!, sp, sp + P, f1(), f1(), null),
      () => migrateVma417(noop, vma, a - P, a, f1(), f1(), null),
      () => migrateVma417(noop, vma, a + 3 * P, a + 5 * P, new Float64Array(2), new Float64Array(2), null),
      () => migrateVma417(noop, vma, a + P, a + P, f1(), f1(), null),
      () => migrateVma417(noop, vma, a + 2 * P, a + P, f1(), f1(), null),
    ];
    for (const c of calls) expect(c).toThrow(expect.objectContaining({ errno: 'EINVAL', message: expect.not.stringContaining('no longer mapped') }));
    // start and end are page-masked first: an unaligned end inside the page is fine.
    migrateVma417(noop, vma, a + 5, a + P + 5, f1(), f1(), null);
    expect(entry(p, a).kind).toBe(K_PRESENT);
    expectConsistent(m);
  });

  it('4.17 #39: nothing migratable: returns 0 and the callbacks are not called', () => {
    const { m, p, a } = setup417();
    p.write(a, pattern(1));
    p.madvise(a, P, MADV_PAGEOUT);
    let called = 0;
    const ops: MigrateVmaOps417 = { allocAndCopy: () => void called++, finalizeAndMap: () => void called++ };
    const src = new Float64Array(1).fill(5);
    migrateVma417(ops, p.mm.findVma(a)!, a, a + P, src, new Float64Array(1), null);
    expect(called).toBe(0);
    expect(src[0]).toBe(0); // src is zeroed up front
    expect(p.read(a, P)).toEqual(pattern(1));
    expectConsistent(m);
  });

  it('4.17 #40: a page locked by someone else, a pinned page, a THP that cannot split: src 0 at callback time, mapping kept or restored', () => {
    const { m, drv, p, a } = setup417(3);
    for (let i = 0; i < 3; i++) p.write(a + i * P, pattern(i));
    const locked = entry(p, a).val;
    m.phys.trylockPage(locked);
    const [pinned] = getUserPages(p.mm, a + P, 1, { pin: true });
    const src = drv.migrate(p, a, a + 3 * P);
    expect(drv.seen[0]).toBe(0);
    expect(drv.seen[1]).toBe(0);
    expect(migratePfnHas(drv.seen[2]!, MIGRATE_PFN_LOCKED)).toBe(true);
    expect(migratePfnHas(src[2]!, MIGRATE_PFN_MIGRATE)).toBe(true);
    expect(entry(p, a)).toMatchObject({ kind: K_PRESENT, val: locked, write: true });
    expect(entry(p, a + P)).toMatchObject({ kind: K_PRESENT, val: pinned, write: true });
    expect(m.phys.isLocked(locked)).toBe(true); // still the other holder's
    m.phys.unlockPage(locked);
    unpinUserPages(p.mm, [pinned!]);
    // A THP with an extra reference cannot be split: the whole chunk is 0.
    const t = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(t, PMD_SIZE, MADV_HUGEPAGE);
    p.write(t, pattern(9));
    const refs = getUserPages(p.mm, t + 5 * P, 1);
    drv.seen = [];
    const tsrc = drv.migrate(p, t, t + 4 * P);
    expect([...tsrc]).toEqual([0, 0, 0, 0]);
    expect(drv.seen).toEqual([]); // nothing to migrate: the callbacks never ran
    expect(entry(p, t).level).toBe(1); // still mapped whole
    expect(p.read(t, P)).toEqual(pattern(9));
    expectConsistent(m); // the GUP reference is accounted for by checkInvariants
    putUserPages(p.mm, refs);
    for (let i = 0; i < 3; i++) expect(p.read(a + i * P, P)).toEqual(pattern(i));
  });

  it('4.17 #41: a swapped-out page (a non-present, non-device entry) in the range: src 0, not migrated', () => {
    const { m, drv, p, a } = setup417(2);
    p.write(a, pattern(1));
    p.write(a + P, pattern(2));
    p.madvise(a, P, MADV_PAGEOUT);
    const src = drv.migrate(p, a, a + 2 * P);
    expect(drv.seen[0]).toBe(0);
    expect(src[0]).toBe(0);
    expect(entry(p, a).kind).toBe(K_SWAP);
    expect(entry(p, a + P).kind).toBe(K_DEVICE_PRIVATE);
    expect(p.read(a, P)).toEqual(pattern(1));
    expectConsistent(m);
  });

  it('4.17 #42: an empty address in a file-backed vma: src MIGRATE for the driver, the insertion refuses it, MIGRATE cleared', () => {
    const { m, drv, p } = setup417();
    const s = p.mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
    const src = drv.migrate(p, s, s + 2 * P);
    expect(drv.seen).toEqual([MIGRATE_PFN_MIGRATE, MIGRATE_PFN_MIGRATE]); // 4.17 collected holes of any vma
    expect([...src]).toEqual([0, 0]);
    expect(drv.freed.length).toBe(2); // the destinations given for them were released
    expect(entry(p, s).kind).toBe(0);
    expect(p.read(s, P)).toEqual(new Uint8Array(P));
    expectConsistent(m);
  });

  it('4.17 #43: a file-backed page to a device-private destination: refused, MIGRATE cleared', () => {
    const { m, drv, p } = setup417();
    const s = p.mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, pattern(4));
    const cached = entry(p, s).val;
    const src = drv.migrate(p, s, s + P);
    expect(migratePfnToPage(drv.seen[0]!)).toBe(cached);
    expect(migratePfnHas(drv.seen[0]!, MIGRATE_PFN_VALID) && migratePfnHas(drv.seen[0]!, MIGRATE_PFN_LOCKED)).toBe(true);
    expect(migratePfnHas(src[0]!, MIGRATE_PFN_MIGRATE)).toBe(false);
    expect(entry(p, s)).toMatchObject({ kind: K_PRESENT, val: cached });
    expect(p.read(s, P)).toEqual(pattern(4));
    expect(drv.freed.length).toBe(1);
    expectConsistent(m);
  });

  it('4.17 #44: the driver leaves dst 0 or sets ERROR: not migrated, mapping restored; ERROR coming back is SIGBUS only through the fault callback', () => {
    const { m, drv, p, a } = setup417(2);
    p.write(a, pattern(1));
    const skip: MigrateVmaOps417 = { allocAndCopy: () => {}, finalizeAndMap: () => {} };
    const before = entry(p, a);
    drv.migrate(p, a, a + P, skip);
    expect(entry(p, a)).toEqual(before);
    const err: MigrateVmaOps417 = { allocAndCopy: (_v, _s, dst) => void (dst[0] = MIGRATE_PFN_ERROR), finalizeAndMap: () => {} };
    drv.migrate(p, a, a + P, err);
    expect(entry(p, a)).toEqual(before);
    drv.migrate(p, a, a + 2 * P);
    drv.failBack = true;
    const back = drv.migrate(p, a, a + 2 * P, drv.back);
    expect(migratePfnHas(back[0]!, MIGRATE_PFN_DEVICE)).toBe(true);
    expect(migratePfnHas(back[0]!, MIGRATE_PFN_MIGRATE)).toBe(false);
    expect(entry(p, a).kind).toBe(K_DEVICE_PRIVATE); // restored to the device page
    expect(() => p.read(a, 1)).toThrow(SignalError); // the fault callback saw ERROR and said SIGBUS
    drv.failBack = false;
    expect(p.read(a, P)).toEqual(pattern(1));
    expectConsistent(m);
  });

  it('4.17 #45: an unused device destination page is unlocked and released; ops.free is called for it', () => {
    const { m, drv, p, a } = setup417(2);
    p.write(a, pattern(1));
    p.madvise(a, P, MADV_PAGEOUT); // page 0 cannot migrate
    p.write(a + P, pattern(2));
    let extra = -1;
    const ops: MigrateVmaOps417 = {
      allocAndCopy: (v, src, dst, s, e, priv) => {
        drv.toDevice.allocAndCopy(v, src, dst, s, e, priv);
        extra = drv.alloc(); // also offered for page 0, which is not migrating
        dst[0] = migratePfn(extra) + MIGRATE_PFN_LOCKED;
      },
      finalizeAndMap: () => {},
    };
    drv.migrate(p, a, a + 2 * P, ops);
    expect(drv.freed).toEqual([extra]);
    expect(m.phys.frames.refcount[extra]).toBe(0);
    expect(m.phys.isLocked(extra)).toBe(false);
    expectConsistent(m);
  });

  it('4.17 #46: hmm_devmem_add with no free physical window: -ERANGE; the size is rounded up to 128 MiB sections', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const ops: HmmDevmemOps = { free: () => {}, fault: () => 0 };
    expect(() => hmmDevmemAdd(m, ops, null, 2 ** 46)).toThrow(expect.objectContaining({ errno: 'ERANGE' }));
    const dm = hmmDevmemAdd(m, ops, null, 1);
    expect(dm.pfnLast - dm.pfnFirst).toBe((128 << 20) / P);
    expect(dm.pagemap.type).toBe('private');
    hmmDevmemRemove(dm);
    hmmDevmemRemove(null); // a no-op
  });

  it('4.17 #47: hmm_devmem_add_resource with a resource that is not device public memory: -EINVAL', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const ops: HmmDevmemOps = { free: () => {}, fault: () => 0 };
    expect(() => hmmDevmemAddResource(m, ops, null, { desc: IORES_DESC_DEVICE_PRIVATE_MEMORY, size: 1 << 20 })).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    const pub = hmmDevmemAddResource(m, ops, null, { desc: IORES_DESC_DEVICE_PUBLIC_MEMORY, size: 1 << 20 });
    expect(pub.pagemap.type).toBe('coherent');
    expect(pub.pfnLast - pub.pfnFirst).toBe((1 << 20) / P); // used as is
  });

  it('4.17 #48: hmm_device_new with all 256 minors used: -EBUSY; hmm_device_put frees a minor', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const devs = Array.from({ length: 256 }, (_, i) => hmmDeviceNew(m, i));
    expect(devs[255]!.name).toBe('hmm_device255');
    expect(() => hmmDeviceNew(m, 'one more')).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    hmmDevicePut(devs[7]!);
    expect(hmmDeviceNew(m, 'again').minor).toBe(7);
    expect(hmmDeviceNew(new Machine({ ramBytes: 16 << 20 }), 'another machine').minor).toBe(0);
  });

  it('4.17 #49: a CPU or GUP touch of a device-private page calls the devmem fault callback; SIGBUS or OOM only if the callback says so', () => {
    const { m, drv, p, a } = setup417(3);
    for (let i = 0; i < 3; i++) p.write(a + i * P, pattern(i));
    drv.migrate(p, a, a + 3 * P);
    expect(p.read(a, P)).toEqual(pattern(0));
    expect(drv.faults).toBe(1);
    const [g] = getUserPages(p.mm, a + P, 1);
    expect(drv.faults).toBe(2);
    expect(m.phys.pagemapOf(g!)).toBeUndefined(); // never a device page
    putUserPages(p.mm, [g!]);
    drv.faultResult = VM_FAULT_SIGBUS;
    expect(() => p.read(a + 2 * P, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    drv.faultResult = VM_FAULT_OOM;
    expect(() => p.read(a + 2 * P, 1)).toThrow(expect.objectContaining({ errno: 'ENOMEM' }));
    drv.faultResult = 0;
    expect(p.read(a + 2 * P, P)).toEqual(pattern(2));
    expect(drv.faults).toBe(5);
    expectConsistent(m);
  });

  it('4.17 #50: when a device page\'s count reaches its idle value, ops.free gets it with exclusive ownership (unmapped, unreferenced)', () => {
    const { m, drv, p, a } = setup417(2);
    p.write(a, pattern(1));
    drv.migrate(p, a, a + 2 * P);
    const d = entry(p, a).val;
    const states: Array<[number, number, number, boolean]> = [];
    drv.onFree = (page) => states.push([m.phys.frames.refcount[page]!, m.phys.frames.mapcount[page]!, m.rmap.count(page), m.phys.isLocked(page)]);
    p.munmap(a, P);
    expect(drv.freed).toEqual([d]);
    expect(states).toEqual([[0, 0, 0, false]]);
    p.exit();
    expect(drv.freed.length).toBe(2);
    expectConsistent(m);
    hmmDevmemRemove(drv.devmem); // every page idle: removal succeeds
  });
});

