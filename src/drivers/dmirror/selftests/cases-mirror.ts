// hmm-tests.c, part 1: the device reading and writing system memory through its mirror
// (open_close .. file_write). Same names, steps and assertions as the kernel's tests.

import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE } from '../../../mm/constants.js';
import { ERRNO } from '../../../mm/errno.js';
import type { Process } from '../../../mm/process.js';
import { HMM_DMIRROR_READ, HMM_DMIRROR_WRITE } from '../uapi.js';
import { ASSERT_EQ, ASSERT_NE, SelftestFailure, TEST_F, type SelftestDef } from './harness.js';
import {
  ALIGN, assertInts, defaultHugePageSize, fillInts, HMM_BUFFER_SIZE, hmmBufferAlloc, hmmBufferFree, hmmCreateFile, hmmDmirrorCmd,
  hmmMigrateSysToDev, hmmOpen, madvise, MAP_FAILED, mmap, mprotect, munmap, readInt, readPmdPagesize, TWOMEG,
} from './lib.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/**
 * fork()'s child side: run `body` in the child, which ends with _exit(0). A failed assertion
 * in the child kills it, which the parent's waitpid check turns into a failure.
 */
export async function inChild(child: Process, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (child.alive) child.exit();
    throw new SelftestFailure(`child ${child.pid} did not exit normally: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (child.alive) child.exit(); // _exit(0)
}

export const mirrorTests: SelftestDef[] = [
  // Simple NULL test of device open/close.
  TEST_F('hmm', 'open_close', async () => {}),

  // Read private anonymous memory.
  TEST_F('hmm', 'anon_read', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    // Initialize the buffer but leave the first two pages zero (pte_none and the zero page).
    const first = (2 * t.pageSize) / 4;
    fillInts(p, buffer.ptr + first * 4, size / 4 - first, (k) => first + k);
    ASSERT_EQ(mprotect(p, buffer.ptr, size, PROT_READ), 0);
    // Populate the CPU page table with the zero page.
    ASSERT_EQ(readInt(p, buffer.ptr + t.pageSize), 0);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_READ, buffer, npages);
    ASSERT_EQ(ret, 0, 'READ');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.mirror, size / 4, (i) => (i < first ? 0 : i), 'mirror');
    hmmBufferFree(p, buffer);
  }),

  // Read private anonymous memory protected with mprotect(PROT_NONE).
  TEST_F('hmm', 'anon_read_prot', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    // Initialize the mirror so we can verify it is not written.
    fillInts(p, buffer.mirror, size / 4, (i) => -i);
    ASSERT_EQ(mprotect(p, buffer.ptr, size, PROT_NONE), 0);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_READ, buffer, npages);
    ASSERT_EQ(ret, -ERRNO.EFAULT, 'READ');
    // Allow the CPU to read the buffer so we can check it.
    ASSERT_EQ(mprotect(p, buffer.ptr, size, PROT_READ), 0);
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    assertInts(p, buffer.mirror, size / 4, (i) => -i, 'mirror');
    hmmBufferFree(p, buffer);
  }),

  // Write private anonymous memory.
  TEST_F('hmm', 'anon_write', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.mirror, size / 4, (i) => i);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_WRITE, buffer, npages);
    ASSERT_EQ(ret, 0, 'WRITE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    hmmBufferFree(p, buffer);
  }),

  // Write private anonymous memory protected with mprotect(PROT_READ).
  TEST_F('hmm', 'anon_write_prot', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, PROT_READ, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    // Simulate a device reading a zero page of memory.
    let ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_READ, buffer, 1);
    ASSERT_EQ(ret, 0, 'READ');
    ASSERT_EQ(buffer.cpages, 1, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    fillInts(p, buffer.mirror, size / 4, (i) => i);
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_WRITE, buffer, npages);
    ASSERT_EQ(ret, -ERRNO.EPERM, 'WRITE to a read-only mapping');
    assertInts(p, buffer.ptr, size / 4, () => 0, 'ptr');
    // Now allow writing and see that the zero page is replaced.
    ASSERT_EQ(mprotect(p, buffer.ptr, size, PROT_WRITE | PROT_READ), 0);
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_WRITE, buffer, npages);
    ASSERT_EQ(ret, 0, 'WRITE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    hmmBufferFree(p, buffer);
  }),

  // A device writing a private mapping a child inherited copies on write; the child reads the parent's data.
  TEST_F('hmm', 'anon_write_child', async (t) => {
    const p = t.proc;
    for (let migrate = 0; migrate < 2; ++migrate) {
      for (let useThp = 0; useThp < 2; ++useThp) {
        const npages = ALIGN(useThp ? readPmdPagesize() : HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
        ASSERT_NE(npages, 0);
        const size = npages << t.pageShift;
        const buffer = hmmBufferAlloc(p, size * 2, size);
        buffer.ptr = mmap(p, 0, size * 2, RW, ANON);
        ASSERT_NE(buffer.ptr, MAP_FAILED);
        const oldPtr = buffer.ptr;
        if (useThp) {
          const map = ALIGN(buffer.ptr, size);
          ASSERT_EQ(madvise(p, map, size, MADV_HUGEPAGE), 0);
          buffer.ptr = map;
        }
        fillInts(p, buffer.ptr, size / 4, (i) => i);
        fillInts(p, buffer.mirror, size / 4, (i) => -i);
        if (migrate) {
          const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
          ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
          ASSERT_EQ(buffer.cpages, npages, 'cpages');
        }
        const child = p.fork();
        await inChild(child, async () => {
          // Check that we see the parent's values.
          assertInts(child, buffer.ptr, size / 4, (i) => i, 'child ptr');
          if (!migrate) assertInts(child, buffer.mirror, size / 4, (i) => -i, 'child mirror');
          // The child needs its own mirror of its own mm.
          const childFd = hmmOpen(child, 0);
          const ret = await hmmDmirrorCmd(childFd, HMM_DMIRROR_WRITE, buffer, npages);
          ASSERT_EQ(ret, 0, 'child WRITE');
          ASSERT_EQ(buffer.cpages, npages, 'child cpages');
          ASSERT_EQ(buffer.faults, 1, 'child faults');
          if (!migrate) assertInts(child, buffer.ptr, size / 4, (i) => -i, 'child ptr after WRITE');
          await childFd.close();
        });
        // Parent, after waitpid: its buffer did not change.
        assertInts(p, buffer.ptr, size / 4, (i) => i, 'parent ptr');
        buffer.ptr = oldPtr;
        hmmBufferFree(p, buffer);
      }
    }
  }),

  // A device writing a shared mapping a child inherited does not copy on write.
  TEST_F('hmm', 'anon_write_child_shared', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, MAP_SHARED | MAP_ANONYMOUS);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    fillInts(p, buffer.mirror, size / 4, (i) => -i);
    const child = p.fork();
    await inChild(child, async () => {
      assertInts(child, buffer.ptr, size / 4, (i) => i, 'child ptr');
      assertInts(child, buffer.mirror, size / 4, (i) => -i, 'child mirror');
      const childFd = hmmOpen(child, 0);
      const ret = await hmmDmirrorCmd(childFd, HMM_DMIRROR_WRITE, buffer, npages);
      ASSERT_EQ(ret, 0, 'child WRITE');
      ASSERT_EQ(buffer.cpages, npages, 'child cpages');
      ASSERT_EQ(buffer.faults, 1, 'child faults');
      assertInts(child, buffer.ptr, size / 4, (i) => -i, 'child ptr after WRITE');
      await childFd.close();
    });
    // Parent, after waitpid: the buffer did change.
    assertInts(p, buffer.ptr, size / 4, (i) => -i, 'parent ptr');
    hmmBufferFree(p, buffer);
  }),

  // Write a private anonymous huge page.
  TEST_F('hmm', 'anon_write_huge', async (t) => {
    const p = t.proc;
    let size = 2 * readPmdPagesize();
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    size /= 2;
    const npages = size >> t.pageShift;
    const map = ALIGN(buffer.ptr, size);
    ASSERT_EQ(madvise(p, map, size, MADV_HUGEPAGE), 0);
    const oldPtr = buffer.ptr;
    buffer.ptr = map;
    fillInts(p, buffer.mirror, size / 4, (i) => i);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_WRITE, buffer, npages);
    ASSERT_EQ(ret, 0, 'WRITE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    buffer.ptr = oldPtr;
    hmmBufferFree(p, buffer);
  }),

  // Write a hugetlbfs page.
  TEST_F('hmm', 'anon_write_hugetlbfs', async (t) => {
    const p = t.proc;
    const size = ALIGN(TWOMEG, defaultHugePageSize());
    const npages = size >> t.pageShift;
    const ptr = mmap(p, 0, size, RW, ANON | MAP_HUGETLB);
    if (ptr === MAP_FAILED) t.skip('Huge page could not be allocated');
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = ptr;
    fillInts(p, buffer.mirror, size / 4, (i) => i);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_WRITE, buffer, npages);
    ASSERT_EQ(ret, 0, 'WRITE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    munmap(p, buffer.ptr, buffer.size);
    buffer.ptr = 0;
    hmmBufferFree(p, buffer);
  }),

  // Read mmap'ed file memory.
  TEST_F('hmm', 'file_read', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const fd = hmmCreateFile(t, size);
    const buffer = hmmBufferAlloc(p, size);
    buffer.fd = fd;
    // Write the initial contents of the file.
    fillInts(p, buffer.mirror, size / 4, (i) => i);
    ASSERT_EQ(fd.pwrite(p.read(buffer.mirror, size), 0), size, 'pwrite');
    p.write(buffer.mirror, new Uint8Array(size)); // memset(mirror, 0, size)
    buffer.ptr = mmap(p, 0, size, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_READ, buffer, npages);
    ASSERT_EQ(ret, 0, 'READ');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    hmmBufferFree(p, buffer);
  }),

  // Write mmap'ed file memory.
  TEST_F('hmm', 'file_write', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const fd = hmmCreateFile(t, size);
    const buffer = hmmBufferAlloc(p, size);
    buffer.fd = fd;
    buffer.ptr = mmap(p, 0, size, RW, MAP_SHARED, fd, 0);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.mirror, size / 4, (i) => i);
    const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_WRITE, buffer, npages);
    ASSERT_EQ(ret, 0, 'WRITE');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    ASSERT_EQ(buffer.faults, 1, 'faults');
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    // Check that the device also wrote the file.
    const data = fd.pread(size, 0);
    ASSERT_EQ(data.length, size, 'pread');
    p.write(buffer.mirror, data);
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'file');
    hmmBufferFree(p, buffer);
  }),
];
