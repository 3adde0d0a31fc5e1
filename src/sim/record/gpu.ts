// Recording a GPU of src/drivers/gpu (the GPU simulator's, under any of its drivers): the GPU
// page table of each address space it serves as a device table, and its hardware and driver
// events (faults, batches, replays, migrations, evictions, TLB invalidations, thrashing
// verdicts, kernels) on the timeline. Everything comes through the GPU's event bus
// (src/drivers/gpu/events.ts): the page table's own map and unmap events say which pages
// changed, and the recorder reads the entries back from the table. Nothing is wrapped, and a
// GPU nobody records has no listener: the emitters' `bus.on` tests stay false.

import { PAGE_SIZE } from '../../mm/constants.js';
import type { Gpu } from '../../drivers/gpu/gpu.js';
import type { GpuVaSpace } from '../../drivers/gpu/mmu.js';
import { PTE_VALID, PTE_WRITE, SIZE_PAGES, type GpuPtLeaf } from '../../drivers/gpu/page_table.js';
import type { DeviceMemorySource, DeviceTableSource, Recorder } from './recorder.js';

type Watcher = (vpn: number, n: number, why?: string) => void;

const ACCESS_NAMES = ['read', 'write', 'atomic', 'prefetch'];
/** The `why` of a GPU map, by leaf size (SIZE_4K, SIZE_64K, SIZE_2M) and aperture. */
const LEAF_NAMES = ['4K', '64K', '2M'];

export interface GpuRecordingOptions {
  /** The GPU's name in the record (default gpu<id>). */
  name?: string;
  /** VRAM frames in use now (the driver knows; NaN or no function: not counted). */
  vramUsed?: () => number;
}

/**
 * One GPU address space's page table (GpuVaSpace.pt, the hardware's radix tree of 4 KiB,
 * 64 KiB and 2 MiB leaves) as a recorder source. An entry is its frame and write bit: a frame
 * in VRAM is local, one in system memory (PTE_SYSMEM) remote-mapped. `subscribe` is how it
 * learns of changes (gpuRecording passes the GPU bus's map and unmap events of this space).
 */
export function gpuVaSpaceSource(vs: GpuVaSpace, name: string, memory: DeviceMemorySource | null, subscribe: (w: Watcher) => () => void): DeviceTableSource {
  if (!vs.mm) throw new Error(`GPU address space ${vs.asid} mirrors no mm`);
  const leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
  return {
    name,
    mm: vs.mm,
    memory,
    entry(vpn) {
      vs.pt.walk(vpn, leaf);
      if (!(leaf.flags & PTE_VALID)) return -1;
      return leaf.pfn * 2 + (leaf.flags & PTE_WRITE ? 1 : 0);
    },
    forEachVpn(s, e, fn) {
      vs.pt.forEach(s, e, (vpn, n) => {
        for (let v = vpn; v < vpn + n; v++) fn(v);
      });
    },
    watch: subscribe,
  };
}

/**
 * Record a GPU: a device table per GPU address space (added when the space first shows up in
 * an event), the GPU's VRAM as a memory, and its events on the timeline. A kernel is a mark
 * (a labelled span) from its launch to its end. Returns the function that stops it (call it
 * before rec.finish(), or let finish's own bookkeeping stop the tables).
 */
