// A process: a pid and an address space, with the system calls and CPU accesses a program
// makes. Each method is the kernel operation of the same name on its mm.

import { fail } from './errno.js';
import { blocking } from './wait.js';
import type { Machine } from './machine.js';
import type { Mm } from './mm.js';
import type { TmpFile } from './file.js';
import { accessVm, readVm } from './access.js';
import { dupMm } from './fork.js';
import { madvise } from './madvise.js';
import { mremap } from './mremap.js';

export class Process {
  alive = true;
  constructor(readonly machine: Machine, readonly pid: number, readonly mm: Mm, readonly parent: Process | null) {}

  private live(): Mm {
    if (!this.alive) fail('ESRCH', `process ${this.pid} has exited`);
    return this.mm;
  }

  mmap(addr: number, length: number, prot: number, flags: number, file: TmpFile | null = null, offset = 0): number {
    return this.live().mmap(addr, length, prot, flags, file, offset);
  }
  munmap(addr: number, length: number): void {
    this.live().munmap(addr, length);
  }
  mprotect(addr: number, length: number, prot: number): void {
    this.live().mprotect(addr, length, prot);
  }
  madvise(addr: number, length: number, advice: number): void {
    madvise(this.live(), addr, length, advice);
  }
  mremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr = 0): number {
    return mremap(this.live(), oldAddr, oldLen, newLen, flags, newAddr);
  }

  /** fork(): a child with a copy of this address space (COW for private mappings). */
  fork(): Process {
    const child = dupMm(this.live());
    return this.machine.adopt(child, this);
  }

  /** exit(): tear the address space down (exit_mmap). */
  exit(): void {
    const mm = this.live();
    try {
      mm.exit();
    } finally {
      // Gone even when a notifier callback threw during the teardown (the error goes on up).
      if (mm.dead) {
        this.alive = false;
        this.machine.forgetProcess(this);
      }
    }
  }

  // ---- CPU accesses ----

  read(addr: number, len: number): Uint8Array {
    const mm = this.live();
    if (!Number.isSafeInteger(len) || len < 0) fail('EINVAL', `bad length ${len}`);
    return readVm(mm, addr, len);
  }
  write(addr: number, data: Uint8Array): void {
    accessVm(this.live(), addr, data, true);
  }
  /** The sleeping forms: wait (on a page under migration) instead of throwing WouldBlock. */
  readAsync(addr: number, len: number): Promise<Uint8Array> {
    return blocking(() => this.read(addr, len));
  }
  writeAsync(addr: number, data: Uint8Array): Promise<void> {
    return blocking(() => this.write(addr, data));
  }

  readU8(addr: number): number {
    return this.read(addr, 1)[0]!;
  }
  writeU8(addr: number, v: number): void {
    this.write(addr, Uint8Array.of(v));
  }
  readU32(addr: number): number {
    const b = this.read(addr, 4);
    return new DataView(b.buffer).getUint32(0, true);
  }
  writeU32(addr: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(addr, b);
  }
  readI32(addr: number): number {
    const b = this.read(addr, 4);
    return new DataView(b.buffer).getInt32(0, true);
  }
  writeI32(addr: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.write(addr, b);
  }
  readU64(addr: number): bigint {
    const b = this.read(addr, 8);
    return new DataView(b.buffer).getBigUint64(0, true);
  }
  writeU64(addr: number, v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    this.write(addr, b);
  }
}
