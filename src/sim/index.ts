/**
 * The simulator: a GPU whose page faults go through HMM under a real driver's policies
 * (`hmmsim run`), with the workloads, trace readers, hardware presets and cost model it runs
 * on, grid sweeps (`hmmsim sweep`), the recorder behind `--record` and the record format the
 * visualizer reads (`hmmsim view`), the discrete-event engine on simulated time, and the HMM
 * walk-through that `hmmsim demo` drives.
 *
 * @packageDocumentation
 * @module hmmsim/sim
 */

// ---- the engine and simulated time ----
export { Engine } from './engine.js';
export { type Clock, type EventQueue } from '../drivers/clock.js';
export { Metrics, type MetricsSnapshot } from './metrics.js';

// ---- the GPU simulation (hmmsim run) ----
export {
  runSimulation, setupRun, executeRun, estimateRunMemory, RunError, DEFAULT_RUN_OPTIONS, type RunOptions, type RunConfigRecord,
  type RunRecord, type RunResult, type RunSetup, type RunHooks,
} from './simulate.js';
export {
  RunMetrics, BREAKDOWN_KEYS, type BreakdownKey, type Breakdown, type SeriesPoint, type TimeSeries, type RunMetricsSnapshot,
  type RunMetricsOptions, type GpuEventSource, type GpuCountersLike, type GpuFaultLike, type GpuBatchLike, type GpuReplayLike,
  type GpuMigrateLike, type GpuEvictLike, type GpuThrashingLike,
} from './run-metrics.js';
export { loadConfigFile, configRunOptions, type ConfigFile } from './run-config.js';

// ---- hardware presets and the cost model (docs/cost-model.md) ----
export { PRESETS, DEFAULT_PRESET, presetNames, getPreset } from './presets/index.js';
export {
  transferTimeNs, transferGBps, buildGpuCosts, costOverrideSchema, applyCostOverride, ConfigError, type TransferModel, type AtanTransfer,
  type TableTransfer, type LinearTransfer, type GpuCostConstants, type HardwareConstants, type SimConstants, type CostConstants,
  type Preset, type CostOverride,
} from './cost-model.js';

// ---- workloads and traces (docs/traces.md) ----
export { WORKLOADS, workloadNames, getWorkload } from './workloads/index.js';
export {
  type Workload, type WorkloadSpec, type WorkloadParams, type WorkloadBuffer, type Phase, type CpuProgram,
} from './workloads/workload.js';
export { loadTrace, detectFormat, TraceError, type TraceFormat, type TraceWorkload } from './traces/index.js';

// ---- sweeps (hmmsim sweep, hmmsim merge) ----
export {
  GRID_KEYS, expandGrid, parseShard, shardIndices, loadGridFile, mergeShards, type GridKey, type Grid, type GridPoint,
  type SweepLine,
} from './sweep.js';

// ---- the HMM walk-through (hmmsim demo) ----
export { runDemo, demoRamBytes, type DemoOptions, type DemoStep, type DemoReport } from './demo.js';

// ---- recording a run for the visualizer (--record, hmmsim view; docs/visualizer.md) ----
export {
  Recorder, recordDemo, devicePageTableSource, svmDeviceSource, writeRecord, readRecordFile, decodeRecord, decodeRecordNode,
  Replay, PageSpace, RECORD_FORMAT, RECORD_VERSION, CHECK_FORMAT, STATE_KINDS, type StateKind, type RecorderOptions,
  type DeviceTableSource, type DeviceMemorySource, type DemoRecording, type RecordDoc, type CheckTraceDoc, type CheckStep,
  type DecodedRecord, type Inflate, type FetchColumn, type EventTypeInfo, type EventCategory, type Mark,
  type MemoryInfo, type Snapshot, type TableInfo, type VmaChange, type NumArray, type ColumnType, type Column as RecordColumn,
} from './record/index.js';
export { recordGpu, type GpuRecordingOptions } from './record/gpu.js';
export { recordRun, type RunRecording } from './record/run.js';
export { type DecodedSnapshot } from './record/replay.js';
export { type Compress, type Encoding } from './record/columns.js';
