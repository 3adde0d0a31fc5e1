// Tracepoint-like events (src/mm/events.ts): fault, map, unmap, invalidate, free; and free of
// cost when nobody listens.
import { describe, expect, it } from 'vitest';
import {
  EventBus, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_FIXED, MAP_HUGETLB, MREMAP_MAYMOVE, PMD_SIZE, PROT_READ, type EventMap, type Machine,
} from '../../src/index.js';
import { ANON, fill, P, pm, RW, setup } from './helpers.js';

function record<K extends keyof EventMap>(m: Machine, kind: K): Array<EventMap[K]> {
  const out: Array<EventMap[K]> = [];
  m.events.subscribe(kind, (e) => void out.push(e));
  return out;
}

describe('events', () => {
  it('fault: one event per fault handled, with its kind, address and access; none for present pages', () => {
    const { m, p } = setup();
    const faults = record(m, 'fault');
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.readU8(a + 5 * P);
    p.readU8(a + 6 * P);
    p.writeU8(a + 5 * P + 3, 1);
    const h = p.mmap(0, PMD_SIZE, RW, ANON | MAP_HUGETLB);
    p.writeU8(h, 1);
    expect(faults.map((e) => [e.kind, e.addr - (e.kind === 'hugetlb' ? h : a), e.write, e.mmId, e.remote])).toEqual([
      ['huge-zero', 5 * P, false, p.mm.id, false],
      ['cow', 5 * P, true, p.mm.id, false], // the huge zero page split, then a 4 KiB copy
      ['hugetlb', 0, true, p.mm.id, false],
    ]);
  });

  it('map: every new mapping of a frame, with its size (fault, fork, THP)', () => {
    const { m, p } = setup();
    const maps = record(m, 'map');
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.writeU8(a, 1);
    const pfn = pm(p, a).pfn;
    const c = p.fork();
    p.madvise(a + PMD_SIZE / 2, P, MADV_HUGEPAGE); // no new mapping
    const t = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(t, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(t, 1);
    expect(maps.map((e) => [e.mmId, e.addr, e.pfn, e.nr])).toEqual([
      [p.mm.id, a, pfn, 1],
      [c.mm.id, a, pfn, 1],
      [p.mm.id, t, pm(p, t).pfn, 512],
    ]);
  });

  it('unmap: munmap, MADV_DONTNEED and mremap report the range and why', () => {
    const { m, p } = setup();
    const unmaps = record(m, 'unmap');
    const a = p.mmap(0, 4 * P, RW, ANON);
    p.madvise(a, P, MADV_DONTNEED);
    p.munmap(a + 3 * P, P);
    p.mmap(a + 3 * P, P, PROT_READ, ANON | MAP_FIXED); // no room to grow in place: mremap moves
    const n = p.mremap(a, 3 * P, 8 * P, MREMAP_MAYMOVE);
    expect(n).not.toBe(a);
    expect(unmaps.map((e) => [e.reason, e.start - a, e.end - a])).toEqual([
      ['madvise', 0, P], ['munmap', 3 * P, 4 * P], ['mremap', 0, 3 * P],
    ]);
    unmaps.length = 0;
    const b = p.mmap(0, 2 * P, RW, ANON);
    p.mm.oomReap();
    p.exit();
    expect(unmaps.map((e) => e.reason)).toEqual(['oom-reap', 'oom-reap', 'oom-reap', 'exit']); // n, the blocker, b; then exit
    expect(unmaps.some((e) => e.start === b && e.end === b + 2 * P)).toBe(true);
  });

  it('invalidate: start and end of each range, in order, even with no notifier subscribed', () => {
    const { m, p } = setup();
    const inv = record(m, 'invalidate');
    const a = p.mmap(0, P, RW, ANON);
    p.writeU8(a, 1);
    p.madvise(a, P, MADV_PAGEOUT);
    expect(inv.map((e) => `${e.phase} ${e.range.event} ${e.range.start - a}`)).toEqual(['start CLEAR 0', 'end CLEAR 0']);
  });

  it('free: each folio freed to the allocator once, with its order', () => {
    const { m, p } = setup();
    const frees = record(m, 'free');
    const a = p.mmap(0, PMD_SIZE, RW, ANON);
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.writeU8(a, 1);
    const head = pm(p, a).pfn;
    const s = p.mmap(0, P, RW, ANON);
    p.writeU8(s, 1);
    const small = pm(p, s).pfn;
    p.exit();
    const byPfn = (x: [number, number, boolean], y: [number, number, boolean]) => x[0] - y[0];
    expect(frees.map((e): [number, number, boolean] => [e.pfn, e.order, e.device]).sort(byPfn)).toEqual(([[head, 9, false], [small, 0, false]] as Array<[number, number, boolean]>).sort(byPfn));
  });

  it('free of cost when nobody listens: no event object is built or emitted; after unsubscribing neither', () => {
    const { m, p } = setup();
    let emitted = 0;
    const emit = m.events.emit.bind(m.events);
    m.events.emit = ((e: never) => (emitted++, emit(e))) as EventBus['emit'];
    const work = () => {
      const a = p.mmap(0, 4 * P, RW, ANON);
      fill(p, a, 4 * P, 1);
      const c = p.fork();
      c.writeU8(a, 2);
      p.madvise(a, P, MADV_PAGEOUT);
      p.readU8(a);
      c.exit();
      p.munmap(a, 4 * P);
    };
    work();
    expect(emitted).toBe(0);
    const off = m.events.subscribe('fault', () => {});
    work();
    expect(emitted).toBeGreaterThan(0);
    off();
    expect(m.events.on.fault).toBe(false);
    emitted = 0;
    work();
    expect(emitted).toBe(0);
  });

  it('two machines never share events', () => {
    const x = setup();
    const y = setup();
    const fx = record(x.m, 'fault');
    y.p.writeU8(y.p.mmap(0, P, RW, ANON), 1);
    expect(fx).toEqual([]);
  });
});
