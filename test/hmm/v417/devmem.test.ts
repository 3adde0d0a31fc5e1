import { describe, expect, it } from 'vitest';
import {
  Machine, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, migratePfn, migratePfnToPage, PAGE_SIZE, PROT_READ, PROT_WRITE,
} from '../../../src/index.js';
import {
  hmmDeviceNew, hmmDevicePut, hmmDevmemAdd, hmmDevmemAddResource, hmmDevmemPageGetDrvdata, hmmDevmemPageSetDrvdata,
  hmmDevmemRemove, hmmVmaAllocLockedPage, IORES_DESC_DEVICE_PRIVATE_MEMORY, IORES_DESC_DEVICE_PUBLIC_MEMORY,
  MIGRATE_PFN_LOCKED, migrateVma as migrateVma417, type HmmDevmem, type HmmDevmemOps, type MigrateVmaOps as MigrateVmaOps417,
} from '../../../src/hmm/v417/index.js';
import { checkInvariants } from '../../../src/mm/check.js';

describe('4.17 hmm_devmem helpers', () => {
  it('hmm_devmem_add: 128 MiB sections; a CPU fault calls ops.fault, which migrates back; ops.free once per page (4.17 #49, #50)', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const freed: number[] = [];
    let faults = 0;
    const free: number[] = [];
    const back: MigrateVmaOps417 = {
      allocAndCopy: (vma, src, dst, start) => {
        for (let i = 0; i < src.length; i++) {
          const s = migratePfnToPage(src[i]!);
          if (s < 0) continue;
          const page = hmmVmaAllocLockedPage(m, vma, start + i * PAGE_SIZE)!;
          m.phys.copyPage(page, s);
          dst[i] = migratePfn(page) + MIGRATE_PFN_LOCKED;
        }
      },
      finalizeAndMap: () => {},
    };
    const ops: HmmDevmemOps = {
      free: (_d, page) => void freed.push(page),
      fault: (_d, vma, addr) => {
        faults++;
        migrateVma417(back, vma, addr, addr + PAGE_SIZE, new Float64Array(1), new Float64Array(1), null);
        return 0;
      },
    };
    const devmem: HmmDevmem = hmmDevmemAdd(m, ops, 'gpu', 1 << 20);
    expect(devmem.pfnLast - devmem.pfnFirst).toBe((128 << 20) / PAGE_SIZE);
    for (let i = 0; i < 4; i++) free.push(devmem.pfnFirst + i);
    const p = m.spawn();
    const a = p.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.writeU32(a, 31);
    p.writeU32(a + PAGE_SIZE, 32);
    const toDev: MigrateVmaOps417 = {
      allocAndCopy: (_v, src, dst) => {
        for (let i = 0; i < src.length; i++) {
          const d = free.pop()!;
          m.phys.deviceFrameInit(d);
          m.phys.trylockPage(d);
          m.phys.copyPage(d, migratePfnToPage(src[i]!));
          hmmDevmemPageSetDrvdata(m, d, { slot: i });
          dst[i] = migratePfn(d) + MIGRATE_PFN_LOCKED;
        }
      },
      finalizeAndMap: () => {},
    };
    migrateVma417(toDev, p.mm.findVma(a)!, a, a + 2 * PAGE_SIZE, new Float64Array(2), new Float64Array(2), null);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(hmmDevmemPageGetDrvdata(m, devmem.pfnFirst + 3)).toEqual({ slot: 0 });
    expect(() => hmmDevmemRemove(devmem)).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    expect(p.readU32(a)).toBe(31);
    expect(faults).toBe(1);
    expect(freed).toEqual([devmem.pfnFirst + 3]);
    p.exit();
    expect(freed.length).toBe(2);
    expect(checkInvariants(m)).toEqual([]);
    hmmDevmemRemove(devmem);
    hmmDevmemRemove(null);
  });

  it('#47: hmm_devmem_add_resource needs the public descriptor; #48: hmm_device_new runs out at 256 minors', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const ops: HmmDevmemOps = { free: () => {}, fault: () => 0 };
    expect(() => hmmDevmemAddResource(m, ops, null, { desc: IORES_DESC_DEVICE_PRIVATE_MEMORY, size: 1 << 20 })).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    const pub = hmmDevmemAddResource(m, ops, null, { desc: IORES_DESC_DEVICE_PUBLIC_MEMORY, size: 1 << 20 });
    expect(pub.pagemap.type).toBe('coherent');
    const devs = Array.from({ length: 256 }, (_, i) => hmmDeviceNew(m, i));
    expect(devs[255]!.name).toBe('hmm_device255');
    expect(() => hmmDeviceNew(m, 'one more')).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    hmmDevicePut(devs[7]!);
    expect(hmmDeviceNew(m, 'again').minor).toBe(7);
  });

  it('#46: no free physical window is ERANGE', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const ops: HmmDevmemOps = { free: () => {}, fault: () => 0 };
    expect(() => hmmDevmemAdd(m, ops, null, 2 ** 46)).toThrow(expect.objectContaining({ errno: 'ERANGE' }));
  });
});

describe('4.17 device public memory', () => {
  it('takes file-backed pages too (4.17 device public memory, MEMORY_DEVICE_PUBLIC): the page cache then holds the device page, CPU-addressable', () => {
    const m = new Machine({ ramBytes: 32 << 20 });
    const freed: number[] = [];
    const pub = hmmDevmemAddResource(m, { free: (_d, page) => void freed.push(page), fault: () => 0 }, null, { desc: IORES_DESC_DEVICE_PUBLIC_MEMORY, size: 1 << 20 });
    const p = m.spawn();
    const s = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    p.writeU32(s, 77);
    const file = p.mm.findVma(s)!.file!;
    const ops: MigrateVmaOps417 = {
      allocAndCopy: (_v, src, dst) => {
        const d = pub.pfnFirst;
        m.phys.deviceFrameInit(d);
        m.phys.trylockPage(d);
        m.phys.copyPage(d, migratePfnToPage(src[0]!));
        dst[0] = migratePfn(d) + MIGRATE_PFN_LOCKED;
      },
      finalizeAndMap: () => {},
    };
    migrateVma417(ops, p.mm.findVma(s)!, s, s + PAGE_SIZE, new Float64Array(1), new Float64Array(1), null);
    expect(file.pages.get(0)).toBe(pub.pfnFirst);
    expect(p.readU32(s)).toBe(77);
    m.phys.writePage(pub.pfnFirst, 0, Uint8Array.of(78), 0, 1);
    expect(file.pread(1, 0)).toEqual(Uint8Array.of(78));
    expect(checkInvariants(m)).toEqual([]);
    p.exit(); // the unlinked shmem file goes with its last mapping
    expect(freed).toEqual([pub.pfnFirst]);
    expect(m.phys.usedRamFrames).toBe(0);
  });
});
