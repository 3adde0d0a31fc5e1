// The discrete-event engine: a priority queue of callbacks on simulated time (ns). Ties run
// in scheduling order (a sequence number breaks them), so a run depends only on its inputs
// and seed. The heap is kept in parallel arrays, so scheduling allocates no node object.

import type { EventQueue } from '../drivers/clock.js';

export class Engine implements EventQueue {
  private time = 0;
  private seq = 0;
  // The heap: times and sequence numbers in typed arrays grown by doubling, callbacks beside them.
  private times = new Float64Array(1024);
  private seqs = new Float64Array(1024);
  private readonly fns: Array<() => void> = [];
  private n = 0;
  /** Events run so far. */
  executed = 0;

  now(): number {
    return this.time;
  }

  get pending(): number {
    return this.n;
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
    if (this.n === 0) return false;
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
    while (this.n > 0 && this.times[0]! <= untilNs) this.step();
    if (untilNs !== Infinity && untilNs > this.time) this.time = untilNs;
    return this.executed - before;
  }

  // Sifts move a hole instead of swapping: each level costs one write per array.
  private push(t: number, s: number, fn: () => void): void {
    if (this.n === this.times.length) {
      const times = new Float64Array(this.n * 2);
      times.set(this.times);
      this.times = times;
      const seqs = new Float64Array(this.n * 2);
      seqs.set(this.seqs);
      this.seqs = seqs;
    }
    const times = this.times;
    const seqs = this.seqs;
    const fns = this.fns;
    let i = this.n++;
    fns.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const tp = times[p]!;
      if (tp < t || (tp === t && seqs[p]! < s)) break;
      times[i] = tp;
      seqs[i] = seqs[p]!;
      fns[i] = fns[p]!;
      i = p;
    }
    times[i] = t;
    seqs[i] = s;
    fns[i] = fn;
  }

  private pop(): void {
    const last = --this.n;
    const times = this.times;
    const seqs = this.seqs;
    const fns = this.fns;
    const t = times[last]!;
    const s = seqs[last]!;
    const fn = fns[last]!;
    fns.pop();
    if (last === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      let m = l;
      if (r < last && (times[r]! < times[l]! || (times[r] === times[l] && seqs[r]! < seqs[l]!))) m = r;
      const tm = times[m]!;
      if (t < tm || (t === tm && s < seqs[m]!)) break;
      times[i] = tm;
      seqs[i] = seqs[m]!;
      fns[i] = fns[m]!;
      i = m;
    }
    times[i] = t;
    seqs[i] = s;
    fns[i] = fn;
  }
}
