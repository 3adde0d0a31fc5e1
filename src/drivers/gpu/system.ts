// The simulator's entry point to a GPU: build the hardware on a machine and an event queue,
// bind a driver by name with its options, and hand both back.

import { fail } from '../../mm/errno.js';
import type { Machine } from '../../mm/machine.js';
import type { EventQueue } from '../clock.js';
import type { GpuCosts } from './costs.js';
import type { HmmGpuDriver } from './driver.js';
import { Gpu, type GpuConfig } from './gpu.js';
import type { KfdOptions } from './kfd/kfd_options.js';
import { KfdDriver } from './kfd/kfd_svm.js';
import { NouveauDriver, type NouveauOptions } from './nouveau/nouveau_svm.js';
import { UvmDriver, type UvmOptions } from './uvm/uvm.js';

/** The GPU drivers createGpuSystem binds. */
export const GPU_DRIVERS = ['uvm', 'kfd', 'nouveau'] as const;
export type GpuDriverName = (typeof GPU_DRIVERS)[number];

export interface GpuSystemOptions {
  driver?: GpuDriverName;
  config?: Partial<GpuConfig>;
  costs?: Partial<GpuCosts>;
  /** Options of the UVM driver (policies by name or object, UVM's module parameters). */
  uvm?: Partial<UvmOptions>;
  /** Options of the amdkfd SVM driver (XNACK, granularity, filters, eviction order). */
  kfd?: Partial<KfdOptions>;
  /** Options of the nouveau SVM driver (the fault window). */
  nouveau?: Partial<NouveauOptions>;
}

export interface GpuSystem {
  gpu: Gpu;
  driver: HmmGpuDriver;
}

/** Each driver's binding, by name: one table, so the name is looked up once, before the GPU is built. */
const BIND: Record<GpuDriverName, (gpu: Gpu, opts: GpuSystemOptions) => HmmGpuDriver> = {
  uvm: (gpu, opts) => new UvmDriver(gpu, opts.uvm ?? {}),
  kfd: (gpu, opts) => new KfdDriver(gpu, opts.kfd ?? {}),
  nouveau: (gpu, opts) => new NouveauDriver(gpu, opts.nouveau ?? {}),
};

/** A GPU on `machine` driven by `queue`, with its driver bound (default: uvm). */
export function createGpuSystem(machine: Machine, queue: EventQueue, opts: GpuSystemOptions = {}): GpuSystem {
  const name = opts.driver ?? 'uvm';
  // the name first, before the GPU (its TLBs, VRAM, SMs) is built for nothing
  const bind = Object.hasOwn(BIND, name) ? BIND[name] : undefined;
  if (!bind) return fail('EINVAL', `unknown GPU driver '${String(name)}' (drivers: ${GPU_DRIVERS.join(', ')})`);
  const gpu = new Gpu(machine, queue, opts.config ?? {}, opts.costs ?? {});
  return { gpu, driver: bind(gpu, opts) };
}
