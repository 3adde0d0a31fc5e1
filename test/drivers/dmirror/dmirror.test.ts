// The dmirror driver's own interface: the ioctl's argument checks, FLAGS, RELEASE and the
// device's memory accounting, the device mmap, and the summary line of the selftest runner.

import { describe, expect, it } from 'vitest';
import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, MmuNotifier, mmuNotifierRegister, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../../src/index.js';
import { pagemap } from '../../../src/mm/pagemap.js';
import { checkInvariants } from '../../../src/mm/check.js';
import {
  dmirrorDriverOf, dmirrorInit, HMM_DMIRROR_FLAGS, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_READ, HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_WRITE, hmmDmirrorCmd, hmmDmirrorOpen, type HmmDmirrorCmd,
} from '../../../src/drivers/dmirror/index.js';
import { formatSelftestSummary, runSelftestCase, selftestCases, type SelftestResult } from '../../../src/drivers/dmirror/selftests.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function setup() {
  const m = new Machine({ ramBytes: 64 << 20 });
  const driver = dmirrorInit(m, { chunkBytes: 4 << 20 });
  const p = m.spawn();
  const fd = hmmDmirrorOpen(p, 0);
  const a = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  const mirror = new Uint8Array(8 * PAGE_SIZE);
  return { m, driver, p, fd, a, mirror };
}

