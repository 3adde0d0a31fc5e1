// One open dmirror file (lib/test_hmm.c's struct dmirror): the device's mirror of the opening
// process's address space. It holds an interval notifier over the whole address space, a
// sparse device page table (vpn -> the page, and whether the device may write it or holds it
// for atomics), and the driver lock that the invalidate callback and every update of the
// device page table take.
//
// The device reads and writes memory only through its page table. A miss is a device page
// fault: hmm_range_fault over 64-page windows from the missing page to the end of the
// request (one "fault" per such call, however many windows and retries it takes), with the
// read_begin / read_retry protocol. SNAPSHOT takes hmm_range_fault's view without faulting.
//
// Operations are atomic in hmmsim, so the lock is a flag that is never held across an await:
// an invalidation can only find it taken if a callback re-enters the driver, which the kernel
// would deadlock on (blockable) or refuse (non-blockable).

import { fail, KernelError, SignalError } from '../../mm/errno.js';
import { blocking } from '../../mm/wait.js';
import { HPAGE_PMD_ORDER, HPAGE_PUD_ORDER, PAGE_SIZE } from '../../mm/constants.js';
import type { Machine } from '../../mm/machine.js';
import type { Mm } from '../../mm/mm.js';
import type { Process } from '../../mm/process.js';
import {
  MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalReadRetry,
  mmuIntervalSetSeq, mmuNotifierRangeBlockable, type MmuNotifierRange,
} from '../../mm/notifier.js';
import { makeDeviceExclusive } from '../../mm/exclusive.js';
import { hmmRangeFaultAsync } from '../../hmm/hmm.js';
import {
  HMM_PFN_ERROR, HMM_PFN_ORDER_MASK, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HmmRange,
} from '../../hmm/range.js';
import type { DmirrorDevice } from './device.js';
import {
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_ZERO, type HmmDmirrorCmd,
} from './uapi.js';

/** Pages per hmm_range_fault / migrate_vma / snapshot window (the driver's 64-entry arrays). */
export const DMIRROR_WINDOW_PAGES = 64;
/** Passes of the read_begin / hmm_range_fault / read_retry loop before EBUSY (HMM_RANGE_DEFAULT_TIMEOUT). */
export const DMIRROR_RANGE_FAULT_TRIES = 1000;

/** One device page-table entry (the kernel's tagged xarray pointer). */
export interface DmirrorPte {
  pfn: number;
  /** DPT_XA_TAG_WRITE: the device may write the page. */
  write: boolean;
  /** DPT_XA_TAG_ATOMIC: the page is held exclusively for device atomics (EXCLUSIVE). */
  atomic: boolean;
}

/**
 * Where a driver operation may be preempted or sleep. A scheduler Task (src/sched) fits; with
 * none the operation runs straight through and sleeps by awaiting.
 */
export interface DmirrorCtx {
  yield?(label?: string): Promise<void>;
  sleep?(p: Promise<unknown>, label?: string): Promise<void>;
}

/** Run fn, sleeping on every WouldBlock (the kernel call that would sleep), then retrying (mm's blocking()). */
export function dmirrorBlocking<T>(ctx: DmirrorCtx, fn: () => T): Promise<T> {
  const sleep = ctx.sleep;
  return blocking(fn, sleep ? (w) => sleep.call(ctx, w, 'dmirror') : undefined);
}

/** struct dmirror_bounce: the kernel-side copy of the data a command moves. */
export class DmirrorBounce {
  readonly buf: Uint8Array;
  cpages = 0;
  constructor(readonly addr: number, size: number) {
    this.buf = new Uint8Array(size);
  }

  /**
   * dmirror_bounce_init: vmalloc of the buffer, from system RAM. ENOMEM when it cannot be
   * had: more than all of RAM, or more than the host gives one buffer.
   */
  static init(machine: Machine, addr: number, size: number): DmirrorBounce {
    if (size > machine.phys.ramFrames * PAGE_SIZE) fail('ENOMEM', `vmalloc of a ${size}-byte bounce buffer`);
    try {
      return new DmirrorBounce(addr, size);
    } catch (e) {
      if (e instanceof RangeError) fail('ENOMEM', `vmalloc of a ${size}-byte bounce buffer`);
      throw e;
    }
  }
}

