// The GPU MMU: one page table per GPU address space (an instance pointer, here an asid), a
// uTLB per group of SMs and a shared L2 TLB, the translation an access goes through, and
// the operations a driver uses to change translations: map, unmap, protect, and the TLB
// invalidation that must follow an unmap or downgrade (after it completes, no access uses the
// old translation).

import type { Mm } from '../../mm/mm.js';
import { ACCESS_ATOMIC, ACCESS_WRITE, type AccessType } from './access.js';
import type { GpuEventBus } from './events.js';
import { FAULT_TYPE_INVALID_PDE, FAULT_TYPE_INVALID_PTE, FAULT_TYPE_PROTECTION } from './fault_buffer.js';
import {
  GpuPageTable, PROT_MASK, PTE_ATOMIC, PTE_SYSMEM, PTE_VALID, PTE_WRITE, SIZE_PAGES, type GpuPtLeaf, type LeafSize,
} from './page_table.js';
import { Tlb } from './tlb.js';
import { L2_MARK_BIT, TlbMarks, utlbMarkBit } from './tlb_marks.js';

// Imported constants copied once: an import binding read in a hot loop costs a getter call under the test and bench loaders.
const L_PTE_VALID = PTE_VALID;
const L_PROT_MASK = PROT_MASK;
const L_PTE_SYSMEM = PTE_SYSMEM;
const L_SIZE_PAGES = SIZE_PAGES;
const L_L2_MARK_BIT = L2_MARK_BIT;

/** The PTE bits an access of each type needs (read, write, atomic, prefetch). */
export const ACCESS_REQUIRED = [L_PTE_VALID, L_PTE_VALID | PTE_WRITE, L_PTE_VALID | PTE_WRITE | PTE_ATOMIC, L_PTE_VALID] as const;

/** The PTE permission an access of `type` needs. */
export function requiredProt(type: AccessType): number {
  return ACCESS_REQUIRED[type]!;
}

/** One GPU address space (uvm_gpu_va_space): the page table the instance pointer selects. */
export class GpuVaSpace {
  readonly pt: GpuPageTable;
  /** The process address space mirrored here (set by the driver that attached it). */
  mm: Mm | null = null;
  /** @internal Which TLBs may hold a translation of each page (the MMU's fills mark them; tlbInvalidate reads them). */
  readonly tlbMarks = new TlbMarks();
  constructor(readonly asid: number, levels: 4 | 5) {
    this.pt = new GpuPageTable(levels);
  }
}

/** Translation results (Mmu.translate): a hit, or why it faulted. */
export const XLATE_HIT = -1;

export interface MmuStats {
  utlbHits: number;
  utlbMisses: number;
  l2Hits: number;
  walks: number;
  tlbInvalidates: number;
  tlbEntriesInvalidated: number;
}

