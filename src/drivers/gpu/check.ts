// The GPU's invariants, for tests and the simulator to check after every event:
//
// * Every GPU PTE maps what the CPU maps: a system page the CPU page table maps at the same
//   address (aperture SYSMEM), a VRAM page of this GPU that the CPU page table holds as a
//   device-private entry of the driver's owner, a device-coherent VRAM page the CPU maps
//   directly, or a page the CPU holds as device-exclusive for the GPU; never with more
//   permission than the CPU entry (write needs a writable CPU entry).
// * No TLB translation grants what the page table no longer does: since TLB invalidation is
//   synchronous, after an unmap or downgrade and its invalidation no stale entry remains.
//
// Costs a walk of every GPU page table and TLB: for tests, not for hot paths.

import type { Machine } from '../../mm/machine.js';
import {
  K_DEVICE_EXCLUSIVE, K_DEVICE_PRIVATE, K_MIGRATION, K_PRESENT, LEVEL_PAGES, type PtSlot,
  entryKind, ptFlags, ptVal, pteProtnone, pteWrite,
} from '../../mm/pagetable.js';
import type { Gpu } from './gpu.js';
import { PROT_MASK, PTE_ATOMIC, PTE_SYSMEM, PTE_VALID, PTE_WRITE, SIZE_PAGES, type GpuPtLeaf } from './page_table.js';
import type { Tlb } from './tlb.js';

export interface GpuCheckOptions {
  /** The dev_pagemap owner the driver registered VRAM with (device-private entries must carry it). */
  owner?: unknown;
  /** Stop after this many violations (default 20). */
  limit?: number;
}

const KIND_NAMES = ['none', 'table', 'present', 'swap', 'migration', 'device-private', 'device-exclusive', 'hwpoison', 'bad'];

/** Returns a list of violations; empty when the GPU's view agrees with the CPU's. */
export function checkGpuInvariants(machine: Machine, gpu: Gpu, opts: GpuCheckOptions = {}): string[] {
  const errors: string[] = [];
  const limit = opts.limit ?? 20;
  const owner = opts.owner ?? gpu.vram.pgmap?.owner;
  const phys = machine.phys;
  const slot: PtSlot = { node: null!, idx: 0, level: 0 };
  const hex = (v: number): string => `0x${(v * 4096).toString(16)}`;

  for (const vs of gpu.mmu.vaSpaces) {
    const mm = vs.mm;
    vs.pt.forEach(0, 2 ** 45, (vpn0, npages, pfn0, flags) => {
      for (let k = 0; k < npages && errors.length < limit; k++) {
        const vpn = vpn0 + k;
        const pfn = pfn0 + k;
        const where = `GPU ${gpu.id} asid ${vs.asid} ${hex(vpn)} -> pfn ${pfn}`;
        if (!mm || mm.dead) {
          errors.push(`${where}: mapped in an address space with no live mm`);
          continue;
        }
        const vram = gpu.vram.contains(pfn);
        if (vram === ((flags & PTE_SYSMEM) !== 0)) errors.push(`${where}: aperture ${flags & PTE_SYSMEM ? 'SYSMEM' : 'VRAM'} for a ${vram ? 'VRAM' : 'system'} frame`);
        if (flags & PTE_ATOMIC && !(flags & PTE_WRITE)) errors.push(`${where}: atomic without write`);
        mm.pt.lookup(vpn, slot);
        const flg = ptFlags(slot.node, slot.idx);
        const kind = entryKind(flg);
        const cpuPfn = ptVal(slot.node, slot.idx) + (slot.level > 0 ? vpn % LEVEL_PAGES[slot.level]! : 0);
        let ok = false;
        if (kind === K_PRESENT) ok = !pteProtnone(flg) && cpuPfn === pfn;
        else if (kind === K_DEVICE_PRIVATE) ok = cpuPfn === pfn && vram && phys.pagemapOf(pfn)?.owner === owner;
        else if (kind === K_DEVICE_EXCLUSIVE) ok = cpuPfn === pfn;
        if (!ok) {
          errors.push(`${where}: the CPU page table holds ${KIND_NAMES[kind] ?? kind}${kindHasFrame(kind) ? ` pfn ${cpuPfn}` : ''}`);
          continue;
        }
        if (flags & PTE_WRITE && !pteWrite(flg)) errors.push(`${where}: GPU may write, the CPU entry is read-only`);
        if (flags & PTE_ATOMIC && kind === K_PRESENT && !vram && !gpu.config.nativeSysmemAtomics) {
          errors.push(`${where}: atomic on system memory over an interconnect without native atomics (needs device-exclusive)`);
        }
      }
    });
    if (errors.length >= limit) return errors;
    checkTlb(gpu, vs.asid, vs.pt, gpu.mmu.l2, 'L2 TLB', errors, limit);
    gpu.mmu.utlbs.forEach((u, i) => checkTlb(gpu, vs.asid, vs.pt, u, `uTLB ${i}`, errors, limit));
  }
  // No TLB may hold a translation for an address space that is gone.
  for (const [name, t] of [['L2 TLB', gpu.mmu.l2] as const, ...gpu.mmu.utlbs.map((u, i) => [`uTLB ${i}`, u] as const)]) {
    for (let s = 0; s < t.entries; s++) {
      if (t.flagsOf(s) & PTE_VALID && !gpu.mmu.vaSpace(t.asidOf(s))) errors.push(`${name} slot ${s}: translation of destroyed address space ${t.asidOf(s)}`);
    }
  }
  return errors;
}

function kindHasFrame(kind: number): boolean {
  return kind === K_PRESENT || kind === K_DEVICE_PRIVATE || kind === K_DEVICE_EXCLUSIVE || kind === K_MIGRATION;
}

function checkTlb(gpu: Gpu, asid: number, pt: { walk(vpn: number, out: GpuPtLeaf): void }, t: Tlb, name: string, errors: string[], limit: number): void {
  const leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
  for (let s = 0; s < t.entries && errors.length < limit; s++) {
    if (!(t.flagsOf(s) & PTE_VALID) || t.asidOf(s) !== asid) continue;
    const base = t.baseVpn(s);
    const n = SIZE_PAGES[t.sizeOf(s)];
    // Every page the entry translates must still be mapped to the same frame with at least its permissions.
    for (let k = 0; k < n; k++) {
      pt.walk(base + k, leaf);
      const need = t.flagsOf(s) & PROT_MASK;
      if (!(leaf.flags & PTE_VALID) || leaf.pfn !== t.pfnOf(s) + k || (leaf.flags & need) !== need) {
        errors.push(`GPU ${gpu.id} ${name} slot ${s}: stale translation of 0x${((base + k) * 4096).toString(16)} -> pfn ${t.pfnOf(s) + k} (page table: ${leaf.flags & PTE_VALID ? `pfn ${leaf.pfn} prot ${leaf.flags & PROT_MASK}` : 'unmapped'})`);
        break;
      }
    }
  }
}
