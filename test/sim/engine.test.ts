import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Engine } from '../../src/sim/engine.js';

describe('sim engine', () => {
  it('runs events in time order, ties in scheduling order', () => {
    const e = new Engine();
    const seen: string[] = [];
    e.at(20, () => seen.push('b'));
    e.at(10, () => seen.push('a'));
    e.at(20, () => seen.push('c'));
    e.after(5, () => {
      seen.push('first');
      e.after(15, () => seen.push('d')); // at 20, after b and c
    });
    e.run();
    expect(seen).toEqual(['first', 'a', 'b', 'c', 'd']);
    expect(e.now()).toBe(20);
  });

  it('refuses an event in the past', () => {
    const e = new Engine();
    e.at(10, () => {});
    e.run();
    expect(() => e.at(5, () => {})).toThrow(RangeError);
    expect(() => e.after(-1, () => {})).toThrow(RangeError);
  });

  it('run(until) stops before later events and advances the clock', () => {
    const e = new Engine();
    let n = 0;
    e.at(10, () => n++);
    e.at(30, () => n++);
    expect(e.run(20)).toBe(1);
    expect(e.now()).toBe(20);
    expect(e.pending).toBe(1);
  });

  it('orders any set of events as a stable sort by time would', () => {
    fc.assert(fc.property(fc.array(fc.nat(50), { maxLength: 200 }), (times) => {
      const e = new Engine();
      const seen: number[] = [];
      times.forEach((t, i) => e.at(t, () => seen.push(i)));
      e.run();
      const want = times.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[1]);
      expect(seen).toEqual(want);
    }));
  });
});
