// hmmsim's port of the kernel's HMM test driver (lib/test_hmm.c, "dmirror") under `hmmsim
// check`: each mirror is an open /dev/hmm_dmirror0 (device-private memory), a device fault is
// dmirror_fault, migration is the MIGRATE_TO_DEV / MIGRATE_TO_SYS commands, detach is close.
// The device page table check reads is dmirror's own xarray.
//
// dmirror passes every scenario but fork-mirror, where check finds the hole the kernel's test
// driver has (docs/check.md): its invalidate callback skips every MIGRATE invalidation owned
// by its device, so a mirror of a forked child keeps mapping a device page that a migrate_to_ram
// in the child moved back and freed.
//
// Run it: npx tsx src/cli/main.ts check examples/drivers/dmirror.ts

import { DPTE_VALID, DPTE_WRITE, KernelError, PAGE_SIZE, type Process } from 'hmmsim';
import {
  dmirrorInit, hmmDmirrorCmd, hmmDmirrorOpen, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, type DmirrorFile,
} from 'hmmsim/dmirror';
import type { CheckDriver, CheckMirror, DeviceMappings, DriverCtx } from 'hmmsim/check';

/** dmirror's device page table (an xarray of vpn -> entry), as check reads it. */
class DmirrorTable implements DeviceMappings {
  constructor(private readonly file: DmirrorFile) {}
  lookup(vpn: number): number {
    return this.file.dmirror.pt.get(vpn)?.pfn ?? -1;
  }
  flagsOf(vpn: number): number {
    const e = this.file.dmirror.pt.get(vpn);
    return e ? DPTE_VALID | (e.write ? DPTE_WRITE : 0) : 0;
  }
  forEach(fn: (vpn: number, pfn: number, flags: number) => void): void {
    for (const [vpn, e] of this.file.dmirror.pt) fn(vpn, e.pfn, DPTE_VALID | (e.write ? DPTE_WRITE : 0));
  }
  get size(): number {
    return this.file.dmirror.pt.size;
  }
}

class DmirrorMirror implements CheckMirror {
  readonly pt: DmirrorTable;
  constructor(private readonly file: DmirrorFile, private readonly proc: Process) {
    this.pt = new DmirrorTable(file);
  }

  async fault(addr: number, write: boolean, ctx: DriverCtx): Promise<void> {
    try {
      await this.file.dmirror.fault(addr, addr + PAGE_SIZE, write, ctx);
    } catch (e) {
      // dmirror fails a command for an exited process with EINVAL: for check, the access fails (ESRCH).
      if (e instanceof KernelError && e.errno === 'EINVAL' && !this.proc.alive) throw new KernelError('ESRCH', e.message);
      throw e;
    }
  }

  async migrateToDevice(addr: number, npages: number, ctx: DriverCtx): Promise<void> {
    await this.file.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, hmmDmirrorCmd(addr, new Uint8Array(npages * PAGE_SIZE), npages), { ctx });
  }

  async migrateToSystem(addr: number, npages: number, ctx: DriverCtx): Promise<void> {
    await this.file.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, hmmDmirrorCmd(addr, new Uint8Array(npages * PAGE_SIZE), npages), { ctx });
  }

  async detach(ctx: DriverCtx): Promise<void> {
    await this.file.close(ctx);
  }
}

const driver: CheckDriver = {
  name: 'dmirror',
  probe(env) {
    // Two small private devices (as hmm_dmirror0 and 1), 2 MiB of device memory each.
    dmirrorInit(env.machine, { chunkBytes: 2 * 2 ** 20, coherent: false });
    return { attach: (proc) => new DmirrorMirror(hmmDmirrorOpen(proc, 0), proc) };
  },
};
export default driver;
