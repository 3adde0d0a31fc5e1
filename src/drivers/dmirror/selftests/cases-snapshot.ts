// hmm-tests.c, part 3: snapshots of the CPU page table, two devices, device-exclusive
// access, get_user_pages on device memory and copy-on-write of device pages
// (mixedmap .. hmm_cow_in_device).

import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE } from '../../../mm/constants.js';
import { ERRNO, KernelError } from '../../../mm/errno.js';
import { getUserPages, putUserPages, unpinUserPages } from '../../../mm/gup.js';
import type { Process } from '../../../mm/process.js';
import type { DmirrorFile } from '../file.js';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_PUD,
  HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_ZERO, HMM_DMIRROR_READ, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_WRITE,
} from '../uapi.js';
import { ASSERT_EQ, ASSERT_NE, ASSERT_TRUE, EXPECT_EQ, EXPECT_NE, hmmIsCoherentType, SelftestFailure, TEST_F, type SelftestDef } from './harness.js';
import {
  ALIGN, assertInts, defaultHugePageSize, fillInts, HMM_BUFFER_SIZE, hmmBufferAlloc, hmmBufferFree, hmmDmirrorCmd, hmmMigrateSysToDev,
  MAP_FAILED, mmap, mprotect, munmap, readInt, readInts, TWOMEG, writeInt,
} from './lib.js';
import { inChild } from './cases-mirror.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

// gup_test commands (mm/gup_test.h) and the FOLL_ flags the test passes.
const GUP_FAST_BENCHMARK = 1;
const PIN_FAST_BENCHMARK = 2;
const PIN_LONGTERM_BENCHMARK = 3;
const GUP_BASIC_TEST = 4;
const FOLL_WRITE = 0x01;
const FOLL_LONGTERM = 0x100;

/**
 * gup_test_exec: the gup_test module's ioctl, which takes references (or pins) on the pages
 * and drops them again. FOLL_WRITE is always set. Returns 0 or an errno.
 */
function gupTestExec(p: Process, addr: number, cmd: number, npages: number, flags: number): number {
  const gupFlags = FOLL_WRITE | flags;
  const pin = cmd === PIN_FAST_BENCHMARK || cmd === PIN_LONGTERM_BENCHMARK;
  const longterm = cmd === PIN_LONGTERM_BENCHMARK || (gupFlags & FOLL_LONGTERM) !== 0;
  try {
    const pages = getUserPages(p.mm, addr, npages, { write: (gupFlags & FOLL_WRITE) !== 0, pin, longterm });
    if (pin) unpinUserPages(p.mm, pages);
    else putUserPages(p.mm, pages);
    return 0;
  } catch (e) {
    if (e instanceof KernelError) return ERRNO[e.errno];
    throw e;
  }
}

/** mmap of the device file; MAP_FAILED on error. */
function mmapDevice(fd: DmirrorFile, length: number, prot: number, flags: number): number {
  try {
    return fd.mmap(0, length, prot, flags, 0);
  } catch (e) {
    if (e instanceof KernelError) return MAP_FAILED;
    throw e;
  }
}

/** Read every int, check it is i, and store i + 1 (ASSERT_EQ(ptr[i]++, i)), a page at a time. */
function incrementInts(p: Process, addr: number, n: number, what: string): void {
  const per = PAGE_SIZE / 4;
  for (let base = 0; base < n; base += per) {
    const a = readInts(p, addr + base * 4, Math.min(per, n - base));
    for (let k = 0; k < a.length; k++) {
      if (a[k] !== base + k) throw new SelftestFailure(`${what}: ptr[${base + k}] is ${a[k]}, expected ${base + k}`);
      a[k] = a[k]! + 1;
    }
    p.write(addr + base * 4, new Uint8Array(a.buffer));
  }
}

