// Device memory (struct dev_pagemap): a physical range whose frames belong to a device
// driver. PRIVATE memory cannot be addressed by the CPU and is mapped only through
// device-private entries; COHERENT memory is mapped with ordinary PTEs.

import type { VmFault } from './fault.js';

export type MemoryType = 'private' | 'coherent';

export interface DevPagemapOps {
  /** The last reference to a device page went away: the driver takes it back. */
  pageFree(pfn: number): void;
  /**
   * A CPU access hit a device-private entry of this pagemap (do_swap_page). The driver
   * migrates the page (vmf.page) back to system memory and returns 0, or a VM_FAULT_* code
   * such as VM_FAULT_SIGBUS. Coherent memory never gets this call.
   */
  migrateToRam(vmf: VmFault): number;
}

export class DevPagemap {
  /** Set by PhysMem.addPagemap. */
  firstPfn = 0;
  nframes = 0;
  /** How many times pageFree was called (for accounting tests). */
  freed = 0;
  constructor(
    readonly type: MemoryType,
    /** Identifies the driver: hmm_range_fault's dev_private_owner and migrate's pgmap_owner match against it. */
    readonly owner: unknown,
    readonly ops: DevPagemapOps,
  ) {}

  contains(pfn: number): boolean {
    return pfn >= this.firstPfn && pfn < this.firstPfn + this.nframes;
  }
}
