// pagemap (src/mm/pagemap.ts), modelled on /proc/pid/pagemap: PM_PRESENT, PM_SWAP, PM_FILE,
// PM_MMAP_EXCLUSIVE, the frame, plus the entry's write/dirty bits and the leaf order.
import { describe, expect, it } from 'vitest';
import { MADV_PAGEOUT, MAP_SHARED, pagemap, pagemapRange, TASK_SIZE_4LEVEL } from '../../src/index.js';
import { ANON, errnoOf, P, RW, setup, snapshot } from './helpers.js';

describe('pagemap', () => {
  it('reports none, zero, anon (exclusive or not), file, and swap entries page by page, changing nothing', () => {
    const { m, p } = setup();
    const f = m.fs.open('f');
    f.truncate(P);
    const a = p.mmap(0, 5 * P, RW, ANON);
    p.readU8(a + P);
    p.writeU8(a + 2 * P, 1);
    p.writeU8(a + 3 * P, 1);
    p.writeU8(a + 4 * P, 1);
    p.madvise(a + 4 * P, P, MADV_PAGEOUT);
    const c = p.fork();
    const s = p.mmap(0, P, RW, MAP_SHARED, f);
    p.writeU8(s, 1);
    c.writeU8(a + 3 * P, 2);
    const before = snapshot(m);
    const es = pagemapRange(p.mm, a, 5);
    expect(es.map((e) => [e.kind, e.present, e.swapped, e.exclusive, e.write])).toEqual([
      ['none', false, false, false, false],
      ['zero', true, false, false, false],
      ['anon', true, false, false, false], // shared with the child since fork
      ['anon', true, false, true, false], // the child copied its own: the parent's is mapped once again
      ['swap', false, true, false, false],
    ]);
    expect(es[1]!.pfn).toBe(m.phys.zeroPfn);
    expect(es[4]!.swapSlot).toBeGreaterThanOrEqual(0);
    expect(es[4]!.pfn).toBe(-1);
    expect(pagemap(p.mm, s)).toMatchObject({ kind: 'file', file: true, present: true, write: true, dirty: true, exclusive: true, pfn: f.pages.get(0) });
    expect(pagemap(p.mm, a + 2 * P + 123).pfn).toBe(es[2]!.pfn); // any address in the page
    expect(pagemap(p.mm, TASK_SIZE_4LEVEL + P).kind).toBe('none');
    expect(snapshot(m)).toEqual(before);
  });

  it('a bad address or count is EINVAL; an exited mm is ESRCH', () => {
    const { p } = setup();
    expect(errnoOf(() => pagemap(p.mm, -1))).toBe('EINVAL');
    expect(errnoOf(() => pagemap(p.mm, 0.5))).toBe('EINVAL');
    expect(errnoOf(() => pagemapRange(p.mm, 0, -1))).toBe('EINVAL');
    const mm = p.mm;
    p.exit();
    expect(errnoOf(() => pagemap(mm, 0))).toBe('ESRCH');
  });
});
