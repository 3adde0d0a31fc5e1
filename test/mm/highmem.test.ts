// A driver's access to page contents through the exported calls (include/linux/highmem.h and
// zone_device_page_init): bytes in and out of system and device pages, whole-page copies both
// ways, and every bad argument refused before anything changes.

import { describe, expect, it } from 'vitest';
import {
  clearHighpage, copyHighpage, DevPagemap, HPAGE_PMD_ORDER, Machine, MAP_ANONYMOUS, MAP_PRIVATE, memcpyFromPage, memcpyToPage,
  memremapPages, PAGE_SIZE, pagemap, PMD_NR, PROT_READ, PROT_WRITE, zoneDevicePageInit,
} from '../../src/index.js';
import { errnoOf } from './helpers.js';

function world() {
  const m = new Machine({ ramBytes: 16 << 20 });
  const freed: number[] = [];
  const pgmap = new DevPagemap('private', { dev: 1 }, { pageFree: (pfn) => freed.push(pfn), migrateToRam: () => 0 });
  const first = memremapPages(m, pgmap, 2 * PMD_NR);
  const p = m.spawn();
  const a = p.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.write(a, new Uint8Array([1, 2, 3, 4]));
  const sys = pagemap(p.mm, a).pfn;
  return { m, pgmap, first, p, a, sys, freed };
}


const bytesOf = (m: Machine, pfn: number, off = 0, len = 8): number[] => {
  const out = new Uint8Array(len);
  memcpyFromPage(m, out, pfn, off, len);
  return [...out];
};

describe('zone_device_page_init', () => {
  it('takes an idle device page into use (refcount 1, locked); a PMD-size folio the same, as one compound page', () => {
    const { m, first } = world();
    zoneDevicePageInit(m, first + 3);
    expect(m.phys.frames.refcount[first + 3]).toBe(1);
    expect(m.phys.isLocked(first + 3)).toBe(true);
    zoneDevicePageInit(m, first + PMD_NR, HPAGE_PMD_ORDER);
    expect(m.phys.frames.order(first + PMD_NR)).toBe(HPAGE_PMD_ORDER);
    expect(m.phys.frames.compoundHead(first + PMD_NR + 7)).toBe(first + PMD_NR);
    expect(m.phys.isLocked(first + PMD_NR + 7)).toBe(true);
  });

  it('refuses a page in use, system RAM, a bad order, an unaligned folio, one past the pagemap, one overlapping a page in use: EINVAL, nothing changed', () => {
    const { m, first, sys } = world();
    zoneDevicePageInit(m, first + 5);
    expect(errnoOf(() => zoneDevicePageInit(m, first + 5))).toBe('EINVAL');
    expect(m.phys.frames.refcount[first + 5]).toBe(1);
    expect(errnoOf(() => zoneDevicePageInit(m, sys))).toBe('EINVAL');
    expect(errnoOf(() => zoneDevicePageInit(m, -1))).toBe('EINVAL');
    expect(errnoOf(() => zoneDevicePageInit(m, first + PMD_NR, 3))).toBe('EINVAL');
    expect(errnoOf(() => zoneDevicePageInit(m, first + 1, HPAGE_PMD_ORDER))).toBe('EINVAL');
    expect(errnoOf(() => zoneDevicePageInit(m, first, HPAGE_PMD_ORDER))).toBe('EINVAL'); // page 5 of it is in use
    expect(m.phys.frames.refcount[first]).toBe(0);
    expect(m.phys.frames.order(first)).toBe(0);
    const small = new DevPagemap('coherent', { dev: 2 }, { pageFree: () => {} });
    const f2 = memremapPages(m, small, 16);
    expect(errnoOf(() => zoneDevicePageInit(m, f2, HPAGE_PMD_ORDER))).toBe('EINVAL'); // runs past its 16 pages
  });
});

