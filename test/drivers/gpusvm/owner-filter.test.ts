// The owner filter (issue 10, item 10): a gpusvm instance skips only the MIGRATE
// invalidations of migrations it started itself; a migration started elsewhere (another
// mirror of the same device, a CPU fault's migrate_to_ram in another process after fork)
// reaches its driver, even though the event's owner is the same device.
import { describe, expect, it } from 'vitest';
import {
  checkDeviceMirror, drmGpusvmRangeFindOrInsert, gpusvmHandleFault, gpusvmRangeMigrateToDevmem, Vram,
} from '../../../src/drivers/gpusvm/index.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { pagemap } from '../../../src/index.js';
import { MiB, P, makeDriver, setup } from './helpers.js';

const OWNER = { device: 'gpu0' };
const ctx = { devicePrivatePageOwner: OWNER, devmemPossible: true };

describe('gpusvm owner filter', () => {
  it('its own migration is not an invalidation: the range is re-pointed at the device pages and stays bound', () => {
    const { m, p, a } = setup(2 * MiB);
    for (let i = 0; i < 512; i++) p.writeU8(a + i * P, 5);
    const vram = new Vram(m, OWNER, 1024);
    const d = makeDriver(p.mm);
    const r = gpusvmHandleFault(d.gpusvm, a, true, ctx);
    const unbinds = d.unbinds;
    expect(gpusvmRangeMigrateToDevmem(d.gpusvm, r, vram.dpagemap, ctx)).toBe(true);
    expect(d.events.filter((e) => e.event === 'MIGRATE')).toEqual([]);
    expect(d.gpusvm.stats.ownMigrationsSkipped).toBe(1);
    expect(d.unbinds).toBe(unbinds);
    for (let i = 0; i < 512; i++) expect(d.pt.lookup(a / P + i)).toBe(pagemap(p.mm, a + i * P).pfn);
    expect(r.pages.flags.hasDevmemPages).toBe(true);
    expect(checkDeviceMirror(p.mm, d.pt, OWNER).violations).toBe(0);
  });

  it('a migration started by another mirror of the same device still invalidates this one', () => {
    const { m, p, a } = setup(2 * MiB);
    for (let i = 0; i < 512; i++) p.writeU8(a + i * P, 5);
    const vram = new Vram(m, OWNER, 1024);
    const mine = makeDriver(p.mm);
    const other = makeDriver(p.mm);
    gpusvmHandleFault(mine.gpusvm, a, false, ctx);
    const theirs = gpusvmHandleFault(other.gpusvm, a, false, ctx);
    expect(gpusvmRangeMigrateToDevmem(other.gpusvm, theirs, vram.dpagemap, ctx)).toBe(true);
    // Same owner on the event, but not our migration: we saw it and dropped our entries.
    const seen = mine.events.filter((e) => e.event === 'MIGRATE');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((e) => e.owner === OWNER)).toBe(true);
    expect(mine.pt.size).toBe(0);
    expect(checkDeviceMirror(p.mm, mine.pt, OWNER).violations).toBe(0);
    expect(checkDeviceMirror(p.mm, other.pt, OWNER).violations).toBe(0);
  });

  it('after fork, the other process\'s CPU fault migrates a shared device page back: this process\'s mirror drops it before the frame is reused', () => {
    const { m, p, a } = setup(2 * MiB);
    for (let i = 0; i < 16; i++) p.writeU8(a + i * P, 10 + i);
    const vram = new Vram(m, OWNER, 16); // exactly one allocation's worth: a freed frame is reused next
    const parentDev = makeDriver(p.mm, { chunkSizes: [64 * 1024, P] });
    const r = drmGpusvmRangeFindOrInsert(parentDev.gpusvm, a, 0, p.mm.taskSize, ctx);
    expect(r.size).toBe(64 * 1024);
    expect(gpusvmRangeMigrateToDevmem(parentDev.gpusvm, r, vram.dpagemap, ctx)).toBe(true);
    const child = p.fork();
    const childDev = makeDriver(child.mm, { chunkSizes: [64 * 1024, P] });
    gpusvmHandleFault(childDev.gpusvm, a, false, ctx);
    const devPfn = childDev.pt.lookup(a / P);
    expect(pagemap(p.mm, a).pfn).toBe(devPfn); // both map the same device page
    // The parent's CPU reads: migrate_to_ram moves the shared pages back, remapping both processes.
    expect(p.readU8(a)).toBe(10);
    expect(pagemap(child.mm, a).kind).toBe('anon');
    // The child's mirror was told (try_to_migrate's invalidation of the child's mapping).
    expect(childDev.events.some((e) => e.start <= a && e.end > a)).toBe(true);
    expect(childDev.pt.lookup(a / P)).toBe(-1);
    expect(checkDeviceMirror(child.mm, childDev.pt, OWNER).violations).toBe(0);
    // The device frame is reused by another migration; the child's device must not see it.
    expect(vram.usedPages).toBe(0);
    const q = p.mmap(0x50000000, 64 * 1024, 3, 0x22 | 0x10);
    for (let i = 0; i < 16; i++) p.writeU8(q + i * P, 99);
    vram.populateMm(vram.dpagemap, q, q + 64 * 1024, p.mm, 0);
    expect(pagemap(p.mm, q).pfn === devPfn || pagemap(p.mm, q + 15 * P).pfn === devPfn || vram.usedPages === 16).toBe(true);
    gpusvmHandleFault(childDev.gpusvm, a, false, ctx);
    const buf = new Uint8Array(1);
    m.phys.readPage(childDev.pt.lookup(a / P), 0, buf, 0, 1);
    expect(buf[0]).toBe(10);
    expect(checkInvariants(m)).toEqual([]);
    child.exit();
  });
});
