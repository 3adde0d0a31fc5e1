// MMU notifiers (mm/mmu_notifier.c): whole-mm subscriptions with invalidate_range_start/end
// and release, and interval subscriptions with the sequence protocol that hmm_range_fault
// users rely on. The core calls start before it changes any entry in [start, end) and end
// after; interval subscriptions are found through an interval tree, so an invalidation costs
// O(log n + matches) in the number of subscriptions.

import { fail, WouldBlock } from './errno.js';
import type { EventBus } from './events.js';
import type { Mm } from './mm.js';

export type MmuNotifyEvent =
  | 'UNMAP' | 'CLEAR' | 'PROTECTION_VMA' | 'PROTECTION_PAGE' | 'SOFT_DIRTY' | 'RELEASE' | 'MIGRATE' | 'EXCLUSIVE';

export const MMU_NOTIFIER_RANGE_BLOCKABLE = 1;
/** The end of a RELEASE range: all of the address space (ULONG_MAX in the kernel). */
export const MMU_RANGE_END_ALL = 2 ** 64;

/** struct mmu_notifier_range */
export interface MmuNotifierRange {
  readonly mm: Mm;
  readonly start: number;
  readonly end: number;
  readonly event: MmuNotifyEvent;
  readonly flags: number;
  /** Set for MIGRATE and EXCLUSIVE events: whoever started them (pgmap_owner, the exclusive owner). */
  readonly owner: unknown;
}

export function mmuNotifierRangeBlockable(range: MmuNotifierRange): boolean {
  return (range.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0;
}

// ---- classic subscriptions ----

export interface MmuNotifierOps {
  /** The mm is being torn down (exit_mmap), before any page is unmapped. */
  release?(sub: MmuNotifier, mm: Mm): void;
  /** Return false to refuse a non-blockable range (the operation then fails with EAGAIN). */
  invalidateRangeStart?(sub: MmuNotifier, range: MmuNotifierRange): boolean | void;
  invalidateRangeEnd?(sub: MmuNotifier, range: MmuNotifierRange): void;
}

export class MmuNotifier {
  mm: Mm | null = null;
  constructor(readonly ops: MmuNotifierOps) {}
}

// ---- interval subscriptions ----

export interface MmuIntervalNotifierOps {
  /**
   * Called before the CPU page tables change in [range.start, range.end). Must call
   * mmuIntervalSetSeq(sub, curSeq) under the driver lock and stop device access to the range.
   * May return false only when the range is not blockable.
   */
  invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, curSeq: number): boolean;
}

export class MmuIntervalNotifier {
  mm: Mm | null = null;
  start = 0;
  /** Inclusive last address, as the kernel keeps it. */
  last = 0;
  invalidateSeq = 0;
  /** Pending a deferred insert or removal (an invalidation was running). */
  deferred: 'insert' | 'remove' | null = null;
  constructor(readonly ops: MmuIntervalNotifierOps) {}
}

class ItNode {
  left: ItNode | null = null;
  right: ItNode | null = null;
  maxLast: number;
  readonly pri = Math.random();
  constructor(readonly sub: MmuIntervalNotifier, readonly id: number) {
    this.maxLast = sub.last;
  }
}

/** A treap keyed by (start, id), augmented with the subtree's largest `last`. */
class IntervalTree {
  private root: ItNode | null = null;
  private nextId = 1;
  private readonly nodes = new Map<MmuIntervalNotifier, ItNode>();
  get size(): number {
    return this.nodes.size;
  }

