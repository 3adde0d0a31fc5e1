// The 4.17 device-memory helpers (hmm_devmem_*, hmm_device_*), on hmmsim's dev_pagemap.
//
// Reference counts: 4.17's ZONE_DEVICE pages idled at refcount 1 and ops.free was called when
// a page's count fell back to 1. hmmsim models mainline, where an idle device page has count 0
// and page_free runs when the last reference goes; the 4.17 rule is expressed on top of it:
// a 4.17-style driver hands a page out with phys.deviceFrameInit (count 0 -> 1, where 4.17
// did get_page 1 -> 2), and ops.free is called exactly when 4.17 would have called it, once
// the last user's reference is dropped (docs/api.md).

import { fail } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Machine } from '../../mm/machine.js';
import { DevPagemap, memremapPages, memunmapPages } from '../../mm/memremap.js';
import type { Mm } from '../../mm/mm.js';
import type { Vma } from '../../mm/vma.js';

const SECTION_SIZE = 128 * 2 ** 20;

export interface HmmDevmemOps {
  /** A device page's last reference went: the driver owns it again. */
  free(devmem: HmmDevmem, page: number): void;
  /** A CPU fault on a device-private entry: migrate the page back; return a VM_FAULT_* code. */
  fault(devmem: HmmDevmem, vma: Vma, addr: number, page: number, flags: number): number;
}

/** struct hmm_device: a minor number, for drivers that manage several devices' memory. */
export class HmmDevice {
  constructor(readonly machine: Machine, readonly minor: number, readonly drvdata: unknown) {}
  get name(): string {
    return `hmm_device${this.minor}`;
  }
}

/** struct hmm_devmem */
export class HmmDevmem {
  readonly pagemap: DevPagemap;
  constructor(readonly machine: Machine, readonly ops: HmmDevmemOps, readonly device: unknown, type: 'private' | 'coherent', size: number) {
    this.pagemap = new DevPagemap(type, this, {
      pageFree: (pfn) => ops.free(this, pfn),
      // 4.17's do_swap_page called the fault callback with neither the page lock nor a
      // reference, and migrate_vma's collection took both; mainline's fault path takes both
      // before migrate_to_ram. The page stays locked and referenced as mainline has it, and a
      // migrate_vma from the callback passes it on as mainline's fault_page (migrate.ts).
      migrateToRam: (vmf) => {
        this.faults.push(vmf.mm, vmf.page);
        try {
          return ops.fault(this, vmf.vma, vmf.address, vmf.page, vmf.flags);
        } finally {
          this.faults.length -= 2;
        }
      },
    });
    memremapPages(machine, this.pagemap, size / PAGE_SIZE);
  }
  /** The fault callbacks running, innermost last: (mm, page) pairs. */
  private readonly faults: (Mm | number)[] = [];

  /** The page of the innermost fault callback running for `mm`, or -1. */
  faultPageIn(mm: Mm): number {
    for (let i = this.faults.length - 2; i >= 0; i -= 2) if (this.faults[i] === mm) return this.faults[i + 1] as number;
    return -1;
  }

  /** First device pfn, and one past the last (pfn_last is exclusive, as in 4.17). */
  get pfnFirst(): number {
    return this.pagemap.firstPfn;
  }
  get pfnLast(): number {
    return this.pagemap.firstPfn + this.pagemap.nframes;
  }
}

function checkOps(ops: HmmDevmemOps): void {
  if (!ops || typeof ops.free !== 'function' || typeof ops.fault !== 'function') fail('EINVAL', 'ops with free and fault are required');
}

/** hmm_devmem_add: device-private memory of `size` bytes (rounded up to 128 MiB sections). ERANGE when no physical window is free. */
export function hmmDevmemAdd(machine: Machine, ops: HmmDevmemOps, device: unknown, size: number): HmmDevmem {
  checkOps(ops);
  if (!Number.isSafeInteger(size) || size <= 0) fail('EINVAL', 'size must be positive');
  return new HmmDevmem(machine, ops, device, 'private', Math.ceil(size / SECTION_SIZE) * SECTION_SIZE);
}

export const IORES_DESC_DEVICE_PRIVATE_MEMORY = 6;
export const IORES_DESC_DEVICE_PUBLIC_MEMORY = 7;

/** hmm_devmem_add_resource: public (coherent) device memory; EINVAL unless the resource says so. */
export function hmmDevmemAddResource(machine: Machine, ops: HmmDevmemOps, device: unknown, res: { desc: number; size: number }): HmmDevmem {
  checkOps(ops);
  if (!res || res.desc !== IORES_DESC_DEVICE_PUBLIC_MEMORY) fail('EINVAL', 'the resource is not device public memory');
  if (!Number.isSafeInteger(res.size) || res.size <= 0 || res.size % PAGE_SIZE) fail('EINVAL', 'bad resource size');
  return new HmmDevmem(machine, ops, device, 'coherent', res.size);
}

/** hmm_devmem_remove: EBUSY while a page is still in use (4.17 waited; HMM migrates nothing back). A null devmem is a no-op. */
export function hmmDevmemRemove(devmem: HmmDevmem | null): void {
  if (!devmem) return;
  memunmapPages(devmem.machine, devmem.pagemap);
}

export function hmmDevmemPageSetDrvdata(machine: Machine, page: number, data: unknown): void {
  if (!machine.phys.pagemapOf(page)) fail('EINVAL', `frame ${page} is not device memory`);
  machine.phys.zoneDeviceData.set(page, data);
}
export function hmmDevmemPageGetDrvdata(machine: Machine, page: number): unknown {
  return machine.phys.zoneDeviceData.get(page);
}

const minors = new WeakMap<Machine, Set<number>>();

/** hmm_device_new: EBUSY once all 256 minors are in use. */
export function hmmDeviceNew(machine: Machine, drvdata: unknown): HmmDevice {
  let used = minors.get(machine);
  if (!used) minors.set(machine, (used = new Set()));
  for (let minor = 0; minor < 256; minor++) {
    if (used.has(minor)) continue;
    used.add(minor);
    return new HmmDevice(machine, minor, drvdata);
  }
  fail('EBUSY', 'all 256 hmm_device minors are in use');
}

/** hmm_device_put: the minor is free again. */
export function hmmDevicePut(hd: HmmDevice): void {
  minors.get(hd.machine)?.delete(hd.minor);
}

/** hmm_vma_alloc_locked_page: a system page for (vma, addr), locked, or null. */
export function hmmVmaAllocLockedPage(machine: Machine, _vma: Vma, _addr: number): number | null {
  const pfn = machine.phys.tryAllocPages(0);
  if (pfn < 0) return null;
  machine.phys.trylockPage(pfn);
  return pfn;
}
