// The notification audit of test/mm/property.test.ts (what mirrors rely on mmu notifiers for).
import { type Mm, MMU_RANGE_END_ALL, MmuNotifier, mmuNotifierRegister, PAGE_SIZE } from '../../src/index.js';
import { E_WRITE, K_NONE, K_PRESENT, K_SWAP, KIND_MASK } from '../../src/mm/pagetable.js';

const P = PAGE_SIZE;
const HUGE = 512; // pages in a 2 MiB huge page

/**
 * Every change that takes a mapping away from a CPU page-table entry (a present entry whose
 * frame changes or goes, or that loses write permission) must lie inside an mmu notifier
 * range of its mm, and must not have happened yet when that range's start is called: the
 * guarantee mirrors (HMM) rely on. Upgrades (a fault filling an entry, a write fault reusing
 * a page) need no notification. One classic subscriber per mm compares the page tables with
 * a shadow copy taken after the previous operation.
 */
export class NotifyAudit {
  private readonly shadows = new Map<Mm, { kind: Int8Array; val: Float64Array; write: Uint8Array; notified: Uint8Array }>();
  readonly errors: string[] = [];

  /** Watches `pages` pages from page number `baseVpn`. */
  constructor(private readonly baseVpn: number, private readonly pages: number) {}

  watch(mm: Mm): void {
    const sh = { kind: new Int8Array(this.pages), val: new Float64Array(this.pages), write: new Uint8Array(this.pages), notified: new Uint8Array(this.pages) };
    this.capture(mm, 0, this.pages, sh);
    this.shadows.set(mm, sh);
    mmuNotifierRegister(new MmuNotifier({
      invalidateRangeStart: (_s, r) => {
        const lo = Math.max(0, Math.floor(r.start / P) - this.baseVpn);
        const hi = Math.min(this.pages, r.end === MMU_RANGE_END_ALL ? this.pages : Math.ceil(r.end / P) - this.baseVpn);
        if (lo >= hi) return;
        const now = { kind: new Int8Array(this.pages), val: new Float64Array(this.pages), write: new Uint8Array(this.pages) };
        this.capture(mm, lo, hi, now);
        for (let i = lo; i < hi; i++) {
          if (!sh.notified[i] && this.downgraded(sh, now, i)) this.errors.push(`mm ${mm.id} page ${i}: changed before the ${r.event} start`);
          sh.notified[i] = 1;
        }
      },
      release: () => void this.shadows.delete(mm),
    }), mm);
  }

  /** After an operation: every downgrade since the last check was notified. */
  check(): void {
    for (const [mm, sh] of this.shadows) {
      const now = { kind: new Int8Array(this.pages), val: new Float64Array(this.pages), write: new Uint8Array(this.pages) };
      this.capture(mm, 0, this.pages, now);
      for (let i = 0; i < this.pages; i++) {
        if (!sh.notified[i] && this.downgraded(sh, now, i)) {
          this.errors.push(`mm ${mm.id} page ${i}: ${sh.kind[i]}/${sh.val[i]}/${sh.write[i]} became ${now.kind[i]}/${now.val[i]}/${now.write[i]} without a notification`);
        }
      }
      sh.kind.set(now.kind);
      sh.val.set(now.val);
      sh.write.set(now.write);
      sh.notified.fill(0);
    }
  }

  private downgraded(was: { kind: Int8Array; val: Float64Array; write: Uint8Array }, now: { kind: Int8Array; val: Float64Array; write: Uint8Array }, i: number): boolean {
    if (was.kind[i] !== K_PRESENT) return false;
    return now.kind[i] !== K_PRESENT || now.val[i] !== was.val[i] || (was.write[i] === 1 && now.write[i] === 0);
  }

  /** The entry of every page of region pages [lo, hi), huge leaves expanded to their pages. */
  private capture(mm: Mm, lo: number, hi: number, out: { kind: Int8Array; val: Float64Array; write: Uint8Array }): void {
    out.kind.fill(K_NONE, lo, hi);
    mm.pt.forEach(this.baseVpn + lo, this.baseVpn + hi, (node, idx, level, vpn) => {
      const flg = node.flg[idx]!;
      const kind = flg & KIND_MASK;
      const n = level === 0 ? 1 : level === 1 ? HUGE : HUGE * HUGE;
      for (let k = 0; k < n; k++) {
        const i = vpn + k - this.baseVpn;
        if (i < lo || i >= hi) continue;
        out.kind[i] = kind;
        out.val[i] = kind === K_SWAP ? -1 : node.val[idx]! + (kind === K_PRESENT ? k : 0);
        out.write[i] = flg & E_WRITE ? 1 : 0;
      }
    });
  }
}
