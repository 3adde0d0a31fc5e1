/**
 * The race explorer behind `hmmsim check`: the driver interface, the harness, its scenarios and
 * invariants, and the reports `hmmsim check` prints; for a user's own tests.
 *
 * @packageDocumentation
 * @module hmmsim/check
 */

export type { DeviceMappings } from './device-pt.js';
export { DevicePageTable, DPTE_VALID, DPTE_WRITE, DPTE_DEVMEM } from '../drivers/gpusvm/device-pagetable.js';
export {
  ACCESS_ERRNOS, type CheckDriver, type CheckDevice, type CheckMirror, type DriverCtx, type DriverEnv,
} from './driver.js';
export { Violation, INVARIANTS, type Invariant } from './violation.js';
export { SCENARIOS, scenarioByName, type Scenario } from './scenarios.js';
export { World, type DeviceOwner, BUFFER_PAGES, type MirrorState, type TraceStep } from './world.js';
export { OtherDevice, type OtherOwner } from './other-device.js';
export {
  checkDriver, replayCheck, scenarioProgram, parseCheckToken, STRATEGY_NAMES, type CheckOptions, type CheckResult,
  type StrategyName, type StrategyReport, type ViolationReport,
} from './check.js';
export { Mutex } from '../sched/mutex.js';
export { checkTraceDoc, formatCheckResult, formatTrace, CHECK_TRACE_FORMAT, CHECK_TRACE_VERSION, type CheckTraceDoc, type CheckTraceStep } from './report.js';
export { loadDriver, driverFromModule } from './load.js';
