// hmm-tests.c, part 4: huge pages and device memory (migrate_anon_huge_empty ..
// migrate_anon_huge_zero_err) and benchmark_thp_migration.

import {
  MADV_COLLAPSE, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_DONTUNMAP, MREMAP_FIXED,
  MREMAP_MAYMOVE, PROT_READ, PROT_WRITE,
} from '../../../mm/constants.js';
import { pagemap } from '../../../mm/pagemap.js';
import type { Process } from '../../../mm/process.js';
import {
  HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_FLAGS, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_SNAPSHOT,
} from '../uapi.js';
import { ASSERT_EQ, ASSERT_FALSE, ASSERT_NE, ASSERT_TRUE, hmmIsCoherentType, TEST_F, type HmmTest, type SelftestDef } from './harness.js';
import {
  ALIGN, assertInts, fillInts, hmmBufferAlloc, hmmBufferFree, hmmDmirrorCmd, hmmMigrateDevToSys, hmmMigrateSysToDev, madvise,
  MAP_FAILED, mmap, mremap, munmap, readInt, readPmdPagesize, TWOMEG,
} from './lib.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** memset(addr, 0xFF, size) */
function memsetFF(p: Process, addr: number, size: number): void {
  p.write(addr, new Uint8Array(size).fill(0xff));
}

/** The mapping of migrate_anon_huge_*: 2 x PMD size, with the aligned PMD advised for THP. */
function hugeSetup(t: HmmTest, prot: number): { buffer: ReturnType<typeof hmmBufferAlloc>; size: number; npages: number; map: number; oldPtr: number } {
  const p = t.proc;
  const size = readPmdPagesize();
  const buffer = hmmBufferAlloc(p, 2 * size, size);
  memsetFF(p, buffer.mirror, size);
  buffer.ptr = mmap(p, 0, 2 * size, prot, ANON);
  ASSERT_NE(buffer.ptr, MAP_FAILED);
  const npages = size >> t.pageShift;
  const map = ALIGN(buffer.ptr, size);
  ASSERT_EQ(madvise(p, map, size, MADV_HUGEPAGE), 0);
  const oldPtr = buffer.ptr;
  buffer.ptr = map;
  return { buffer, size, npages, map, oldPtr };
}

