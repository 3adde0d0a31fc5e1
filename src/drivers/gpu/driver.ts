// What every HMM GPU driver in src/drivers/gpu offers the simulator and tests, beyond the
// hardware's interrupt interface (GpuDriver in gpu.ts): attach a process (its GPU address
// space), explicit migration, counters, teardown. uvm/, kfd/ and nouveau/ implement it.

import type { Process } from '../../mm/process.js';
import type { GpuDriver } from './gpu.js';
import type { GpuVaSpace } from './mmu.js';

export interface HmmGpuDriver extends GpuDriver {
  /** The dev_pagemap owner of the driver's VRAM pages (checkGpuInvariants wants it). */
  readonly owner: unknown;
  /** Give a process a GPU address space mirroring its mm; launch its kernels there. */
  attach(process: Process): { readonly gpuVaSpace: GpuVaSpace };
  /** Tear a process's GPU address space down (its pages stay where the CPU page table has them). */
  detach(process: Process): void;
  /** Explicit migration of [addr, addr + len) to VRAM or system memory; returns when the copies complete. */
  migrate(process: Process, addr: number, len: number, to: 'gpu' | 'cpu'): number;
  /** The driver's counters. */
  counters(): Record<string, number>;
  /** Detach everything, move every VRAM page back to system memory, unregister VRAM. */
  shutdown(): void;
}