export class GpuMmu {
  readonly utlbs: Tlb[];
  readonly l2: Tlb;
  private readonly spaces: (GpuVaSpace | undefined)[] = [];
  readonly stats: MmuStats = { utlbHits: 0, utlbMisses: 0, l2Hits: 0, walks: 0, tlbInvalidates: 0, tlbEntriesInvalidated: 0 };
  /** Filled by translate on a hit: the uTLB slot, and the time the walk cost beyond a uTLB hit. */
  slot = -1;
  extraNs = 0;
  private readonly leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };
  /** Each uTLB's mark bit (tlb_marks.ts). */
  private readonly utlbBits: Int32Array;
  // tlbInvalidate's state while TlbMarks.take visits the marked TLBs (one closure for all calls)
  private invAsid = 0;
  private invDropped = 0;
  private readonly invVisit = (bits: number, startVpn: number, endVpn: number): void => {
    const asid = this.invAsid;
    let n = 0;
    if (bits & L_L2_MARK_BIT) n += this.l2.invalidate(asid, startVpn, endVpn);
    if (bits & ~L_L2_MARK_BIT) {
      const ubits = this.utlbBits;
      for (let i = 0; i < ubits.length; i++) if (bits & ubits[i]!) n += this.utlbs[i]!.invalidate(asid, startVpn, endVpn);
    }
    this.invDropped += n;
  };

  constructor(
    readonly gpuId: number,
    readonly levels: 4 | 5,
    utlbCount: number,
    utlbEntries: number,
    utlbWays: number,
    l2Entries: number,
    l2Ways: number,
    private readonly events: GpuEventBus,
    private readonly walkNs: { l2TlbHitNs: number; pageWalkNs: number; pageWalk2MNs: number },
  ) {
    this.utlbs = Array.from({ length: utlbCount }, () => new Tlb(utlbEntries, utlbWays));
    this.l2 = new Tlb(l2Entries, l2Ways);
    this.utlbBits = Int32Array.from({ length: utlbCount }, (_, i) => utlbMarkBit(i));
  }

  // ---- address spaces ----

  createVaSpace(): GpuVaSpace {
    let asid = this.spaces.indexOf(undefined);
    if (asid < 0) asid = this.spaces.length;
    if (asid > 0xffff) throw new RangeError('out of GPU address spaces');
    const vs = new GpuVaSpace(asid, this.levels);
    this.spaces[asid] = vs;
    return vs;
  }

  destroyVaSpace(vs: GpuVaSpace): void {
    if (this.spaces[vs.asid] !== vs) return;
    this.tlbInvalidateAll(vs);
    this.spaces[vs.asid] = undefined;
  }

  vaSpace(asid: number): GpuVaSpace | undefined {
    return this.spaces[asid];
  }

  get vaSpaces(): GpuVaSpace[] {
    return this.spaces.filter((v): v is GpuVaSpace => v !== undefined);
  }

  // ---- the hardware side ----

  /**
   * Translate page vpn of address space asid for an access of `type` through uTLB `utlb`.
   * Returns XLATE_HIT (this.slot is the uTLB slot, this.extraNs the L2 / walk time) or the
   * FAULT_TYPE_* of the fault to raise. A translation without the needed permission is not
   * kept: the retried access walks again after the replay.
   */
  translate(asid: number, vpn: number, type: AccessType, utlbId: number): number {
    const u = this.utlbs[utlbId]!;
    const s = u.lookup(asid, vpn);
    if (s < 0) return this.translateMiss(asid, vpn, type, utlbId);
    if ((u.flagsOf(s) & ACCESS_REQUIRED[type]!) !== ACCESS_REQUIRED[type]!) return this.protectionFault(utlbId, s, asid, vpn);
    this.stats.utlbHits++;
    this.slot = s;
    this.extraNs = 0;
    return XLATE_HIT;
  }

  /**
   * uTLB slot s of utlbId translates vpn without the permission the access needs: drop it (and
   * the L2 entry), so that the retried access walks again. Returns FAULT_TYPE_PROTECTION.
   */
  protectionFault(utlbId: number, s: number, asid: number, vpn: number): number {
    this.utlbs[utlbId]!.drop(s);
    const l = this.l2.lookup(asid, vpn);
    if (l >= 0) this.l2.drop(l);
    return FAULT_TYPE_PROTECTION;
  }

  /**
   * translate after a uTLB miss (the SMs look their uTLB up themselves): the L2 TLB, then the
   * walk. The caller's lookup of vpn in uTLB utlbId must have missed: the fill does not search
   * the set for the leaf first.
   */
  translateMiss(asid: number, vpn: number, type: AccessType, utlbId: number): number {
    const need = ACCESS_REQUIRED[type]!;
    const u = this.utlbs[utlbId]!;
    this.stats.utlbMisses++;
    // The L2 is probed only if it may hold vpn (tlb_marks.ts): a miss changes nothing in it, and
    // a retried fault's page is in no TLB.
    const vs = this.spaces[asid];
    const l = vs && vs.tlbMarks.may(vpn, L_L2_MARK_BIT) ? this.l2.lookup(asid, vpn) : -1;
    if (l >= 0) {
      if ((this.l2.flagsOf(l) & need) !== need) {
        this.l2.drop(l);
        return FAULT_TYPE_PROTECTION;
      }
      this.stats.l2Hits++;
      const base = this.l2.baseVpn(l);
      const size = this.l2.sizeOf(l);
      this.slot = u.fillAbsent(asid, base, size, this.l2.pfnOf(l), this.l2.flagsOf(l));
      vs!.tlbMarks.mark(base, L_SIZE_PAGES[size], this.utlbBits[utlbId]!);
      this.extraNs = this.walkNs.l2TlbHitNs;
      return XLATE_HIT;
    }
    if (!vs) return FAULT_TYPE_INVALID_PDE;
    this.stats.walks++;
    const leaf = this.leaf;
    vs.pt.walk(vpn, leaf);
    if (!(leaf.flags & L_PTE_VALID)) return FAULT_TYPE_INVALID_PTE;
    if ((leaf.flags & need) !== need) return FAULT_TYPE_PROTECTION;
    const base = leaf.pfn - (vpn - leaf.baseVpn);
    const flags = leaf.flags & (L_PROT_MASK | L_PTE_SYSMEM);
    // nor does the L2 hold the leaf: its lookup missed, or its marks say it never held vpn
    this.l2.fillAbsent(asid, leaf.baseVpn, leaf.size, base, flags);
    this.slot = u.fillAbsent(asid, leaf.baseVpn, leaf.size, base, flags);
    vs.tlbMarks.mark(leaf.baseVpn, L_SIZE_PAGES[leaf.size], L_L2_MARK_BIT | this.utlbBits[utlbId]!);
    this.extraNs = this.walkNs.l2TlbHitNs + (leaf.size === 2 ? this.walkNs.pageWalk2MNs : this.walkNs.pageWalkNs);
    return XLATE_HIT;
  }

  // ---- the driver side ----

  /** Write a leaf (see GpuPageTable.map). Raising permissions needs no TLB invalidation: faulting translations are not cached. */
  map(vs: GpuVaSpace, vpn: number, pfn: number, size: LeafSize, flags: number): void {
    vs.pt.map(vpn, pfn, size, flags);
    if (this.events.on.map) {
      this.events.emit({
        type: 'map', gpu: this.gpuId, asid: vs.asid, addr: vpn * 4096, npages: SIZE_PAGES[size], pfn, prot: flags & L_PROT_MASK,
        remote: (flags & L_PTE_SYSMEM) !== 0,
      });
    }
  }

  /** Clear [startVpn, endVpn); the caller must tlbInvalidate before relying on it. Returns the pages unmapped. */
  unmap(vs: GpuVaSpace, startVpn: number, endVpn: number, reason: string): number {
    const n = vs.pt.unmap(startVpn, endVpn);
    if (n > 0 && this.events.on.unmap) this.events.emit({ type: 'unmap', gpu: this.gpuId, asid: vs.asid, start: startVpn * 4096, end: endVpn * 4096, reason });
    return n;
  }

  /** Downgrade [startVpn, endVpn) to at most prot; the caller must tlbInvalidate. Returns the pages changed. */
  protect(vs: GpuVaSpace, startVpn: number, endVpn: number, prot: number, reason: string): number {
    const n = vs.pt.protect(startVpn, endVpn, prot);
    if (n > 0 && this.events.on.unmap) this.events.emit({ type: 'unmap', gpu: this.gpuId, asid: vs.asid, start: startVpn * 4096, end: endVpn * 4096, reason });
    return n;
  }

  /**
   * Invalidate every TLB's translations of [startVpn, endVpn) in vs. Synchronous: when it
   * returns, no access uses a dropped translation. Returns the entries dropped. Each TLB is
   * visited only over the pages marked for it: it holds nothing of the others (tlb_marks.ts).
   */
  tlbInvalidate(vs: GpuVaSpace, startVpn: number, endVpn: number, timeNs = 0): number {
    this.invAsid = vs.asid;
    this.invDropped = 0;
    vs.tlbMarks.take(startVpn, endVpn, this.invVisit);
    const n = this.invDropped;
    this.stats.tlbInvalidates++;
    this.stats.tlbEntriesInvalidated += n;
    if (this.events.on.tlbInvalidate) {
      this.events.emit({ type: 'tlbInvalidate', gpu: this.gpuId, asid: vs.asid, start: startVpn * 4096, end: endVpn * 4096, timeNs, entries: n });
    }
    return n;
  }

  /** Invalidate all of an address space's translations. */
  tlbInvalidateAll(vs: GpuVaSpace): number {
    let n = this.l2.invalidateAll(vs.asid);
    for (const u of this.utlbs) n += u.invalidateAll(vs.asid);
    vs.tlbMarks.clear();
    this.stats.tlbInvalidates++;
    this.stats.tlbEntriesInvalidated += n;
    return n;
  }
}

/** Whether an access type modifies memory. */
export function isWriteAccess(type: AccessType): boolean {
  return type === ACCESS_WRITE || type === ACCESS_ATOMIC;
}

export { FAULT_TYPE_INVALID_PDE, FAULT_TYPE_INVALID_PTE, FAULT_TYPE_PROTECTION };
