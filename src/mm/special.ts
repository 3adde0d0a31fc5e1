// Special mappings, made by a device driver's mmap (mm/memory.c, mm/mmap.c): the driver's
// file_operations.mmap gets the new VMA and fills it with remap_pfn_range (raw pfns:
// VM_IO | VM_PFNMAP, special PTEs that take no reference) or vm_insert_page (pages with
// struct pages: VM_MIXEDMAP, referenced and reverse-mapped like file pages), or leaves it to
// its vm_operations_struct.fault, which calls vmf_insert_mixed / vmf_insert_pfn. The rest of
// the mm meets these VMAs through their flags (hmm_range_fault: ERROR / EFAULT; migrate_vma:
// EINVAL; gup: EFAULT) and their special PTEs (vm_normal_page is NULL: no reference to drop
// at zap, none to take at fork, none for gup).
//
// Pfns beyond the machine's frames are I/O memory (a device's registers or BAR): no struct
// page, CPU reads of it return zeros and writes are dropped (docs/api.md).

import { fail, KernelError } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import { VM_FAULT_NOPAGE, VM_FAULT_OOM, VM_FAULT_SIGBUS } from './fault.js';
import { addMapping } from './memory.js';
import type { Mm } from './mm.js';
import { E_DIRTY, E_SPECIAL, E_WRITE, E_YOUNG, K_PRESENT, PageTable, pteNone, ptFlags, PtNode } from './pagetable.js';
import { PG_anon, PG_buddy, PG_device, PG_reserved, PG_tail } from './page.js';
import { checkProt, protToVmFlags } from './mm.js';
import {
  Vma, VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_MAYEXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_MIXEDMAP,
  VM_PFNMAP, VM_SHARED, VM_WRITE,
} from './vma.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, PROT_NONE } from './constants.js';

/** The largest pfn a special mapping may name (52-bit physical addresses, x86-64's MAXPHYADDR). */
const MAX_PFN = 2 ** 40;

/** file_operations.mmap of a device file: set up `vma` (its flags, its ops, its entries). */
export interface DeviceFileOperations {
  mmap(vma: Vma): void;
}

/**
 * mmap(addr, length, prot, flags, fd, offset) of a device file: the address is chosen (or
 * MAP_FIXED cleared) as for any mmap, a VMA made with the file's protection and share
 * flags, and the driver's `fops.mmap` called on it. A driver that throws leaves nothing
 * mapped (mmap_region unmaps what it had populated). Returns the address.
 */
export function mmapDevice(mm: Mm, addr: number, length: number, prot: number, flags: number, offset: number, fops: DeviceFileOperations): number {
  checkProt(prot);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_SIZE) fail('EINVAL', 'offset must be page aligned');
  const type = flags & (MAP_SHARED | MAP_PRIVATE);
  if (type !== MAP_SHARED && type !== MAP_PRIVATE) fail('EINVAL', 'exactly one of MAP_SHARED and MAP_PRIVATE');
  if (typeof fops?.mmap !== 'function') fail('ENODEV', 'the file has no mmap');
  // Choose (or clear) the range as mmap would, then put the device's VMA there.
  const start = mm.mmap(addr, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)));
  const len = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
  mm.munmap(start, len);
  const shared = type === MAP_SHARED;
  const vmFlags = protToVmFlags(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | (shared ? VM_SHARED | VM_MAYSHARE : 0);
  const vma = new Vma(start, start + len, vmFlags, offset / PAGE_SIZE, null);
  vma.special = {};
  mm.insertVma(vma);
  try {
    fops.mmap(vma);
  } catch (e) {
    mm.munmap(start, len);
    throw e;
  }
  return start;
}

/** The PTE protection of the VMA (vm_page_prot): writable only in a shared writable mapping; a private one COWs on write. */
function ptePerm(vma: Vma): number {
  return vma.flags & VM_SHARED && vma.flags & VM_WRITE ? E_WRITE | E_DIRTY : 0;
}

function checkVma(vma: Vma, what: string): Mm {
  const mm = vma?.mm;
  if (!mm || mm.dead || !mm.vmas.all.includes(vma)) fail('EINVAL', `${what}: the vma is not mapped in a live mm`);
  if (vma.special === null) fail('EINVAL', `${what}: ${vma} is not a device mapping`);
  return mm;
}

function checkPfn(pfn: number, what: string): void {
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= MAX_PFN) fail('EINVAL', `${what}: bad pfn ${pfn}`);
}

