// One execution of a check scenario: a fresh machine, the driver's device probed on it, the
// processes it mirrors, the threads (device threads making accesses through a mirror, CPU
// threads changing the address space), a shadow of what every page should hold, and the
// invariants checked after every step (violation.ts). Scenarios (scenarios.ts) are built from
// the thread operations here.

import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MADV_DONTNEED, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.js';
import { KernelError, SignalError } from '../mm/errno.js';
import { Machine } from '../mm/machine.js';
import type { Process } from '../mm/process.js';
import {
  isDeviceExclusiveEntry, isDevicePrivateEntry, isMigrationEntry, LEVEL_PAGES, pteProtnone, ptePresent, pteWrite, ptFlags, ptVal, type PtSlot,
} from '../mm/pagetable.js';
import { swapOutPage } from '../mm/vmscan.js';
import { Mutex } from '../sched/mutex.js';
import { DeadlockError, LockWaitLearned, UnscheduledAwaitError, type Scheduler, type Task } from '../sched/scheduler.js';
import { DPTE_WRITE } from '../drivers/gpusvm/device-pagetable.js';
import type { DeviceMappings } from './device-pt.js';
import { ACCESS_ERRNOS, type CheckDevice, type CheckDriver, type CheckMirror, type DriverCtx, type DriverEnv } from './driver.js';
import { OtherDevice } from './other-device.js';
import { Violation, type Invariant } from './violation.js';

/** Pages in the buffer every scenario mirrors. */
export const BUFFER_PAGES = 2;

/** A mirrored process as the world tracks it. */
export interface MirrorState {
  readonly name: string;
  readonly mirror: CheckMirror;
  readonly proc: Process;
  detached: boolean;
}

/** One step of a traced execution (report.ts prints them; --record writes them). */
export interface TraceStep {
  /** 1-based. */
  readonly step: number;
  /** The thread's id (its letter in the schedule token) and name. */
  readonly thread: number;
  readonly threadName: string;
  /** Where the thread stopped at the end of the step (its next preemption point, a sleep, or done). */
  readonly stoppedAt: string;
  /** What happened in the step: the thread's operations, invalidations, device page-table changes. */
  readonly notes: readonly string[];
  /** The step preempted a thread that could have gone on. */
  readonly preemption: boolean;
}

/** Who wrote a page last, for messages. */
type Writer = 'initial' | 'cpu' | 'device' | 'zero';

/** The device's identity for the driver under check (its pgmap / dev_private owner). */
export class DeviceOwner {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

export class World {
  readonly machine: Machine;
  readonly owner = new DeviceOwner('device under check');
  device!: CheckDevice;
  readonly mirrors: MirrorState[] = [];
  readonly procs: Process[] = [];
  /** The process and buffer every scenario starts from. */
  proc!: Process;
  buf = 0;
  /** Per process: page -> the u32 at its offset 0 (absent: not mapped). */
  private readonly shadow = new Map<Process, Map<number, number>>();
  private readonly writers = new Map<Process, Map<number, Writer>>();
  private other: OtherDevice | null = null;
  private nextValue = 0x1000;
  private readonly ctxs = new Map<Task, DriverCtx>();
  private ramBaseline = 0;
  /** Where each page of interest lives, for messages: address -> name (p0, p1, q0, ...). */
  private readonly names = new Map<number, string>();
  // Tracing
  readonly trace: TraceStep[] = [];
  private notes: string[] = [];
  private ptBefore: Array<Map<number, string>> = [];
  private readonly slot: PtSlot = { node: null!, idx: 0, level: 0 };
  private readonly word = new Uint8Array(4);

