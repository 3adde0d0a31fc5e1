// svmdev: a small shared-virtual-memory device driver on gpusvm, the device of `hmmsim demo`.
// It mirrors one process: a DevicePageTable the device reads and writes through, a gpusvm
// instance (2 MiB / 64 KiB / 4 KiB ranges in 512 MiB notifiers, as Xe), and optionally VRAM
// (device-private memory it migrates ranges into). A device access that misses its table is a
// device fault, handled by gpusvm's fault handler (read faults ask for read access only, as
// nouveau and dmirror do); its ops bind and unbind whole ranges in the table; invalidations
// take the usual gpusvm path. Everything is synchronous: an access that would sleep in the
// kernel throws WouldBlock (nothing else runs concurrently in the demo).

import { fail, KernelError } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Mm } from '../../mm/mm.js';
import type { MmuNotifierRange } from '../../mm/notifier.js';
import { HMM_PFN_WRITE } from '../../hmm/range.js';
import type { Clock } from '../clock.js';
import {
  checkDeviceMirror, DevicePageTable, DPTE_DEVMEM, DPTE_WRITE, DRM_GPUSVM_DEFAULT_CHUNK_SIZES, DRM_GPUSVM_DEFAULT_NOTIFIER_SIZE,
  drmGpusvmFini, drmGpusvmInit, drmGpusvmRangeFindOrInsert, drmGpusvmRangeLookup, gpusvmHandleFault, gpusvmInvalidateRanges, gpusvmRangeMigrateToDevmem,
  Vram, type DrmGpusvm, type DrmGpusvmCtx, type DrmGpusvmNotifier, type DrmGpusvmOps, type DrmGpusvmRange, type GpusvmFaultPolicy,
  type MirrorCheck,
} from '../gpusvm/index.js';

export interface SvmDeviceOptions {
  name?: string;
  chunkSizes?: readonly number[];
  notifierSize?: number;
  clock?: Clock | null;
  /** Migrate a faulting range into VRAM (first touch), instead of mapping it where it is (default: no). */
  migrateOnFault?: boolean;
}

export interface SvmDeviceStats {
  /** Device faults handled (one per range faulted in). */
  faults: number;
  /** hmm_range_fault calls gpusvm made for the device. */
  rangeFaults: number;
  /** get_pages passes that started over. */
  retries: number;
  /** Device entries dropped by invalidations and range removal. */
  entriesInvalidated: number;
  /** Invalidations the device saw, and its own migrations the owner filter skipped. */
  invalidations: number;
  ownMigrationsSkipped: number;
  rangesInserted: number;
  rangesRemoved: number;
}

/** The result of faulting a span in: pages now mapped, pages that could not be. */
export interface SvmFaultResult {
  mapped: number;
  failed: number;
}

export class SvmDevice {
  readonly gpusvm: DrmGpusvm;
  readonly pt = new DevicePageTable();
  vram: Vram | null = null;
  private faults = 0;
  private entriesInvalidated = 0;
  private readonly policy: GpusvmFaultPolicy;

  constructor(readonly mm: Mm, readonly owner: unknown, opts: SvmDeviceOptions = {}) {
    const ops: DrmGpusvmOps = {
      invalidate: (g: DrmGpusvm, n: DrmGpusvmNotifier, r: MmuNotifierRange) => void gpusvmInvalidateRanges(g, n, r),
      bind: (_g, range) => this.bind(range),
      unbind: (_g, range) => {
        this.entriesInvalidated += this.pt.unmapRange(range.start / PAGE_SIZE, range.end / PAGE_SIZE);
      },
    };
    this.gpusvm = drmGpusvmInit(
      opts.name ?? 'svmdev', mm, 0, mm.taskSize, opts.notifierSize ?? DRM_GPUSVM_DEFAULT_NOTIFIER_SIZE, ops,
      opts.chunkSizes ?? DRM_GPUSVM_DEFAULT_CHUNK_SIZES, { clock: opts.clock ?? null },
    );
    this.policy = opts.migrateOnFault ? { migrateTo: () => this.vram?.dpagemap ?? null } : {};
  }

  /** The operation context: this device's private pages are reported, not faulted back. */
  private ctx(): DrmGpusvmCtx {
    return { devicePrivatePageOwner: this.owner, devmemPossible: this.vram !== null };
  }

  /** ops.bind: map every page of the range as got (writable where HMM said the CPU may write). */
  private bind(range: DrmGpusvmRange): void {
    const pages = range.pages;
    const pfns = pages.pfns!;
    const flags = pages.hmmFlags!;
    const devmem = pages.flags.hasDevmemPages ? DPTE_DEVMEM : 0;
    const base = range.start / PAGE_SIZE;
    for (let i = 0; i < pfns.length; i++) this.pt.map(base + i, pfns[i]!, (flags[i]! & HMM_PFN_WRITE ? DPTE_WRITE : 0) | devmem);
  }