  private static fix(n: ItNode): void {
    let m = n.sub.last;
    if (n.left && n.left.maxLast > m) m = n.left.maxLast;
    if (n.right && n.right.maxLast > m) m = n.right.maxLast;
    n.maxLast = m;
  }
  private static less(a: ItNode, start: number, id: number): boolean {
    return a.sub.start < start || (a.sub.start === start && a.id < id);
  }
  /** Split into (< key, >= key). */
  private split(n: ItNode | null, start: number, id: number): [ItNode | null, ItNode | null] {
    if (!n) return [null, null];
    if (IntervalTree.less(n, start, id)) {
      const [l, r] = this.split(n.right, start, id);
      n.right = l;
      IntervalTree.fix(n);
      return [n, r];
    }
    const [l, r] = this.split(n.left, start, id);
    n.left = r;
    IntervalTree.fix(n);
    return [l, n];
  }
  private merge(a: ItNode | null, b: ItNode | null): ItNode | null {
    if (!a) return b;
    if (!b) return a;
    if (a.pri > b.pri) {
      a.right = this.merge(a.right, b);
      IntervalTree.fix(a);
      return a;
    }
    b.left = this.merge(a, b.left);
    IntervalTree.fix(b);
    return b;
  }
  insert(sub: MmuIntervalNotifier): void {
    const n = new ItNode(sub, this.nextId++);
    this.nodes.set(sub, n);
    const [l, r] = this.split(this.root, sub.start, n.id);
    this.root = this.merge(this.merge(l, n), r);
  }
  remove(sub: MmuIntervalNotifier): void {
    const n = this.nodes.get(sub);
    if (!n) return;
    this.nodes.delete(sub);
    const [l, r] = this.split(this.root, sub.start, n.id);
    const [, r2] = this.split(r, sub.start, n.id + 1);
    this.root = this.merge(l, r2);
  }
  has(sub: MmuIntervalNotifier): boolean {
    return this.nodes.has(sub);
  }
  /** Subscriptions overlapping [start, last], in start order. */
  overlapping(start: number, last: number, out: MmuIntervalNotifier[]): void {
    IntervalTree.collect(this.root, start, last, out);
  }
  // A static recursion, not a closure: an invalidation runs per page in try_to_migrate.
  private static collect(n: ItNode | null, start: number, last: number, out: MmuIntervalNotifier[]): void {
    while (n && n.maxLast >= start) {
      IntervalTree.collect(n.left, start, last, out);
      if (n.sub.start > last) return;
      if (n.sub.last >= start) out.push(n.sub);
      n = n.right;
    }
  }
  all(): MmuIntervalNotifier[] {
    return [...this.nodes.keys()];
  }
}

/** The notifier state of one mm (struct mmu_notifier_subscriptions). */
export class MmuNotifierSubscriptions {
  readonly list: MmuNotifier[] = [];
  private readonly itree = new IntervalTree();
  /** Odd while an invalidation that hit an interval subscription is running. */
  invalidateSeq = 2;
  private activeInvalidateRanges = 0;
  private readonly deferredList: MmuIntervalNotifier[] = [];
  private waiters: Array<() => void> = [];
  private readonly scratch: MmuIntervalNotifier[] = [];

  constructor(private readonly mm: Mm, private readonly events: EventBus) {}

  get intervalCount(): number {
    return this.itree.size;
  }
  get hasSubscriptions(): boolean {
    return this.list.length > 0 || this.itree.size > 0 || this.deferredList.length > 0;
  }

  /**
   * __mmu_notifier_invalidate_range_start. Returns false (and leaves nothing started) if a
   * subscriber refused a non-blockable range; blockable ranges always start. A callback that
   * throws (a driver bug: the kernel's cannot) leaves nothing started either: the subscribers
   * that started get their end, the sequence is even again, and the error goes on up.
   */
  invalidateRangeStart(range: MmuNotifierRange): boolean {
    if (this.events.on.invalidate) this.events.emit({ type: 'invalidate', range, phase: 'start' });
    if (this.itree.size > 0 && !this.itreeInvalidate(range)) return false;
    let i = 0;
    try {
      for (; i < this.list.length; i++) {
        const sub = this.list[i]!;
        let ok: boolean | void = true;
        if (sub.ops.invalidateRangeStart) {
          this.inCallback++;
          try {
            ok = sub.ops.invalidateRangeStart(sub, range);
          } finally {
            this.inCallback--;
          }
        }
        if (ok === false) {
          if (mmuNotifierRangeBlockable(range)) throw new Error('invalidate_range_start refused a blockable range');
          // Undo what already started, as mn_hlist_invalidate_range_start does.
          this.undoStart(range, i);
          return false;
        }
      }
    } catch (e) {
      this.undoStart(range, i);
      throw e;
    }
    return true;
  }

  /** The subscribers before index `started` get their end; the interval side ends. */
  private undoStart(range: MmuNotifierRange, started: number): void {
    for (let j = 0; j < started && j < this.list.length; j++) this.callEnd(this.list[j]!, range);
    this.itreeInvEnd();
  }

  /** Every subscriber gets its end even if one throws; the first error goes on up afterwards. */
  invalidateRangeEnd(range: MmuNotifierRange): void {
    this.itreeInvEnd();
    let error: unknown = null;
    for (let j = 0; j < this.list.length; j++) {
      try {
        this.callEnd(this.list[j]!, range);
      } catch (e) {
        error ??= e;
      }
    }
    if (this.events.on.invalidate) this.events.emit({ type: 'invalidate', range, phase: 'end' });
    if (error !== null) throw error;
  }

