// The columns a record is made of (docs/visualizer.md): events, the entry changes each event
// made (as runs of pages with one state), and the frames in use after them. The recorder
// decides what goes in; this file only stores it, growing typed arrays, and encodes it.

import { type Compress, type Encoding, GrowColumn, encodeGrow } from './columns.js';
import { NONE, type RecordDoc } from './format.js';

export class RecordLog {
  // events
  readonly evType = new GrowColumn('u8');
  readonly evSub = new GrowColumn('u8');
  private readonly evTable = new GrowColumn('u16');
  private readonly evVpn = new GrowColumn('f64');
  private readonly evN = new GrowColumn('u32');
  private readonly evA = new GrowColumn('f64');
  private readonly evB = new GrowColumn('f64');
  private readonly evTime = new GrowColumn('f64');
  // entry changes
  private readonly dEvent = new GrowColumn('i32');
  private readonly dTable = new GrowColumn('u16');
  private readonly dVpn = new GrowColumn('f64');
  private readonly dN = new GrowColumn('u32');
  private readonly dState = new GrowColumn('u8');
  // frames in use
  private readonly fEvent = new GrowColumn('i32', 64);
  private readonly fMem = new GrowColumn('u8', 64);
  private readonly fUsed = new GrowColumn('u32', 64);
  /** Entry changes recorded before the last snapshot: a run never continues across one. */
  private deltasAtSnapshot = 0;

  /** now(): the simulated time each event carries, when the run has a clock. */
  constructor(private readonly now: (() => number) | null) {}

  /** Events recorded so far (the next event's id). */
  get events(): number {
    return this.evType.n;
  }

  /** Entry-change runs recorded so far. */
  get deltas(): number {
    return this.dEvent.n;
  }

  /** Frame-count changes recorded so far. */
  get frames(): number {
    return this.fEvent.n;
  }

  /** Entry-change runs since the last snapshot. */
  get deltasSinceSnapshot(): number {
    return this.dEvent.n - this.deltasAtSnapshot;
  }

  pushEvent(type: number, sub: number, table: number, vpn: number, n: number, a = NONE, b = NONE): void {
    this.evType.push(type);
    this.evSub.push(sub);
    this.evTable.push(table);
    this.evVpn.push(vpn);
    this.evN.push(Math.min(n, 0xffffffff));
    this.evA.push(a);
    this.evB.push(b);
    if (this.now) this.evTime.push(this.now());
  }

  /** Take back the last event (one that turned out to change nothing). */
  popEvent(): void {
    this.evType.n--;
    this.evSub.n--;
    this.evTable.n--;
    this.evVpn.n--;
    this.evN.n--;
    this.evA.n--;
    this.evB.n--;
    if (this.now) this.evTime.n--;
  }

  /** Page vpn of table has state now, a change made by the last event: extends the last run when it continues it. */
  pushDelta(table: number, vpn: number, state: number): void {
    const ev = this.evType.n - 1;
    if (this.dEvent.n > this.deltasAtSnapshot && this.dEvent.last === ev && this.dTable.last === table && this.dState.last === state
      && this.dVpn.last + this.dN.last === vpn && this.dN.last < 0xffffffff) {
      this.dN.last = this.dN.last + 1;
      return;
    }
    this.dEvent.push(ev);
    this.dTable.push(table);
    this.dVpn.push(vpn);
    this.dN.push(1);
    this.dState.push(state);
  }

  /** Memory mem has used frames in use after the last event. */
  pushFrames(mem: number, used: number): void {
    this.fEvent.push(this.evType.n - 1);
    this.fMem.push(mem);
    this.fUsed.push(used);
  }

  /** A snapshot was taken here: the runs after it start afresh. */
  snapshotTaken(): void {
    this.deltasAtSnapshot = this.dEvent.n;
  }

  encode(gz: Compress | null, enc: Encoding): Pick<RecordDoc, 'events' | 'deltas' | 'frames'> {
    const events: RecordDoc['events'] = {
      count: this.evType.n,
      type: encodeGrow(this.evType, false, gz, enc),
      sub: encodeGrow(this.evSub, false, gz, enc),
      table: encodeGrow(this.evTable, false, gz, enc),
      vpn: encodeGrow(this.evVpn, true, gz, enc),
      n: encodeGrow(this.evN, false, gz, enc),
      a: encodeGrow(this.evA, false, gz, enc),
      b: encodeGrow(this.evB, false, gz, enc),
    };
    if (this.now) events.time = encodeGrow(this.evTime, true, gz, enc);
    return {
      events,
      deltas: {
        count: this.dEvent.n,
        event: encodeGrow(this.dEvent, true, gz, enc),
        table: encodeGrow(this.dTable, false, gz, enc),
        vpn: encodeGrow(this.dVpn, true, gz, enc),
        n: encodeGrow(this.dN, false, gz, enc),
        state: encodeGrow(this.dState, false, gz, enc),
      },
      frames: {
        count: this.fEvent.n,
        event: encodeGrow(this.fEvent, true, gz, enc),
        memory: encodeGrow(this.fMem, false, gz, enc),
        used: encodeGrow(this.fUsed, false, gz, enc),
      },
    };
  }
}
