// An mm operation called from inside a notifier callback of the same mm: EDEADLK (the callback
// runs under the mmap lock the operation would take), nothing changed, nothing left stuck.
import { describe, expect, it } from 'vitest';
import {
  blocking, MADV_DONTNEED, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin,
  mmuIntervalSetSeq, MmuNotifier, mmuNotifierRegister, MREMAP_MAYMOVE, PROT_READ, type Process, getUserPages,
  makeDeviceExclusive, migrateVmaSetup, migrateVmaPages, migrateVmaFinalize, newMigrateVma, MIGRATE_VMA_SELECT_SYSTEM,
} from '../../src/index.js';
import { ANON, errnoOf, expectConsistent, fill, P, pm, RW, setup, snapshot } from './helpers.js';

describe('mm operations from inside a callback of the same mm: EDEADLK (the mmap lock), nothing changed, nothing stuck', () => {
  // Each inner call runs inside an invalidate callback of an munmap of page 0; the kernel
  // would deadlock on the mmap lock the caller holds. Page 2 is the inner call's target,
  // page 0 the very range being invalidated.
  const inner: Array<[string, (p: Process, a: number) => unknown]> = [
    ['munmap of the range being invalidated', (p, a) => p.munmap(a, P)],
    ['munmap', (p, a) => p.munmap(a + 2 * P, P)],
    ['mprotect', (p, a) => p.mprotect(a + 2 * P, P, PROT_READ)],
    ['mremap', (p, a) => p.mremap(a + 2 * P, P, 2 * P, MREMAP_MAYMOVE)],
    ['madvise', (p, a) => p.madvise(a + 2 * P, P, MADV_DONTNEED)],
    ['mmap', (p) => p.mmap(0, P, RW, ANON)],
    ['fork', (p) => p.fork()],
    ['exit', (p) => p.exit()],
    ['a CPU access (the fault path)', (p, a) => p.writeU8(a + 3 * P, 1)],
    ['get_user_pages', (p, a) => getUserPages(p.mm, a + 2 * P, 1)],
    ['make_device_exclusive', (p, a) => makeDeviceExclusive(p.mm, a + 2 * P, null)],
    ['migrate_vma_setup', (p, a) => migrateVmaSetup(newMigrateVma(p.mm.findVma(a + 2 * P)!, a + 2 * P, a + 3 * P, MIGRATE_VMA_SELECT_SYSTEM, null))],
  ];
  for (const [name, call] of inner) {
    for (const kind of ['interval', 'classic'] as const) {
      it(`${name} from a ${kind} callback: EDEADLK before anything changes; the outer munmap completes`, () => {
        const { m, p } = setup();
        const a = p.mmap(0, 4 * P, RW, ANON);
        fill(p, a, 3 * P, 7);
        const got: string[] = [];
        let done = false;
        const once = (): void => {
          if (done) return;
          done = true;
          const before = snapshot(m);
          got.push(errnoOf(() => call(p, a)));
          expect(snapshot(m)).toEqual(before);
        };
        const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), kind === 'interval' && once(), true) });
        mmuIntervalNotifierInsert(sub, p.mm, a, 4 * P);
        if (kind === 'classic') mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: once }), p.mm);
        p.munmap(a, P);
        expect(got).toEqual(['EDEADLK']);
        expect(pm(p, a).kind).toBe('none');
        expect(p.mm.notifiers.invalidating).toBe(false);
        expect(typeof mmuIntervalReadBegin(sub)).toBe('number');
        mmuIntervalNotifierRemove(sub); // does not block
        expect(sub.mm).toBeNull();
        expectConsistent(m);
        expect(p.readU8(a + 2 * P)).toBe(7);
      });
    }
  }

  it('migrate_vma_pages and migrate_vma_finalize from a callback: EDEADLK; the migration finishes afterwards', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 3);
    const args = newMigrateVma(p.mm.findVma(a)!, a + 2 * P, a + 3 * P, MIGRATE_VMA_SELECT_SYSTEM, null);
    migrateVmaSetup(args);
    const got: string[] = [];
    mmuNotifierRegister(new MmuNotifier({
      invalidateRangeStart: () => void got.push(errnoOf(() => migrateVmaPages(args)), errnoOf(() => migrateVmaFinalize(args))),
    }), p.mm);
    p.munmap(a, P);
    expect(got).toEqual(['EDEADLK', 'EDEADLK']);
    migrateVmaFinalize(args); // nothing moved: the page is restored
    expect(p.readU8(a + 2 * P)).toBe(3);
    expectConsistent(m);
  });

  it('a callback that lets EDEADLK go (munmap of its own range): the outer munmap fails with it, and nothing is left invalidating', async () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, ANON);
    fill(p, a, 4 * P, 5);
    let armed = true;
    const sub = new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        mmuIntervalSetSeq(s, seq);
        if (armed) {
          armed = false;
          p.munmap(r.start, r.end - r.start);
        }
        return true;
      },
    });
    mmuIntervalNotifierInsert(sub, p.mm, a, 4 * P);
    expect(errnoOf(() => p.munmap(a, P))).toBe('EDEADLK');
    expect(p.mm.notifiers.invalidating).toBe(false);
    expect(p.readU8(a)).toBe(5); // the outer munmap stopped at its invalidation: the page is still there
    expect(typeof mmuIntervalReadBegin(sub)).toBe('number');
    await blocking(() => mmuIntervalNotifierRemove(sub));
    p.munmap(a, 4 * P);
    expectConsistent(m);
  });

  it('exit completes even when a release callback throws; the error comes out afterwards', () => {
    const { m, p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    mmuNotifierRegister(new MmuNotifier({ release: () => { throw new Error('driver bug'); } }), p.mm);
    const mm = p.mm;
    expect(() => p.exit()).toThrow('driver bug');
    expect(mm.dead).toBe(true);
    expect(p.alive).toBe(false);
    expect(m.phys.usedRamFrames).toBe(0);
    expectConsistent(m);
  });

  it('operations from a release callback at exit: ESRCH (the mm has no users any more)', () => {
    const { p } = setup();
    const a = p.mmap(0, P, RW, ANON);
    const got: string[] = [];
    mmuNotifierRegister(new MmuNotifier({ release: () => void got.push(errnoOf(() => p.munmap(a, P)), errnoOf(() => p.fork())) }), p.mm);
    p.exit();
    expect(got).toEqual(['ESRCH', 'ESRCH']);
  });

  it('an operation on another mm from a callback is fine (each mm has its own mmap lock)', () => {
    const { m, p } = setup();
    const q = m.spawn();
    const b = q.mmap(0, P, RW, ANON);
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    mmuNotifierRegister(new MmuNotifier({ invalidateRangeStart: () => q.writeU8(b, 9) }), p.mm);
    p.munmap(a, P);
    expect(q.readU8(b)).toBe(9);
  });
});