/** The PTE slot of addr, its table allocated; the entry must be none (the kernel BUGs or answers EBUSY). */
function emptyPte(mm: Mm, addr: number, what: string): { pte: PtNode; idx: number } {
  const vpn = addr / PAGE_SIZE;
  const pte = mm.pt.ensureTable(vpn, 0);
  if (!pte) fail('EBUSY', `${what}: a huge entry covers 0x${addr.toString(16)}`);
  const idx = PageTable.index(vpn, 0);
  if (!pteNone(ptFlags(pte, idx))) fail('EBUSY', `${what}: 0x${addr.toString(16)} is already mapped`);
  return { pte, idx };
}

/**
 * remap_pfn_range(vma, addr, pfn, size, vma->vm_page_prot): map [addr, addr + size) to
 * pfn, pfn + 1, ... with special PTEs (no struct page: no reference, no rmap), and mark the
 * VMA VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP. EINVAL for an unaligned address, an
 * empty range or one outside the VMA, a bad pfn, or a private (COW) mapping not covered
 * whole (the kernel's rule: vm_pgoff becomes the first pfn); EBUSY if a page in the range
 * is already mapped (the kernel BUGs). Nothing changes on error.
 */
export function remapPfnRange(vma: Vma, addr: number, pfn: number, size: number): void {
  const mm = checkVma(vma, 'remap_pfn_range');
  if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE) fail('EINVAL', 'remap_pfn_range: the address is not page aligned');
  if (!Number.isSafeInteger(size) || size <= 0) fail('EINVAL', 'remap_pfn_range: empty range');
  const end = addr + Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
  if (addr < vma.start || end > vma.end) fail('EINVAL', `remap_pfn_range: [0x${addr.toString(16)}, 0x${end.toString(16)}) is not inside ${vma}`);
  const n = (end - addr) / PAGE_SIZE;
  checkPfn(pfn, 'remap_pfn_range');
  checkPfn(pfn + n - 1, 'remap_pfn_range');
  const cow = (vma.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  if (cow && (addr !== vma.start || end !== vma.end)) fail('EINVAL', 'remap_pfn_range: a private mapping must be remapped whole');
  if (vma.flags & VM_MIXEDMAP) fail('EINVAL', 'remap_pfn_range: the vma is VM_MIXEDMAP');
  for (let a = addr; a < end; a += PAGE_SIZE) emptyPte(mm, a, 'remap_pfn_range');
  if (cow) vma.pgoff = pfn;
  vma.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  const perm = ptePerm(vma);
  for (let i = 0; i < n; i++) {
    const { pte, idx } = emptyPte(mm, addr + i * PAGE_SIZE, 'remap_pfn_range');
    PageTable.set(pte, idx, K_PRESENT | E_SPECIAL | E_YOUNG | perm, pfn + i);
  }
}

/** validate_page_before_insert: an allocated page of the driver's own, not anonymous, not a compound tail. */
function checkInsertPage(mm: Mm, page: number, what: string): void {
  const phys = mm.machine.phys;
  const f = phys.frames;
  if (!Number.isSafeInteger(page) || page < 0 || page >= f.capacity) fail('EINVAL', `${what}: page ${page} does not exist`);
  if (phys.isZeroPfn(page)) return;
  const flags = f.flags[page]!;
  if (f.refcount[f.compoundHead(page)]! <= 0 || flags & (PG_buddy | PG_reserved)) fail('EINVAL', `${what}: page ${page} is not allocated`);
  if (flags & PG_tail) fail('EINVAL', `${what}: page ${page} is part of a large folio`);
  if (flags & PG_anon || f.mapping[page]) fail('EINVAL', `${what}: page ${page} is anonymous or a file's page`);
  if (flags & PG_device && phys.isDevicePrivate(page)) fail('EINVAL', `${what}: device-private page ${page} is not CPU-addressable`);
}

/** insert_page: a referenced, reverse-mapped PTE for a page the driver owns. */
function insertPage(mm: Mm, vma: Vma, addr: number, page: number, pte: PtNode, idx: number): void {
  const phys = mm.machine.phys;
  const zero = phys.isZeroPfn(page);
  PageTable.set(pte, idx, K_PRESENT | E_YOUNG | (zero ? E_SPECIAL : ptePerm(vma)), page);
  if (zero) return;
  phys.getPage(page);
  addMapping(mm, page, addr / PAGE_SIZE, 0);
}