export function recordGpu(rec: Recorder, gpu: Gpu, opts: GpuRecordingOptions = {}): () => void {
  const name = opts.name ?? `gpu${gpu.id}`;
  const bus = gpu.events;
  const vramUsed = opts.vramUsed ?? (() => NaN);
  const memory: DeviceMemorySource | null = gpu.vram.pgmap
    ? { name: `${name} VRAM`, frames: gpu.vram.frames, pgmap: gpu.vram.pgmap, used: vramUsed }
    : null;
  const tables = new Map<number, number>();
  const watchers = new Map<number, Watcher[]>();
  const spaces = gpu.mmu.vaSpaces;

  /** The table id of address space asid, added on first sight; -1 if it is gone or mirrors nothing. */
  const tableOf = (asid: number): number => {
    const t = tables.get(asid);
    if (t !== undefined) return t;
    const vs = gpu.mmu.vaSpace(asid);
    if (!vs || !vs.mm) return -1;
    const list: Watcher[] = [];
    watchers.set(asid, list);
    const label = spaces.length > 1 || asid > 0 ? `${name} asid ${asid}` : name;
    const id = rec.addDevice(gpuVaSpaceSource(vs, label, memory, (w) => {
      list.push(w);
      return () => {
        const i = list.indexOf(w);
        if (i >= 0) list.splice(i, 1);
      };
    }));
    tables.set(asid, id);
    return id;
  };
  /** Some table to hang a GPU-wide event on (the first address space's), else the first table. */
  const anyTable = (): number => (tables.size ? tables.values().next().value! : 0);
  const tell = (asid: number, vpn: number, n: number, why: string): void => {
    const list = watchers.get(asid);
    if (list) for (const w of list) w(vpn, n, why);
  };
  for (const vs of spaces) tableOf(vs.asid);

  const off = [
    bus.subscribe('map', (e) => {
      if (tableOf(e.asid) < 0) return;
      const size = e.npages === SIZE_PAGES[2] ? 2 : e.npages === SIZE_PAGES[1] ? 1 : 0;
      tell(e.asid, e.addr / PAGE_SIZE, e.npages, `${LEAF_NAMES[size]} ${e.remote ? 'sysmem' : 'vram'}`);
    }),
    bus.subscribe('unmap', (e) => {
      if (tableOf(e.asid) < 0) return;
      const s = e.start / PAGE_SIZE;
      tell(e.asid, s, e.end / PAGE_SIZE - s, e.reason);
    }),
    bus.subscribe('fault', (e) => {
      const t = tableOf(e.asid);
      rec.recordEvent('gpu-fault', 'device-fault', e.dropped ? `${ACCESS_NAMES[e.access]} dropped` : ACCESS_NAMES[e.access]!, t < 0 ? anyTable() : t,
        Math.floor(e.addr / PAGE_SIZE), 1, e.warp, e.utlb);
    }),
    bus.subscribe('batch', (e) => rec.recordEvent('fault-batch', 'batch', e.driver, anyTable(), -1, 0, e.fetched, e.coalesced)),
    bus.subscribe('replay', (e) => rec.recordEvent('replay', 'batch', e.kind, anyTable(), -1, 0, e.stalledWarps)),
    bus.subscribe('cancel', (e) => {
      const t = tableOf(e.asid);
      rec.recordEvent('gpu-cancel', 'device-fault', 'fatal', t < 0 ? anyTable() : t, Math.floor(e.addr / PAGE_SIZE), 1, e.warps);
    }),
    bus.subscribe('migrate', (e) => {
      const t = tableOf(e.asid);
      rec.recordEvent('gpu-migrate', 'migrate', `${e.cause} ${e.toDevice ? 'to VRAM' : 'to system'}`, t < 0 ? anyTable() : t,
        e.addr / PAGE_SIZE, e.npages, e.bytes);
    }),
    bus.subscribe('evict', (e) => rec.recordEvent('evict', 'evict', '', anyTable(), -1, 0, e.chunk, e.pages)),
    bus.subscribe('tlbInvalidate', (e) => {
      const t = tableOf(e.asid);
      const s = e.start / PAGE_SIZE;
      rec.recordEvent('tlb-invalidate', 'invalidate', '', t < 0 ? anyTable() : t, s, e.end / PAGE_SIZE - s, e.entries);
    }),
    bus.subscribe('thrashing', (e) => rec.recordEvent('thrashing', 'other', e.kind, anyTable(), Math.floor(e.addr / PAGE_SIZE), 1)),
    bus.subscribe('accessCounter', (e) => {
      const t = tableOf(e.asid);
      rec.recordEvent('access-counter', 'other', '', t < 0 ? anyTable() : t, Math.floor(e.addr / PAGE_SIZE), 512, e.count);
    }),
    bus.subscribe('kernel', (e) => {
      if (e.phase === 'launch') rec.mark(`kernel ${e.name}`);
      else rec.endMark();
    }),
  ];
  return () => {
    for (const f of off.splice(0)) f();
  };
}