export const snapshotTests: SelftestDef[] = [
  // Snapshot a mapping of the device file itself (VM_MIXEDMAP).
  TEST_F('hmm', 'mixedmap', async (t) => {
    const p = t.proc;
    const npages = 1;
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size, npages);
    buffer.ptr = mmapDevice(t.self.fd, size, RW, MAP_PRIVATE);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
    ASSERT_EQ(ret, 0, 'SNAPSHOT');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(p.read(buffer.mirror, 1)[0], HMM_DMIRROR_PROT_READ, 'm[0]');
    hmmBufferFree(p, buffer);
  }),

  // Snapshot without faulting anything in: every kind of entry, and pages on both devices.
  TEST_F('hmm2', 'snapshot', async (t) => {
    const p = t.proc;
    const npages = 7;
    const size = npages << t.pageShift;
    const ps = t.pageSize;
    const buffer = hmmBufferAlloc(p, size, npages);
    buffer.ptr = mmap(p, 0, size, PROT_NONE, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    const base = buffer.ptr;
    // Punch a hole after the first page.
    ASSERT_EQ(munmap(p, base + ps, ps), 0);
    // Page 2 will be a read-only zero page.
    ASSERT_EQ(mprotect(p, base + 2 * ps, ps, PROT_READ), 0);
    const val = readInt(p, base + 2 * ps) + 3;
    ASSERT_EQ(val, 3);
    // Page 3 will be read-only.
    ASSERT_EQ(mprotect(p, base + 3 * ps, ps, RW), 0);
    writeInt(p, base + 3 * ps, val);
    ASSERT_EQ(mprotect(p, base + 3 * ps, ps, PROT_READ), 0);
    // Pages 4-6 will be read-write.
    ASSERT_EQ(mprotect(p, base + 4 * ps, 3 * ps, RW), 0);
    writeInt(p, base + 4 * ps, val);
    // Page 5 will be migrated to device 0.
    buffer.ptr = base + 5 * ps;
    let ret = await hmmMigrateSysToDev(t.self.fd0, buffer, 1);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV page 5');
    ASSERT_EQ(buffer.cpages, 1, 'cpages');
    // Page 6 will be migrated to device 1.
    buffer.ptr = base + 6 * ps;
    ret = await hmmMigrateSysToDev(t.self.fd1, buffer, 1);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV page 6');
    ASSERT_EQ(buffer.cpages, 1, 'cpages');
    // Simulate a device snapshotting the CPU page tables.
    buffer.ptr = base;
    ret = await hmmDmirrorCmd(t.self.fd0, HMM_DMIRROR_SNAPSHOT, buffer, npages);
    ASSERT_EQ(ret, 0, 'SNAPSHOT');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    const m = p.read(buffer.mirror, npages);
    ASSERT_EQ(m[0], HMM_DMIRROR_PROT_ERROR, 'm[0]');
    ASSERT_EQ(m[1], HMM_DMIRROR_PROT_ERROR, 'm[1]');
    ASSERT_EQ(m[2], HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ, 'm[2]');
    ASSERT_EQ(m[3], HMM_DMIRROR_PROT_READ, 'm[3]');
    ASSERT_EQ(m[4], HMM_DMIRROR_PROT_WRITE, 'm[4]');
    if (!hmmIsCoherentType(t.variant.deviceNumber0)) {
      ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE, 'm[5]');
      ASSERT_EQ(m[6], HMM_DMIRROR_PROT_NONE, 'm[6]');
    } else {
      ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, 'm[5]');
      ASSERT_EQ(m[6], HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | HMM_DMIRROR_PROT_WRITE, 'm[6]');
    }
    hmmBufferFree(p, buffer);
  }),

  // hmm_range_fault on a large page: every entry reports the PMD (or PUD) mapping.
  TEST_F('hmm', 'compound', async (t) => {
    const p = t.proc;
    const size = ALIGN(TWOMEG, defaultHugePageSize());
    const npages = size >> t.pageShift;
    const ptr = mmap(p, 0, size, RW, ANON | MAP_HUGETLB);
    if (ptr === MAP_FAILED) return;
    const buffer = hmmBufferAlloc(p, size, npages);
    buffer.ptr = ptr;
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    let ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
    ASSERT_EQ(ret, 0, 'SNAPSHOT');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    let m = p.read(buffer.mirror, npages);
    let prot = HMM_DMIRROR_PROT_WRITE | (m[0]! & HMM_DMIRROR_PROT_PUD ? HMM_DMIRROR_PROT_PUD : HMM_DMIRROR_PROT_PMD);
    for (let i = 0; i < npages; ++i) ASSERT_EQ(m[i], prot, `m[${i}]`);
    // Make the region read-only.
    ASSERT_EQ(mprotect(p, buffer.ptr, size, PROT_READ), 0);
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
    ASSERT_EQ(ret, 0, 'SNAPSHOT');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    m = p.read(buffer.mirror, npages);
    prot = HMM_DMIRROR_PROT_READ | (m[0]! & HMM_DMIRROR_PROT_PUD ? HMM_DMIRROR_PROT_PUD : HMM_DMIRROR_PROT_PMD);
    for (let i = 0; i < npages; ++i) ASSERT_EQ(m[i], prot, `m[${i}] after mprotect`);
    munmap(p, buffer.ptr, buffer.size);
    buffer.ptr = 0;
    hmmBufferFree(p, buffer);
  }),

  // Two devices reading the same memory (double mapped).
  TEST_F('hmm2', 'double_map', async (t) => {
    const p = t.proc;
    const npages = 6;
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    ASSERT_EQ(mprotect(p, buffer.ptr, size, PROT_READ), 0);
    let ret = await hmmDmirrorCmd(t.self.fd0, HMM_DMIRROR_READ, buffer, npages);
    ASSERT_EQ(ret, 0, 'READ device 0');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    ret = await hmmDmirrorCmd(t.self.fd1, HMM_DMIRROR_READ, buffer, npages);
    ASSERT_EQ(ret, 0, 'READ device 1');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    // Migrate the pages to device 1 and read them from device 0.
    ret = await hmmMigrateSysToDev(t.self.fd1, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV device 1');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ret = await hmmDmirrorCmd(t.self.fd0, HMM_DMIRROR_READ, buffer, npages);
    ASSERT_EQ(ret, 0, 'READ device 0 after the migration');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    hmmBufferFree(p, buffer);
  }),

  // Basic check of exclusive faulting.
  TEST_F('hmm', 'exclusive', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    let ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages);
    ASSERT_EQ(ret, 0, 'EXCLUSIVE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    // Fault the pages back to the CPU and check them.
    incrementInts(p, buffer.ptr, size / 4, 'ptr');
    assertInts(p, buffer.ptr, size / 4, (i) => i + 1, 'ptr after ++');
    // Check that atomic access was revoked.
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, buffer, npages);
    ASSERT_EQ(ret, 0, 'CHECK_EXCLUSIVE');
    hmmBufferFree(p, buffer);
  }),

  TEST_F('hmm', 'exclusive_mprotect', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    let ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages);
    ASSERT_EQ(ret, 0, 'EXCLUSIVE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    ASSERT_EQ(mprotect(p, buffer.ptr, size, PROT_READ), 0);
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_WRITE, buffer, npages);
    ASSERT_EQ(ret, -ERRNO.EPERM, 'WRITE');
    hmmBufferFree(p, buffer);
  }),

  // Check copy-on-write works.
  TEST_F('hmm', 'exclusive_cow', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages);
    ASSERT_EQ(ret, 0, 'EXCLUSIVE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    const child = p.fork();
    // The child verifies copy-on-write on its own, then _exit(0)s.
    await inChild(child, async () => {
      incrementInts(child, buffer.ptr, size / 4, 'child ptr');
      assertInts(child, buffer.ptr, size / 4, (i) => i + 1, 'child ptr after ++');
    });
    // The parent increments too, then waits for the child.
    incrementInts(p, buffer.ptr, size / 4, 'parent ptr');
    assertInts(p, buffer.ptr, size / 4, (i) => i + 1, 'parent ptr after ++');
    ASSERT_TRUE(!child.alive, 'waitpid: the child exited');
    hmmBufferFree(p, buffer);
  }),

  // get_user_pages of device pages (the gup_test module): plain GUP faults private pages back
  // to system memory; long-term pins migrate coherent pages out too.
  TEST_F('hmm', 'hmm_gup_test', async (t) => {
    const p = t.proc;
    const npages = 4;
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    let ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    ASSERT_EQ(gupTestExec(p, buffer.ptr, GUP_BASIC_TEST, 1, 0), 0, 'GUP_BASIC_TEST');
    ASSERT_EQ(gupTestExec(p, buffer.ptr + 1 * t.pageSize, GUP_FAST_BENCHMARK, 1, 0), 0, 'GUP_FAST_BENCHMARK');
    ASSERT_EQ(gupTestExec(p, buffer.ptr + 2 * t.pageSize, PIN_FAST_BENCHMARK, 1, FOLL_LONGTERM), 0, 'PIN_FAST_BENCHMARK');
    ASSERT_EQ(gupTestExec(p, buffer.ptr + 3 * t.pageSize, PIN_LONGTERM_BENCHMARK, 1, 0), 0, 'PIN_LONGTERM_BENCHMARK');
    // Take a snapshot of the CPU page tables.
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
    ASSERT_EQ(ret, 0, 'SNAPSHOT');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    const m = p.read(buffer.mirror, npages);
    if (hmmIsCoherentType(t.variant.deviceNumber)) {
      ASSERT_EQ(m[0], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, 'm[0]');
      ASSERT_EQ(m[1], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, 'm[1]');
    } else {
      ASSERT_EQ(m[0], HMM_DMIRROR_PROT_WRITE, 'm[0]');
      ASSERT_EQ(m[1], HMM_DMIRROR_PROT_WRITE, 'm[1]');
    }
    ASSERT_EQ(m[2], HMM_DMIRROR_PROT_WRITE, 'm[2]');
    ASSERT_EQ(m[3], HMM_DMIRROR_PROT_WRITE, 'm[3]');
    // The data is intact.
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    hmmBufferFree(p, buffer);
  }),

  // Copy-on-write of device pages: a write to a private device page migrates it back first,
  // then copies it; a coherent page is copied straight from device memory.
  TEST_F('hmm', 'hmm_cow_in_device', async (t) => {
    const p = t.proc;
    const npages = 4;
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    let ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    // The child waits for SIGKILL from the parent.
    const child = p.fork();
    // The parent writes the copy-on-write pages and gets copies in system memory.
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    // Terminate the child and wait for it.
    const killed = child.alive ? (child.exit(), 0) : -1;
    EXPECT_EQ(t, killed, 0, 'kill(pid, SIGKILL)');
    EXPECT_NE(t, child.alive, true, 'waitpid');
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
    ASSERT_EQ(ret, 0, 'SNAPSHOT');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    const m = p.read(buffer.mirror, npages);
    for (let i = 0; i < npages; i++) ASSERT_EQ(m[i], HMM_DMIRROR_PROT_WRITE, `m[${i}]`);
    hmmBufferFree(p, buffer);
  }),
];
