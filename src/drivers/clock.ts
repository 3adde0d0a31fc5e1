// Simulated time, as drivers and device hardware see it (docs/architecture.md decision 8): they read
// the time and schedule their own future only through the queue they are given. The
// simulator's engine (src/sim/engine.ts) implements it; unit tests drive one by hand.

/** Simulated time in nanoseconds since the start of the run. */
export interface Clock {
  now(): number;
}

/**
 * An event queue on simulated time. Events run in time order; events scheduled for the same
 * time run in the order they were scheduled, so a run is deterministic.
 */
export interface EventQueue extends Clock {
  /** Run `fn` at absolute time `timeNs` (not before now). */
  at(timeNs: number, fn: () => void): void;
  /** Run `fn` `delayNs` after now. */
  after(delayNs: number, fn: () => void): void;
}