/**
 * vm_insert_page(vma, addr, page): map one page the driver allocated (it keeps its own
 * reference; the mapping takes another) and mark the VMA VM_MIXEDMAP. EFAULT for an address
 * outside the VMA; EINVAL for a VM_PFNMAP VMA (the kernel BUGs), an unaligned address, or a
 * page that is free, anonymous, a file's, a tail of a large folio or device-private; EBUSY if
 * the address is already mapped.
 */
export function vmInsertPage(vma: Vma, addr: number, page: number): void {
  const mm = checkVma(vma, 'vm_insert_page');
  if (!Number.isSafeInteger(addr) || addr < vma.start || addr >= vma.end) fail('EFAULT', `vm_insert_page: 0x${addr.toString(16)} is outside ${vma}`);
  if (addr % PAGE_SIZE) fail('EINVAL', 'vm_insert_page: the address is not page aligned');
  if (vma.flags & VM_PFNMAP) fail('EINVAL', 'vm_insert_page: the vma is VM_PFNMAP');
  checkInsertPage(mm, page, 'vm_insert_page');
  const { pte, idx } = emptyPte(mm, addr, 'vm_insert_page');
  vma.flags |= VM_MIXEDMAP;
  insertPage(mm, vma, addr, page, pte, idx);
}

/** __vm_insert_mixed / vmf_insert_pfn: the errno of an insertion as a fault's answer. */
function insertAnswer(fn: () => void): number {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    if (e.errno === 'ENOMEM') return VM_FAULT_OOM;
    if (e.errno !== 'EBUSY') return VM_FAULT_SIGBUS; // EBUSY: someone mapped it first, fine
  }
  return VM_FAULT_NOPAGE;
}

/**
 * vmf_insert_mixed(vma, addr, pfn), from a VM_MIXEDMAP VMA's fault handler: a pfn that is a
 * page of memory is inserted as vm_insert_page does (referenced, reverse-mapped); an I/O pfn
 * (no struct page) as a special PTE. Returns VM_FAULT_NOPAGE (also when the address was
 * mapped meanwhile), VM_FAULT_SIGBUS for an address outside the VMA, a VMA that is not
 * VM_MIXEDMAP, or a page that cannot be inserted, VM_FAULT_OOM without memory for a table.
 */
export function vmfInsertMixed(vma: Vma, addr: number, pfn: number): number {
  const mm = checkVma(vma, 'vmf_insert_mixed');
  if (!Number.isSafeInteger(addr) || addr < vma.start || addr >= vma.end || addr % PAGE_SIZE) return VM_FAULT_SIGBUS;
  if (!(vma.flags & VM_MIXEDMAP)) return VM_FAULT_SIGBUS;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= MAX_PFN) return VM_FAULT_SIGBUS;
  const isPage = pfn < mm.machine.phys.frames.capacity && (pfn < mm.machine.phys.ramFrames || mm.machine.phys.pagemapOf(pfn) !== undefined);
  return insertAnswer(() => {
    if (isPage) checkInsertPage(mm, pfn, 'vmf_insert_mixed');
    const { pte, idx } = emptyPte(mm, addr, 'vmf_insert_mixed');
    if (isPage) insertPage(mm, vma, addr, pfn, pte, idx);
    else PageTable.set(pte, idx, K_PRESENT | E_SPECIAL | E_YOUNG | ptePerm(vma), pfn);
  });
}

/**
 * vmf_insert_pfn(vma, addr, pfn), from a VM_PFNMAP VMA's fault handler: a special PTE, no
 * reference. VM_FAULT_NOPAGE, or VM_FAULT_SIGBUS for an address outside the VMA, a VMA that
 * is not VM_PFNMAP (the kernel BUGs) or a bad pfn.
 */
export function vmfInsertPfn(vma: Vma, addr: number, pfn: number): number {
  const mm = checkVma(vma, 'vmf_insert_pfn');
  if (!Number.isSafeInteger(addr) || addr < vma.start || addr >= vma.end || addr % PAGE_SIZE) return VM_FAULT_SIGBUS;
  if (!(vma.flags & VM_PFNMAP) || vma.flags & VM_MIXEDMAP) return VM_FAULT_SIGBUS;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= MAX_PFN) return VM_FAULT_SIGBUS;
  return insertAnswer(() => {
    const { pte, idx } = emptyPte(mm, addr, 'vmf_insert_pfn');
    PageTable.set(pte, idx, K_PRESENT | E_SPECIAL | E_YOUNG | ptePerm(vma), pfn);
  });
}

