// The dmirror device file (/dev/hmm_dmirrorN): open, ioctl, mmap, close. Opening it from a
// process creates a mirror of that process's address space (struct dmirror); each ioctl is
// one command of the uapi (uapi.ts) and runs in the calling process, whose memory `ptr`
// points into.

import { fail, SignalError } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import { allocPages, putPage } from '../../mm/page_alloc.js';
import type { Process } from '../../mm/process.js';
import { mmapDevice, vmInsertPage } from '../../mm/special.js';
import { dmirrorDriverOf, type DmirrorDevice } from './device.js';
import { dmirrorMigrateToDevice, dmirrorMigrateToSystem } from './migrate.js';
import { Dmirror, type DmirrorCtx } from './mirror.js';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_FLAGS, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_READ, HMM_DMIRROR_RELEASE, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_WRITE, type HmmDmirrorCmd,
} from './uapi.js';

/** Largest user address + 1 that a command range may reach (the u64 wrap the kernel checks for). */
const U64_END = 2 ** 64;

export interface DmirrorIoctlOptions {
  /** The process making the call (`current`): whose memory a numeric `ptr` is in. Default: the opener. */
  current?: Process;
  /** Preemption points and sleeps (a scheduler Task fits). */
  ctx?: DmirrorCtx;
}

function isU64(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < U64_END;
}

/** An open /dev/hmm_dmirrorN (a struct file whose private_data is the dmirror). */
export class DmirrorFile {
  readonly dmirror: Dmirror;
  private closed = false;

  constructor(readonly device: DmirrorDevice, readonly proc: Process) {
    this.dmirror = new Dmirror(device, proc);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * ioctl(fd, request, &cmd): run one command. Throws a KernelError with the driver's errno
   * on failure (the kernel's -errno return), in which case cmd's outputs are left as they were;
   * on success cmd.cpages and cmd.faults hold the results.
   */
  async ioctl(request: number, cmd: HmmDmirrorCmd, opts: DmirrorIoctlOptions = {}): Promise<void> {
    if (this.closed) fail('EINVAL', 'the file is closed');
    // copy_from_user of the block: anything that is not a block of u64s faults.
    if (cmd === null || typeof cmd !== 'object') fail('EFAULT', 'the command block is not readable');
    const { addr, npages, ptr } = cmd;
    if (!isU64(addr) || !isU64(npages)) fail('EFAULT', 'bad command block');
    if (!(ptr instanceof Uint8Array) && !isU64(ptr)) fail('EFAULT', 'ptr is neither a user address nor a buffer');
    if (addr % PAGE_SIZE) fail('EINVAL', 'addr is not page aligned');
    // cmd.addr >= cmd.addr + (cmd.npages << PAGE_SHIFT) in u64: empty, or wrapping past 2^64.
    if (npages === 0 || addr + npages * PAGE_SIZE >= U64_END) fail('EINVAL', 'empty or wrapping range');
    // The kernel works on its own copy of the block and copies it back only on success.
    const k: HmmDmirrorCmd = { addr, ptr: cmd.ptr, npages, cpages: 0, faults: 0 };
    const current = opts.current ?? this.proc;
    const ctx = opts.ctx ?? {};
    try {
      await this.dispatch(request, k, current, ctx);
    } catch (e) {
      // A fault the driver takes on the process's behalf that fails is -EFAULT, not a signal.
      if (e instanceof SignalError) fail('EFAULT', e.message);
      throw e;
    }
    cmd.cpages = k.cpages;
    cmd.faults = k.faults;
  }

  private async dispatch(request: number, k: HmmDmirrorCmd, current: Process, ctx: DmirrorCtx): Promise<void> {
    const { addr, npages } = k;
    const dmirror = this.dmirror;
    switch (request) {
      case HMM_DMIRROR_READ:
        await dmirror.read(k, current, ctx);
        break;
      case HMM_DMIRROR_WRITE:
        await dmirror.write(k, current, ctx);
        break;
      case HMM_DMIRROR_MIGRATE_TO_DEV:
        await dmirrorMigrateToDevice(dmirror, k, current, ctx);
        break;
      case HMM_DMIRROR_MIGRATE_TO_SYS:
        await dmirrorMigrateToSystem(dmirror, k, ctx);
        break;
      case HMM_DMIRROR_EXCLUSIVE:
        await dmirror.exclusive(k, current, ctx);
        break;
      case HMM_DMIRROR_CHECK_EXCLUSIVE:
        dmirror.checkAtomic(addr, addr + npages * PAGE_SIZE);
        break;
      case HMM_DMIRROR_SNAPSHOT:
        await dmirror.snapshot(k, current, ctx);
        break;
      case HMM_DMIRROR_RELEASE:
        this.device.removeChunks();
        break;
      case HMM_DMIRROR_FLAGS:
        dmirror.flags = npages;
        break;
      default:
        fail('EINVAL', `unknown dmirror command ${request}`);
    }
  }

  /**
   * mmap(addr, length, prot, flags, fd, offset) of the device itself: dmirror_fops_mmap
   * inserts a freshly allocated zeroed page at every address with vm_insert_page (a
   * VM_MIXEDMAP mapping, read-only in a private mapping) and drops its own reference, so the
   * mapping holds the only one. Returns the address.
   */
  mmap(addr: number, length: number, prot: number, flags: number, offset = 0): number {
    if (this.closed) fail('EINVAL', 'the file is closed');
    const machine = this.proc.machine;
    return mmapDevice(this.proc.mm, addr, length, prot, flags, offset, {
      mmap: (vma) => {
        for (let a = vma.start; a < vma.end; a += PAGE_SIZE) {
          const page = allocPages(machine, 0); // alloc_page(GFP_KERNEL | __GFP_ZERO): a new frame reads as zeros
          if (page < 0) fail('ENOMEM', 'no memory for the device mapping');
          try {
            vmInsertPage(vma, a, page);
          } finally {
            putPage(machine, page);
          }
        }
      },
    });
  }

  /** close(fd): dmirror_fops_release. */
  async close(ctx: DmirrorCtx = {}): Promise<void> {
    if (this.closed) fail('EINVAL', 'the file is already closed');
    this.closed = true;
    await this.dmirror.release(ctx);
  }
}

/** open("/dev/hmm_dmirrorN", O_RDWR) from a process: ENODEV without the driver or that device. */
export function hmmDmirrorOpen(proc: Process, minor: number): DmirrorFile {
  const device = dmirrorDriverOf(proc.machine)?.device(minor);
  if (!device) fail('ENODEV', `no /dev/hmm_dmirror${minor}`);
  if (!proc.alive) fail('ESRCH', 'the process has exited');
  return new DmirrorFile(device, proc);
}