export const hugeTests: SelftestDef[] = [
  // Migrate a private anonymous huge page range that was never touched.
  TEST_F('hmm', 'migrate_anon_huge_empty', async (t) => {
    const p = t.proc;
    const { buffer, size, npages, oldPtr } = hugeSetup(t, PROT_READ);
    const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, () => 0, 'mirror');
    buffer.ptr = oldPtr;
    hmmBufferFree(p, buffer);
  }),

  // Migrate the huge zero page.
  TEST_F('hmm', 'migrate_anon_huge_zero', async (t) => {
    const p = t.proc;
    const { buffer, size, npages, oldPtr } = hugeSetup(t, PROT_READ);
    // Map the read-only huge zero page.
    ASSERT_EQ(readInt(p, buffer.ptr), 0);
    const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, () => 0, 'mirror');
    // Fault the pages back to system memory and check them.
    assertInts(p, buffer.ptr, size / 4, () => 0, 'ptr');
    buffer.ptr = oldPtr;
    hmmBufferFree(p, buffer);
  }),

  // Migrate a THP and free it (MADV_FREE).
  TEST_F('hmm', 'migrate_anon_huge_free', async (t) => {
    const p = t.proc;
    const { buffer, size, npages, map, oldPtr } = hugeSetup(t, RW);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    ASSERT_EQ(madvise(p, map, size, MADV_FREE), 0, 'MADV_FREE');
    buffer.ptr = oldPtr;
    hmmBufferFree(p, buffer);
  }),

  // Migrate a collapsed THP and fault it back.
  TEST_F('hmm', 'migrate_anon_huge_fault', async (t) => {
    const p = t.proc;
    const size = readPmdPagesize();
    const buffer = hmmBufferAlloc(p, 2 * size, size);
    memsetFF(p, buffer.mirror, size);
    buffer.ptr = mmap(p, 0, 2 * size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    const npages = size >> t.pageShift;
    const map = ALIGN(buffer.ptr, size);
    const oldPtr = buffer.ptr;
    buffer.ptr = map;
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    ASSERT_EQ(madvise(p, map, size, MADV_COLLAPSE), 0, 'MADV_COLLAPSE');
    let ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    if (!hmmIsCoherentType(t.variant.deviceNumber)) {
      ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
      ASSERT_EQ(ret, 0, 'SNAPSHOT');
      ASSERT_EQ(buffer.cpages, npages, 'cpages');
      const m = p.read(buffer.mirror, npages);
      for (let i = 0; i < npages; ++i) {
        ASSERT_EQ(m[i], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD, `m[${i}]`);
      }
      for (let i = 0; i < npages; ++i) {
        const entry = pagemap(p.mm, buffer.ptr + i * t.pageSize);
        ASSERT_TRUE(entry.swapped, `pagemap[${i}] & PM_SWAP`);
        ASSERT_FALSE(entry.present, `PAGEMAP_PRESENT(pagemap[${i}])`);
      }
    }
    // Fault the pages back to system memory and check them.
    assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
    buffer.ptr = oldPtr;
    hmmBufferFree(p, buffer);
  }),

  // Migrate, unmap part of the range, and fault the rest back.
  TEST_F('hmm', 'migrate_partial_unmap_fault', async (t) => {
    const p = t.proc;
    const size = readPmdPagesize() || TWOMEG;
    const unmapSize = size / 2;
    const offsets = [0, size / 4, size / 2];
    for (let useThp = 0; useThp < 2; ++useThp) {
      for (let j = 0; j < offsets.length; ++j) {
        const buffer = hmmBufferAlloc(p, 2 * size, size);
        memsetFF(p, buffer.mirror, size);
        buffer.ptr = mmap(p, 0, 2 * size, RW, ANON);
        ASSERT_NE(buffer.ptr, MAP_FAILED);
        const npages = size >> t.pageShift;
        const map = ALIGN(buffer.ptr, size);
        ASSERT_EQ(madvise(p, map, size, useThp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE), 0);
        const oldPtr = buffer.ptr;
        buffer.ptr = map;
        fillInts(p, buffer.ptr, size / 4, (i) => i);
        const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
        ASSERT_EQ(ret, 0, `thp ${useThp} offset ${offsets[j]}: MIGRATE_TO_DEV`);
        ASSERT_EQ(buffer.cpages, npages, 'cpages');
        assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
        munmap(p, buffer.ptr + offsets[j]!, unmapSize);
        // Fault the pages back to system memory and check them.
        const lo = offsets[j]! / 4;
        const hi = (offsets[j]! + unmapSize) / 4;
        if (lo > 0) assertInts(p, buffer.ptr, lo, (i) => i, `thp ${useThp} offset ${offsets[j]}: ptr`);
        if (hi < size / 4) assertInts(p, buffer.ptr + hi * 4, size / 4 - hi, (k) => hi + k, `thp ${useThp} offset ${offsets[j]}: ptr`);
        buffer.ptr = oldPtr;
        hmmBufferFree(p, buffer);
      }
    }
  }),

  // mremap the range before or after migrating it, and fault it back at the new address.
  TEST_F('hmm', 'migrate_remap_fault', async (t) => {
    const p = t.proc;
    const size = readPmdPagesize() || TWOMEG;
    const offsets = [0, size / 4, size / 2];
    for (let before = 0; before < 2; ++before) {
      for (let dontUnmap = 0; dontUnmap < 2; ++dontUnmap) {
        for (let useThp = 0; useThp < 2; ++useThp) {
          for (let j = 0; j < offsets.length; ++j) {
            const what = `before ${before} dontunmap ${dontUnmap} thp ${useThp} offset ${offsets[j]}`;
            const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontUnmap ? MREMAP_DONTUNMAP : 0);
            const buffer = hmmBufferAlloc(p, 8 * size, size);
            memsetFF(p, buffer.mirror, size);
            buffer.ptr = mmap(p, 0, buffer.size, RW, ANON);
            ASSERT_NE(buffer.ptr, MAP_FAILED);
            const npages = size >> t.pageShift;
            const map = ALIGN(buffer.ptr, size);
            ASSERT_EQ(madvise(p, map, size, useThp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE), 0);
            const oldPtr = buffer.ptr;
            munmap(p, map + size, size * 2);
            buffer.ptr = map;
            fillInts(p, buffer.ptr, size / 4, (i) => i);
            let newPtr = 0;
            if (before) {
              newPtr = mremap(p, map, size, size, flags, map + size + offsets[j]!);
              ASSERT_NE(newPtr, MAP_FAILED, `${what}: mremap`);
              buffer.ptr = newPtr;
            }
            const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
            ASSERT_EQ(ret, 0, `${what}: MIGRATE_TO_DEV`);
            ASSERT_EQ(buffer.cpages, npages, `${what}: cpages`);
            assertInts(p, buffer.mirror, size / 4, (i) => i, `${what}: mirror`);
            if (!before) {
              newPtr = mremap(p, map, size, size, flags, map + size + offsets[j]!);
              ASSERT_NE(newPtr, MAP_FAILED, `${what}: mremap`);
              buffer.ptr = newPtr;
            }
            // Fault the pages back to system memory and check them.
            assertInts(p, buffer.ptr, size / 4, (i) => i, `${what}: ptr`);
            munmap(p, newPtr, size);
            buffer.ptr = oldPtr;
            hmmBufferFree(p, buffer);
          }
        }
      }
    }
  }),

  // Migrate a THP with allocation errors (FLAG_FAIL_ALLOC: the 4 KiB fallback).
  TEST_F('hmm', 'migrate_anon_huge_err', async (t) => {
    const p = t.proc;
    const size = readPmdPagesize();
    const buffer = hmmBufferAlloc(p, 2 * size, 2 * size);
    memsetFF(p, buffer.mirror, 2 * size);
    let oldPtr = mmap(p, 0, 2 * size, RW, ANON);
    ASSERT_NE(oldPtr, MAP_FAILED);
    const npages = size >> t.pageShift;
    let map = ALIGN(oldPtr, size);
    ASSERT_EQ(madvise(p, map, size, MADV_HUGEPAGE), 0);
    buffer.ptr = map;
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    // Migrate to the device but force a THP allocation error.
    let ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC);
    ASSERT_EQ(ret, 0, 'FLAGS');
    ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    // Try faulting back a single (PAGE_SIZE) page.
    ASSERT_EQ(readInt(p, buffer.ptr + 2048 * 4), 2048, 'ptr[2048]');
    // Unmap and remap the region to reset things.
    ASSERT_EQ(munmap(p, oldPtr, 2 * size), 0);
    oldPtr = mmap(p, 0, 2 * size, RW, ANON);
    ASSERT_NE(oldPtr, MAP_FAILED);
    map = ALIGN(oldPtr, size);
    ASSERT_EQ(madvise(p, map, size, MADV_HUGEPAGE), 0);
    buffer.ptr = map;
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    // Migrate the THP to the device.
    ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    // Force an allocation error when faulting back a THP resident in the device.
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC);
    ASSERT_EQ(ret, 0, 'FLAGS');
    ret = await hmmMigrateDevToSys(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_SYS');
    ASSERT_EQ(readInt(p, buffer.ptr + 2048 * 4), 2048, 'ptr[2048]');
    buffer.ptr = oldPtr;
    hmmBufferFree(p, buffer);
  }),

  // Migrate the huge zero page with allocation errors.
  TEST_F('hmm', 'migrate_anon_huge_zero_err', async (t) => {
    const p = t.proc;
    const size = readPmdPagesize();
    const buffer = hmmBufferAlloc(p, 2 * size, 2 * size);
    memsetFF(p, buffer.mirror, 2 * size);
    let oldPtr = mmap(p, 0, 2 * size, PROT_READ, ANON);
    ASSERT_NE(oldPtr, MAP_FAILED);
    const npages = size >> t.pageShift;
    let map = ALIGN(oldPtr, size);
    ASSERT_EQ(madvise(p, map, size, MADV_HUGEPAGE), 0);
    buffer.ptr = map;
    // Migrate to the device but force a THP allocation error.
    let ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC);
    ASSERT_EQ(ret, 0, 'FLAGS');
    ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, () => 0, 'mirror');
    // Try faulting back a single (PAGE_SIZE) page.
    const ptr = buffer.ptr;
    ASSERT_EQ(readInt(p, ptr + 2048 * 4), 0, 'ptr[2048]');
    // Unmap and remap the region to reset things.
    ASSERT_EQ(munmap(p, oldPtr, 2 * size), 0);
    oldPtr = mmap(p, 0, 2 * size, PROT_READ, ANON);
    ASSERT_NE(oldPtr, MAP_FAILED);
    map = ALIGN(oldPtr, size);
    ASSERT_EQ(madvise(p, map, size, MADV_HUGEPAGE), 0);
    buffer.ptr = map;
    // Map the huge zero page (through the old pointer, as the kernel's test does).
    ASSERT_EQ(readInt(p, ptr), 0, 'ptr[0]');
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC);
    ASSERT_EQ(ret, 0, 'FLAGS');
    ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    // Fault the device memory back and check it.
    assertInts(p, buffer.ptr, size / 4, () => 0, 'ptr');
    buffer.ptr = oldPtr;
    hmmBufferFree(p, buffer);
  }),
];
