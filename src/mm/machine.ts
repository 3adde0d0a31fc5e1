// A machine: physical memory, swap, a tmpfs, the reverse map, events and processes. A
// machine is a value: two machines never share state (docs/architecture.md decision 1).

import { fail } from './errno.js';
import { EventBus } from './events.js';
import { Tmpfs } from './file.js';
import { PAGE_SIZE } from './constants.js';
import { Mm } from './mm.js';
import { PhysMem } from './physmem.js';
import { Process } from './process.js';
import { Rmap } from './rmap.js';
import { SwapDevice } from './swap.js';
import { installReclaim } from './vmscan.js';

export interface MachineConfig {
  /** System RAM in bytes (page aligned). Default 1 GiB. */
  ramBytes: number;
  /** Swap space in bytes. Default 1 GiB. */
  swapBytes: number;
  /** Page-table levels: 4 (48-bit addresses) or 5 (57-bit). Default 4. */
  levels: 4 | 5;
  /** Transparent huge pages: 'always', 'madvise' (VM_HUGEPAGE only, the default) or 'never'. */
  thp: 'always' | 'madvise' | 'never';
  /**
   * Device memory in bytes the frame table makes room for from the start, above RAM: device
   * memory added up to this much (memremap_pages) does not grow the table, which copies it.
   * Default 0 (the table grows when device memory is added).
   */
  deviceBytes: number;
}

export const DEFAULT_CONFIG: MachineConfig = { ramBytes: 2 ** 30, swapBytes: 2 ** 30, levels: 4, thp: 'madvise', deviceBytes: 0 };

export class Machine {
  readonly config: MachineConfig;
  readonly events = new EventBus();
  readonly phys: PhysMem;
  /** @internal The reverse map (mm/rmap.c). */
  readonly rmap: Rmap;
  readonly swap: SwapDevice;
  readonly fs: Tmpfs;
  private readonly mms = new Map<number, Mm>();
  private readonly procs = new Map<number, Process>();
  private nextMmId = 1;
  private nextPid = 1;

  constructor(config: Partial<MachineConfig> = {}) {
    const c = { ...DEFAULT_CONFIG, ...config };
    for (const k of Object.keys(config)) if (!(k in DEFAULT_CONFIG)) fail('EINVAL', `unknown machine option ${k}`);
    if (c.levels !== 4 && c.levels !== 5) fail('EINVAL', 'levels must be 4 or 5');
    if (!['always', 'madvise', 'never'].includes(c.thp)) fail('EINVAL', `bad thp mode ${String(c.thp)}`);
    if (!Number.isSafeInteger(c.swapBytes) || c.swapBytes < 0) fail('EINVAL', 'bad swap size');
    if (!Number.isSafeInteger(c.deviceBytes) || c.deviceBytes < 0) fail('EINVAL', 'bad device memory size');
    this.config = c;
    this.phys = new PhysMem(c.ramBytes, this.events, Math.ceil(c.deviceBytes / PAGE_SIZE));
    this.rmap = new Rmap(this.phys);
    this.swap = new SwapDevice(this.phys, Math.floor(c.swapBytes / 4096));
    this.fs = new Tmpfs(this);
    installReclaim(this);
  }

  /**
   * Tear the machine down: every process exits and its page data memory is given back for
   * reuse by later machines. The machine cannot be used afterwards.
   */
  dispose(): void {
    for (const p of this.processes) if (p.alive) p.exit();
    this.phys.data.releaseSlabs();
    this.disposed = true;
  }
  disposed = false;

  /** A new process with an empty address space. */
  spawn(): Process {
    if (this.disposed) fail('ESRCH', 'machine has been disposed');
    return this.adopt(this.newMm());
  }

  newMm(): Mm {
    const mm = new Mm(this, this.nextMmId++);
    this.mms.set(mm.id, mm);
    return mm;
  }

  adopt(mm: Mm, parent: Process | null = null): Process {
    const p = new Process(this, this.nextPid++, mm, parent);
    this.procs.set(p.pid, p);
    return p;
  }

  mmById(id: number): Mm | undefined {
    // The reverse map names the same mm page after page: the last one found is kept.
    if (id === this.lastMm?.id) return this.lastMm;
    const mm = this.mms.get(id);
    if (mm) this.lastMm = mm;
    return mm;
  }
  private lastMm: Mm | null = null;

  forgetMm(mm: Mm): void {
    this.mms.delete(mm.id);
    if (this.lastMm === mm) this.lastMm = null;
  }

  forgetProcess(p: Process): void {
    this.procs.delete(p.pid);
  }

  get processes(): readonly Process[] {
    return [...this.procs.values()];
  }
  get liveMms(): readonly Mm[] {
    return [...this.mms.values()];
  }
}
