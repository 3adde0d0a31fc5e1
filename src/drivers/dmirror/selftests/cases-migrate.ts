// hmm-tests.c, part 2: migration to device memory and back (migrate .. anon_teardown).

import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE } from '../../../mm/constants.js';
import { ERRNO, KernelError } from '../../../mm/errno.js';
import { checkInvariants } from '../../../mm/check.js';
import { Scheduler } from '../../../sched/scheduler.js';
import { SeededRandom } from '../../../sched/random.js';
import { HMM_DMIRROR_READ, HMM_DMIRROR_RELEASE } from '../uapi.js';
import { ASSERT_EQ, ASSERT_NE, hmmIsCoherentType, SelftestFailure, TEST_F, type SelftestDef } from './harness.js';
import {
  ALIGN, assertInts, fillInts, HMM_BUFFER_SIZE, hmmBufferAlloc, hmmBufferFree, hmmCreateFile, hmmDmirrorCmd, hmmMigrateDevToSys,
  hmmMigrateSysToDev, MAP_FAILED, mmap, mprotect, munmap, NTIMES, readInt, writeInt,
} from './lib.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

export const migrateTests: SelftestDef[] = [
  // Migrate anonymous memory to device memory.
  TEST_F('hmm', 'migrate', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    hmmBufferFree(p, buffer);
  }),

  // Migrate private file memory (its copy-on-write anonymous pages) to device memory.
  TEST_F('hmm', 'migrate_file_private', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const fd = hmmCreateFile(t, size);
    const buffer = hmmBufferAlloc(p, size);
    buffer.fd = fd;
    buffer.ptr = mmap(p, 0, size, RW, MAP_PRIVATE, fd, 0);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    hmmBufferFree(p, buffer);
  }),

  // Migrate, fault half of it back, then migrate the mix of system and device memory again.
  TEST_F('hmm', 'migrate_fault', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    let ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    // Fault half the pages back to system memory and check them.
    assertInts(p, buffer.ptr, size / 8, (i) => i, 'ptr');
    ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'second MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    hmmBufferFree(p, buffer);
  }),

  // Migrate, then release the device's memory (evicting it), and fault the pages in.
  TEST_F('hmm', 'migrate_release', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    fillInts(p, buffer.ptr, size / 4, (i) => i);
    let ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
    ASSERT_EQ(buffer.cpages, npages, 'cpages');
    assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
    ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_RELEASE, buffer, npages);
    ASSERT_EQ(ret, 0, 'RELEASE');
    assertInts(p, buffer.ptr, size / 8, (i) => i, 'ptr');
    hmmBufferFree(p, buffer);
  }),

  // Migrate anonymous shared memory: nothing can move.
  TEST_F('hmm', 'migrate_shared', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const buffer = hmmBufferAlloc(p, size);
    buffer.ptr = mmap(p, 0, size, RW, MAP_SHARED | MAP_ANONYMOUS);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    const ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
    ASSERT_EQ(ret, -ERRNO.ENOENT, 'MIGRATE_TO_DEV');
    hmmBufferFree(p, buffer);
  }),

  // Try to migrate various kinds of memory to device memory.
  TEST_F('hmm2', 'migrate_mixed', async (t) => {
    const p = t.proc;
    const npages = 6;
    const size = npages << t.pageShift;
    const ps = t.pageSize;
    const buffer = hmmBufferAlloc(p, size);
    // Reserve a range of addresses.
    buffer.ptr = mmap(p, 0, size, PROT_NONE, ANON);
    ASSERT_NE(buffer.ptr, MAP_FAILED);
    const base = buffer.ptr;
    // Migrating a protected area is an error.
    let ret = await hmmMigrateSysToDev(t.self.fd1, buffer, npages);
    ASSERT_EQ(ret, -ERRNO.EINVAL, 'MIGRATE_TO_DEV of PROT_NONE');
    // Punch a hole after the first page.
    ASSERT_EQ(munmap(p, base + ps, ps), 0);
    // An error is expected if the VMA does not cover the range.
    ret = await hmmMigrateSysToDev(t.self.fd1, buffer, 3);
    ASSERT_EQ(ret, -ERRNO.EINVAL, 'MIGRATE_TO_DEV across a hole');
    // Page 2 will be a read-only zero page.
    ASSERT_EQ(mprotect(p, base + 2 * ps, ps, PROT_READ), 0);
    const val = readInt(p, base + 2 * ps) + 3;
    ASSERT_EQ(val, 3);
    // Page 3 will be read-only.
    ASSERT_EQ(mprotect(p, base + 3 * ps, ps, RW), 0);
    writeInt(p, base + 3 * ps, val);
    ASSERT_EQ(mprotect(p, base + 3 * ps, ps, PROT_READ), 0);
    // Pages 4-5 will be read-write.
    ASSERT_EQ(mprotect(p, base + 4 * ps, 2 * ps, RW), 0);
    writeInt(p, base + 4 * ps, val);
    writeInt(p, base + 5 * ps, val);
    // Now try to migrate pages 2-5 to device 1.
    buffer.ptr = base + 2 * ps;
    ret = await hmmMigrateSysToDev(t.self.fd1, buffer, 4);
    ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV of pages 2-5');
    ASSERT_EQ(buffer.cpages, 4, 'cpages');
    // Page 5 will not migrate to device 0: it is on device 1.
    buffer.ptr = base + 5 * ps;
    ret = await hmmMigrateSysToDev(t.self.fd0, buffer, 1);
    ASSERT_EQ(ret, -ERRNO.ENOENT, 'MIGRATE_TO_DEV of a page on the other device');
    buffer.ptr = base;
    hmmBufferFree(p, buffer);
  }),

  // Migrate to device memory and back many times: through CPU faults for private memory, with
  // MIGRATE_TO_SYS for coherent memory (the CPU reads it in place, without faulting).
  TEST_F('hmm', 'migrate_multiple', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    for (let c = 0; c < NTIMES; c++) {
      const buffer = hmmBufferAlloc(p, size);
      buffer.ptr = mmap(p, 0, size, RW, ANON);
      ASSERT_NE(buffer.ptr, MAP_FAILED);
      fillInts(p, buffer.ptr, size / 4, (i) => i);
      let ret = await hmmMigrateSysToDev(t.self.fd, buffer, npages);
      ASSERT_EQ(ret, 0, 'MIGRATE_TO_DEV');
      ASSERT_EQ(buffer.cpages, npages, 'cpages');
      assertInts(p, buffer.mirror, size / 4, (i) => i, 'mirror');
      if (hmmIsCoherentType(t.variant.deviceNumber)) {
        ret = await hmmMigrateDevToSys(t.self.fd, buffer, npages);
        ASSERT_EQ(ret, 0, 'MIGRATE_TO_SYS');
        ASSERT_EQ(buffer.cpages, npages, 'cpages');
      }
      assertInts(p, buffer.ptr, size / 4, (i) => i, 'ptr');
      hmmBufferFree(p, buffer);
    }
  }),

  // Read anonymous memory many times.
  TEST_F('hmm', 'anon_read_multiple', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    for (let c = 0; c < NTIMES; c++) {
      const buffer = hmmBufferAlloc(p, size);
      buffer.ptr = mmap(p, 0, size, RW, ANON);
      ASSERT_NE(buffer.ptr, MAP_FAILED);
      fillInts(p, buffer.ptr, size / 4, (i) => i + c);
      const ret = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_READ, buffer, npages);
      ASSERT_EQ(ret, 0, 'READ');
      ASSERT_EQ(buffer.cpages, npages, 'cpages');
      ASSERT_EQ(buffer.faults, 1, 'faults');
      assertInts(p, buffer.mirror, size / 4, (i) => i + c, 'mirror');
      hmmBufferFree(p, buffer);
    }
  }),

  // Read anonymous memory while another thread unmaps half of it. The thread and the device's
  // read run as tasks of the deterministic scheduler: iteration c uses seed (opts.seed ?? 1) + c,
  // and the thread waits a random number of preemption points (hmm_nanosleep(random % 32000))
  // before its munmap, so the iterations hit different points of the read.
  TEST_F('hmm', 'anon_teardown', async (t) => {
    const p = t.proc;
    const npages = ALIGN(HMM_BUFFER_SIZE, t.pageSize) >> t.pageShift;
    ASSERT_NE(npages, 0);
    const size = npages << t.pageShift;
    const seed0 = t.opts.seed ?? 1;
    for (let c = 0; c < NTIMES; ++c) {
      const buffer = hmmBufferAlloc(p, size);
      buffer.ptr = mmap(p, 0, size, RW, ANON);
      ASSERT_NE(buffer.ptr, MAP_FAILED);
      fillInts(p, buffer.ptr, size / 4, (i) => i + c);
      const sched = new Scheduler(seed0 + c);
      const random = SeededRandom.of(seed0 + c).split(); // independent of the scheduler's stream
      sched.spawn('unmap_buffer', async (task) => {
        const delay = random.below(64);
        for (let k = 0; k < delay; k++) await task.yield('nanosleep');
        munmap(p, buffer.ptr + buffer.size / 2, buffer.size / 2);
        buffer.ptr = 0;
      });
      let rc: number | undefined;
      sched.spawn('read', async (task) => {
        rc = await hmmDmirrorCmd(t.self.fd, HMM_DMIRROR_READ, buffer, npages, task);
      });
      try {
        await sched.run(); // pthread_join
      } catch (e) {
        throw new SelftestFailure(`seed ${seed0 + c}: ${e instanceof KernelError ? 'unexpected error' : 'crash'}: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (rc === 0) {
        ASSERT_EQ(buffer.cpages, npages, `seed ${seed0 + c}: cpages`);
        ASSERT_EQ(buffer.faults, 1, `seed ${seed0 + c}: faults`);
        assertInts(p, buffer.mirror, size / 4, (i) => i + c, `seed ${seed0 + c}: mirror`);
      }
      // Whatever the interleaving, the machine is left consistent.
      const errors = checkInvariants(t.machine);
      if (errors.length) throw new SelftestFailure(`seed ${seed0 + c}: ${errors[0]}`);
      hmmBufferFree(p, buffer);
    }
  }),
];
