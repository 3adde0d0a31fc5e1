// The 4.17 mirror API (mm/hmm.c under CONFIG_HMM_MIRROR, as of "hmm: fixes and
// documentations v2" and its 4.17 follow-ups): per-mm HMM state with one classic MMU
// notifier, mirror registration, sync_cpu_device_pagetables for every invalidation, release
// before the mm is destroyed, and the tracked-range snapshot/fault API (hmm_vma_get_pfns,
// hmm_vma_fault, hmm_vma_range_done).
//
// src/mm knows nothing of HMM: the kernel's mm->hmm pointer is a WeakMap<Mm, Hmm> here.
// Where 4.17 had a defect, hmmsim follows the documented intent or the later fix and throws a
// KernelError instead; docs/api.md lists each case (its rows in docs/edge-cases-4.17.md).

import { fail, KernelError, WouldBlock } from '../../mm/errno.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { Mm } from '../../mm/mm.js';
import { MmuNotifier, mmuNotifierRegister, mmuNotifierUnregisterNoRelease, type MmuNotifierRange } from '../../mm/notifier.js';
import { VM_HUGETLB, VM_READ, VM_SPECIAL } from '../../mm/vma.js';
import { HmmRange417, HMM_PFN_VALUE_NONE, HMM_PFN_VALUE_SPECIAL } from './range.js';
import { errnoName, PageWalker, WALK_RESTART, WALK_SLEEP } from '../walk.js';
import { PolicyV417 } from './walk.js';

/** enum hmm_update_type: the only action, "invalidate this range". */
export const HMM_UPDATE_INVALIDATE = 'HMM_UPDATE_INVALIDATE';
export type HmmUpdateType = typeof HMM_UPDATE_INVALIDATE;

/** struct hmm_mirror_ops */
export interface HmmMirrorOps {
  /**
   * The mm is being torn down (exit_mmap), before any VMA is unmapped. The driver stops all
   * device use of the mirror; afterwards it must still call hmmMirrorUnregister. Optional.
   */
  release?(mirror: HmmMirror): void;
  /**
   * Every invalidation of the mm's CPU page table: the driver removes or write-protects its
   * device mappings of [start, end) and returns only when the device no longer uses them.
   */
  syncCpuDevicePagetables(mirror: HmmMirror, update: HmmUpdateType, start: number, end: number): void;
}

/** struct hmm_mirror: one per (device, address space). */
export class HmmMirror {
  /** The per-mm HMM state while registered (mirror->hmm), else null. */
  hmm: Hmm | null = null;
  constructor(public ops: HmmMirrorOps) {}
}

/**
 * When the mirrors' sync callbacks (and the marking of tracked ranges) run relative to the
 * page-table change: 'start' (default) at invalidate_range_start, before the change, as the
 * 4.17 documentation promises and 4.20 made the code do; 'end' at invalidate_range_end,
 * after it, as the 4.17 code did.
 */
export type HmmSyncTiming = 'start' | 'end';

export interface HmmMirrorRegisterOptions {
  /** Chosen by the first mirror of an mm; later mirrors must agree. Default 'start'. */
  syncAt?: HmmSyncTiming;
}

/** struct hmm: the per-mm state. */
export class Hmm {
  /** Registered mirrors, newest first (they are added at the head). */
  readonly mirrors: HmmMirror[] = [];
  /** Ranges being snapshotted or faulted (hmm->ranges). */
  readonly ranges: HmmRange417[] = [];
  /** Incremented on every invalidate_range_start (never read, as in 4.17). */
  sequence = 0;
  /** Mirrors registered and not yet unregistered (on the list or already released). */
  users = 0;
  /** Torn down: the last mirror was unregistered. */
  dead = false;
  /** The mm's release is running / has run. */
  releasing = false;
  released = false;
  /** Depth of sync callbacks running (they must not register or unregister mirrors). */
  inSync = 0;
  readonly notifier: MmuNotifier;

