// The gpusvm-based device (src/drivers/gpusvm, through svmdev, the device of `hmmsim demo`)
// under `hmmsim check`: each mirror is an SvmDevice (a gpusvm instance over the process, its
// device page table, 16 pages of VRAM); a device fault is gpusvm's fault handler in its async
// form, preemptible inside get_pages and before the bind; migration is gpusvm's own range
// migration, whose owner filter skips only the migration the instance started itself, so the
// fork-mirror scenario passes. Detach is drm_gpusvm_fini.
//
// Run it: npx tsx src/cli/main.ts check examples/drivers/gpusvm.ts

import { gpusvmHandleFaultAsync, PAGE_SIZE, SvmDevice, type DevicePageTable, type Process } from 'hmmsim';
import type { CheckDriver, CheckMirror, DriverCtx } from 'hmmsim/check';

class GpusvmMirror implements CheckMirror {
  readonly dev: SvmDevice;

  constructor(proc: Process, private readonly owner: object) {
    this.dev = new SvmDevice(proc.mm, owner, { name: `gpusvm pid ${proc.pid}` });
    this.dev.attachMemory(16);
  }

  /** svmdev's device page table: gpusvm's DevicePageTable, which check reads as is. */
  get pt(): DevicePageTable {
    return this.dev.pt;
  }

  async fault(addr: number, write: boolean, ctx: DriverCtx): Promise<void> {
    await gpusvmHandleFaultAsync(this.dev.gpusvm, addr, write, { devicePrivatePageOwner: this.owner, devmemPossible: true }, {}, ctx);
  }

  async migrateToDevice(addr: number, npages: number, ctx: DriverCtx): Promise<void> {
    await ctx.blocking(() => this.dev.migrateToDevice(addr, addr + npages * PAGE_SIZE));
  }

  async detach(ctx: DriverCtx): Promise<void> {
    await ctx.blocking(() => this.dev.close());
  }
}

const driver: CheckDriver = {
  name: 'gpusvm',
  probe(env) {
    return { attach: (proc) => new GpusvmMirror(proc, env.owner) };
  },
};
export default driver;