describe('dmirror driver', () => {
  it('loads devices 0..3: 0 and 1 device-private, 2 and 3 device-coherent, each with one chunk; open of a missing device is ENODEV', () => {
    const { m, driver, p } = setup();
    expect(driver.devices.map((d) => d.memoryType)).toEqual(['private', 'private', 'coherent', 'coherent']);
    expect(driver.devices.every((d) => d.chunks.length === 1 && d.freePages === 1024)).toBe(true);
    expect(dmirrorDriverOf(m)).toBe(driver);
    expect(() => hmmDmirrorOpen(p, 4)).toThrow(expect.objectContaining({ errno: 'ENODEV' }));
  });

  it('ioctl argument checks: unaligned addr and empty ranges are EINVAL, unknown commands EINVAL; outputs untouched on error', async () => {
    const { fd, a, mirror } = setup();
    const cmd = hmmDmirrorCmd(a + 1, mirror, 1);
    cmd.cpages = 7;
    await expect(fd.ioctl(HMM_DMIRROR_READ, cmd)).rejects.toMatchObject({ errno: 'EINVAL' });
    expect(cmd.cpages).toBe(7);
    await expect(fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(a, mirror, 0))).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(fd.ioctl(0x42, hmmDmirrorCmd(a, mirror, 1))).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(fd.ioctl(HMM_DMIRROR_FLAGS, hmmDmirrorCmd(a, mirror, 1))).resolves.toBeUndefined();
    expect(fd.dmirror.flags).toBe(1);
  });

  it('sizes and types are checked before anything is allocated: 2^40 pages, a null block, a wrapping end', async () => {
    const { p, fd, a, mirror } = setup();
    p.writeU32(a, 1);
    const t = Date.now();
    // dmirror_bounce_init: vmalloc of 2^52 bytes fails (ENOMEM); SNAPSHOT's fixed window buffer faults at copy_to_user.
    await expect(fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(a, mirror, 2 ** 40))).rejects.toMatchObject({ errno: 'ENOMEM' });
    await expect(fd.ioctl(HMM_DMIRROR_WRITE, hmmDmirrorCmd(a, mirror, 2 ** 40))).rejects.toMatchObject({ errno: 'ENOMEM' });
    await expect(fd.ioctl(HMM_DMIRROR_SNAPSHOT, hmmDmirrorCmd(a, mirror, 2 ** 40))).rejects.toMatchObject({ errno: 'EFAULT' });
    // copy_from_user of the block
    await expect(fd.ioctl(HMM_DMIRROR_READ, null as unknown as HmmDmirrorCmd)).rejects.toMatchObject({ errno: 'EFAULT' });
    await expect(fd.ioctl(HMM_DMIRROR_READ, { ...hmmDmirrorCmd(a, mirror, 1), ptr: null as unknown as number })).rejects.toMatchObject({ errno: 'EFAULT' });
    await expect(fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(a, mirror, 1.5))).rejects.toMatchObject({ errno: 'EFAULT' });
    // an end that wraps past 2^64 (cmd.addr >= cmd.addr + (npages << PAGE_SHIFT)), or lands exactly on it
    await expect(fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(2 ** 64 - PAGE_SIZE, mirror, 2))).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(2 ** 64 - PAGE_SIZE, mirror, 1))).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(2 ** 63, mirror, 2 ** 52))).rejects.toMatchObject({ errno: 'EINVAL' });
    expect(Date.now() - t).toBeLessThan(2000);
    expect(fd.dmirror.pt.size).toBe(0);
  });

  it('a user buffer outside the caller\'s mappings is EFAULT (copy_to_user)', async () => {
    const { p, fd, a } = setup();
    p.writeU32(a, 5);
    await expect(fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(a, 0x10000, 1))).rejects.toMatchObject({ errno: 'EFAULT' });
  });

  it('RELEASE evicts the device\'s pages, unregisters its chunks, and later migrations register new ones', async () => {
    const { m, driver, p, fd, a, mirror } = setup();
    for (let i = 0; i < 8; i++) p.writeU32(a + i * PAGE_SIZE, i + 100);
    await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a, mirror, 8));
    const dev = driver.devices[0]!;
    expect(dev.usedPages).toBe(8);
    const oldChunk = dev.chunks[0]!.pagemap;
    await fd.ioctl(HMM_DMIRROR_RELEASE, hmmDmirrorCmd(a, mirror, 8));
    expect(dev.chunks.length).toBe(0);
    expect(m.phys.pagemapList.includes(oldChunk)).toBe(false);
    expect(checkInvariants(m)).toEqual([]);
    for (let i = 0; i < 8; i++) expect(p.readU32(a + i * PAGE_SIZE)).toBe(i + 100);
    const cmd = hmmDmirrorCmd(a, mirror, 8);
    await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd);
    expect(cmd.cpages).toBe(8);
    expect(dev.chunks.length).toBe(1);
    p.exit();
    expect(dev.usedPages).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('reclaim (try_to_free_pages): RELEASE into a full system RAM with swap reclaims another process\'s pages and moves every page back', async () => {
    const m = new Machine({ ramBytes: 1 << 20, swapBytes: 4 << 20 });
    const driver = dmirrorInit(m, { chunkBytes: 2 << 20 });
    const p = m.spawn();
    const fd = hmmDmirrorOpen(p, 0);
    const n = 32;
    const a = p.mmap(0, n * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < n; i++) p.writeU32(a + i * PAGE_SIZE, i + 1000);
    await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a, new Uint8Array(n * PAGE_SIZE), n));
    const hog = m.spawn();
    const hogPages = m.phys.freeRamFrames;
    const h = hog.mmap(0, hogPages * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < hogPages; i++) hog.writeU8(h + i * PAGE_SIZE, i & 0xff);
    expect(m.phys.freeRamFrames).toBe(0);
    expect(m.swap.used).toBe(0);
    await fd.ioctl(HMM_DMIRROR_RELEASE, hmmDmirrorCmd(a, new Uint8Array(PAGE_SIZE), 1));
    expect(m.swap.used).toBeGreaterThan(0); // the hog's pages made room
    expect(driver.devices[0]!.usedPages).toBe(0);
    for (let i = 0; i < n; i++) expect(pagemap(p.mm, a + i * PAGE_SIZE).kind).toBe('anon');
    for (let i = 0; i < n; i++) expect(p.readU32(a + i * PAGE_SIZE)).toBe(i + 1000);
    for (let i = 0; i < hogPages; i++) expect(hog.readU8(h + i * PAGE_SIZE)).toBe(i & 0xff);
    expect(checkInvariants(m)).toEqual([]);
    hog.exit();
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
    expect(m.swap.used).toBe(0);
  });

  it('reclaim never takes device-private pages, and a page it takes leaves the mirror (CLEAR: dmirror_interval_invalidate)', async () => {
    const m = new Machine({ ramBytes: 1 << 20, swapBytes: 4 << 20 });
    const driver = dmirrorInit(m, { chunkBytes: 2 << 20 });
    const p = m.spawn();
    const fd = hmmDmirrorOpen(p, 0);
    const n = 16;
    const a = p.mmap(0, 2 * n * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < 2 * n; i++) p.writeU32(a + i * PAGE_SIZE, i + 500);
    // The first n pages go to the device; the device maps the other n (system memory) by READ.
    await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a, new Uint8Array(n * PAGE_SIZE), n));
    const b = a + n * PAGE_SIZE;
    await fd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(b, new Uint8Array(n * PAGE_SIZE), n));
    const vpn = b / PAGE_SIZE;
    for (let i = 0; i < n; i++) expect(fd.dmirror.pt.has(vpn + i)).toBe(true);
    const clears: number[] = [];
    mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: (_s, r) => void (r.event === 'CLEAR' && clears.push(r.start)) }), p.mm);
    // Another process fills RAM twice over: reclaim runs again and again.
    const hog = m.spawn();
    const hogPages = 2 * m.phys.ramFrames;
    const h = hog.mmap(0, hogPages * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < hogPages; i++) hog.writeU8(h + i * PAGE_SIZE, 1);
    expect(driver.devices[0]!.usedPages).toBe(n);
    for (let i = 0; i < n; i++) expect(pagemap(p.mm, a + i * PAGE_SIZE).kind).toBe('device-private');
    let swapped = 0;
    for (let i = 0; i < n; i++) {
      if (pagemap(p.mm, b + i * PAGE_SIZE).kind !== 'swap') continue;
      swapped++;
      expect(clears).toContain(b + i * PAGE_SIZE);
      expect(fd.dmirror.pt.has(vpn + i)).toBe(false); // no device mapping of a page that is gone
    }
    expect(swapped).toBeGreaterThan(0);
    expect(checkInvariants(m)).toEqual([]);
    for (let i = 0; i < 2 * n; i++) expect(await p.readAsync(a + i * PAGE_SIZE, 4)).toEqual(new Uint8Array(new Uint32Array([i + 500]).buffer));
    hog.exit();
    p.exit();
    expect(driver.devices[0]!.usedPages).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('RELEASE running out of system memory part way: ENOMEM, the pages it could not move are restored (migrate_device_finalize), nothing stuck or leaked', async () => {
    const m = new Machine({ ramBytes: 1 << 20, swapBytes: 0 });
    const driver = dmirrorInit(m, { chunkBytes: 2 << 20 });
    const p = m.spawn();
    const fd = hmmDmirrorOpen(p, 0);
    const n = 32;
    const a = p.mmap(0, n * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < n; i++) p.writeU32(a + i * PAGE_SIZE, i + 1000);
    await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a, new Uint8Array(n * PAGE_SIZE), n));
    const dev = driver.devices[0]!;
    expect(dev.usedPages).toBe(n);
    // Another process takes all of RAM but 10 frames (anonymous memory, no swap: nothing to reclaim).
    const hog = m.spawn();
    const left = 10;
    const hogPages = m.phys.freeRamFrames - left;
    const h = hog.mmap(0, hogPages * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < hogPages; i++) hog.writeU8(h + i * PAGE_SIZE, 1);
    expect(m.phys.freeRamFrames).toBe(left);
    const oldChunk = dev.chunks[0]!.pagemap;
    await expect(fd.ioctl(HMM_DMIRROR_RELEASE, hmmDmirrorCmd(a, new Uint8Array(PAGE_SIZE), 1))).rejects.toMatchObject({ errno: 'ENOMEM' });
    expect(checkInvariants(m)).toEqual([]);
    const kinds = Array.from({ length: n }, (_, i) => pagemap(p.mm, a + i * PAGE_SIZE).kind);
    expect(kinds.filter((k) => k === 'anon').length).toBe(left); // moved back
    expect(kinds.filter((k) => k === 'device-private').length).toBe(n - left); // restored, still the device's
    expect(kinds.includes('migration')).toBe(false);
    expect(m.phys.pagemapList.includes(oldChunk)).toBe(true); // its pages are in use: unregistered when they go
    hog.exit();
    // CPU access to a restored page faults it back (migrate_to_ram) instead of waiting for ever.
    for (let i = 0; i < n; i++) expect(await p.readAsync(a + i * PAGE_SIZE, 4)).toEqual(new Uint8Array(new Uint32Array([i + 1000]).buffer));
    expect(checkInvariants(m)).toEqual([]);
    expect(m.phys.pagemapList.includes(oldChunk)).toBe(false);
    p.exit();
    expect(dev.usedPages).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a device page records its device: another device\'s private page snapshots as NONE, the owner\'s as LOCAL', async () => {
    const { p, fd, a, mirror } = setup();
    const fd1 = hmmDmirrorOpen(p, 1);
    await fd1.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a, mirror, 1));
    const snap = new Uint8Array(1);
    await fd.ioctl(HMM_DMIRROR_SNAPSHOT, hmmDmirrorCmd(a, snap, 1));
    expect(snap[0]).toBe(0x00);
    await fd1.ioctl(HMM_DMIRROR_SNAPSHOT, hmmDmirrorCmd(a, snap, 1));
    expect(snap[0]).toBe(0x20 | 0x02);
  });

  it('MIGRATE_TO_DEV and MIGRATE_TO_SYS from an invalidate callback of the same mm: EDEADLK (migrate_vma_setup under the mmap lock), nothing moved', async () => {
    const { m, driver, p, fd, a, mirror } = setup();
    for (let i = 0; i < 8; i++) p.writeU32(a + i * PAGE_SIZE, i + 1);
    await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a + 4 * PAGE_SIZE, mirror, 2));
    const dev = driver.devices[0]!;
    const kinds = () => Array.from({ length: 8 }, (_, i) => pagemap(p.mm, a + i * PAGE_SIZE).kind);
    const before = kinds();
    const pending: Array<Promise<void>> = [];
    mmuNotifierRegister(new MmuNotifier({
      invalidateRangeStart: () => {
        if (pending.length > 0) return;
        pending.push(fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a, mirror, 2)));
        pending.push(fd.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, hmmDmirrorCmd(a + 4 * PAGE_SIZE, mirror, 2)));
      },
    }), p.mm);
    p.mprotect(a + 6 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    for (const q of pending) await expect(q).rejects.toMatchObject({ errno: 'EDEADLK' });
    expect(kinds()).toEqual(before);
    expect(dev.usedPages).toBe(2);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('the device mmap inserts read-only pages at mmap time; a page zapped later is SIGBUS (no fault handler)', () => {
    const { m, p, fd } = setup();
    const addr = fd.mmap(0, 2 * PAGE_SIZE, RW, MAP_PRIVATE);
    expect(p.readU32(addr)).toBe(0);
    p.writeU32(addr, 9); // copy-on-write into an anonymous page
    expect(p.readU32(addr)).toBe(9);
    expect(checkInvariants(m)).toEqual([]);
    p.madvise(addr + PAGE_SIZE, PAGE_SIZE, 4 /* MADV_DONTNEED */);
    expect(() => p.readU32(addr + PAGE_SIZE)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    p.munmap(addr, 2 * PAGE_SIZE);
    expect(checkInvariants(m)).toEqual([]);
  });
});