  constructor(readonly mm: Mm, readonly syncAt: HmmSyncTiming) {
    this.notifier = new MmuNotifier({
      release: () => hmmRelease(this),
      invalidateRangeStart: (_sub, range) => {
        this.sequence++;
        if (this.syncAt === 'start') hmmInvalidateRange(this, range);
      },
      invalidateRangeEnd: (_sub, range) => {
        if (this.syncAt === 'end') hmmInvalidateRange(this, range);
      },
    });
  }
}

const hmms = new WeakMap<Mm, Hmm>();
const allocFailures = new WeakMap<Mm, number>();

/** mm->hmm: the HMM state of an mm, if a mirror was registered and not every one has gone. */
export function hmmOf(mm: Mm): Hmm | undefined {
  return hmms.get(mm);
}

/**
 * Fault injection: the next `count` allocations of per-mm HMM state for this mm fail
 * (kmalloc returning NULL), so registration, hmmVmaGetPfns and hmmVmaFault see ENOMEM.
 */
export function hmmInjectAllocFailure(mm: Mm, count = 1): void {
  if (!Number.isInteger(count) || count < 0) fail('EINVAL', 'count must be a non-negative integer');
  if (count === 0) allocFailures.delete(mm);
  else allocFailures.set(mm, count);
}

function takeAllocFailure(mm: Mm): boolean {
  const n = allocFailures.get(mm) ?? 0;
  if (n === 0) return false;
  if (n === 1) allocFailures.delete(mm);
  else allocFailures.set(mm, n - 1);
  return true;
}

/** hmm_invalidate_range: mark and zero overlapping tracked ranges, then sync every mirror, newest first. */
function hmmInvalidateRange(hmm: Hmm, nrange: MmuNotifierRange): void {
  const { start, end } = nrange;
  for (const r of hmm.ranges) {
    // 4.17 skips only `end < r.start`: an invalidation ending exactly at r.start still marks
    // r invalid, with nothing to zero (row 26).
    if (end < r.start || start >= r.end) continue;
    r.valid = false;
    const a = Math.max(start, r.start);
    const b = Math.min(end, r.end);
    if (b > a) r.pfns.fill(0, (a - r.start) / PAGE_SIZE, (b - r.start) / PAGE_SIZE);
  }
  hmm.inSync++;
  try {
    for (const m of hmm.mirrors) m.ops.syncCpuDevicePagetables(m, HMM_UPDATE_INVALIDATE, start, end);
  } finally {
    hmm.inSync--;
  }
}

/** hmm_release: unlink every mirror, newest first, and call its release without holding the list. */
function hmmRelease(hmm: Hmm): void {
  hmm.releasing = true;
  // The later fix (5.x): ranges being snapshotted can no longer be valid.
  for (const r of hmm.ranges) r.valid = false;
  try {
    while (hmm.mirrors.length > 0) {
      const m = hmm.mirrors.shift()!;
      m.ops.release?.(m);
    }
  } finally {
    hmm.releasing = false;
    hmm.released = true;
  }
}

function teardown(hmm: Hmm): void {
  hmm.dead = true;
  if (hmm.notifier.mm) mmuNotifierUnregisterNoRelease(hmm.notifier, hmm.mm);
  if (hmms.get(hmm.mm) === hmm) hmms.delete(hmm.mm);
  for (const r of hmm.ranges) r.valid = false;
}

/**
 * hmm_mirror_register(mirror, mm). The mirror then gets syncCpuDevicePagetables for every
 * later invalidation of the mm and release when the mm is torn down. Throws EINVAL (no
 * mirror, ops or mm; already registered; a syncAt that differs from the mm's), ESRCH (the mm
 * has exited or is exiting), ENOMEM (allocation failure), EDEADLK (called from a sync callback).
 */