  constructor(readonly sched: Scheduler, readonly driver: CheckDriver, readonly tracing: boolean) {
    this.machine = new Machine({ ramBytes: 2 ** 20, swapBytes: 2 ** 18 });
    sched.onStep = (task) => this.afterStep(task);
    if (tracing) {
      this.machine.events.subscribe('invalidate', (e) => {
        if (e.phase !== 'start') return;
        const r = e.range;
        const owner = r.owner ? ` by ${ownerName(r.owner)}` : '';
        this.note(`invalidate ${r.event} ${this.span(r.start, r.end)}${owner} (mm ${r.mm.id})`);
      });
      this.machine.events.subscribe('free', (e) => {
        if (e.device) this.note(`page_free(pfn ${e.pfn})`);
      });
    }
  }

  // ---- setup ----

  env(): DriverEnv {
    return { machine: this.machine, owner: this.owner, mutex: (name) => new Mutex(this.sched, name) };
  }

  /** The thread hooks a driver gets; outside the run (setup) nothing preempts and a lock is taken at once. */
  ctx(task: Task | null): DriverCtx {
    if (!task) return this.setupCtx;
    let c = this.ctxs.get(task);
    if (!c) {
      c = {
        name: task.name,
        yield: (label) => task.yield(label),
        sleep: (p, label) => task.sleep(p, label),
        blocking: (fn, label) => task.blocking(fn, label),
        lock: (m) => m.lock(task),
      };
      this.ctxs.set(task, c);
    }
    return c;
  }

  private readonly setupCtx: DriverCtx = {
    name: 'setup',
    yield: () => Promise.resolve(),
    sleep: (p) => p.then(() => undefined),
    blocking: async (fn) => {
      try {
        return fn();
      } catch (e) {
        if (e instanceof KernelError && e.name === 'WouldBlock') throw new Error(`a kernel call would sleep during setup: ${e.message}`);
        throw e;
      }
    },
    lock: (m) => {
      m.lockSync();
      return Promise.resolve();
    },
  };

