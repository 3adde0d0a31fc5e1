// A driver's interval subscription for the mainline row tests (mainline-rows.test.ts, notifier-rows.test.ts).
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq, type MmuNotifierRange, type Mm } from '../../src/index.js';

/** A driver's interval subscription that records every invalidation and keeps the sequence. */
export function subscribe(mm: Mm, start: number, length: number, onInvalidate?: (sub: MmuIntervalNotifier, r: MmuNotifierRange) => boolean | void) {
  const seen: MmuNotifierRange[] = [];
  const sub = new MmuIntervalNotifier({
    invalidate(s, r, seq) {
      seen.push(r);
      mmuIntervalSetSeq(s, seq);
      return onInvalidate?.(s, r) ?? true;
    },
  });
  mmuIntervalNotifierInsert(sub, mm, start, length);
  return { sub, seen };
}