  get stats(): SvmDeviceStats {
    const s = this.gpusvm.stats;
    return {
      faults: this.faults, rangeFaults: s.hmmRangeFaults, retries: s.retries, entriesInvalidated: this.entriesInvalidated,
      invalidations: s.invalidations, ownMigrationsSkipped: s.ownMigrationsSkipped, rangesInserted: s.rangesInserted, rangesRemoved: s.rangesRemoved,
    };
  }

  /** Give the device `frames` pages of VRAM (device-private memory it owns). */
  attachMemory(frames: number): Vram {
    if (this.vram) fail('EEXIST', 'the device has memory already');
    this.vram = new Vram(this.mm.machine, this.owner, frames);
    return this.vram;
  }

  /** One device fault at addr; the range now mapped. Throws a KernelError if the access is not allowed. */
  faultAt(addr: number, write: boolean): DrmGpusvmRange {
    this.faults++;
    return gpusvmHandleFault(this.gpusvm, addr, write, this.ctx(), this.policy);
  }

  /** Fault [start, end) in, range by range; pages that cannot be mapped are counted as failed. */
  fault(start: number, end: number, write: boolean): SvmFaultResult {
    let mapped = 0;
    let failed = 0;
    for (let addr = start; addr < end; ) {
      try {
        const r = this.faultAt(addr, write);
        const next = Math.min(end, r.end);
        mapped += (next - addr) / PAGE_SIZE;
        addr = next;
      } catch (e) {
        if (!(e instanceof KernelError) || e.errno === 'EAGAIN') throw e;
        // The access is not allowed here: the whole range it falls in fails alike (one VMA).
        const r = drmGpusvmRangeLookup(this.gpusvm, addr);
        const next = r ? Math.min(end, r.end) : addr + PAGE_SIZE;
        failed += (next - addr) / PAGE_SIZE;
        addr = next;
      }
    }
    return { mapped, failed };
  }

  /** Device read of len bytes at addr into out[outOff..] (DMA from the frames it maps), faulting what is missing. */
  readInto(addr: number, out: Uint8Array, outOff: number, len: number): void {
    const phys = this.mm.machine.phys;
    for (let done = 0; done < len; ) {
      const a = addr + done;
      const vpn = Math.floor(a / PAGE_SIZE);
      let pfn = this.pt.lookup(vpn);
      if (pfn < 0) {
        this.faultAt(vpn * PAGE_SIZE, false);
        pfn = this.pt.lookup(vpn);
        if (pfn < 0) fail('EFAULT', `device read of unmapped address 0x${a.toString(16)}`);
      }
      const off = a - vpn * PAGE_SIZE; // not a % PAGE_SIZE: past 2^31 that is a call to fmod
      const n = Math.min(PAGE_SIZE - off, len - done);
      phys.readPage(pfn, off, out, outOff + done, n);
      done += n;
    }
  }

  /** Device read of len bytes at addr. */
  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.readInto(addr, out, 0, len);
    return out;
  }

  /** Device write of data[off, off + len) at addr, faulting for write where the device may not write yet. */
  write(addr: number, data: Uint8Array, off = 0, len = data.length - off): void {
    const phys = this.mm.machine.phys;
    for (let done = 0; done < len; ) {
      const a = addr + done;
      const vpn = Math.floor(a / PAGE_SIZE);
      if (!(this.pt.flagsOf(vpn) & DPTE_WRITE)) {
        this.faultAt(vpn * PAGE_SIZE, true);
        if (!(this.pt.flagsOf(vpn) & DPTE_WRITE)) fail('EFAULT', `device write to 0x${a.toString(16)} not allowed`);
      }
      const o = a - vpn * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, len - done);
      phys.writePage(this.pt.lookup(vpn), o, data, off + done, n);
      done += n;
    }
  }

  /** Migrate the ranges covering [start, end) into VRAM; returns the pages moved. */
  migrateToDevice(start: number, end: number): number {
    const vram = this.vram;
    if (!vram) fail('EINVAL', 'the device has no memory');
    let moved = 0;
    const ctx: DrmGpusvmCtx = { ...this.ctx(), readOnly: true };
    for (let addr = start; addr < end; ) {
      const range = drmGpusvmRangeFindOrInsert(this.gpusvm, addr, 0, this.mm.taskSize, ctx);
      if (gpusvmRangeMigrateToDevmem(this.gpusvm, range, vram.dpagemap, ctx)) moved += range.npages;
      addr = range.end;
    }
    return moved;
  }

  /** The mirroring guarantee against the CPU page tables (checkDeviceMirror). */
  check(): MirrorCheck {
    return checkDeviceMirror(this.mm, this.pt, this.owner);
  }

  /** Stop mirroring: drop every device entry and the gpusvm state (drm_gpusvm_fini). */
  close(): void {
    this.pt.clear();
    drmGpusvmFini(this.gpusvm);
  }
}
