// A driver's access to page contents (include/linux/highmem.h): what a kernel driver does with
// kmap_local_page and memcpy, copy_highpage, clear_highpage, or its copy engine. Pages are pfns
// of system RAM or of a registered device pagemap. hmmsim's device-private frames hold their
// own bytes (docs/api.md deviation 38), so these calls are also how a driver reads and writes
// its device memory: the kernel's driver would reach the same bytes through its backing page
// or its device's DMA engine.
//
// Each call checks its arguments before touching anything: the page must exist and be in use
// (a reference held: allocated, or taken into use with zoneDevicePageInit), and an offset and
// length must stay inside the page. A bad argument is EINVAL (the kernel would BUG or corrupt
// memory); writing the zero page is EFAULT.

import { fail } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import type { Machine } from './machine.js';

/** The page exists, is memory (RAM or a registered pagemap) and is in use. */
function checkPage(machine: Machine, pfn: number, what: string): void {
  const phys = machine.phys;
  const f = phys.frames;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= f.capacity) fail('EINVAL', `${what}: pfn ${pfn} does not exist`);
  if (pfn >= phys.ramFrames && !phys.pagemapOf(pfn)) fail('EINVAL', `${what}: pfn ${pfn} is not memory`);
  if (phys.isZeroPfn(pfn)) return;
  if (f.refcount[f.compoundHead(pfn)]! <= 0) fail('EINVAL', `${what}: page ${pfn} is free (no reference held)`);
}

function checkWritable(machine: Machine, pfn: number, what: string): void {
  checkPage(machine, pfn, what);
  if (machine.phys.isZeroPfn(pfn)) fail('EFAULT', `${what}: the zero page is read-only`);
}

function checkSpan(offset: number, len: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 || offset + len > PAGE_SIZE) {
    fail('EINVAL', `${what}: [${offset}, ${offset}+${len}) is not inside a page`);
  }
}

/** copy_highpage(to, from): `to` gets `from`'s bytes, whole page (system or device memory, either way). */
export function copyHighpage(machine: Machine, to: number, from: number): void {
  checkWritable(machine, to, 'copy_highpage');
  checkPage(machine, from, 'copy_highpage');
  machine.phys.copyPage(to, from);
}

/** clear_highpage(page): the page reads as zeros. */
export function clearHighpage(machine: Machine, pfn: number): void {
  checkWritable(machine, pfn, 'clear_highpage');
  machine.phys.clearPage(pfn);
}

/** memcpy_to_page(page, offset, from, len): write `len` bytes of `from` into the page at `offset`. */
export function memcpyToPage(machine: Machine, pfn: number, offset: number, from: Uint8Array, len = from.length): void {
  checkWritable(machine, pfn, 'memcpy_to_page');
  if (!(from instanceof Uint8Array) || len > from.length) fail('EINVAL', 'memcpy_to_page: the source holds fewer than len bytes');
  checkSpan(offset, len, 'memcpy_to_page');
  machine.phys.writePage(pfn, offset, from, 0, len);
}

/** memcpy_from_page(to, page, offset, len): read `len` bytes of the page at `offset` into `to`. */
export function memcpyFromPage(machine: Machine, to: Uint8Array, pfn: number, offset: number, len = to.length): void {
  checkPage(machine, pfn, 'memcpy_from_page');
  if (!(to instanceof Uint8Array) || len > to.length) fail('EINVAL', 'memcpy_from_page: the destination holds fewer than len bytes');
  checkSpan(offset, len, 'memcpy_from_page');
  machine.phys.readPage(pfn, offset, to, 0, len);
}
