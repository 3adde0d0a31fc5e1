import { describe, expect, it } from 'vitest';
import {
  DevPagemap, getUserPages, Machine, MAP_ANONYMOUS, MAP_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migrateVmaFinalize,
  migrateVmaPages, migrateVmaSetup, newMigrateVma, PAGE_SIZE, PROT_READ, PROT_WRITE, putUserPages, unpinUserPages,
} from '../../../src/index.js';
import { checkInvariants } from '../../../src/mm/check.js';
import { TestDevice } from './device.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('get_user_pages / pin_user_pages', () => {
  it('GUP of a device-private page faults it back to system memory first (device memory is never pinned)', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const dev = new TestDevice(m, { frames: 8 });
    const p = m.spawn();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    p.writeU32(a, 5);
    dev.migrateToDevice(p.mm, a, a + 2 * PAGE_SIZE);
    const pfns = getUserPages(p.mm, a, 2, { write: true });
    expect(pfns.every((pfn) => m.phys.pagemapOf(pfn) === undefined)).toBe(true);
    expect(dev.toRam).toBe(2);
    expect(checkInvariants(m)).toEqual([]); // the GUP references are accounted for
    putUserPages(p.mm, pfns);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a pinned exclusive page stays the parent\'s at fork: the child gets a copy at once (copy_present_page)', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const p = m.spawn();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 9);
    const [pfn] = getUserPages(p.mm, a, 1, { write: true, pin: true, longterm: true });
    const c = p.fork();
    expect(c.readU32(a)).toBe(9);
    m.phys.writePage(pfn!, 0, Uint8Array.of(1), 0, 1); // the device writes through its pin
    expect(p.readU32(a) & 0xff).toBe(1);
    expect(c.readU32(a)).toBe(9); // the child's copy is its own
    expect(checkInvariants(m)).toEqual([]);
    unpinUserPages(p.mm, [pfn!]);
    expect(() => unpinUserPages(p.mm, [pfn!])).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });

  it('FOLL_LONGTERM migrates a device-coherent page to system memory first; a plain GUP does not', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const owner = { coherent: true };
    const free: number[] = [];
    const pgmap = new DevPagemap('coherent', owner, { pageFree: (pfn) => void free.push(pfn), migrateToRam: () => 2 });
    const first = m.phys.addPagemap(pgmap, 4);
    const p = m.spawn();
    const a = p.mmap(0, PAGE_SIZE, RW, ANON);
    p.writeU32(a, 77);
    const args = newMigrateVma(p.mm.findVma(a)!, a, a + PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM, owner);
    migrateVmaSetup(args);
    m.phys.deviceFrameInit(first);
    m.phys.trylockPage(first);
    m.phys.copyPage(first, Math.floor(args.src[0]! / 64));
    args.dst[0] = migratePfn(first);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(p.readU32(a)).toBe(77); // coherent memory: the CPU reads it in place
    const [plain] = getUserPages(p.mm, a, 1);
    expect(plain).toBe(first);
    putUserPages(p.mm, [plain!]);
    const [pinned] = getUserPages(p.mm, a, 1, { pin: true, longterm: true });
    expect(m.phys.pagemapOf(pinned!)).toBeUndefined();
    expect(p.readU32(a)).toBe(77);
    expect(free).toEqual([first]);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('bad input: unaligned EINVAL, unmapped or read-only for FOLL_WRITE EFAULT', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const p = m.spawn();
    const a = p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
    expect(() => getUserPages(p.mm, a + 1, 1)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => getUserPages(p.mm, a, 2)).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
    expect(() => getUserPages(p.mm, a, 1, { write: true })).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
    expect(m.phys.usedRamFrames).toBe(0);
  });
});

