// CPU accesses to a process's memory: translate through the page tables, fault like the
// kernel when the entry does not allow the access, and copy bytes to or from the frames.
// An access outside any VMA or against its protection is SIGSEGV, a file page past EOF is
// SIGBUS: both are checked for the whole access before any byte moves.

import { fail, KernelError, SignalError, WouldBlock } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import { LEVEL_PAGES, pteMkaccessed, ptePresent, pteProtnone, pteWrite, ptFlags, type PtSlot, ptVal, setPtFlags } from './pagetable.js';
import {
  FAULT_FLAG_REMOTE, FAULT_FLAG_USER, FAULT_FLAG_WRITE, faultRetryWait, type FaultRetry, handleMmFault, newFaultRetry, VM_FAULT_ERROR, VM_FAULT_HWPOISON, VM_FAULT_OOM,
  VM_FAULT_RETRY, VM_FAULT_SIGBUS,
} from './fault.js';
import { VM_EXEC, VM_READ, VM_WRITE, type Vma } from './vma.js';
import type { Mm } from './mm.js';

const slot: PtSlot = { node: null!, idx: 0, level: 0 };
const retry: FaultRetry = newFaultRetry();

/**
 * The frame that vpn maps for this access, or -1 if the entry does not allow it (the
 * access must fault). Marks the entry young, and dirty for a write.
 */
export function followPage(mm: Mm, vpn: number, write: boolean): number {
  mm.pt.lookup(vpn, slot);
  const { node, idx, level } = slot;
  const flg = ptFlags(node, idx);
  if (!ptePresent(flg) || pteProtnone(flg)) return -1;
  if (write && !pteWrite(flg)) return -1;
  setPtFlags(node, idx, pteMkaccessed(flg, write));
  const v = ptVal(node, idx);
  return level === 0 ? v : v + (vpn % LEVEL_PAGES[level]!);
}

/** x86 access_error(): a write needs VM_WRITE; a read needs any of read, write or exec. */
export function accessAllowed(vma: Vma, write: boolean): boolean {
  return write ? (vma.flags & VM_WRITE) !== 0 : (vma.flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
}

/** Check [addr, addr+len) for SIGSEGV and SIGBUS before touching anything. */
function checkAccess(mm: Mm, addr: number, len: number, write: boolean): void {
  if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(len) || len < 0) fail('EINVAL', 'bad address or length');
  const end = addr + len;
  let at = addr;
  while (at < end) {
    const vma = mm.vmas.lookup(at);
    if (!vma) throw new SignalError('SIGSEGV', at, 'no mapping');
    if (!accessAllowed(vma, write)) throw new SignalError('SIGSEGV', at, `${write ? 'write' : 'read'} not allowed by ${vma}`);
    if (vma.file && !vma.special) {
      const lastIndex = vma.pgoffOf(Math.floor((Math.min(end, vma.end) - 1) / PAGE_SIZE) * PAGE_SIZE);
      if (lastIndex >= vma.file.sizePages) {
        const bad = vma.start + (vma.file.sizePages - vma.pgoff) * PAGE_SIZE;
        throw new SignalError('SIGBUS', Math.max(bad, at), 'access beyond the end of the file');
      }
    }
    at = vma.end;
  }
}

/**
 * Fault in one page for an access (the loop of the x86 page-fault handler and of
 * faultin_page). Returns the frame. Throws SignalError, ENOMEM or WouldBlock.
 */
