// Recording a run for the visualizer (docs/visualizer.md).

export * from './format.js';
export { Recorder, type RecorderOptions, type DeviceTableSource, type DeviceMemorySource } from './recorder.js';
export { devicePageTableSource, svmDeviceSource } from './devices.js';
export { PageSpace, Replay, decodeRecord, decodeColumn, type DecodedRecord, type Inflate, lowerBound } from './replay.js';
export { gzipColumns, writeRecord, readRecordFile, decodeRecordNode } from './io.js';