export function hmmMirrorRegister(mirror: HmmMirror, mm: Mm, opts: HmmMirrorRegisterOptions = {}): void {
  if (!mirror || !mm || !mirror.ops || typeof mirror.ops.syncCpuDevicePagetables !== 'function') {
    fail('EINVAL', 'hmm_mirror_register needs a mirror with ops (syncCpuDevicePagetables) and an mm');
  }
  if (mirror.hmm) fail('EINVAL', 'mirror is already registered');
  const syncAt = opts.syncAt;
  if (syncAt !== undefined && syncAt !== 'start' && syncAt !== 'end') fail('EINVAL', `bad syncAt ${String(syncAt)}`);
  mm.assertLive();
  let hmm = hmms.get(mm);
  if (hmm) {
    if (hmm.inSync > 0) fail('EDEADLK', 'hmm_mirror_register from a sync_cpu_device_pagetables callback');
    if (hmm.releasing || hmm.released) fail('ESRCH', `mm ${mm.id} is exiting`);
    if (syncAt !== undefined && syncAt !== hmm.syncAt) fail('EINVAL', `mm ${mm.id} syncs its mirrors at invalidate_range_${hmm.syncAt}`);
  } else {
    if (takeAllocFailure(mm)) fail('ENOMEM', 'cannot allocate the per-mm HMM state');
    hmm = new Hmm(mm, syncAt ?? 'start');
    mmuNotifierRegister(hmm.notifier, mm);
    hmms.set(mm, hmm);
  }
  hmm.mirrors.unshift(mirror);
  hmm.users++;
  mirror.hmm = hmm;
}

/**
 * hmm_mirror_unregister(mirror). A second call is a no-op. The per-mm state (and its
 * notifier) goes when the last registered mirror goes, whichever order they leave in; this
 * must be called even after release. Safe from inside release; EDEADLK from a sync callback.
 */
export function hmmMirrorUnregister(mirror: HmmMirror): void {
  const hmm = mirror?.hmm;
  if (!hmm) return;
  if (hmm.inSync > 0) fail('EDEADLK', 'hmm_mirror_unregister from a sync_cpu_device_pagetables callback');
  const i = hmm.mirrors.indexOf(mirror);
  if (i >= 0) hmm.mirrors.splice(i, 1);
  mirror.hmm = null;
  if (--hmm.users === 0) teardown(hmm);
}

// ---- snapshot and fault ----

/** Checks every 4.17 call makes before it changes anything. Returns the mm. */
function checkRange(range: HmmRange417, what: string): Mm {
  if (!(range instanceof HmmRange417)) fail('EINVAL', `${what}: not an HmmRange417`);
  const { start, end, vma } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start % PAGE_SIZE || end % PAGE_SIZE) {
    fail('EINVAL', `${what}: start and end must be page-aligned addresses`);
  }
  if (end <= start) fail('EINVAL', `${what}: empty or reversed range [0x${start.toString(16)}, 0x${end.toString(16)})`);
  if (range.pfns.length < (end - start) / PAGE_SIZE) fail('EINVAL', `${what}: pfns has ${range.pfns.length} entries for ${(end - start) / PAGE_SIZE} pages`);
  if (range.tracker) fail('EINVAL', `${what}: range is already tracked (call hmmVmaRangeDone first)`);
  const mm = vma?.mm;
  if (!mm) fail('EINVAL', `${what}: range has no VMA`);
  mm.mmapLock(what);
  if (mm.vmas.lookup(vma.start) !== vma) fail('EINVAL', `${what}: ${vma} is no longer a VMA of mm ${mm.id}`);
  // The kernel's own sanity check (row 1): entries untouched, untracked.
  if (start < vma.start || start >= vma.end || end > vma.end) fail('EINVAL', `${what}: range is not inside ${vma}`);
  return mm;
}

/** hmm_register as the snapshot calls use it: the state, or ENOMEM / EINVAL (no mirror). */
function hmmFor(mm: Mm, range: HmmRange417, clearOnNomem: boolean, what: string): Hmm {
  const hmm = hmms.get(mm);
  if (hmm) return hmm;
  if (takeAllocFailure(mm)) {
    if (clearOnNomem) range.pfns.fill(range.values[HMM_PFN_VALUE_NONE], 0, range.npages);
    fail('ENOMEM', `${what}: cannot allocate the per-mm HMM state`);
  }
  // 4.17 would create the state silently here; its documented intent is to refuse (row 6).
  fail('EINVAL', `${what}: no mirror is registered on mm ${mm.id}`);
}