describe('finding: the test driver\'s owner filter after fork (lib/test_hmm.c, kept faithful; docs/api.md)', () => {
  // dmirror_interval_invalidate ignores every MIGRATE invalidation whose owner is its own
  // device, and dmirror_devmem_fault erases the faulting address only in the mirror that
  // migrated the page (zone_device_data). After fork, the child's own mirror of the same
  // device maps the shared device page; a CPU read in the child migrates it back: the
  // child's mirror ignores that MIGRATE (same device), nobody erases its entry, and it keeps
  // pointing at the device frame, which is freed and then reused.
  it('a CPU read in the child moves the shared device page back; the child\'s mirror keeps a stale entry and then reads another page\'s data', async () => {
    const m = new Machine({ ramBytes: 64 << 20 });
    const driver = dmirrorInit(m, { chunkBytes: 2 << 20 });
    const parent = m.spawn();
    const pfd = hmmDmirrorOpen(parent, 0);
    const a = parent.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    parent.writeU32(a, 0x1111);
    parent.writeU32(a + PAGE_SIZE, 0x2222);
    await pfd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a, new Uint8Array(PAGE_SIZE), 1));
    const devPage = pagemap(parent.mm, a).pfn;
    expect(pagemap(parent.mm, a).kind).toBe('device-private');
    const child = parent.fork();
    const cfd = hmmDmirrorOpen(child, 0);
    const buf = new Uint8Array(PAGE_SIZE);
    await cfd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(a, buf, 1)); // the child's mirror maps the device page
    expect(cfd.dmirror.pt.get(a / PAGE_SIZE)?.pfn).toBe(devPage);
    expect(child.readU32(a)).toBe(0x1111); // migrate_to_ram, in the child
    expect(pagemap(child.mm, a).kind).toBe('anon');
    expect(pagemap(parent.mm, a).kind).toBe('anon'); // both remapped through the reverse map
    expect(driver.devices[0]!.usedPages).toBe(0); // the device page was freed
    // The hole: the child's mirror still maps the freed device frame.
    expect(cfd.dmirror.pt.get(a / PAGE_SIZE)?.pfn).toBe(devPage);
    // The frame is reused for another page; the child's device now reads that page's data.
    await pfd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(a + PAGE_SIZE, new Uint8Array(PAGE_SIZE), 1));
    expect(pagemap(parent.mm, a + PAGE_SIZE).pfn).toBe(devPage);
    await cfd.ioctl(HMM_DMIRROR_READ, hmmDmirrorCmd(a, buf, 1));
    expect(new Uint32Array(buf.buffer)[0]).toBe(0x2222); // not 0x1111: another page's data
    expect(checkInvariants(m)).toEqual([]); // the mm is consistent: the stale entry is the driver's
  });
});

