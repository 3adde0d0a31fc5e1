// uvm_perf_thrashing.c: threshold 3 events within a lapse of 500 us, THROTTLE for a nap of one
// lapse, PIN after 10 throttles for 300 lapses, epoch reset after 2000 quiet lapses, and
// eviction-caused migrations ignored.

import { describe, expect, it } from 'vitest';
import { UvmThrashing } from '../../../../src/drivers/gpu/uvm/perf_thrashing.js';
import {
  THRASHING_HINT_NONE, THRASHING_HINT_PIN, THRASHING_HINT_THROTTLE, UVM_ID_CPU, UVM_ID_GPU, UVM_ID_INVALID, type ThrashingBlock, type ThrashingHint,
} from '../../../../src/drivers/gpu/uvm/policy_types.js';

const US = 1000;
const block = (): ThrashingBlock => ({ start: 0, thrashing: null });
const hint = (): ThrashingHint => ({ type: 0, residency: UVM_ID_INVALID, endNs: 0 });

/** GPU and CPU migrate page 0 alternately, `gapUs` apart, starting with the GPU at t0. */
function pingPong(t: UvmThrashing, b: ThrashingBlock, n: number, gapUs: number, t0 = 0): number {
  let now = t0;
  for (let i = 0; i < n; i++) {
    t.onMigration(b, 0, 1, i % 2 === 0 ? UVM_ID_GPU : UVM_ID_CPU, 'fault', now);
    now += gapUs * US;
  }
  return now;
}

