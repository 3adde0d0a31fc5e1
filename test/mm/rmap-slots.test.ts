import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EventBus } from '../../src/mm/events.js';
import { PhysMem } from '../../src/mm/physmem.js';
import { Rmap } from '../../src/mm/rmap.js';

describe('rmap storage (two inline slots, then a map)', () => {
  it('behaves as a multiset of (mm, key) per frame under any add/remove/move sequence', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(2), fc.integer({ min: 1, max: 3 }), fc.nat(4), fc.nat(4)), { maxLength: 60 }), (ops) => {
        const phys = new PhysMem(1 << 20, new EventBus());
        const rmap = new Rmap(phys);
        const ref = new Map<number, string[]>();
        for (const [op, mm, key, key2] of ops) {
          const pfn = 5;
          const list = ref.get(pfn) ?? [];
          const id = `${mm}:${key}`;
          if (op === 0 && !list.includes(id)) {
            rmap.add(pfn, mm, key);
            list.push(id);
          } else if (op === 1 && list.includes(id)) {
            rmap.remove(pfn, mm, key);
            list.splice(list.indexOf(id), 1);
          } else if (op === 2 && list.includes(id) && !list.includes(`${mm}:${key2}`)) {
            rmap.move(pfn, mm, key, key2);
            list[list.indexOf(id)] = `${mm}:${key2}`;
          }
          ref.set(pfn, list);
          const e = rmap.entries(pfn);
          const got: string[] = [];
          for (let i = 0; i < e.length; i += 2) got.push(`${e[i]}:${e[i + 1]}`);
          expect(got.sort()).toEqual([...list].sort());
          expect(rmap.count(pfn)).toBe(list.length);
        }
      }),
    );
  });

  it('removing an entry that is not there is a bug, reported loudly', () => {
    const rmap = new Rmap(new PhysMem(1 << 20, new EventBus()));
    rmap.add(3, 1, 8);
    expect(() => rmap.remove(3, 2, 8)).toThrow(/no entry/);
  });
});
