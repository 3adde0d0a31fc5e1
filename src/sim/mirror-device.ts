// A device that mirrors one process's address space with the mainline HMM API, as a driver
// does (Documentation/mm/hmm.rst): an interval notifier over the process, a device page
// table, hmm_range_fault in windows with the read_begin / read_retry protocol under the
// driver lock, and an invalidate callback that takes the same lock and drops entries.

import { KernelError } from '../mm/errno.js';
import { PAGE_SIZE } from '../mm/constants.js';
import type { Mm } from '../mm/mm.js';
import {
  MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalReadRetry,
  mmuIntervalSetSeq, type MmuNotifierRange,
} from '../mm/notifier.js';
import { HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HmmRange } from '../hmm/range.js';
import { hmmRangeFault } from '../hmm/hmm.js';
import { DeviceMemory } from './device-memory.js';

const WINDOW_PAGES = 512;

export interface DeviceStats {
  /** hmm_range_fault calls. */
  rangeFaults: number;
  /** Passes that had to start over (EBUSY, or read_retry after an invalidation). */
  retries: number;
  /** Device entries dropped by invalidations. */
  entriesInvalidated: number;
}

export class MirrorDevice {
  /** Device page table: vpn -> pfn, and which vpns are writable. */
  readonly pt = new Map<number, number>();
  readonly writable = new Set<number>();
  readonly sub: MmuIntervalNotifier;
  readonly stats: DeviceStats = { rangeFaults: 0, retries: 0, entriesInvalidated: 0 };
  private locked = false;

  /** Device memory, if the device has any (`attachMemory`). */
  memory: DeviceMemory | null = null;

  constructor(readonly mm: Mm, readonly owner: unknown = null) {
    this.sub = new MmuIntervalNotifier({ invalidate: (s, r, seq) => this.invalidate(s, r, seq) });
    mmuIntervalNotifierInsert(this.sub, mm, 0, mm.taskSize);
  }

