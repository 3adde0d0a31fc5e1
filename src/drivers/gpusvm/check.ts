// The mirroring guarantee, checked: every entry of a device page table maps the page the CPU
// maps at that address (a present page, or a device-private entry of that page), with no
// more permission. The CPU side is read with hmm_range_fault itself, as a snapshot (no
// request bits, so nothing is faulted and nothing changes), one call per 2 MiB leaf of the
// device table, under a temporary interval notifier.

import { PAGE_SIZE } from '../../mm/constants.js';
import { KernelError } from '../../mm/errno.js';
import type { Mm } from '../../mm/mm.js';
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin, mmuIntervalSetSeq } from '../../mm/notifier.js';
import { hmmRangeFault } from '../../hmm/hmm.js';
import { HMM_PFN_ERROR, HMM_PFN_VALID, HMM_PFN_WRITE, HmmRange } from '../../hmm/range.js';
import { DPTE_VALID, DPTE_WRITE, type DevicePageTable } from './device-pagetable.js';

const LEAF_PAGES = 512;
/** Messages kept per check (the count is always complete). */
const MAX_MESSAGES = 20;

export interface MirrorCheck {
  /** Entries checked. */
  entries: number;
  /** Entries that break the guarantee. */
  violations: number;
  /** The first violations, described. */
  messages: string[];
  /** hmm_range_fault snapshots taken. */
  snapshots: number;
}

/**
 * Check `pt` (the device's table for mm) against the CPU page tables. `owner` is the device's
 * dev_private_owner: its device-private pages are reported by the snapshot, others are not.
 */
export function checkDeviceMirror(mm: Mm, pt: DevicePageTable, owner: unknown): MirrorCheck {
  const out: MirrorCheck = { entries: 0, violations: 0, messages: [], snapshots: 0 };
  if (pt.size === 0) return out;
  const bad = (vpn: number, what: string): void => {
    out.violations++;
    if (out.messages.length < MAX_MESSAGES) out.messages.push(`0x${(vpn * PAGE_SIZE).toString(16)}: ${what}`);
  };
  if (mm.dead) {
    pt.forEach((vpn, pfn) => {
      out.entries++;
      bad(vpn, `device maps frame ${pfn}, the process has exited`);
    });
    return out;
  }
  const sub = new MmuIntervalNotifier({
    invalidate: (s, _r, seq) => {
      mmuIntervalSetSeq(s, seq);
      return true;
    },
  });
  mmuIntervalNotifierInsert(sub, mm, 0, mm.taskSize);
  const range = new HmmRange({ notifier: sub, start: 0, end: PAGE_SIZE, devPrivateOwner: owner, hmmPfns: new Uint32Array(LEAF_PAGES), hmmFlags: new Uint8Array(LEAF_PAGES) });
  const hf = range.hmmFlags;
  const hp = range.hmmPfns;
  try {
    pt.forEachLeaf((base, pfns, flags) => {
      // The span of this leaf that holds entries: one snapshot of it.
      let first = -1;
      let last = -1;
      for (let i = 0; i < LEAF_PAGES; i++) {
        if (flags[i]! & DPTE_VALID) {
          if (first < 0) first = i;
          last = i;
        }
      }
      if (first < 0) return;
      range.start = (base + first) * PAGE_SIZE;
      range.end = Math.min(mm.taskSize, (base + last + 1) * PAGE_SIZE);
      range.notifierSeq = mmuIntervalReadBegin(sub);
      out.snapshots++;
      let snapshot = true;
      try {
        hmmRangeFault(range);
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        snapshot = false; // the CPU maps nothing the walk could report
      }
      for (let i = first; i <= last; i++) {
        const df = flags[i]!;
        if (!(df & DPTE_VALID)) continue;
        out.entries++;
        const f = snapshot ? hf[i - first]! : 0;
        const pfn = pfns[i]!;
        if (!(f & HMM_PFN_VALID) || f & HMM_PFN_ERROR) bad(base + i, `device maps frame ${pfn}, the CPU maps nothing`);
        else if (hp[i - first] !== pfn) bad(base + i, `device maps frame ${pfn}, the CPU frame ${hp[i - first]}`);
        else if (df & DPTE_WRITE && !(f & HMM_PFN_WRITE)) bad(base + i, 'device may write, the CPU may not');
      }
    });
  } finally {
    mmuIntervalNotifierRemove(sub);
  }
  return out;
}