describe('get_user_pages: errors leave nothing held', () => {
  it('a page under migration part way (WouldBlock): the references taken before it are dropped', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const dev = new TestDevice(m, { frames: 4 });
    const p = m.spawn();
    const a = p.mmap(0, 3 * PAGE_SIZE, RW, ANON);
    for (let i = 0; i < 3; i++) p.writeU32(a + i * PAGE_SIZE, i + 1);
    const args = newMigrateVma(p.mm.findVma(a)!, a + 2 * PAGE_SIZE, a + 3 * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM, dev.owner);
    migrateVmaSetup(args);
    expect(() => getUserPages(p.mm, a, 3, { pin: true })).toThrow(expect.objectContaining({ errno: 'EAGAIN' }));
    expect(m.phys.pincount.size).toBe(0);
    migrateVmaFinalize(args);
    expect(checkInvariants(m)).toEqual([]);
    const pfns = getUserPages(p.mm, a, 3, { pin: true });
    expect(() => unpinUserPages(p.mm, [pfns[0]!, pfns[0]!])).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(m.phys.pincount.size).toBe(3); // nothing was released by the failed call
    unpinUserPages(p.mm, pfns);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('FOLL_LONGTERM on a device-coherent page that cannot move now (locked): EBUSY, nothing pinned', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    const dev = new TestDevice(m, { frames: 4, type: 'coherent' });
    const p = m.spawn();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    p.writeU32(a, 1);
    p.writeU32(a + PAGE_SIZE, 2);
    dev.migrateToDevice(p.mm, a, a + 2 * PAGE_SIZE);
    const locked = getUserPages(p.mm, a + PAGE_SIZE, 1)[0]!;
    putUserPages(p.mm, [locked]);
    m.phys.trylockPage(locked);
    expect(() => getUserPages(p.mm, a, 2, { pin: true, longterm: true })).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    expect(m.phys.pincount.size).toBe(0);
    m.phys.unlockPage(locked);
    const pins = getUserPages(p.mm, a, 2, { pin: true, longterm: true });
    expect(pins.every((x) => m.phys.pagemapOf(x) === undefined)).toBe(true);
    expect(dev.freed).toBe(2);
    unpinUserPages(p.mm, pins);
    expect(p.readU32(a + PAGE_SIZE)).toBe(2);
    expect(checkInvariants(m)).toEqual([]);
  });
});

describe('put_user_pages / unpin_user_pages of references not held: EINVAL, nothing released (the kernel WARNs)', () => {
  function mapped() {
    const m = new Machine({ ramBytes: 16 << 20 });
    const p = m.spawn();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    p.writeU32(a, 11);
    p.writeU32(a + PAGE_SIZE, 22);
    const q = m.spawn(); // another process that would get a freed frame next
    return { m, p, q, a };
  }

  it('putUserPages of a page never got: EINVAL; the frame stays mapped and its data stays the process\'s', () => {
    const { m, p, q, a } = mapped();
    const pfn = getUserPages(p.mm, a, 1)[0]!;
    putUserPages(p.mm, [pfn]);
    expect(() => putUserPages(p.mm, [pfn])).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(m.phys.frames.refcount[pfn]).toBe(1);
    const b = q.mmap(0, PAGE_SIZE, RW, ANON);
    q.writeU32(b, 99);
    expect(p.readU32(a)).toBe(11);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a batch with one page not held: EINVAL before any of them is released', () => {
    const { m, p, a } = mapped();
    const [got] = getUserPages(p.mm, a, 1);
    const other = getUserPages(p.mm, a + PAGE_SIZE, 1)[0]!;
    putUserPages(p.mm, [other]);
    expect(() => putUserPages(p.mm, [got!, other])).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => putUserPages(p.mm, [got!, got!])).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(m.phys.frames.refcount[got!]).toBe(2);
    putUserPages(p.mm, [got!]);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('unpinUserPages of a page never pinned, or of a page got without FOLL_PIN: EINVAL; and a pin is not a get', () => {
    const { m, p, a } = mapped();
    const [got] = getUserPages(p.mm, a, 1);
    const [pin] = getUserPages(p.mm, a + PAGE_SIZE, 1, { pin: true });
    expect(() => unpinUserPages(p.mm, [got!])).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => putUserPages(p.mm, [pin!])).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    putUserPages(p.mm, [got!]);
    unpinUserPages(p.mm, [pin!]);
    expect(checkInvariants(m)).toEqual([]);
    expect(p.readU32(a) + p.readU32(a + PAGE_SIZE)).toBe(33);
  });

  it('a GUP reference outlives the process: the frame stays until putUserPages, and checkInvariants accounts for it', () => {
    const { m, p, a } = mapped();
    const [got] = getUserPages(p.mm, a, 1);
    p.exit();
    expect(m.phys.usedRamFrames).toBe(1);
    expect(checkInvariants(m)).toEqual([]);
    putUserPages(p.mm, [got!]);
    expect(m.phys.usedRamFrames).toBe(0);
  });

  it('checkInvariants reports a page-table entry that maps a free frame', () => {
    const { m, p, a } = mapped();
    const pfn = getUserPages(p.mm, a, 1)[0]!;
    putUserPages(p.mm, [pfn]);
    m.phys.putPage(pfn); // a buggy driver drops the mapping's own reference: the frame is freed under the PTE
    expect(checkInvariants(m).some((e) => e.includes(`frame ${pfn}`) && e.includes('free'))).toBe(true);
  });
});
