// The scenarios `hmmsim check` runs a driver through. Each starts from World.boot (a process
// with a two-page buffer p0, p1 written by the CPU, the device probed and attached to it) and
// spawns threads: first the device thread(s), which access the buffer through the mirror and
// end by detaching, then the adversaries, which change the address space under them. Thread
// ids follow spawn order: they are the letters of the schedule token (a = the device thread).

import { PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.js';
import type { World } from './world.js';

export interface Scenario {
  readonly name: string;
  /** What the adversary does, for --help and the docs. */
  readonly description: string;
  /** Needs CheckMirror.migrateToDevice (skipped for a driver without it). */
  readonly needsMigration?: boolean;
  /** Set up the world (boot, attach) and spawn the threads. */
  build(w: World): Promise<void>;
}

const P = PAGE_SIZE;
const R = false;
const W = true;

/** The device thread (thread a): its accesses in order, as (page of the buffer, write), then detach. */
function spawnDevice(w: World, accesses: ReadonlyArray<readonly [page: number, write: boolean]>): void {
  const m = w.mirrors[0]!;
  w.sched.spawn('device', async (t) => {
    for (const [page, write] of accesses) await w.deviceAccess(t, m, w.buf + page * P, write);
    await w.detach(t, m);
  });
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'munmap',
    description: 'the CPU unmaps the buffer while the device faults it in, then maps fresh memory at the same place',
    async build(w) {
      await w.boot();
      spawnDevice(w, [[0, R], [1, R]]);
      w.sched.spawn('cpu', async (t) => {
        await w.munmap(t, w.proc, w.buf, 2);
        await w.mmapFixed(t, w.proc, w.buf, 2);
        await w.cpuWrite(t, w.proc, w.buf);
      });
    },
  },
  {
    name: 'mprotect',
    description: 'the CPU makes the buffer read-only and writable again while the device reads and writes it',
    async build(w) {
      await w.boot();
      spawnDevice(w, [[0, R], [0, W], [1, W]]);
      w.sched.spawn('cpu', async (t) => {
        await w.mprotect(t, w.proc, w.buf, 2, PROT_READ);
        await w.mprotect(t, w.proc, w.buf, 2, PROT_READ | PROT_WRITE);
      });
    },
  },
  {
    name: 'madvise',
    description: 'the CPU drops the buffer\'s pages (madvise DONTNEED) and writes one again',
    async build(w) {
      await w.boot();
      spawnDevice(w, [[0, R], [1, R]]);
      w.sched.spawn('cpu', async (t) => {
        await w.madviseDontneed(t, w.proc, w.buf, 2);
        await w.cpuWrite(t, w.proc, w.buf + P);
      });
    },
  },
  {
    name: 'fork',
    description: 'the process forks (its pages become copy-on-write), writes p0 (breaking COW) and the child exits',
    async build(w) {
      await w.boot();
      spawnDevice(w, [[0, R], [0, W], [1, R]]);
      w.sched.spawn('cpu', async (t) => {
        const child = await w.fork(t, w.proc);
        await w.cpuWrite(t, w.proc, w.buf);
        if (child) await w.exit(t, child);
      });
    },
  },
  {
    name: 'mremap',
    description: 'the CPU moves the buffer elsewhere (mremap MAYMOVE|FIXED) and writes it there',
    async build(w) {
      await w.boot();
      const to = w.buf - 64 * P;
      spawnDevice(w, [[0, R], [1, R]]);
      w.sched.spawn('cpu', async (t) => {
        await w.mremap(t, w.proc, w.buf, 2, to);
        await w.cpuWrite(t, w.proc, to);
      });
    },
  },
  {
    name: 'reclaim',
    description: 'reclaim swaps the buffer out (try_to_unmap) and the CPU reads it back in',
    async build(w) {
      await w.boot();
      spawnDevice(w, [[0, R], [1, W]]);
      w.sched.spawn('cpu', async (t) => {
        await w.swapOut(t, w.proc, w.buf);
        await w.swapOut(t, w.proc, w.buf + P);
        await w.cpuRead(t, w.proc, w.buf);
      });
    },
  },
  {
    name: 'migrate',
    description: 'another device migrates the buffer into its memory (preemptible between migrate_vma\'s phases); the CPU touches it back',
    async build(w) {
      await w.boot();
      w.otherDevice();
      spawnDevice(w, [[0, R], [0, W], [1, R]]);
      w.sched.spawn('other', async (t) => {
        await w.otherMigrate(t, w.proc, w.buf, 2);
      });
      w.sched.spawn('cpu', async (t) => {
        await w.cpuRead(t, w.proc, w.buf);
        await w.cpuWrite(t, w.proc, w.buf + P);
      });
    },
  },
  {
    name: 'exit',
    description: 'the process exits while the device uses its memory',
    async build(w) {
      await w.boot();
      spawnDevice(w, [[0, R], [1, W]]);
      w.sched.spawn('cpu', async (t) => {
        await w.exit(t, w.proc);
      });
    },
  },
  {
    name: 'fork-mirror',
    description: 'the parent migrated the buffer to device memory and forked; parent and child are each mirrored on the device, and the child\'s CPU touches the shared device pages (migrate_to_ram moves them back for both)',
    needsMigration: true,
    async build(w) {
      await w.boot();
      const parent = w.mirrors[0]!;
      await parent.mirror.migrateToDevice!(w.buf, 2, w.ctx(null));
      const child = w.forkNow(w.proc);
      const m = await w.attach(child, 'child mirror');
      w.sched.spawn('device', async (t) => {
        await w.deviceAccess(t, m, w.buf, false);
        await w.deviceAccess(t, m, w.buf + P, false);
        await w.detach(t, m);
        await w.detach(t, parent);
      });
      w.sched.spawn('cpu', async (t) => {
        await w.cpuRead(t, child, w.buf);
        await w.cpuWrite(t, child, w.buf + P);
      });
    },
  },
];

export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