  /** The common start: a process with a written buffer, the device probed and attached to it. */
  async boot(): Promise<void> {
    this.device = await this.driver.probe(this.env());
    this.ramBaseline = this.machine.phys.usedRamFrames;
    this.proc = this.spawnProcess();
    this.buf = this.proc.mmap(0, BUFFER_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    for (let i = 0; i < BUFFER_PAGES; i++) {
      this.names.set(this.buf + i * PAGE_SIZE, `p${i}`);
      this.setShadow(this.proc, this.buf + i * PAGE_SIZE, this.nextValue, 'initial');
      this.proc.writeU32(this.buf + i * PAGE_SIZE, this.nextValue++);
    }
    await this.attach(this.proc, 'mirror');
  }

  spawnProcess(): Process {
    const p = this.machine.spawn();
    this.procs.push(p);
    this.shadow.set(p, new Map());
    this.writers.set(p, new Map());
    return p;
  }

  async attach(proc: Process, name: string): Promise<MirrorState> {
    const mirror = await this.device.attach(proc, this.ctx(null));
    const ms: MirrorState = { name, mirror, proc, detached: false };
    this.mirrors.push(ms);
    return ms;
  }

  /** The adversary device (another device that migrates the buffer into its memory); created on first use. */
  otherDevice(): OtherDevice {
    this.other ??= new OtherDevice(this.machine);
    return this.other;
  }

  nameAddr(addr: number, name: string): void {
    this.names.set(addr, name);
  }

  // ---- what the threads do ----

  note(s: string): void {
    if (this.tracing) this.notes.push(s);
  }

  /** An address, by name when it is a page of interest. */
  where(addr: number): string {
    const base = addr - (addr % PAGE_SIZE);
    return this.names.get(base) ?? `0x${addr.toString(16)}`;
  }
  private span(start: number, end: number): string {
    if (end >= 2 ** 47) return 'everything';
    const first = this.where(start);
    const n = Math.ceil((end - start) / PAGE_SIZE);
    return n <= 1 ? first : `${first}..${this.where(end - PAGE_SIZE)}`;
  }

  private setShadow(p: Process, addr: number, v: number | undefined, who: Writer): void {
    const vpn = Math.floor(addr / PAGE_SIZE);
    if (v === undefined) {
      this.shadow.get(p)!.delete(vpn);
      this.writers.get(p)!.delete(vpn);
    } else {
      this.shadow.get(p)!.set(vpn, v);
      this.writers.get(p)!.set(vpn, who);
    }
  }
  private expected(p: Process, addr: number): number | undefined {
    return this.shadow.get(p)?.get(Math.floor(addr / PAGE_SIZE));
  }

  private violation(inv: Invariant, message: string, task?: Task): Violation {
    const t = task ?? this.sched.current;
    return new Violation(inv, message, this.sched.step, t?.name ?? 'teardown');
  }

  /** A device access through the mirror's page table; a miss (or a write to a read-only entry) calls the driver's fault. */
  async deviceAccess(t: Task, ms: MirrorState, addr: number, write: boolean): Promise<void> {
    const what = `${write ? 'write' : 'read'} ${this.where(addr)}`;
    for (let tries = 0; tries < 4; tries++) {
      await t.yield(`${ms.name}: ${what}`);
      this.note(`${ms.name}: device ${what}`);
      const vpn = Math.floor(addr / PAGE_SIZE);
      const pfn = ms.mirror.pt.lookup(vpn);
      if (pfn >= 0 && (!write || ms.mirror.pt.flagsOf(vpn) & DPTE_WRITE)) {
        this.access(t, ms, addr, pfn, write);
        return;
      }
      this.note(`${ms.name}: miss, the driver's fault handler runs`);
      try {
        await ms.mirror.fault(addr, write, this.ctx(t));
      } catch (err) {
        if (err instanceof KernelError && !(err instanceof SignalError) && ACCESS_ERRNOS.has(err.errno) && err.name !== 'WouldBlock') {
          this.note(`${ms.name}: ${what} fails: ${err.errno}`);
          return;
        }
        throw err;
      }
    }
    this.note(`${ms.name}: ${what} given up after 4 faults`);
  }

  private readWord(pfn: number): number {
    const w = this.word;
    this.machine.phys.readPage(pfn, 0, w, 0, 4);
    return (w[0]! | (w[1]! << 8) | (w[2]! << 16) | (w[3]! << 24)) >>> 0;
  }

  private access(t: Task, ms: MirrorState, addr: number, pfn: number, write: boolean): void {
    const phys = this.machine.phys;
    if (write) {
      const v = this.nextValue++;
      const w = this.word;
      w[0] = v & 255;
      w[1] = (v >>> 8) & 255;
      w[2] = (v >>> 16) & 255;
      w[3] = v >>> 24;
      phys.writePage(pfn, 0, w, 0, 4);
      this.setShadow(ms.proc, addr, v, 'device');
      this.note(`${ms.name}: device wrote ${v} (pfn ${pfn})`);
      return;
    }
    const got = this.readWord(pfn);
    const want = this.expected(ms.proc, addr);
    this.note(`${ms.name}: device read ${got} (pfn ${pfn})`);
    if (want === undefined) throw this.violation('device-read-stale', `${ms.name}: the device read ${this.where(addr)} (pfn ${pfn}), which process ${ms.proc.pid} does not map`, t);
    if (got !== want) {
      throw this.violation('device-read-stale', `${ms.name}: the device read ${got} at ${this.where(addr)} (pfn ${pfn}); the CPU's data there is ${want}`, t);
    }
  }

  /** Run a migration request of the mirror (scenarios that need one are only built for drivers that have it). */
  async deviceMigrate(t: Task, ms: MirrorState, addr: number, npages: number, to: 'device' | 'system'): Promise<void> {
    await t.yield(`${ms.name}: migrate ${this.span(addr, addr + npages * PAGE_SIZE)} to ${to}`);
    this.note(`${ms.name}: migrate ${this.span(addr, addr + npages * PAGE_SIZE)} to ${to}`);
    const fn = to === 'device' ? ms.mirror.migrateToDevice : ms.mirror.migrateToSystem;
    try {
      await fn!.call(ms.mirror, addr, npages, this.ctx(t));
    } catch (err) {
      if (err instanceof KernelError && err.name !== 'WouldBlock' && ACCESS_ERRNOS.has(err.errno)) {
        this.note(`${ms.name}: migration fails: ${err.errno}`);
        return;
      }
      throw err;
    }
  }

  async detach(t: Task, ms: MirrorState): Promise<void> {
    await t.yield(`${ms.name}: detach`);
    this.note(`${ms.name}: detach`);
    await ms.mirror.detach(this.ctx(t));
    ms.detached = true;
  }

  /** A CPU operation: a preemption point, then the operation (sleeping where the kernel would). */
  private async cpu<R>(t: Task, label: string, fn: () => R): Promise<R | undefined> {
    await t.yield(label);
    this.note(label);
    try {
      return await t.blocking(fn, label);
    } catch (err) {
      if (err instanceof KernelError && err.errno === 'EDEADLK') throw this.violation('deadlock', `${label}: ${err.message}`, t);
      if (err instanceof KernelError && err.name !== 'WouldBlock') {
        this.note(`${label} fails: ${err.errno}`);
        return undefined;
      }
      throw err;
    }
  }

  async cpuRead(t: Task, p: Process, addr: number): Promise<void> {
    const v = await this.cpu(t, `cpu ${p.pid}: read ${this.where(addr)}`, () => p.readU32(addr));
    if (v === undefined) return;
    const want = this.expected(p, addr);
    if (want !== undefined && v !== want) {
      const who = this.writers.get(p)!.get(Math.floor(addr / PAGE_SIZE));
      throw this.violation(who === 'device' ? 'device-write-lost' : 'device-read-stale',
        `process ${p.pid} reads ${v} at ${this.where(addr)}, but the last write there (by the ${who}) stored ${want}`, t);
    }
  }

  async cpuWrite(t: Task, p: Process, addr: number): Promise<void> {
    const v = this.nextValue++;
    const ok = await this.cpu(t, `cpu ${p.pid}: write ${v} to ${this.where(addr)}`, () => {
      p.writeU32(addr, v);
      return true;
    });
    if (ok) this.setShadow(p, addr, v, 'cpu');
  }

  async munmap(t: Task, p: Process, addr: number, npages: number): Promise<void> {
    const ok = await this.cpu(t, `cpu ${p.pid}: munmap ${this.span(addr, addr + npages * PAGE_SIZE)}`, () => {
      p.munmap(addr, npages * PAGE_SIZE);
      return true;
    });
    if (ok) for (let i = 0; i < npages; i++) this.setShadow(p, addr + i * PAGE_SIZE, undefined, 'cpu');
  }

  async mmapFixed(t: Task, p: Process, addr: number, npages: number): Promise<void> {
    const ok = await this.cpu(t, `cpu ${p.pid}: mmap ${this.span(addr, addr + npages * PAGE_SIZE)} again`, () => {
      p.mmap(addr, npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      return true;
    });
    if (ok) for (let i = 0; i < npages; i++) this.setShadow(p, addr + i * PAGE_SIZE, 0, 'zero');
  }

  async mprotect(t: Task, p: Process, addr: number, npages: number, prot: number): Promise<void> {
    const what = prot & PROT_WRITE ? 'read-write' : prot & PROT_READ ? 'read-only' : 'no access';
    await this.cpu(t, `cpu ${p.pid}: mprotect ${this.span(addr, addr + npages * PAGE_SIZE)} ${what}`, () => p.mprotect(addr, npages * PAGE_SIZE, prot));
  }

  async madviseDontneed(t: Task, p: Process, addr: number, npages: number): Promise<void> {
    const ok = await this.cpu(t, `cpu ${p.pid}: madvise(DONTNEED) ${this.span(addr, addr + npages * PAGE_SIZE)}`, () => {
      p.madvise(addr, npages * PAGE_SIZE, MADV_DONTNEED);
      return true;
    });
    if (ok) for (let i = 0; i < npages; i++) this.setShadow(p, addr + i * PAGE_SIZE, 0, 'zero');
  }

  async fork(t: Task, p: Process): Promise<Process | undefined> {
    const child = await this.cpu(t, `cpu ${p.pid}: fork`, () => p.fork());
    if (!child) return undefined;
    this.procs.push(child);
    this.shadow.set(child, new Map(this.shadow.get(p)));
    this.writers.set(child, new Map(this.writers.get(p)));
    return child;
  }

  /** fork during setup (no thread runs yet). */
  forkNow(p: Process): Process {
    const child = p.fork();
    this.procs.push(child);
    this.shadow.set(child, new Map(this.shadow.get(p)));
    this.writers.set(child, new Map(this.writers.get(p)));
    return child;
  }

  async mremap(t: Task, p: Process, addr: number, npages: number, to: number): Promise<void> {
    const len = npages * PAGE_SIZE;
    for (let i = 0; i < npages; i++) this.names.set(to + i * PAGE_SIZE, `q${i}`);
    const ok = await this.cpu(t, `cpu ${p.pid}: mremap ${this.span(addr, addr + len)} to ${this.span(to, to + len)}`, () => {
      p.mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
      return true;
    });
    if (!ok) return;
    for (let i = 0; i < npages; i++) {
      const a = addr + i * PAGE_SIZE;
      this.setShadow(p, to + i * PAGE_SIZE, this.expected(p, a), this.writers.get(p)!.get(Math.floor(a / PAGE_SIZE)) ?? 'cpu');
      this.setShadow(p, a, undefined, 'cpu');
    }
  }

  /** Reclaim: swap out the page the CPU maps at addr (try_to_unmap sends CLEAR). */
  async swapOut(t: Task, p: Process, addr: number): Promise<void> {
    await this.cpu(t, `cpu: reclaim (swap out) ${this.where(addr)}`, () => {
      const pfn = this.cpuPfn(p, addr);
      if (pfn < 0) return;
      swapOutPage(this.machine, pfn);
    });
  }

  async exit(t: Task, p: Process): Promise<void> {
    const ok = await this.cpu(t, `cpu ${p.pid}: exit`, () => {
      p.exit();
      return true;
    });
    if (ok) this.shadow.get(p)!.clear();
  }

  /** The other device migrates [addr, +npages) of p into its memory, preemptible between migrate_vma's phases. */
  async otherMigrate(t: Task, p: Process, addr: number, npages: number): Promise<void> {
    const dev = this.otherDevice();
    await t.yield(`other device: migrate ${this.span(addr, addr + npages * PAGE_SIZE)} to its memory`);
    this.note(`other device: migrate ${this.span(addr, addr + npages * PAGE_SIZE)} to its memory`);
    try {
      await dev.migrateToDevice(p.mm, addr, addr + npages * PAGE_SIZE, (label) => t.yield(label), (s) => this.note(s));
    } catch (err) {
      if (err instanceof KernelError && err.name !== 'WouldBlock') {
        this.note(`other device: migration fails: ${err.errno}`);
        return;
      }
      throw err;
    }
  }

  /** The pfn the CPU maps at addr (present entries only), or -1. */
  cpuPfn(p: Process, addr: number): number {
    if (!p.alive) return -1;
    const vpn = Math.floor(addr / PAGE_SIZE);
    const s = this.slot;
    p.mm.pt.lookup(vpn, s);
    if (!ptePresent(ptFlags(s.node, s.idx))) return -1;
    const val = ptVal(s.node, s.idx);
    return s.level === 0 ? val : val + (vpn % LEVEL_PAGES[s.level]!);
  }

  // ---- the invariants ----

  /** After every step: the thread's error (if any), then every device entry against the CPU's. */
  private afterStep(task: Task): void {
    if (this.tracing) this.recordStep(task);
    const err = task.error;
    if (err !== undefined && !(err instanceof LockWaitLearned)) throw this.classify(err, task);
    for (const ms of this.mirrors) this.checkMirror(ms, task);
  }

  private classify(err: unknown, task: Task): Violation {
    if (err instanceof Violation) return err;
    if (err instanceof DeadlockError) return this.violation(err.kind === 'deadlock' ? 'deadlock' : 'lost-wakeup', err.message, task);
    if (err instanceof KernelError && err.errno === 'EDEADLK') return this.violation('deadlock', err.message, task);
    const msg = err instanceof Error ? err.message : String(err);
    if (/double free|put_page on free frame|freed twice/.test(msg)) return this.violation('page-free-once', msg, task);
    const name = err instanceof Error ? err.name : typeof err;
    return this.violation('driver-error', `${task.name} threw ${name}: ${msg}`, task);
  }

  private checkMirror(ms: MirrorState, task: Task | null): void {
    if (ms.mirror.pt.size === 0) return;
    const phys = this.machine.phys;
    const f = phys.frames;
    const mm = ms.proc.mm;
    const s = this.slot;
    ms.mirror.pt.forEach((dvpn, pfn, flags) => {
      const addr = dvpn * PAGE_SIZE;
      const write = (flags & DPTE_WRITE) !== 0;
      const at = `${ms.name}: the device maps ${this.where(addr)} -> pfn ${pfn}${write ? ' writable' : ''}`;
      if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= f.capacity) throw this.violation('device-map-beyond-cpu', `${at}, which is no frame`, task ?? undefined);
      if (f.refcount[f.compoundHead(pfn)]! <= 0 && !phys.isZeroPfn(pfn)) {
        throw this.violation('device-maps-freed-frame', `${at}, which has been freed`, task ?? undefined);
      }
      if (mm.dead) throw this.violation('device-map-beyond-cpu', `${at}, but process ${ms.proc.pid} has exited`, task ?? undefined);
      const vpn = Math.floor(addr / PAGE_SIZE);
      mm.pt.lookup(vpn, s);
      const flg = ptFlags(s.node, s.idx);
      const val = ptVal(s.node, s.idx);
      const cpu = s.level === 0 ? val : val + (vpn % LEVEL_PAGES[s.level]!);
      const cpuWrite = pteWrite(flg) && !(ptePresent(flg) && pteProtnone(flg));
      let same = false;
      let what = 'nothing there';
      if (ptePresent(flg)) {
        same = cpu === pfn;
        what = `pfn ${cpu}${cpuWrite ? ' writable' : ' read-only'}`;
      } else if (isMigrationEntry(flg)) {
        // Under migration: the device may still map the source, or already the locked
        // destination (a driver maps it between migrate_vma_pages and finalize, as
        // lib/test_hmm.c's dmirror_migrate_finalize_and_map does).
        same = val === pfn || (phys.isLocked(pfn) && phys.isLocked(val));
        what = `a migration entry for pfn ${val}${cpuWrite ? ' (writable)' : ''}`;
      } else if (isDevicePrivateEntry(flg) || isDeviceExclusiveEntry(flg)) {
        same = val === pfn;
        what = `a ${isDevicePrivateEntry(flg) ? 'device-private' : 'device-exclusive'} entry for pfn ${val}${cpuWrite ? ' (writable)' : ''}`;
      }
      if (!same) throw this.violation('device-map-beyond-cpu', `${at}; the CPU maps ${what}`, task ?? undefined);
      if (write && !cpuWrite) throw this.violation('device-map-beyond-cpu', `${at}; the CPU maps it read-only (${what})`, task ?? undefined);
    });
  }

  /** After the threads: detach what is attached, exit every process, then nothing may be left. */
  finish(): void {
    for (const m of this.sched.mutexes) {
      if (m.locked) throw this.violation('deadlock', `${m.name} is still held${m.owner ? ` by ${m.owner.name}` : ''} after every thread ended`);
    }
    for (const ms of this.mirrors) this.checkMirror(ms, null);
    for (const p of this.procs) {
      if (!p.alive) continue;
      try {
        p.exit();
      } catch (err) {
        if (err instanceof LockWaitLearned || err instanceof UnscheduledAwaitError) throw err;
        throw this.classify(err, { name: 'teardown' } as Task);
      }
    }
    for (const ms of this.mirrors) {
      if (ms.mirror.pt.size > 0) {
        let first = '';
        ms.mirror.pt.forEach((v, pfn) => { first ||= `${this.where(v * PAGE_SIZE)} -> pfn ${pfn}`; });
        throw this.violation('device-map-beyond-cpu', `${ms.name}: after detach and exit the device still maps ${ms.mirror.pt.size} page(s) (${first})`);
      }
    }
    const phys = this.machine.phys;
    const f = phys.frames;
    for (const pgmap of phys.pagemapList) {
      for (let pfn = pgmap.firstPfn; pfn < pgmap.firstPfn + pgmap.nframes; pfn++) {
        if (f.refcount[pfn]! > 0) {
          throw this.violation('page-free-once', `device page pfn ${pfn} (${String(pgmap.owner)}) still has ${f.refcount[pfn]} reference(s) after every process exited and every mirror detached: page_free never ran`);
        }
      }
    }
    const used = phys.usedRamFrames;
    if (used > this.ramBaseline) {
      throw this.violation('page-free-once', `${used - this.ramBaseline} system page(s) are still in use after every process exited (a reference the driver took and never put)`);
    }
  }

  // ---- tracing ----

  /** Run the threads the scenario spawned, then tear down (finish). */
  async run(): Promise<void> {
    if (this.tracing) {
      this.notes = [];
      this.ptBefore = this.mirrors.map((ms) => snapshot(ms.mirror.pt));
    }
    try {
      await this.sched.run();
    } catch (e) {
      if (e instanceof DeadlockError) throw this.violation(e.kind === 'deadlock' ? 'deadlock' : 'lost-wakeup', e.message);
      if (e instanceof UnscheduledAwaitError) throw this.violation('driver-error', e.message);
      throw e;
    }
    this.finish();
  }

  private recordStep(task: Task): void {
    this.ptBefore = this.mirrors.map((ms, i) => {
      const before = this.ptBefore[i] ?? new Map<number, string>();
      const after = snapshot(ms.mirror.pt);
      for (const [a, e] of after) if (before.get(a) !== e) this.notes.push(`${ms.name}: device maps ${this.where(a)} -> ${e}`);
      for (const a of before.keys()) if (!after.has(a)) this.notes.push(`${ms.name}: device unmaps ${this.where(a)}`);
      return after;
    });
    const i = this.sched.step - 1;
    const cur = this.sched.currentReady[i]!;
    this.trace.push({
      step: this.sched.step, thread: task.id, threadName: task.name, stoppedAt: task.state === 'done' ? 'done' : task.label,
      notes: this.notes, preemption: cur && i > 0 && this.sched.choices[i - 1] !== task.id,
    });
    this.notes = [];
  }
}

/** A migration's owner for traces: its name, its own toString, or its class. */
function ownerName(o: unknown): string {
  if (typeof o !== 'object' || o === null) return String(o);
  const name = (o as { name?: unknown }).name;
  if (typeof name === 'string') return name;
  if (o.toString !== Object.prototype.toString) return String(o);
  return o.constructor?.name ?? 'an owner';
}

function snapshot(pt: DeviceMappings): Map<number, string> {
  const m = new Map<number, string>();
  pt.forEach((v, pfn, flags) => m.set(v * PAGE_SIZE, `pfn ${pfn} ${flags & DPTE_WRITE ? 'rw' : 'ro'}`));
  return m;
}