describe('highmem: memcpy_to_page, memcpy_from_page, copy_highpage, clear_highpage', () => {
  it('a driver writes and reads its device page, copies a system page to it and back, and clears it', () => {
    const { m, first, p, a, sys } = world();
    const d = first + 2;
    zoneDevicePageInit(m, d);
    expect(bytesOf(m, d)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    memcpyToPage(m, d, 100, new Uint8Array([9, 8, 7]));
    expect(bytesOf(m, d, 99, 5)).toEqual([0, 9, 8, 7, 0]);
    memcpyToPage(m, d, PAGE_SIZE - 2, new Uint8Array([5, 6, 7, 8]), 2); // len shorter than the buffer
    expect(bytesOf(m, d, PAGE_SIZE - 3, 3)).toEqual([0, 5, 6]);
    copyHighpage(m, d, sys);
    expect(bytesOf(m, d, 0, 5)).toEqual([1, 2, 3, 4, 0]);
    memcpyToPage(m, d, 0, new Uint8Array([42]));
    expect(bytesOf(m, sys, 0, 2)).toEqual([1, 2]); // the copy was a copy: the source did not change
    copyHighpage(m, sys, d);
    expect([...p.read(a, 4)]).toEqual([42, 2, 3, 4]); // the process sees what the device page held
    clearHighpage(m, d);
    expect(bytesOf(m, d, 0, 4)).toEqual([0, 0, 0, 0]);
    expect([...p.read(a, 4)]).toEqual([42, 2, 3, 4]);
  });

  it('the zero page reads as zeros and cannot be written (EFAULT); a copy from it zeroes', () => {
    const { m, sys } = world();
    const z = m.phys.zeroPfn;
    expect(bytesOf(m, z, 0, 4)).toEqual([0, 0, 0, 0]);
    expect(errnoOf(() => memcpyToPage(m, z, 0, new Uint8Array([1])))).toBe('EFAULT');
    expect(errnoOf(() => clearHighpage(m, z))).toBe('EFAULT');
    expect(errnoOf(() => copyHighpage(m, z, sys))).toBe('EFAULT');
    copyHighpage(m, sys, z);
    expect(bytesOf(m, sys, 0, 4)).toEqual([0, 0, 0, 0]);
  });

  it('bad arguments are EINVAL and change nothing: a free or nonexistent page, a span outside the page, a short buffer', () => {
    const { m, first, sys } = world();
    const idle = first + 9; // device page never taken into use
    const before = bytesOf(m, sys);
    expect(errnoOf(() => memcpyToPage(m, idle, 0, new Uint8Array([1])))).toBe('EINVAL');
    expect(errnoOf(() => memcpyFromPage(m, new Uint8Array(1), idle, 0))).toBe('EINVAL');
    expect(errnoOf(() => copyHighpage(m, sys, idle))).toBe('EINVAL');
    expect(errnoOf(() => copyHighpage(m, idle, sys))).toBe('EINVAL');
    expect(errnoOf(() => clearHighpage(m, idle))).toBe('EINVAL');
    expect(errnoOf(() => memcpyToPage(m, 1 << 30, 0, new Uint8Array([1])))).toBe('EINVAL');
    expect(errnoOf(() => memcpyToPage(m, 1.5, 0, new Uint8Array([1])))).toBe('EINVAL');
    expect(errnoOf(() => memcpyToPage(m, sys, PAGE_SIZE - 1, new Uint8Array([1, 2])))).toBe('EINVAL');
    expect(errnoOf(() => memcpyToPage(m, sys, -1, new Uint8Array([1])))).toBe('EINVAL');
    expect(errnoOf(() => memcpyToPage(m, sys, 0, new Uint8Array([1]), 2))).toBe('EINVAL');
    expect(errnoOf(() => memcpyFromPage(m, new Uint8Array(2), sys, 0, 3))).toBe('EINVAL');
    expect(errnoOf(() => memcpyFromPage(m, new Uint8Array(8), sys, PAGE_SIZE - 4))).toBe('EINVAL');
    expect(bytesOf(m, sys)).toEqual(before);
    // A freed RAM page: no reference held.
    const p2 = m.spawn();
    const b = p2.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p2.write(b, new Uint8Array([1]));
    const gone = pagemap(p2.mm, b).pfn;
    p2.exit();
    expect(errnoOf(() => memcpyFromPage(m, new Uint8Array(1), gone, 0))).toBe('EINVAL');
  });
});