  private invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, seq: number): boolean {
    // Our own migrations: the entries are replaced by us, not invalidated (as dmirror does).
    if (range.event === 'MIGRATE' && range.owner === this.owner && this.owner !== null) return true;
    if (this.locked) return false; // only reachable for non-blockable ranges
    this.locked = true;
    mmuIntervalSetSeq(sub, seq);
    const s = Math.floor(range.start / PAGE_SIZE);
    const e = Math.ceil(Math.min(range.end, this.mm.taskSize) / PAGE_SIZE);
    if (e - s < this.pt.size) {
      for (let v = s; v < e; v++) if (this.pt.delete(v)) { this.writable.delete(v); this.stats.entriesInvalidated++; }
    } else {
      for (const v of [...this.pt.keys()]) if (v >= s && v < e) { this.pt.delete(v); this.writable.delete(v); this.stats.entriesInvalidated++; }
    }
    this.locked = false;
    return true;
  }

  /**
   * A device page fault over [start, end): fault and map it (write: writable). Pages that
   * cannot be mapped (no VMA, no permission) are left unmapped and counted in the result.
   */
  fault(start: number, end: number, write: boolean): { mapped: number; failed: number } {
    let mapped = 0;
    let failed = 0;
    for (let s = start; s < end; s += WINDOW_PAGES * PAGE_SIZE) {
      const e = Math.min(end, s + WINDOW_PAGES * PAGE_SIZE);
      const r = this.faultWindow(s, e, write);
      mapped += r.mapped;
      failed += r.failed;
    }
    return { mapped, failed };
  }

  private faultWindow(start: number, end: number, write: boolean): { mapped: number; failed: number } {
    const range = new HmmRange({
      notifier: this.sub, start, end, devPrivateOwner: this.owner,
      defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    });
    for (let pass = 0; pass < 100; pass++) {
      range.notifierSeq = mmuIntervalReadBegin(this.sub);
      this.stats.rangeFaults++;
      try {
        hmmRangeFault(range);
      } catch (err) {
        if (err instanceof KernelError && err.errno === 'EBUSY') {
          this.stats.retries++;
          continue;
        }
        if (err instanceof KernelError && (err.errno === 'EFAULT' || err.errno === 'EPERM')) {
          return this.faultPagewise(start, end, write);
        }
        throw err;
      }
      this.locked = true;
      if (mmuIntervalReadRetry(this.sub, range.notifierSeq)) {
        this.locked = false;
        this.stats.retries++;
        continue;
      }
      const base = start / PAGE_SIZE;
      for (let i = 0; i < range.hmmPfns.length; i++) {
        const f = range.hmmFlags[i]!;
        this.pt.set(base + i, range.hmmPfns[i]!);
        if (f & HMM_PFN_WRITE) this.writable.add(base + i);
        else this.writable.delete(base + i);
      }
      this.locked = false;
      return { mapped: range.hmmPfns.length, failed: 0 };
    }
    throw new Error('device fault did not settle in 100 passes');
  }

  /** A window with a bad page: fault page by page so the good ones still map (as a driver reporting per-page errors). */
  private faultPagewise(start: number, end: number, write: boolean): { mapped: number; failed: number } {
    let mapped = 0;
    let failed = 0;
    for (let a = start; a < end; a += PAGE_SIZE) {
      const range = new HmmRange({ notifier: this.sub, start: a, end: a + PAGE_SIZE, devPrivateOwner: this.owner, defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0) });
      let done = false;
      for (let pass = 0; pass < 100 && !done; pass++) {
        range.notifierSeq = mmuIntervalReadBegin(this.sub);
        this.stats.rangeFaults++;
        try {
          hmmRangeFault(range);
        } catch (err) {
          if (err instanceof KernelError && err.errno === 'EBUSY') continue;
          if (err instanceof KernelError && (err.errno === 'EFAULT' || err.errno === 'EPERM')) break;
          throw err;
        }
        this.locked = true;
        if (!mmuIntervalReadRetry(this.sub, range.notifierSeq) && range.hmmFlags[0]! & HMM_PFN_VALID && !(range.hmmFlags[0]! & HMM_PFN_ERROR)) {
          this.pt.set(a / PAGE_SIZE, range.hmmPfns[0]!);
          if (range.hmmFlags[0]! & HMM_PFN_WRITE) this.writable.add(a / PAGE_SIZE);
          done = true;
        }
        this.locked = false;
      }
      if (done) mapped++;
      else failed++;
    }
    return { mapped, failed };
  }

  /** Device read of `len` bytes at addr through its page table (DMA from the mapped frames), faulting what is missing. */
  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const phys = this.mm.machine.phys;
    for (let done = 0; done < len; ) {
      const a = addr + done;
      const vpn = Math.floor(a / PAGE_SIZE);
      if (!this.pt.has(vpn)) {
        const r = this.fault(vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE, false);
        if (r.failed) throw new KernelError('EFAULT', `device read of unmapped address 0x${a.toString(16)}`);
      }
      const off = a % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, len - done);
      phys.readPage(this.pt.get(vpn)!, off, out, done, n);
      done += n;
    }
    return out;
  }

  /** The mirroring guarantee: every device entry maps the CPU's frame, with no more permission. Returns violations. */
  check(): string[] {
    const bad: string[] = [];
    for (const [vpn, pfn] of this.pt) {
      const r = new HmmRange({ notifier: this.sub, start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE, devPrivateOwner: this.owner });
      r.notifierSeq = mmuIntervalReadBegin(this.sub);
      try {
        hmmRangeFault(r);
      } catch {
        bad.push(`vpn ${vpn}: device maps frame ${pfn}, the CPU maps nothing`);
        continue;
      }
      const f = r.hmmFlags[0]!;
      if (!(f & HMM_PFN_VALID) || r.hmmPfns[0] !== pfn) bad.push(`vpn ${vpn}: device maps frame ${pfn}, the CPU ${f & HMM_PFN_VALID ? `frame ${r.hmmPfns[0]}` : 'nothing'}`);
      else if (this.writable.has(vpn) && !(f & HMM_PFN_WRITE)) bad.push(`vpn ${vpn}: device may write, the CPU may not`);
    }
    return bad;
  }

  /** Give the device `frames` pages of device-private memory; it owns them (pgmap owner = this.owner). */
  attachMemory(frames: number): DeviceMemory {
    const mem = new DeviceMemory(this.mm.machine, this.owner, frames);
    mem.onEvict = (_mm, addr) => {
      const vpn = addr / PAGE_SIZE;
      this.pt.delete(vpn);
      this.writable.delete(vpn);
    };
    this.memory = mem;
    return mem;
  }

  /** Migrate [start, end) into device memory and map the device pages (MIGRATE_TO_DEV). */
  migrateToDevice(start: number, end: number): number {
    if (!this.memory) throw new KernelError('EINVAL', 'device has no memory');
    let moved = 0;
    for (let s = start; s < end; s += WINDOW_PAGES * PAGE_SIZE) {
      moved += this.memory.migrateToDevice(this.mm, s, Math.min(end, s + WINDOW_PAGES * PAGE_SIZE), (addr, pfn, write) => {
        this.locked = true;
        this.pt.set(addr / PAGE_SIZE, pfn);
        if (write) this.writable.add(addr / PAGE_SIZE);
        else this.writable.delete(addr / PAGE_SIZE);
        this.locked = false;
      });
    }
    return moved;
  }

  /** Device write of data at addr into the page it maps (faulting for write if needed). */
  write(addr: number, data: Uint8Array): void {
    const vpn = Math.floor(addr / PAGE_SIZE);
    if (!this.writable.has(vpn)) {
      const r = this.fault(vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE, true);
      if (r.failed || !this.writable.has(vpn)) throw new KernelError('EFAULT', `device write to 0x${addr.toString(16)} not allowed`);
    }
    this.mm.machine.phys.writePage(this.pt.get(vpn)!, addr % PAGE_SIZE, data, 0, data.length);
  }

  close(): void {
    mmuIntervalNotifierRemove(this.sub);
    this.pt.clear();
    this.writable.clear();
  }
}