describe('what migrate_anon_huge_fault checks after its PMD snapshot (skipped there for device-private memory)', () => {
  it('a collapsed THP migrated to device-private memory shows in pagemap as swapped, not present, and faults back intact', async () => {
    const m = new Machine({ ramBytes: 64 << 20 });
    dmirrorInit(m, { chunkBytes: 4 << 20 });
    const p = m.spawn();
    const fd = hmmDmirrorOpen(p, 0);
    const size = 2 << 20;
    const map = p.mmap(0, 2 * size, RW, ANON);
    const ints = Int32Array.from({ length: size / 4 }, (_, i) => i);
    p.write(map, new Uint8Array(ints.buffer));
    p.madvise(map, size, 25 /* MADV_COLLAPSE */);
    const cmd = hmmDmirrorCmd(map, new Uint8Array(size), size / PAGE_SIZE);
    await fd.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd);
    expect(cmd.cpages).toBe(512);
    let swapped = 0;
    for (let i = 0; i < 512; i++) {
      const e = pagemap(p.mm, map + i * PAGE_SIZE);
      if (e.swapped && !e.present) swapped++;
    }
    expect(swapped).toBe(512);
    const back = new Int32Array(p.read(map, size).buffer);
    expect(back.every((v, i) => v === i)).toBe(true);
    expect(checkInvariants(m)).toEqual([]);
  });
});

describe('anon_teardown under more interleavings', () => {
  for (const seed of [101, 1001, 10001]) {
    it(`seeds ${seed}..${seed + 9}: the READ either succeeds with the data or fails cleanly, and nothing leaks`, async () => {
      for (const c of selftestCases({ filter: (x) => x.name === 'anon_teardown' })) {
        const r = await runSelftestCase(c, { seed, chunkBytes: 16 << 20, ramBytes: 256 << 20 });
        expect(r, `${c.variant}: ${r.reason}`).toMatchObject({ status: 'pass' });
      }
    });
  }
});

describe('selftest summary line', () => {
  it('is "N of M kernel HMM selftests pass (K skipped)"', () => {
    const r = (status: SelftestResult['status']): SelftestResult => ({ fixture: 'hmm', variant: 'v', name: 'n', status, ms: 0 });
    expect(formatSelftestSummary([r('pass'), r('pass'), r('skip'), r('fail')])).toBe('2 of 4 kernel HMM selftests pass (1 skipped)');
  });
});
