// tmpfs files and their page cache (mm/shmem.c, mm/truncate.c) seen through mappings.
import { describe, expect, it } from 'vitest';
import { MAP_PRIVATE, MAP_SHARED, PROT_READ } from '../../src/index.js';
import { errnoOf, expectConsistent, P, pm, RW, setup } from './helpers.js';
import {
  PAGE_SIZE,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { newProcess } from './helpers.js';

function bytes(...v: number[]): Uint8Array {
  return Uint8Array.from(v);
}

describe('tmpfs', () => {
  it('pwrite is visible through shared and private mappings, until the private page is copied on write', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(2 * P);
    const s = p.mmap(0, 2 * P, RW, MAP_SHARED, f);
    const q = m.spawn();
    const r = q.mmap(0, 2 * P, RW, MAP_PRIVATE, f);
    expect(q.readU8(r + P)).toBe(0); // maps the page-cache page
    f.pwrite(bytes(1, 2, 3), P);
    expect(Array.from(p.read(s + P, 3))).toEqual([1, 2, 3]);
    expect(Array.from(q.read(r + P, 3))).toEqual([1, 2, 3]);
    q.writeU8(r + P, 9); // do_wp_page on a page-cache page in a private mapping: a private copy
    f.pwrite(bytes(4), P + 1);
    expect(Array.from(q.read(r + P, 3))).toEqual([9, 2, 3]); // frozen at the copy
    expect(Array.from(p.read(s + P, 3))).toEqual([1, 4, 3]);
    expect(Array.from(f.pread(3, P))).toEqual([1, 4, 3]);
    expectConsistent(m);
  });

  it('a store through a shared mapping is what pread and another process\'s shared mapping see', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(P);
    const q = m.spawn();
    const a = p.mmap(0, P, RW, MAP_SHARED, f);
    const b = q.mmap(0, P, PROT_READ, MAP_SHARED, f);
    p.writeU32(a + 100, 0xcafe);
    expect(Array.from(f.pread(2, 100))).toEqual([0xfe, 0xca]);
    expect(q.readU32(b + 100)).toBe(0xcafe);
    expect(pm(q, b).pfn).toBe(pm(p, a).pfn);
  });

  it('truncate: access past the new EOF is SIGBUS in every mapping, COW copies included (unmap_mapping_range even_cows)', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.pwrite(new Uint8Array(3 * P).fill(7), 0);
    const s = p.mmap(0, 3 * P, RW, MAP_SHARED, f);
    const r = p.mmap(0, 3 * P, RW, MAP_PRIVATE, f);
    p.writeU8(r + 2 * P, 1); // a private copy of page 2
    p.readU8(s + 2 * P);
    f.truncate(P + 10);
    expect(pm(p, r + 2 * P).present).toBe(false);
    expect(() => p.readU8(s + 2 * P)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    expect(() => p.readU8(r + 2 * P)).toThrow(/SIGBUS/);
    expect(p.readU8(s + P + 9)).toBe(7); // inside the last partial page
    expect(p.readU8(s + P + 10)).toBe(0); // the tail of the partial page is zeroed
    expect(m.fs.cachedPages).toBe(2);
    expectConsistent(m);
    f.truncate(3 * P); // growing again: the new pages read zero
    expect(p.readU8(s + 2 * P)).toBe(0);
    expect(p.readU8(r + 2 * P)).toBe(0);
  });

  it('a mapping longer than the file: pages past EOF are SIGBUS, checked before any byte moves', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(P);
    const a = p.mmap(0, 2 * P, RW, MAP_SHARED, f);
    expect(() => p.write(a + P - 2, bytes(1, 2, 3, 4))).toThrow(expect.objectContaining({ signal: 'SIGBUS', addr: a + P }));
    expect(Array.from(f.pread(2, P - 2))).toEqual([0, 0]);
    expect(f.size).toBe(P);
  });

  it('the page cache is freed only when the file is unlinked, closed and unmapped', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.pwrite(bytes(1), 0);
    const a = p.mmap(0, P, RW, MAP_SHARED, f);
    f.close();
    m.fs.unlink('f');
    expect(m.fs.cachedPages).toBe(1);
    expect(p.readU8(a)).toBe(1);
    p.munmap(a, P);
    expect(m.fs.cachedPages).toBe(0);
    expect(m.phys.usedRamFrames).toBe(0);
    expect(errnoOf(() => m.fs.unlink('f'))).toBe('ENOENT');
  });

  it('a file mapped at an offset maps the pages from that index', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    for (let i = 0; i < 4; i++) f.pwrite(bytes(i + 1), i * P);
    const a = p.mmap(0, 2 * P, PROT_READ, MAP_SHARED, f, 2 * P);
    expect([p.readU8(a), p.readU8(a + P)]).toEqual([3, 4]);
    expect(pm(p, a).pfn).toBe(f.pages.get(2));
  });

  it('bad file arguments are EINVAL', () => {
    const { m } = setup();
    const f = m.fs.open('f');
    expect(errnoOf(() => f.truncate(-1))).toBe('EINVAL');
    expect(errnoOf(() => f.pread(-1, 0))).toBe('EINVAL');
    expect(errnoOf(() => f.pwrite(bytes(1), -1))).toBe('EINVAL');
    expect(errnoOf(() => m.fs.open(''))).toBe('EINVAL');
    f.close();
    expect(errnoOf(() => f.close())).toBe('EINVAL');
  });
});

describe('tmpfs through mappings', () => {
  it('tmpfs: a store through a shared mapping is what pread and another process see; private maps COW', () => {
    const { m, p } = newProcess();
    const f = m.fs.open('data');
    f.truncate(2 * PAGE_SIZE);
    const q = m.spawn();
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED, f);
    const b = q.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED, f);
    const c = q.mmap(0, 2 * PAGE_SIZE, RW, MAP_PRIVATE, f);
    p.writeU32(a + 8, 0xabcd);
    expect(new DataView(f.pread(4, 8).buffer).getUint32(0, true)).toBe(0xabcd);
    expect(q.readU32(b + 8)).toBe(0xabcd);
    expect(q.readU32(c + 8)).toBe(0xabcd);
    q.writeU32(c + 8, 1); // do_wp_page on a file page in a private mapping: a private copy
    expect(p.readU32(a + 8)).toBe(0xabcd);
    f.truncate(PAGE_SIZE);
    expect(() => p.readU32(a + PAGE_SIZE)).toThrow(/SIGBUS/);
    expect(checkInvariants(m)).toEqual([]);
  });
});
