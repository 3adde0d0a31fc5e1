// Recording a run for the visualizer (docs/visualizer.md).

export * from './format.js';
export { Recorder, type RecorderOptions, type DeviceTableSource, type DeviceMemorySource } from './recorder.js';
export { devicePageTableSource, svmDeviceSource } from './devices.js';
export { BLOCK_SLOTS, PageSpace, Replay, decodeRecord, decodeColumn, recordColumns, type DecodedRecord, type Inflate, type FetchColumn, lowerBound } from './replay.js';
export { gzipColumns, writeRecord, readRecordFile, readRecordText, isGzip, decodeRecordNode } from './io.js';
export { recordDemo, type DemoRecording } from './demo.js';
export { recordGpu, gpuVaSpaceSource, type GpuRecordingOptions } from './gpu.js';