/** Steps 4-6 of get_pfns and fault: special VMAs, read permission, then tracking starts. */
function startTracking(hmm: Hmm, range: HmmRange417, what: string): void {
  const vma = range.vma;
  const n = range.npages;
  if (vma.flags & (VM_HUGETLB | VM_SPECIAL)) {
    range.pfns.fill(range.values[HMM_PFN_VALUE_SPECIAL], 0, n);
    fail('EINVAL', `${what}: ${vma} is hugetlb or VM_SPECIAL; entries set to SPECIAL`);
  }
  if (!(vma.flags & VM_READ)) {
    range.pfns.fill(range.values[HMM_PFN_VALUE_NONE], 0, n);
    fail('EPERM', `${what}: ${vma} has no read permission; entries set to NONE`);
  }
  // A range started while (or after) the mm is being torn down can never be valid: no
  // invalidation will reach it any more.
  range.valid = !(hmm.releasing || hmm.released);
  range.tracker = hmm;
  hmm.ranges.push(range);
}

function stopTracking(range: HmmRange417): void {
  const hmm = range.tracker;
  if (!hmm) return;
  const i = hmm.ranges.indexOf(range);
  if (i >= 0) hmm.ranges.splice(i, 1);
  range.tracker = null;
}

/**
 * hmm_vma_get_pfns(range): snapshot the CPU page table of [start, end) into range.pfns in
 * the driver's encoding, and track the range. On return the caller must call
 * hmmVmaRangeDone exactly once. Throws EINVAL (bad range; hugetlb or VM_SPECIAL VMA, entries
 * SPECIAL; no mirror), EPERM (no read permission, entries NONE), ENOMEM, ESRCH.
 */
export function hmmVmaGetPfns(range: HmmRange417): void {
  const mm = checkRange(range, 'hmm_vma_get_pfns');
  const hmm = hmmFor(mm, range, false, 'hmm_vma_get_pfns');
  startTracking(hmm, range, 'hmm_vma_get_pfns');
  const policy = new PolicyV417(mm, range, false, false);
  const walker = new PageWalker(mm);
  policy.testVma(range.vma);
  const r = walker.walkVma(range.vma, range.start, range.end, policy);
  if (r !== 0 && policy.errAt >= 0) {
    // A poisoned or other special entry ends the walk with V[ERROR] there. 4.17 ignores the
    // error and leaves later entries as the caller left them; hmmsim sets them to NONE.
    const from = (policy.errAt - range.start) / PAGE_SIZE + 1;
    range.pfns.fill(range.values[HMM_PFN_VALUE_NONE], from, range.npages);
  }
}

/** Cleanup of a failed hmm_vma_fault: entries from `last` on become NONE (the ERROR marker stays), untracked. */
function faultFailed(range: HmmRange417, policy: PolicyV417): void {
  const from = policy.errAt >= 0 ? (policy.errAt - range.start) / PAGE_SIZE + 1 : (policy.last - range.start) / PAGE_SIZE;
  range.pfns.fill(range.values[HMM_PFN_VALUE_NONE], from, range.npages);
  stopTracking(range);
}

function faultSetup(range: HmmRange417, block: boolean): { mm: Mm; policy: PolicyV417; walker: PageWalker } {
  const mm = checkRange(range, 'hmm_vma_fault');
  if (typeof block !== 'boolean') fail('EINVAL', 'hmm_vma_fault: block must be a boolean');
  const hmm = hmmFor(mm, range, true, 'hmm_vma_fault');
  startTracking(hmm, range, 'hmm_vma_fault');
  const policy = new PolicyV417(mm, range, true, block);
  policy.testVma(range.vma);
  policy.last = range.start;
  return { mm, policy, walker: new PageWalker(mm) };
}

