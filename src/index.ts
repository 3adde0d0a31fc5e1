// hmmsim's public API.

export * from './mm/constants.js';
export * from './mm/errno.js';
export { Machine, DEFAULT_CONFIG, type MachineConfig } from './mm/machine.js';
export { Process } from './mm/process.js';
export { Mm } from './mm/mm.js';
export * from './mm/vma.js';
export { TmpFile, Tmpfs } from './mm/file.js';
export * from './mm/notifier.js';
export * from './mm/events.js';
export * from './mm/fault.js';
export { DevPagemap, type DevPagemapOps, type MemoryType } from './mm/memremap.js';
export { swapOutPage } from './mm/vmscan.js';
export * as pagetable from './mm/pagetable.js';
