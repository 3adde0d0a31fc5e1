/**
 * The deterministic scheduler and its exploration strategies, for a user's own tests of
 * concurrent driver code: driver and device code that the kernel runs as separate threads are
 * async tasks here, interleaved at their preemption points in an order picked from a seed, so
 * that every race is reproducible.
 *
 * @packageDocumentation
 * @module hmmsim/sched
 */

export {
  Scheduler, Task, type TaskState, explore, DeadlockError, UnscheduledAwaitError, LockWaitLearned,
  type Chooser, type Decision, type LockWait, type TraceEntry,
} from './scheduler.js';
export { Mutex } from './mutex.js';
export { SeededRandom, SEED_MAX, isSeed, checkSeed } from './random.js';
export {
  RandomWalk, defaultChoice, rngOf, hashChoices, type Strategy, type ScheduleSpec, type RunSummary, type StrategyCoverage, type Rng,
} from './strategy.js';
export { Pct, type PctOptions } from './pct.js';
export { BoundedPreemption, PrefixChooser, ScheduleDivergedError, type BoundedOptions } from './bounded.js';
export {
  execute, exploreSchedules, replaySchedule, type Program, type Execution, type ExecuteOptions, type ExploreOptions, type ExploreResult,
} from './explore.js';
export { minimiseSchedule, DirectiveChooser, directivesOf, defaultFailureKey, type Directive, type MinimiseOptions } from './minimise.js';
export { encodeSchedule, decodeSchedule, taskLetter } from './token.js';