export class Dmirror {
  readonly pt = new Map<number, DmirrorPte>();
  readonly notifier: MmuIntervalNotifier;
  /** HMM_DMIRROR_FLAGS as last set. */
  flags = 0;
  private locked = false;

  constructor(readonly device: DmirrorDevice, readonly proc: Process) {
    this.notifier = new MmuIntervalNotifier({ invalidate: (sub, range, seq) => this.invalidate(sub, range, seq) });
    mmuIntervalNotifierInsert(this.notifier, proc.mm, 0, proc.mm.taskSize);
  }

  /** The mirrored address space (dmirror->notifier.mm). */
  get mm(): Mm {
    return this.proc.mm;
  }

  // ---- the driver lock ----

  lock(): void {
    if (this.locked) throw new Error(`${this.device.name}: driver lock taken twice (a deadlock in the kernel)`);
    this.locked = true;
  }
  unlock(): void {
    this.locked = false;
  }
  private trylock(): boolean {
    if (this.locked) return false;
    this.locked = true;
    return true;
  }

  /** dmirror_interval_invalidate */
  private invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, curSeq: number): boolean {
    // Our own migrations replace the entries themselves: not an invalidation for us.
    if (range.event === 'MIGRATE' && range.owner === this.device) return true;
    if (mmuNotifierRangeBlockable(range)) this.lock();
    else if (!this.trylock()) return false;
    mmuIntervalSetSeq(sub, curSeq);
    this.doUpdate(range.start, range.end);
    this.unlock();
    return true;
  }

  /**
   * dmirror_do_update: erase the entries of [start, end). The driver walks the xarray from
   * start >> PAGE_SHIFT to end >> PAGE_SHIFT inclusive, so the page at `end` goes too.
   */
  private doUpdate(start: number, end: number): void {
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.floor(end / PAGE_SIZE);
    if (last - first < this.pt.size) {
      for (let v = first; v <= last; v++) this.pt.delete(v);
    } else {
      for (const v of [...this.pt.keys()]) if (v >= first && v <= last) this.pt.delete(v);
    }
  }

  /** Erase one entry (xa_erase), as a migration back to system memory does. */
  erase(addr: number): void {
    this.pt.delete(Math.floor(addr / PAGE_SIZE));
  }

  /** Store an entry (xa_store); the caller holds the lock. */
  store(addr: number, pte: DmirrorPte): void {
    this.pt.set(Math.floor(addr / PAGE_SIZE), pte);
  }

  // ---- device faults ----

  /** dmirror_do_fault: program the device page table from a successful hmm_range_fault. */
  private doFault(range: HmmRange): void {
    const n = range.npages;
    const first = range.start / PAGE_SIZE;
    for (let i = 0; i < n; i++) {
      const flags = range.hmmFlags[i]!;
      // With REQ_FAULT on every page, a success leaves no ERROR and no invalid entry.
      if (flags & HMM_PFN_ERROR || !(flags & HMM_PFN_VALID)) throw new Error(`${this.device.name}: hmm_range_fault returned an invalid entry after success`);
      const write = (flags & HMM_PFN_WRITE) !== 0;
      if (!write && range.defaultFlags & HMM_PFN_REQ_WRITE) fail('EFAULT', 'hmm_range_fault gave a read-only page to a write fault');
      this.pt.set(first + i, { pfn: range.hmmPfns[i]!, write, atomic: false });
    }
  }

  /** dmirror_range_fault: read_begin, hmm_range_fault, then read_retry under the lock. */
  private async rangeFault(range: HmmRange, ctx: DmirrorCtx): Promise<void> {
    const sleep = (p: Promise<void>): Promise<void> => (ctx.sleep ? ctx.sleep(p, 'hmm_range_fault') : p);
    for (let tries = 0; ; tries++) {
      if (tries >= DMIRROR_RANGE_FAULT_TRIES) fail('EBUSY', `${this.device.name}: hmm_range_fault kept being invalidated`);
      await ctx.yield?.('dmirror: read_begin');
      range.notifierSeq = await dmirrorBlocking(ctx, () => mmuIntervalReadBegin(range.notifier));
      try {
        await hmmRangeFaultAsync(range, sleep);
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') continue;
        throw e;
      }
      await ctx.yield?.('dmirror: lock');
      this.lock();
      if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) {
        this.unlock();
        continue;
      }
      break;
    }
    try {
      this.doFault(range);
    } finally {
      this.unlock();
    }
  }

  /** dmirror_fault: fault [start, end) into the device page table, 64 pages at a time. */
  async fault(start: number, end: number, write: boolean, ctx: DmirrorCtx): Promise<void> {
    // mmget_not_zero failed: the kernel's dmirror_fault returns 0 here and READ/WRITE would
    // then retry forever; hmmsim fails the command instead.
    if (this.mm.dead) fail('EINVAL', 'the mirrored process has exited');
    const range = new HmmRange({
      notifier: this.notifier, start, end: start, devPrivateOwner: this.device, pfnFlagsMask: 0,
      defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
      hmmPfns: new Uint32Array(DMIRROR_WINDOW_PAGES), hmmFlags: new Uint8Array(DMIRROR_WINDOW_PAGES),
    });
    for (let addr = start; addr < end; addr = range.end) {
      range.start = addr;
      range.end = Math.min(addr + DMIRROR_WINDOW_PAGES * PAGE_SIZE, end);
      await this.rangeFault(range, ctx);
    }
  }

  // ---- reading and writing through the device page table ----

  /** dmirror_do_read: copy pages into the bounce buffer; ENOENT at the first page the device does not map. */
  doRead(start: number, end: number, bounce: DmirrorBounce): boolean {
    const phys = this.mm.machine.phys;
    let off = start - bounce.addr;
    for (let vpn = start / PAGE_SIZE; vpn < end / PAGE_SIZE; vpn++) {
      const pte = this.pt.get(vpn);
      if (!pte) return false;
      phys.readPage(pte.pfn, 0, bounce.buf, off, PAGE_SIZE);
      off += PAGE_SIZE;
      bounce.cpages++;
    }
    return true;
  }

  /** dmirror_do_write: copy the bounce buffer into pages the device maps writable. */
  private doWrite(start: number, end: number, bounce: DmirrorBounce): boolean {
    const phys = this.mm.machine.phys;
    let off = start - bounce.addr;
    for (let vpn = start / PAGE_SIZE; vpn < end / PAGE_SIZE; vpn++) {
      const pte = this.pt.get(vpn);
      if (!pte || !pte.write) return false;
      phys.writePage(pte.pfn, 0, bounce.buf, off, PAGE_SIZE);
      off += PAGE_SIZE;
      bounce.cpages++;
    }
    return true;
  }

  /** HMM_DMIRROR_READ (dmirror_read) */
  async read(cmd: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
    const end = cmd.addr + cmd.npages * PAGE_SIZE;
    const bounce = DmirrorBounce.init(this.mm.machine, cmd.addr, cmd.npages * PAGE_SIZE);
    let start = cmd.addr;
    try {
      for (;;) {
        this.lock();
        const ok = this.doRead(start, end, bounce);
        this.unlock();
        if (ok) break;
        start = cmd.addr + bounce.cpages * PAGE_SIZE;
        await this.fault(start, end, false, ctx);
        cmd.faults++;
      }
      await copyToUser(current, cmd.ptr, bounce.buf, ctx);
    } finally {
      cmd.cpages = bounce.cpages;
    }
  }

  /** HMM_DMIRROR_WRITE (dmirror_write) */
  async write(cmd: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
    const end = cmd.addr + cmd.npages * PAGE_SIZE;
    const bounce = DmirrorBounce.init(this.mm.machine, cmd.addr, cmd.npages * PAGE_SIZE);
    let start = cmd.addr;
    try {
      await copyFromUser(current, bounce.buf, cmd.ptr, ctx);
      for (;;) {
        this.lock();
        const ok = this.doWrite(start, end, bounce);
        this.unlock();
        if (ok) break;
        start = cmd.addr + bounce.cpages * PAGE_SIZE;
        await this.fault(start, end, true, ctx);
        cmd.faults++;
      }
    } finally {
      cmd.cpages = bounce.cpages;
    }
  }

  /** Read [start, end) back through the device page table into the user buffer (after MIGRATE_TO_DEV and EXCLUSIVE). */
  async readBack(cmd: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
    const end = cmd.addr + cmd.npages * PAGE_SIZE;
    const bounce = DmirrorBounce.init(this.mm.machine, cmd.addr, cmd.npages * PAGE_SIZE);
    this.lock();
    const ok = this.doRead(cmd.addr, end, bounce);
    this.unlock();
    cmd.cpages = bounce.cpages;
    if (!ok) fail('ENOENT', `${this.device.name}: page 0x${(cmd.addr + bounce.cpages * PAGE_SIZE).toString(16)} is not in device memory`);
    await copyToUser(current, cmd.ptr, bounce.buf, ctx);
  }

  // ---- snapshot ----

  /** dmirror_mkentry: the snapshot byte of one hmm_range_fault entry. */
  private mkentry(range: HmmRange, i: number): number {
    const flags = range.hmmFlags[i]!;
    if (flags & HMM_PFN_ERROR) return HMM_DMIRROR_PROT_ERROR;
    if (!(flags & HMM_PFN_VALID)) return HMM_DMIRROR_PROT_NONE;
    const phys = this.mm.machine.phys;
    const page = range.hmmPfns[i]!;
    const pgmap = phys.pagemapOf(page);
    let perm: number;
    if (pgmap?.type === 'private') perm = pgmap.owner === this.device ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
    else if (pgmap?.type === 'coherent') perm = pgmap.owner === this.device ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
    else if (page === phys.zeroPfn) perm = HMM_DMIRROR_PROT_ZERO; // is_zero_pfn: the small zero page only
    else perm = HMM_DMIRROR_PROT_NONE;
    perm |= flags & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
    const order = flags & HMM_PFN_ORDER_MASK;
    if (order === HPAGE_PMD_ORDER) perm |= HMM_DMIRROR_PROT_PMD;
    else if (order === HPAGE_PUD_ORDER) perm |= HMM_DMIRROR_PROT_PUD;
    return perm;
  }

  /**
   * dmirror_range_snapshot: a temporary interval notifier on exactly the window (so any
   * invalidation of it is seen, even one the device's own notifier ignores), then
   * hmm_range_fault with no request bits until a pass is not invalidated.
   */
  private async rangeSnapshot(range: HmmRange, perm: Uint8Array, ctx: DmirrorCtx): Promise<void> {
    const sub = new MmuIntervalNotifier({
      invalidate: (s, r, seq) => {
        if (mmuNotifierRangeBlockable(r)) this.lock();
        else if (!this.trylock()) return false;
        mmuIntervalSetSeq(s, seq);
        this.unlock();
        return true;
      },
    });
    range.notifier = sub;
    mmuIntervalNotifierInsert(sub, this.mm, range.start, range.end - range.start);
    const sleep = (p: Promise<void>): Promise<void> => (ctx.sleep ? ctx.sleep(p, 'hmm_range_fault') : p);
    try {
      for (let tries = 0; ; tries++) {
        if (tries >= DMIRROR_RANGE_FAULT_TRIES) fail('EBUSY', `${this.device.name}: snapshot kept being invalidated`);
        await ctx.yield?.('dmirror: snapshot read_begin');
        range.notifierSeq = await dmirrorBlocking(ctx, () => mmuIntervalReadBegin(sub));
        try {
          await hmmRangeFaultAsync(range, sleep);
        } catch (e) {
          if (e instanceof KernelError && e.errno === 'EBUSY') continue;
          throw e;
        }
        this.lock();
        if (mmuIntervalReadRetry(sub, range.notifierSeq)) {
          this.unlock();
          continue;
        }
        break;
      }
      const n = range.npages;
      for (let i = 0; i < n; i++) perm[i] = this.mkentry(range, i);
      this.unlock();
    } finally {
      await dmirrorBlocking(ctx, () => mmuIntervalNotifierRemove(sub));
    }
  }

  /** HMM_DMIRROR_SNAPSHOT (dmirror_snapshot): one byte per page into the user buffer. */
  async snapshot(cmd: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
    if (this.mm.dead) fail('EINVAL', 'the mirrored process has exited');
    const end = cmd.addr + cmd.npages * PAGE_SIZE;
    const range = new HmmRange({
      notifier: this.notifier, start: cmd.addr, end: cmd.addr, devPrivateOwner: this.device,
      hmmPfns: new Uint32Array(DMIRROR_WINDOW_PAGES), hmmFlags: new Uint8Array(DMIRROR_WINDOW_PAGES),
    });
    const perm = new Uint8Array(DMIRROR_WINDOW_PAGES);
    let uoff = 0;
    for (let addr = cmd.addr; addr < end; addr = range.end) {
      range.start = addr;
      range.end = Math.min(addr + DMIRROR_WINDOW_PAGES * PAGE_SIZE, end);
      await this.rangeSnapshot(range, perm, ctx);
      const n = range.npages;
      await copyToUser(current, userOffset(cmd.ptr, uoff), perm.subarray(0, n), ctx);
      cmd.cpages += n;
      uoff += n;
    }
  }

  // ---- device-exclusive access ----

  /** HMM_DMIRROR_EXCLUSIVE (dmirror_exclusive): take each page for device atomics, then read it. */
  async exclusive(cmd: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
    if (this.mm.dead) fail('EINVAL', 'the mirrored process has exited');
    const end = cmd.addr + cmd.npages * PAGE_SIZE;
    for (let addr = cmd.addr; addr < end; addr += PAGE_SIZE) {
      const page = await dmirrorBlocking(ctx, () => makeDeviceExclusive(this.mm, addr, null));
      this.lock();
      this.store(addr, { pfn: page, write: false, atomic: true });
      this.unlock();
    }
    await this.readBack(cmd, current, ctx);
  }

  /** HMM_DMIRROR_CHECK_EXCLUSIVE (dmirror_check_atomic): EPERM while any page is still held for atomics. */
  checkAtomic(start: number, end: number): void {
    for (let vpn = start / PAGE_SIZE; vpn < end / PAGE_SIZE; vpn++) {
      if (this.pt.get(vpn)?.atomic) fail('EPERM', `page 0x${(vpn * PAGE_SIZE).toString(16)} is still mapped for device atomics`);
    }
  }

  /** dmirror_fops_release */
  async release(ctx: DmirrorCtx): Promise<void> {
    await dmirrorBlocking(ctx, () => mmuIntervalNotifierRemove(this.notifier));
    this.pt.clear();
  }
}

