// Device page tables as the recorder reads them (DeviceTableSource), for the devices hmmsim
// has. gpusvm's DevicePageTable (the table of svmdev, the demo's device) emits no events: its
// source watches that one instance, wrapping its three mutators (map, unmapRange, clear) to
// report the pages they touched. Nothing changes for other tables or when nobody records.

import { DPTE_VALID, DPTE_WRITE, DevicePageTable, type Vram } from '../../drivers/gpusvm/index.js';
import type { SvmDevice } from '../../drivers/svmdev/index.js';
import type { Mm } from '../../mm/mm.js';
import type { DeviceTableSource } from './recorder.js';

type Watcher = (vpn: number, n: number) => void;

/** A gpusvm device page table (with its VRAM, if any) as a recorder source. */
export function devicePageTableSource(pt: DevicePageTable, mm: Mm, name: string, vram: Vram | null): DeviceTableSource {
  const watchers: Watcher[] = [];
  const tell = (vpn: number, n: number): void => {
    for (const w of watchers) w(vpn, n);
  };
  let wrapped = false;
  const wrap = (): void => {
    if (wrapped) return;
    wrapped = true;
    const map = pt.map.bind(pt);
    const unmapRange = pt.unmapRange.bind(pt);
    const clear = pt.clear.bind(pt);
    pt.map = (vpn, pfn, flags) => {
      map(vpn, pfn, flags);
      tell(vpn, 1);
    };
    pt.unmapRange = (s, e) => {
      const removed = unmapRange(s, e);
      if (removed) tell(s, e - s);
      return removed;
    };
    pt.clear = () => {
      const leaves: number[] = [];
      pt.forEachLeaf((first) => void leaves.push(first));
      clear();
      for (const first of leaves) tell(first, DevicePageTable.LEAF_SIZE);
    };
  };
  return {
    name,
    mm,
    memory: vram ? { name: `${name} VRAM`, frames: vram.totalPages, pgmap: vram.dpagemap.pgmap, used: () => vram.usedPages } : null,
    entry(vpn) {
      const pfn = pt.lookup(vpn);
      return pfn < 0 ? -1 : pfn * 2 + (pt.flagsOf(vpn) & DPTE_WRITE ? 1 : 0);
    },
    forEachVpn(s, e, fn) {
      pt.forEachLeaf((first, _pfn, flags) => {
        for (let v = Math.max(s, first), end = Math.min(e, first + flags.length); v < end; v++) if (flags[v - first]! & DPTE_VALID) fn(v);
      });
    },
    watch(fn) {
      wrap();
      watchers.push(fn);
      return () => {
        const i = watchers.indexOf(fn);
        if (i >= 0) watchers.splice(i, 1);
      };
    },
  };
}

/** svmdev (the demo's device): its page table and VRAM. */
export function svmDeviceSource(dev: SvmDevice, name: string): DeviceTableSource {
  return devicePageTableSource(dev.pt, dev.mm, name, dev.vram);
}
