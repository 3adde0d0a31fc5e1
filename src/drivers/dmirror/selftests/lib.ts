// The helpers of hmm-tests.c (struct hmm_buffer, hmm_open, hmm_dmirror_cmd, hmm_create_file,
// the migrate wrappers) and the few libc calls the tests make, returning what C returns
// (MAP_FAILED, -1 with errno, -errno from the ioctl helper) so the bodies read like the
// originals. A test's `int *ptr` loops become whole-buffer reads and writes of Int32Arrays.

import { ERRNO, KernelError } from '../../../mm/errno.js';
import { PAGE_SIZE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../mm/constants.js';
import type { Process } from '../../../mm/process.js';
import type { TmpFile } from '../../../mm/file.js';
import { hmmDmirrorOpen, type DmirrorFile } from '../file.js';
import type { DmirrorCtx } from '../mirror.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, hmmDmirrorCmd as newCmd } from '../uapi.js';
import { SelftestFailure, type TestBase } from './harness.js';

export const HMM_BUFFER_SIZE = 1024 << 12;
export const ONEMEG = 1 << 20;
export const TWOMEG = 1 << 21;
export const NTIMES = 10;
export const MAP_FAILED = -1;

/** read_pmd_pagesize() */
export function readPmdPagesize(): number {
  return TWOMEG;
}
/** default_huge_page_size() */
export function defaultHugePageSize(): number {
  return TWOMEG;
}
/** ALIGN(x, a) */
export function ALIGN(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** struct hmm_buffer */
export interface HmmBuffer {
  ptr: number;
  mirror: number;
  mirrorSize: number;
  size: number;
  fd: TmpFile | null;
  cpages: number;
  faults: number;
}

/** errno of the last failed libc call, per process. */
const lastErrno = new WeakMap<Process, number>();
export function errnoOf(p: Process): number {
  return lastErrno.get(p) ?? 0;
}

function libcCall<T>(p: Process, fn: () => T, failed: T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof KernelError) || e.name === 'SignalError') throw e;
    lastErrno.set(p, ERRNO[e.errno]);
    return failed;
  }
}

export function mmap(p: Process, addr: number, length: number, prot: number, flags: number, file: TmpFile | null = null, offset = 0): number {
  return libcCall(p, () => p.mmap(addr, length, prot, flags, file, offset), MAP_FAILED);
}
export function munmap(p: Process, addr: number, length: number): number {
  return libcCall(p, () => (p.munmap(addr, length), 0), -1);
}
export function mprotect(p: Process, addr: number, length: number, prot: number): number {
  return libcCall(p, () => (p.mprotect(addr, length, prot), 0), -1);
}
export function madvise(p: Process, addr: number, length: number, advice: number): number {
  return libcCall(p, () => (p.madvise(addr, length, advice), 0), -1);
}
export function mremap(p: Process, old: number, oldSize: number, newSize: number, flags: number, newAddr = 0): number {
  return libcCall(p, () => p.mremap(old, oldSize, newSize, flags, newAddr), MAP_FAILED);
}

/** malloc(size) of a buffer the tests treat as plain memory: an anonymous mapping, as glibc makes for large blocks. */
export function malloc(p: Process, size: number): number {
  return p.mmap(0, Math.max(size, 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
}

/** A new hmm_buffer with its mirror allocated (fields as the tests set them). */
export function hmmBufferAlloc(p: Process, size: number, mirrorSize = size): HmmBuffer {
  return { ptr: 0, mirror: malloc(p, mirrorSize), mirrorSize, size, fd: null, cpages: 0, faults: 0 };
}

/** hmm_buffer_free */
export function hmmBufferFree(p: Process, buffer: HmmBuffer): void {
  if (buffer.ptr) {
    munmap(p, buffer.ptr, buffer.size);
    buffer.ptr = 0;
  }
  munmap(p, buffer.mirror, buffer.mirrorSize);
}

/** hmm_open(unit) from a process; -1 (and a message) when the device does not exist. */
export function hmmOpen(p: Process, unit: number): DmirrorFile {
  return hmmDmirrorOpen(p, unit);
}

/**
 * hmm_dmirror_cmd: addr = buffer->ptr, ptr = buffer->mirror; 0 on success (with cpages and
 * faults copied into the buffer), else -errno.
 */
export async function hmmDmirrorCmd(fd: DmirrorFile, request: number, buffer: HmmBuffer, npages: number, ctx?: DmirrorCtx): Promise<number> {
  const cmd = newCmd(buffer.ptr, buffer.mirror, npages);
  try {
    await fd.ioctl(request, cmd, ctx ? { ctx } : {});
  } catch (e) {
    if (e instanceof KernelError && e.name !== 'SignalError') return -ERRNO[e.errno];
    throw e;
  }
  buffer.cpages = cmd.cpages;
  buffer.faults = cmd.faults;
  return 0;
}

export function hmmMigrateSysToDev(fd: DmirrorFile, buffer: HmmBuffer, npages: number): Promise<number> {
  return hmmDmirrorCmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, npages);
}
export function hmmMigrateDevToSys(fd: DmirrorFile, buffer: HmmBuffer, npages: number): Promise<number> {
  return hmmDmirrorCmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, buffer, npages);
}

/** hmm_create_file: an O_TMPFILE file of `size` bytes. */
export function hmmCreateFile(t: TestBase, size: number): TmpFile {
  const f = t.trackFile(t.machine.fs.tmpfile());
  f.truncate(size);
  return f;
}

// ---- int buffers ----

/** Store `n` ints at addr: ptr[i] = f(i). */
export function fillInts(p: Process, addr: number, n: number, f: (i: number) => number): void {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  p.write(addr, new Uint8Array(a.buffer));
}

/** Load `n` ints at addr. */
export function readInts(p: Process, addr: number, n: number): Int32Array {
  return new Int32Array(p.read(addr, n * 4).buffer);
}

/** for (i...) ASSERT_EQ(ptr[i], f(i)): the first mismatch fails the test. */
export function assertInts(p: Process, addr: number, n: number, f: (i: number) => number, what: string): void {
  const a = readInts(p, addr, n);
  for (let i = 0; i < n; i++) {
    const want = f(i) | 0;
    if (a[i] !== want) throw new SelftestFailure(`${what}: ptr[${i}] is ${a[i]}, expected ${want}`);
  }
}

/** The same check a page at a time, so that the CPU touches (and faults) the pages in order. */
export function assertIntsByPage(p: Process, addr: number, n: number, f: (i: number) => number, what: string): void {
  const per = PAGE_SIZE / 4;
  for (let base = 0; base < n; base += per) {
    const a = readInts(p, addr + base * 4, Math.min(per, n - base));
    for (let k = 0; k < a.length; k++) {
      const want = f(base + k) | 0;
      if (a[k] !== want) throw new SelftestFailure(`${what}: ptr[${base + k}] is ${a[k]}, expected ${want}`);
    }
  }
}

export function readInt(p: Process, addr: number): number {
  return p.readI32(addr);
}
export function writeInt(p: Process, addr: number, v: number): void {
  p.writeI32(addr, v);
}
