// The user interface of the HMM test driver ("dmirror", lib/test_hmm_uapi.h): one command
// block per ioctl, the command numbers, the snapshot byte encoding and the FLAGS bits.
//
// A command block has the kernel's fields. `ptr` is the user buffer the device copies to or
// from: an address in the calling process (the driver copies through that process's CPU
// access path, as copy_to_user / copy_from_user do, so a bad buffer is EFAULT), or a
// Uint8Array handed over directly.

/** struct hmm_dmirror_cmd */
export interface HmmDmirrorCmd {
  /** (in) user address the device reads or writes; page aligned. */
  addr: number;
  /** (in) where the device's data is copied to or from. */
  ptr: number | Uint8Array;
  /** (in) number of pages (for FLAGS: the flags). */
  npages: number;
  /** (out) pages copied. */
  cpages: number;
  /** (out) device page faults seen (hmm_range_fault passes the driver started). */
  faults: number;
}

/** A fresh command block. */
export function hmmDmirrorCmd(addr: number, ptr: number | Uint8Array, npages: number): HmmDmirrorCmd {
  return { addr, ptr, npages, cpages: 0, faults: 0 };
}

// Commands (the ioctl numbers' command byte, _IOWR('H', n, ...)).
export const HMM_DMIRROR_READ = 0x00;
export const HMM_DMIRROR_WRITE = 0x01;
export const HMM_DMIRROR_MIGRATE_TO_DEV = 0x02;
export const HMM_DMIRROR_MIGRATE_TO_SYS = 0x03;
export const HMM_DMIRROR_SNAPSHOT = 0x04;
export const HMM_DMIRROR_EXCLUSIVE = 0x05;
export const HMM_DMIRROR_CHECK_EXCLUSIVE = 0x06;
export const HMM_DMIRROR_RELEASE = 0x07;
export const HMM_DMIRROR_FLAGS = 0x08;

export const HMM_DMIRROR_COMMAND_NAMES: Readonly<Record<number, string>> = {
  [HMM_DMIRROR_READ]: 'READ',
  [HMM_DMIRROR_WRITE]: 'WRITE',
  [HMM_DMIRROR_MIGRATE_TO_DEV]: 'MIGRATE_TO_DEV',
  [HMM_DMIRROR_MIGRATE_TO_SYS]: 'MIGRATE_TO_SYS',
  [HMM_DMIRROR_SNAPSHOT]: 'SNAPSHOT',
  [HMM_DMIRROR_EXCLUSIVE]: 'EXCLUSIVE',
  [HMM_DMIRROR_CHECK_EXCLUSIVE]: 'CHECK_EXCLUSIVE',
  [HMM_DMIRROR_RELEASE]: 'RELEASE',
  [HMM_DMIRROR_FLAGS]: 'FLAGS',
};

/** FLAGS: the next huge (2 MiB) allocation of a migration fails, forcing the 4 KiB fallback. */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1;

// One byte per page written by SNAPSHOT.
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;
export const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40;
export const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50;

/** The memory type of a device (0 is reserved, as in the uapi). */
export const HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1;
export const HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2;

/** Device minors: 0 and 1 have device-private memory, 2 and 3 device-coherent memory. */
export const HMM_PRIVATE_DEVICE_ONE = 0;
export const HMM_PRIVATE_DEVICE_TWO = 1;
export const HMM_COHERENCE_DEVICE_ONE = 2;
export const HMM_COHERENCE_DEVICE_TWO = 3;
export const DMIRROR_NDEVICES = 4;