  /**
   * Callbacks of this mm's subscribers running now. The mm's operations refuse to run inside
   * one (Mm.mmapLock: EDEADLK), as the kernel would deadlock on the mmap lock there.
   */
  inCallback = 0;

  // The callbacks are called in place (no closure per call): invalidations run per page.
  private callEnd(sub: MmuNotifier, range: MmuNotifierRange): void {
    if (!sub.ops.invalidateRangeEnd) return;
    this.inCallback++;
    try {
      sub.ops.invalidateRangeEnd(sub, range);
    } finally {
      this.inCallback--;
    }
  }

  private callInvalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, seq: number): boolean {
    this.inCallback++;
    try {
      return sub.ops.invalidate(sub, range, seq);
    } finally {
      this.inCallback--;
    }
  }

  /** mn_itree_invalidate: make the sequence odd and call every overlapping subscription. */
  private itreeInvalidate(range: MmuNotifierRange): boolean {
    this.activeInvalidateRanges++;
    const subs = this.scratch; // empty between invalidations
    this.itree.overlapping(range.start, range.end - 1, subs);
    if (subs.length === 0) return true;
    this.invalidateSeq |= 1;
    const seq = this.invalidateSeq;
    // A callback may start another invalidation (of another mm, reusing its own scratch): the
    // hits are taken out of it first, one (the common case) into a local, several as a copy.
    // (pop, not `length = 0`: setting the length is a call into the runtime, per page here.)
    const one = subs.length === 1 ? subs.pop()! : null;
    const hit = one ? null : subs.slice();
    if (hit) subs.length = 0;
    const n = one ? 1 : hit!.length;
    try {
      for (let k = 0; k < n; k++) {
        const sub = one ?? hit![k]!;
        if (sub.deferred === 'remove') continue;
        const ok = this.callInvalidate(sub, range, seq);
        if (!ok) {
          if (mmuNotifierRangeBlockable(range)) throw new Error('interval invalidate refused a blockable range');
          this.itreeInvEnd();
          return false;
        }
      }
    } catch (e) {
      // Never leave the mm invalidating: read_begin and remove would wait for ever.
      this.itreeInvEnd();
      throw e;
    }
    return true;
  }

  /** mn_itree_inv_end: the last running invalidation makes the sequence even and applies deferred changes. */
  private itreeInvEnd(): void {
    if (this.activeInvalidateRanges === 0) return;
    if (--this.activeInvalidateRanges > 0) return;
    if (!(this.invalidateSeq & 1)) return;
    this.invalidateSeq++;
    for (const sub of this.deferredList) {
      if (sub.deferred === 'insert') this.itree.insert(sub);
      else this.itree.remove(sub);
      sub.deferred = null;
    }
    if (this.deferredList.length > 0) this.deferredList.length = 0;
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  get invalidating(): boolean {
    return (this.invalidateSeq & 1) === 1;
  }

  private waitSeqChange(seq: number): Promise<void> {
    if (this.invalidateSeq !== seq) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  // ---- interval API ----

  insertInterval(sub: MmuIntervalNotifier): void {
    if (this.invalidating) {
      // Start out "invalidating" so read_begin waits until this invalidation ends.
      sub.invalidateSeq = this.invalidateSeq;
      sub.deferred = 'insert';
      this.deferredList.push(sub);
    } else {
      sub.invalidateSeq = this.invalidateSeq - 1;
      this.itree.insert(sub);
    }
  }

  removeInterval(sub: MmuIntervalNotifier): void {
    if (sub.deferred === 'insert') {
      // Never reached the tree: drop it at once.
      this.deferredList.splice(this.deferredList.indexOf(sub), 1);
      sub.deferred = null;
      return;
    }
    if (!this.itree.has(sub)) return;
    if (!this.invalidating) {
      this.itree.remove(sub);
      return;
    }
    if (sub.deferred !== 'remove') {
      sub.deferred = 'remove';
      this.deferredList.push(sub);
    }
    const seq = this.invalidateSeq;
    throw new WouldBlock('mmu_interval_notifier_remove waits for the running invalidation', () => this.waitSeqChange(seq));
  }

  readBegin(sub: MmuIntervalNotifier): number {
    const seq = sub.invalidateSeq;
    if (seq === this.invalidateSeq) {
      throw new WouldBlock('mmu_interval_read_begin waits for the running invalidation', () => this.waitSeqChange(seq));
    }
    return seq;
  }

  /** Every interval subscription gets one RELEASE invalidation of the whole address space (mn_itree_release). */
  releaseIntervals(): void {
    if (this.itree.size === 0) return;
    const range: MmuNotifierRange = {
      mm: this.mm, start: 0, end: MMU_RANGE_END_ALL, event: 'RELEASE', flags: MMU_NOTIFIER_RANGE_BLOCKABLE, owner: null,
    };
    this.itreeInvalidate(range);
    this.itreeInvEnd();
  }

  /**
   * __mmu_notifier_release: the interval subscriptions' RELEASE (mn_itree_release), then
   * mn_hlist_release: every whole-mm subscriber's release runs while all of them are still
   * hashed, so an invalidation that happens meanwhile (reclaim of a page of this mm) still
   * reaches those whose release has not run yet; only then are they all unhashed.
   */
  release(): void {
    this.releaseIntervals();
    const subs = this.list.slice();
    for (const sub of subs) {
      // One that an earlier release unregistered got its release from mmu_notifier_unregister.
      if (sub.mm !== this.mm || !sub.ops.release) continue;
      this.inCallback++;
      try {
        sub.ops.release(sub, this.mm);
      } finally {
        this.inCallback--;
      }
    }
    for (const sub of this.list) sub.mm = null;
    this.list.length = 0;
  }

  intervals(): MmuIntervalNotifier[] {
    return this.itree.all();
  }
}

// ---- the kernel-named entry points ----

/** mmu_notifier_register: subscribe to every invalidation of the mm and to its release. */
export function mmuNotifierRegister(sub: MmuNotifier, mm: Mm): void {
  if (sub.mm) fail('EINVAL', 'mmu notifier already registered');
  mm.assertLive();
  mm.notifiers.list.push(sub);
  sub.mm = mm;
}

/** mmu_notifier_unregister: calls release first if the mm has not released it yet. */
export function mmuNotifierUnregister(sub: MmuNotifier, mm: Mm): void {
  const i = mm.notifiers.list.indexOf(sub);
  if (i >= 0) {
    mm.notifiers.list.splice(i, 1);
    sub.ops.release?.(sub, mm);
  }
  sub.mm = null;
}

/** mmu_notifier_unregister_no_release */
export function mmuNotifierUnregisterNoRelease(sub: MmuNotifier, mm: Mm): void {
  const i = mm.notifiers.list.indexOf(sub);
  if (i >= 0) mm.notifiers.list.splice(i, 1);
  sub.mm = null;
}

/** mmu_interval_notifier_insert */
export function mmuIntervalNotifierInsert(sub: MmuIntervalNotifier, mm: Mm, start: number, length: number): void {
  if (sub.mm) fail('EINVAL', 'interval notifier already inserted');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0) fail('EINVAL', 'start and length must be non-negative integers');
  if (length === 0 || start + length - 1 >= MMU_RANGE_END_ALL) fail('EOVERFLOW', 'empty or overflowing interval');
  mm.assertLive();
  sub.start = start;
  sub.last = start + length - 1;
  sub.mm = mm;
  mm.notifiers.insertInterval(sub);
}

/**
 * mmu_interval_notifier_remove. If an invalidation of this subscription is running, the
 * removal is queued and this throws WouldBlock until it ends (use `blocking()` to wait);
 * after a normal return no callback runs again.
 */
export function mmuIntervalNotifierRemove(sub: MmuIntervalNotifier): void {
  const mm = sub.mm;
  if (!mm) return;
  mm.notifiers.removeInterval(sub);
  sub.mm = null;
}

/** mmu_interval_read_begin: the sequence to check later; waits (WouldBlock) while this subscription is being invalidated. */
export function mmuIntervalReadBegin(sub: MmuIntervalNotifier): number {
  if (!sub.mm) fail('EINVAL', 'interval notifier not inserted');
  return sub.mm.notifiers.readBegin(sub);
}

/** mmu_interval_read_retry: true if the range was invalidated since read_begin returned seq. */
export function mmuIntervalReadRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

/** mmu_interval_check_retry: the same test, as a lock-free hint. */
export function mmuIntervalCheckRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

/** mmu_interval_set_seq: called by the invalidate callback under the driver lock. */
export function mmuIntervalSetSeq(sub: MmuIntervalNotifier, curSeq: number): void {
  sub.invalidateSeq = curSeq;
}
