// svmdev: the demo's device on gpusvm. Device accesses fault ranges in, reads take read
// access only (no COW break), writes upgrade, migration moves whole ranges, and the device
// never maps what the CPU does not.
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../../src/mm/check.js';
import {
  KernelError, Machine, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, pagemap, PROT_NONE, PROT_READ, PROT_WRITE, SvmDevice,
} from '../../../src/index.js';

const P = 4096;
const A = 0x40000000;

function setup(pages = 1024) {
  const m = new Machine({ ramBytes: 64 << 20, swapBytes: 16 << 20, thp: 'never' });
  const p = m.spawn();
  p.mmap(A, pages * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  const dev = new SvmDevice(p.mm, { dev: 1 });
  return { m, p, dev };
}

describe('svmdev', () => {
  it('a read faults in the whole 2 MiB range read-only; a read of an untouched page is the zero page, no COW is broken', () => {
    const { m, p, dev } = setup();
    p.writeU32(A, 7);
    const child = p.fork();
    expect(Array.from(dev.read(A, 4))).toEqual([7, 0, 0, 0]);
    expect(dev.pt.size).toBe(512);
    expect(dev.stats.faults).toBe(1);
    expect(dev.stats.rangeFaults).toBe(1);
    // Still shared with the child: the device read did not break COW.
    expect(pagemap(p.mm, A).pfn).toBe(pagemap(child.mm, A).pfn);
    expect(dev.pt.lookup(A / P + 5)).toBe(m.phys.zeroPfn);
    // A write faults again, for write: COW breaks, the device maps the parent's new page.
    dev.write(A, Uint8Array.of(9));
    expect(pagemap(p.mm, A).pfn).not.toBe(pagemap(child.mm, A).pfn);
    expect(dev.pt.lookup(A / P)).toBe(pagemap(p.mm, A).pfn);
    expect(p.readU8(A)).toBe(9);
    expect(child.readU8(A)).toBe(7);
    expect(dev.check().violations).toBe(0);
    child.exit();
  });

  it('refuses what the CPU refuses: no VMA, PROT_NONE, a write to read-only memory; fault() counts them', () => {
    const { p, dev } = setup();
    p.mprotect(A, 16 * P, PROT_READ);
    p.mprotect(A + 16 * P, 16 * P, PROT_NONE);
    const errno = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (e instanceof KernelError) return e.errno;
        throw e;
      }
      return 'ok';
    };
    expect(errno(() => dev.read(A, 4))).toBe('ok');
    expect(errno(() => dev.write(A, Uint8Array.of(1)))).toBe('EPERM');
    expect(errno(() => dev.read(A + 16 * P, 4))).toBe('EFAULT');
    expect(errno(() => dev.read(A - P, 4))).toBe('ENOENT');
    const r = dev.fault(A, A + 64 * P, false);
    expect(r.failed).toBeGreaterThan(0);
    expect(r.mapped + r.failed).toBe(64);
    expect(dev.check().violations).toBe(0);
  });

  it('migrates whole ranges into VRAM and back; close and exit leave nothing behind', () => {
    const { m, p, dev } = setup();
    const vram = dev.attachMemory(1024);
    for (let i = 0; i < 1024; i++) p.writeU32(A + i * P, i);
    expect(dev.migrateToDevice(A + 10 * P, A + 11 * P)).toBe(512);
    expect(pagemap(p.mm, A + 500 * P).kind).toBe('device-private');
    expect(dev.read(A + 300 * P, 4)[1]).toBe(1); // 300 = 0x12c, read from VRAM in place
    dev.write(A + 300 * P, Uint8Array.of(0xff));
    expect(p.readU32(A + 300 * P)).toBe(0x1ff); // the CPU read brings the range back
    expect(vram.usedPages).toBe(0);
    expect(dev.check().violations).toBe(0);
    dev.close();
    expect(p.mm.notifiers.intervalCount).toBe(0);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });
});