describe('thrashing detection (uvm_perf_thrashing.c)', () => {
  it('per-page tracking starts only when another processor migrates within a lapse', () => {
    const t = new UvmThrashing();
    const b = block();
    t.onMigration(b, 0, 1, UVM_ID_GPU, 'fault', 0);
    t.onMigration(b, 0, 1, UVM_ID_GPU, 'fault', 100 * US); // same processor: still nothing
    t.onMigration(b, 0, 1, UVM_ID_CPU, 'fault', 700 * US); // other processor, but 600 us later
    t.onMigration(b, 0, 1, UVM_ID_GPU, 'fault', 800 * US);
    t.onMigration(b, 0, 1, UVM_ID_CPU, 'fault', 900 * US);
    expect(t.thrashingPages(b)).toBeNull();
    expect(t.stats.detected).toBe(0);
  });

  it('uvm_perf_thrashing_threshold = 3: the third consecutive event within the lapse marks the page', () => {
    const t = new UvmThrashing();
    const b = block();
    // Event 1 arms the block, event 2 creates the page tracking, events 3..5 are thrashing events 1..3.
    pingPong(t, b, 4, 100);
    expect(t.thrashingPages(b)).toBeNull();
    t.onMigration(b, 0, 1, UVM_ID_GPU, 'fault', 400 * US);
    expect(t.thrashingPages(b)?.[0]).toBe(1);
    expect(t.stats.detected).toBe(1);
  });

  it('uvm_perf_thrashing_lapse_usec = 500: events further apart are not thrashing', () => {
    const t = new UvmThrashing();
    const b = block();
    pingPong(t, b, 12, 501);
    expect(t.stats.detected).toBe(0);
  });

  it('eviction migrations are ignored (UVM_MAKE_RESIDENT_CAUSE_EVICTION)', () => {
    const t = new UvmThrashing();
    const b = block();
    for (let i = 0; i < 10; i++) t.onMigration(b, 0, 1, i % 2 ? UVM_ID_CPU : UVM_ID_GPU, 'eviction', i * 50 * US);
    expect(b.thrashing === null || t.thrashingPages(b) === null).toBe(true);
    expect(t.stats.detected).toBe(0);
  });

  it('THROTTLE: one processor is served per nap, the other waits until the nap ends', () => {
    const t = new UvmThrashing({ lapseFixed: true });
    const b = block();
    const now = pingPong(t, b, 5, 100);
    const h = hint();
    t.hint(b, 0, UVM_ID_GPU, UVM_ID_INVALID, UVM_ID_CPU, now, h);
    expect(h.type).toBe(THRASHING_HINT_NONE); // the first requester of the period is not throttled
    t.hint(b, 0, UVM_ID_CPU, UVM_ID_INVALID, UVM_ID_GPU, now + 10 * US, h);
    expect(h.type).toBe(THRASHING_HINT_THROTTLE);
    expect(h.endNs).toBe(now + 500 * US); // uvm_perf_thrashing_nap = 1 lapse
    t.hint(b, 0, UVM_ID_CPU, UVM_ID_INVALID, UVM_ID_GPU, now + 100 * US, h);
    expect(h.type).toBe(THRASHING_HINT_THROTTLE);
    expect(t.stats.throttled).toBe(1);
  });

  it('PIN after uvm_perf_thrashing_pin_threshold = 10 throttling periods, for 300 lapses', () => {
    const t = new UvmThrashing({ lapseFixed: true });
    const b = block();
    let now = pingPong(t, b, 5, 100);
    const h = hint();
    let pinnedAt = -1;
    // Both processors keep faulting; each is served when not throttled, which migrates the page.
    for (let step = 0; step < 400 && pinnedAt < 0; step++) {
      const who = step % 2 ? UVM_ID_CPU : UVM_ID_GPU;
      t.hint(b, 0, who, UVM_ID_INVALID, who === UVM_ID_GPU ? UVM_ID_CPU : UVM_ID_GPU, now, h);
      if (h.type === THRASHING_HINT_PIN) pinnedAt = now;
      else if (h.type === THRASHING_HINT_NONE) t.onMigration(b, 0, 1, who, 'fault', now);
      now += 120 * US;
    }
    expect(pinnedAt).toBeGreaterThan(0);
    expect(t.stats.throttled).toBeGreaterThanOrEqual(10);
    expect(t.stats.pinned).toBe(1);
    expect(t.pinnedAt(b, 0)).not.toBe(UVM_ID_INVALID);
    // Still pinned just before 300 lapses, unpinned after.
    t.hint(b, 0, UVM_ID_GPU, UVM_ID_INVALID, UVM_ID_CPU, pinnedAt + 300 * 500 * US - 1000, h);
    expect(t.pinnedAt(b, 0)).not.toBe(UVM_ID_INVALID);
    t.hint(b, 0, UVM_ID_GPU, UVM_ID_INVALID, UVM_ID_CPU, pinnedAt + 300 * 500 * US + 1000, h);
    expect(t.pinnedAt(b, 0)).toBe(UVM_ID_INVALID);
  });

  it('a preferred location every thrashing processor can reach is where the page is pinned', () => {
    const t = new UvmThrashing({ lapseFixed: true });
    const b = block();
    const now = pingPong(t, b, 5, 100);
    const h = hint();
    t.hint(b, 0, UVM_ID_GPU, UVM_ID_CPU, UVM_ID_CPU, now, h);
    expect(h.type).toBe(THRASHING_HINT_PIN);
    expect(h.residency).toBe(UVM_ID_CPU);
  });

  it('uvm_perf_thrashing_epoch = 2000 lapses: a quiet block forgets its history (up to 4 resets)', () => {
    const t = new UvmThrashing({ lapseFixed: true });
    const b = block();
    const now = pingPong(t, b, 5, 100);
    expect(t.thrashingPages(b)).not.toBeNull();
    const h = hint();
    t.hint(b, 0, UVM_ID_GPU, UVM_ID_INVALID, UVM_ID_CPU, now + 2000 * 500 * US + 1000, h);
    expect(h.type).toBe(THRASHING_HINT_NONE);
    expect(t.thrashingPages(b)).toBeNull();
  });

  it('the lapse adapts by votes unless it was set (adjust_thrashing_lapse)', () => {
    const t = new UvmThrashing();
    const b = block();
    let now = pingPong(t, b, 5, 100);
    const h = hint();
    for (let i = 0; i < 40; i++) {
      t.onMigration(b, 0, 1, i % 2 ? UVM_ID_CPU : UVM_ID_GPU, 'fault', now);
      now += 10 * US;
      t.hint(b, 0, UVM_ID_GPU, UVM_ID_INVALID, UVM_ID_CPU, now, h);
    }
    expect(t.params.lapseNs).toBeLessThan(500 * US);
    const fixed = new UvmThrashing({ lapseFixed: true });
    expect(fixed.params.lapseNs).toBe(500 * US);
  });

  it('bad parameters are refused', () => {
    expect(() => new UvmThrashing({ threshold: 8 })).toThrow(RangeError);
    expect(() => new UvmThrashing({ pinThreshold: 0 })).toThrow(RangeError);
  });
});