export function faultInPage(mm: Mm, vma: Vma, addr: number, write: boolean, remote: boolean): number {
  const vpn = Math.floor(addr / PAGE_SIZE);
  const flags = (write ? FAULT_FLAG_WRITE : 0) | (remote ? FAULT_FLAG_REMOTE : FAULT_FLAG_USER);
  for (let tries = 0; tries < 16; tries++) {
    const pfn = followPage(mm, vpn, write);
    if (pfn >= 0) return pfn;
    const ret = handleMmFault(mm, vma, addr, flags, retry);
    if (ret & VM_FAULT_RETRY) {
      throw new WouldBlock(`access to 0x${addr.toString(16)} sleeps on a locked page`, faultRetryWait(mm, retry));
    }
    if (ret & VM_FAULT_OOM) fail('ENOMEM', `out of memory faulting 0x${addr.toString(16)}`);
    if (ret & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON)) throw new SignalError('SIGBUS', addr, 'fault failed');
    if (ret & VM_FAULT_ERROR) throw new SignalError('SIGSEGV', addr, 'fault failed');
  }
  throw new Error(`fault at 0x${addr.toString(16)} did not converge`);
}

/** The largest transfer one call makes (MAX_RW_COUNT: INT_MAX rounded down to a page). */
export const MAX_RW_COUNT = 2 ** 31 - PAGE_SIZE;

/** Copy between a process's memory and buf (access_process_vm for the process itself). */
export function accessVm(mm: Mm, addr: number, buf: Uint8Array, write: boolean): void {
  if (!(buf instanceof Uint8Array)) fail('EFAULT', 'the buffer is not a byte array');
  mm.mmapLock('access');
  checkAccess(mm, addr, buf.length, write);
  accessChecked(mm, addr, buf, write);
}

/**
 * A read of len bytes into a new buffer: the range is checked (SIGSEGV, SIGBUS) and len
 * bounded by MAX_RW_COUNT (EINVAL) before the buffer is allocated.
 */
export function readVm(mm: Mm, addr: number, len: number): Uint8Array {
  mm.mmapLock('access');
  checkAccess(mm, addr, len, false);
  if (len > MAX_RW_COUNT) fail('EINVAL', `a read of ${len} bytes is more than MAX_RW_COUNT`);
  const buf = new Uint8Array(len);
  accessChecked(mm, addr, buf, false);
  return buf;
}

function accessChecked(mm: Mm, addr: number, buf: Uint8Array, write: boolean): void {
  const phys = mm.machine.phys;
  let done = 0;
  let vma: Vma | undefined;
  while (done < buf.length) {
    const at = addr + done;
    if (!vma || at >= vma.end) vma = mm.vmas.lookup(at)!;
    const vpn = Math.floor(at / PAGE_SIZE);
    const off = at - vpn * PAGE_SIZE; // not at % PAGE_SIZE: past 2^31 that is a call to fmod
    const n = Math.min(PAGE_SIZE - off, buf.length - done);
    let pfn = followPage(mm, vpn, write);
    if (pfn < 0) pfn = faultInPage(mm, vma, at, write, false);
    if (pfn >= phys.frames.capacity) {
      if (!write) buf.fill(0, done, done + n); // I/O memory a driver remapped (special.ts): reads 0, writes dropped
    } else if (write) phys.writePage(pfn, off, buf, done, n);
    else phys.readPage(pfn, off, buf, done, n);
    done += n;
  }
}

/**
 * Fault in every page of [start, end) (MAP_POPULATE: mm_populate -> populate_vma_page_range).
 * An inaccessible (PROT_NONE) VMA is skipped, and a failing fault (SIGBUS past the end of a
 * file, out of memory, a locked page) ends the VMA's population quietly: mm_populate ignores errors, and
 * the mmap that asked for it still succeeds.
 */
export function populateRange(mm: Mm, start: number, end: number, write: boolean): void {
  for (let a = start; a < end; a += PAGE_SIZE) {
    const vma = mm.vmas.lookup(a)!;
    if (!accessAllowed(vma, false)) {
      a = vma.end - PAGE_SIZE;
      continue;
    }
    if (followPage(mm, a / PAGE_SIZE, write) >= 0) continue;
    try {
      faultInPage(mm, vma, a, write, false);
    } catch (e) {
      // A page locked by a migration (WouldBlock) ends it too: population cannot sleep here.
      if (!(e instanceof KernelError)) throw e;
      a = vma.end - PAGE_SIZE;
    }
  }
}