/** Walk until done (0), or until the walk would sleep (WALK_SLEEP); errors clean up and throw. */
function faultPasses(range: HmmRange417, policy: PolicyV417, walker: PageWalker): number {
  for (;;) {
    const r = walker.walkVma(range.vma, policy.last, range.end, policy);
    if (r === WALK_RESTART) continue;
    if (r === 0 || r === WALK_SLEEP) return r;
    faultFailed(range, policy);
    const errno = errnoName(-r);
    throw new KernelError(errno, errno === 'EBUSY'
      ? 'hmm_vma_fault: the fault would have to drop the mmap lock (block = false); retry'
      : `hmm_vma_fault: fault at 0x${policy.last.toString(16)} failed`);
  }
}

/**
 * hmm_vma_fault(range, block): snapshot [start, end) like hmmVmaGetPfns, first faulting every
 * page whose request (in range.pfns, the driver's encoding: VALID = read, VALID|WRITE =
 * write, DEVICE_PRIVATE = bring device memory back) the CPU entry does not satisfy. On
 * return the range is tracked: call hmmVmaRangeDone. Throws, with the range untracked:
 * EINVAL, EPERM, ENOMEM, ESRCH as hmmVmaGetPfns; EFAULT (a fault failed, or a poisoned
 * entry: that entry holds V[ERROR], later ones NONE); EBUSY (block = false and a fault would
 * have had to sleep); WouldBlock (errno EAGAIN: the walk must sleep, on a page under
 * migration or, with block = true, a locked page; entries from there on are NONE; await
 * e.wait(), then call again with the requests filled in anew). hmmVmaFaultAsync sleeps
 * instead, as the kernel does.
 */
export function hmmVmaFault(range: HmmRange417, block: boolean): void {
  const { policy, walker } = faultSetup(range, block);
  if (faultPasses(range, policy, walker) === WALK_SLEEP) {
    const wait = policy.wait!;
    faultFailed(range, policy);
    throw new WouldBlock(`hmm_vma_fault sleeps at 0x${policy.last.toString(16)}; range untracked`, wait);
  }
}

/**
 * The sleeping form of hmmVmaFault: where the kernel sleeps (a migration entry, a locked page
 * with block = true) it waits, keeping the range tracked, and walks again from that address.
 * `sleep` lets a scheduler task park while waiting (default: await the promise).
 */
export async function hmmVmaFaultAsync(range: HmmRange417, block: boolean, sleep: (p: Promise<void>) => Promise<void> = (p) => p): Promise<void> {
  const { mm, policy, walker } = faultSetup(range, block);
  for (;;) {
    if (faultPasses(range, policy, walker) === 0) return;
    await sleep(policy.wait!());
    // The kernel held the mmap lock while it slept; hmmsim did not, so check that the VMA
    // is still there (if not, the range was invalidated too).
    if (mm.dead || mm.vmas.lookup(range.vma.start) !== range.vma || range.end > range.vma.end) {
      faultFailed(range, policy);
      fail('EBUSY', 'hmm_vma_fault: the VMA changed while the fault slept; retry');
    }
  }
}

/**
 * hmm_vma_range_done(range): stop tracking the range; true if no invalidation overlapped it
 * since hmmVmaGetPfns/hmmVmaFault started tracking it. Call under the same driver lock as
 * syncCpuDevicePagetables. EINVAL for an empty range or one that is not tracked (called
 * twice, or after an error); false with every entry 0 if the mirror state went away meanwhile.
 */
export function hmmVmaRangeDone(range: HmmRange417): boolean {
  if (!(range instanceof HmmRange417)) fail('EINVAL', 'hmm_vma_range_done: not an HmmRange417');
  if (!(range.end > range.start)) fail('EINVAL', 'hmm_vma_range_done: empty range');
  const hmm = range.tracker;
  if (!hmm) fail('EINVAL', 'hmm_vma_range_done: range is not tracked (done twice, or after an error)');
  stopTracking(range);
  if (hmm.dead) {
    range.pfns.fill(0, 0, Math.min(range.pfns.length, range.npages));
    return false;
  }
  return range.valid;
}