// ---- copy_to_user / copy_from_user ----

function userOffset(ptr: number | Uint8Array, off: number): number | Uint8Array {
  return typeof ptr === 'number' ? ptr + off : ptr.subarray(off);
}

/** copy_to_user: into the calling process's memory (faulting as a CPU store would), or into a Uint8Array. */
export async function copyToUser(proc: Process, ptr: number | Uint8Array, data: Uint8Array, ctx: DmirrorCtx): Promise<void> {
  if (ptr instanceof Uint8Array) {
    if (ptr.length < data.length) fail('EFAULT', 'user buffer too small');
    ptr.set(data);
    return;
  }
  try {
    await dmirrorBlocking(ctx, () => proc.write(ptr, data));
  } catch (e) {
    if (e instanceof SignalError || (e instanceof KernelError && e.errno === 'EINVAL')) fail('EFAULT', `copy_to_user: ${e.message}`);
    throw e;
  }
}

/** copy_from_user */
export async function copyFromUser(proc: Process, out: Uint8Array, ptr: number | Uint8Array, ctx: DmirrorCtx): Promise<void> {
  if (ptr instanceof Uint8Array) {
    if (ptr.length < out.length) fail('EFAULT', 'user buffer too small');
    out.set(ptr.subarray(0, out.length));
    return;
  }
  try {
    out.set(await dmirrorBlocking(ctx, () => proc.read(ptr, out.length)));
  } catch (e) {
    if (e instanceof SignalError || (e instanceof KernelError && e.errno === 'EINVAL')) fail('EFAULT', `copy_from_user: ${e.message}`);
    throw e;
  }
}
