// The costs the GPU hardware and its drivers charge in simulated time. Every field has a
// default here so unit tests need no preset; the simulator's presets (src/sim/presets) set
// each one from a cited source (docs/cost-model.md). A new cost is one new field with a
// default, and a line in each preset that knows better.

export type TransferDirection = 'htod' | 'dtoh';

export interface GpuCosts {
  // ---- the GPU's memory accesses ----
  /** An access that hits in the uTLB and goes to VRAM. */
  vramAccessNs: number;
  /** Extra time of an access that goes to system memory over the interconnect (remote mapping). */
  remoteAccessNs: number;
  /** A uTLB miss that hits in the shared L2 TLB. */
  l2TlbHitNs: number;
  /** A miss in both TLBs: the GPU page-table walk, for a 4 KiB / 64 KiB leaf and for a 2 MiB leaf. */
  pageWalkNs: number;
  pageWalk2MNs: number;
  // ---- faults ----
  /** From the fault being written to the fault buffer to the driver's handler running (interrupt, bottom half). */
  faultInterruptNs: number;
  /** Driver time per fault batch beyond its faults (fetch, sort, bookkeeping). */
  batchOverheadNs: number;
  /** Driver time per fault serviced (lookup, residency decision, page-table update). */
  perFaultNs: number;
  /** A replay: from the driver's replay command to the stalled warps retrying. */
  replayNs: number;
  /** A GPU TLB invalidation (shootdown) after an unmap or permission change. */
  tlbInvalidateNs: number;
  // ---- copies ----
  /** The copy engine's time to move `bytes` in one transfer in the given direction. */
  transferNs(bytes: number, dir: TransferDirection): number;
  // ---- the CPU side ----
  /** A CPU page fault with no migration (anonymous, COW, swap-in aside). */
  cpuFaultNs: number;
  /** A CPU fault on a device page: migrate_to_ram's fixed cost, before the copy. */
  cpuMigrateToRamNs: number;
}

/**
 * Round figures for unit tests: a PCIe-3-like copy engine (12 GB/s after a 5 us setup) and
 * the far-fault latency of the UVMSmart configuration. Presets replace every field.
 */
export const DEFAULT_GPU_COSTS: GpuCosts = {
  vramAccessNs: 1,
  remoteAccessNs: 1000,
  l2TlbHitNs: 20,
  pageWalkNs: 70,
  pageWalk2MNs: 45,
  faultInterruptNs: 20_000,
  batchOverheadNs: 5_000,
  perFaultNs: 300,
  replayNs: 2_000,
  tlbInvalidateNs: 1_000,
  transferNs: (bytes) => 5_000 + bytes / 12,
  cpuFaultNs: 1_000,
  cpuMigrateToRamNs: 10_000,
};
