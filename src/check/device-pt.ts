// A device's page table, as `hmmsim check` sees it: the hardware walks it on every device
// access, the invariants compare it with the CPU's after every step. gpusvm's DevicePageTable
// (vpn -> pfn, DPTE_* flags, on typed arrays) is one; a driver with a table of its own shows it
// through this interface (the dmirror adapter shows dmirror's xarray).

/** What the harness reads of a device page table. Virtual page numbers are address / PAGE_SIZE. */
export interface DeviceMappings {
  /** The pfn vpn maps, or -1. */
  lookup(vpn: number): number;
  /** The entry's DPTE_* flags (DPTE_WRITE: the device may write); 0 when unmapped. */
  flagsOf(vpn: number): number;
  /** Every entry. */
  forEach(fn: (vpn: number, pfn: number, flags: number) => void): void;
  /** Entries in the table. */
  readonly size: number;
}
