/**
 * The simulator: the discrete-event engine on simulated time, metrics, and the built-in HMM
 * walk-through that `hmmsim demo` drives. The GPU simulation (workloads, traces, presets, the
 * cost model, run metrics) adds its names here as it lands.
 *
 * @packageDocumentation
 * @module hmmsim/sim
 */

export { Engine } from './engine.js';
export { type Clock, type EventQueue } from '../drivers/clock.js';
export { Metrics, type MetricsSnapshot } from './metrics.js';
export { runDemo, demoRamBytes, type DemoOptions, type DemoStep, type DemoReport } from './demo.js';
