// The discrete-event engine: a priority queue of callbacks on simulated time (ns). Ties run
// in scheduling order (a sequence number breaks them), so a run depends only on its inputs
// and seed. The heap is kept in parallel arrays, so scheduling allocates no node object.

import type { EventQueue } from '../drivers/clock.js';

export class Engine implements EventQueue {
  private time = 0;
  private seq = 0;
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly fns: Array<() => void> = [];
  /** Events run so far. */
  executed = 0;

  now(): number {
    return this.time;
  }

  get pending(): number {
    return this.fns.length;
  }

  at(timeNs: number, fn: () => void): void {
    if (!(timeNs >= this.time)) throw new RangeError(`event at ${timeNs} ns is before now (${this.time} ns)`);
    this.push(timeNs, this.seq++, fn);
  }

  after(delayNs: number, fn: () => void): void {
    if (!(delayNs >= 0)) throw new RangeError(`negative delay ${delayNs} ns`);
    this.push(this.time + delayNs, this.seq++, fn);
  }

  /** Run the earliest event; false when there is none. */
  step(): boolean {
    if (this.fns.length === 0) return false;
    const t = this.times[0]!;
    const fn = this.fns[0]!;
    this.pop();
    this.time = t;
    this.executed++;
    fn();
    return true;
  }

  /** Run events until none is left or the next one is later than `untilNs`; returns the events run. */
  run(untilNs = Infinity): number {
    const before = this.executed;
    while (this.fns.length > 0 && this.times[0]! <= untilNs) this.step();
    if (untilNs !== Infinity && untilNs > this.time) this.time = untilNs;
    return this.executed - before;
  }

  private less(i: number, j: number): boolean {
    const ti = this.times[i]!;
    const tj = this.times[j]!;
    return ti < tj || (ti === tj && this.seqs[i]! < this.seqs[j]!);
  }

  private swap(i: number, j: number): void {
    const t = this.times[i]!;
    this.times[i] = this.times[j]!;
    this.times[j] = t;
    const s = this.seqs[i]!;
    this.seqs[i] = this.seqs[j]!;
    this.seqs[j] = s;
    const f = this.fns[i]!;
    this.fns[i] = this.fns[j]!;
    this.fns[j] = f;
  }

  private push(t: number, s: number, fn: () => void): void {
    let i = this.fns.length;
    this.times.push(t);
    this.seqs.push(s);
    this.fns.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private pop(): void {
    const last = this.fns.length - 1;
    if (last > 0) this.swap(0, last);
    this.times.pop();
    this.seqs.pop();
    this.fns.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.less(l, m)) m = l;
      if (r < last && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
}
