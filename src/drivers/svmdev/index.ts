// svmdev: a small GPU-SVM device driver on gpusvm (the device of `hmmsim demo`).
export { SvmDevice, type SvmDeviceOptions, type SvmDeviceStats, type SvmFaultResult } from './device.js';
