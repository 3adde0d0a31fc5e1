// hmm_range_fault (mainline mm/hmm.c): snapshot, and fault on request, the CPU page table of
// [range.start, range.end) across VMAs, for a driver that mirrors it through an MMU interval
// notifier and its sequence (mmu_interval_read_begin / read_retry).

import { fail, KernelError, WouldBlock } from '../mm/errno.js';
import { PAGE_SIZE } from '../mm/constants.js';
import type { Mm } from '../mm/mm.js';
import { MmuIntervalNotifier, mmuIntervalCheckRetry } from '../mm/notifier.js';
import { HmmRange, HMM_PFN_FLAGS } from './range.js';
import { errnoName, PageWalker, WALK_RESTART, WALK_SLEEP } from './walk.js';
import { PolicyMainline } from './walk-mainline.js';

/** Restarts at one address without progress after which hmmsim gives up (the kernel would loop). */
const MAX_STALLS = 64;

function checkRange(range: HmmRange): Mm {
  if (!(range instanceof HmmRange)) fail('EINVAL', 'hmm_range_fault: not an HmmRange');
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start % PAGE_SIZE || end % PAGE_SIZE) {
    fail('EINVAL', 'hmm_range_fault: start and end must be page-aligned addresses');
  }
  if (end <= start) fail('EINVAL', `hmm_range_fault: empty or reversed range [0x${start.toString(16)}, 0x${end.toString(16)})`);
  const n = (end - start) / PAGE_SIZE;
  if (!(range.hmmPfns instanceof Uint32Array) || !(range.hmmFlags instanceof Uint8Array) || range.hmmPfns.length < n || range.hmmFlags.length < n) {
    fail('EINVAL', `hmm_range_fault: hmmPfns/hmmFlags must hold ${n} entries`);
  }
  if (!Number.isInteger(range.defaultFlags) || range.defaultFlags & ~HMM_PFN_FLAGS || !Number.isInteger(range.pfnFlagsMask) || range.pfnFlagsMask & ~HMM_PFN_FLAGS) {
    fail('EINVAL', 'hmm_range_fault: defaultFlags and pfnFlagsMask are hmmFlags bit masks');
  }
  const sub = range.notifier;
  if (!(sub instanceof MmuIntervalNotifier) || !sub.mm) fail('EINVAL', 'hmm_range_fault: range.notifier is not an inserted interval notifier');
  sub.mm.mmapLock('hmm_range_fault');
  return sub.mm;
}

/** One hmm_range_fault loop iteration after another until done, an error, or a sleep. */
function passes(range: HmmRange, policy: PolicyMainline, walker: PageWalker): number {
  let stalls = 0;
  let prev = -1;
  let restarts = 0;
  const maxRestarts = MAX_STALLS + 4 * ((range.end - range.start) / PAGE_SIZE);
  for (;;) {
    // If the range is no longer valid, force the caller to retry.
    if (mmuIntervalCheckRetry(range.notifier, range.notifierSeq)) fail('EBUSY', 'hmm_range_fault: the range was invalidated; read_begin again');
    const r = walker.walkRange(policy.last, range.end, policy);
    if (r === 0 || r === WALK_SLEEP) return r;
    if (r === WALK_RESTART) {
      stalls = policy.last === prev ? stalls + 1 : 0;
      prev = policy.last;
      if (stalls > MAX_STALLS || ++restarts > maxRestarts) fail('EFAULT', `hmm_range_fault: faulting 0x${policy.last.toString(16)} makes no progress`);
      continue;
    }
    const errno = errnoName(-r);
    throw new KernelError(errno, `hmm_range_fault: ${errno === 'EPERM' ? 'write fault in a VMA without VM_WRITE' : 'cannot fault'} at 0x${policy.last.toString(16)}`);
  }
}

/**
 * hmm_range_fault(range). Per page, the request is (hmmFlags[i] & pfnFlagsMask) |
 * defaultFlags; pages whose request the CPU entry does not satisfy are faulted (the whole
 * page-table chunk from that page on, as the kernel does), then the walk goes on. Output per
 * page: hmmFlags[i] = VALID, WRITE, ERROR, order; hmmPfns[i] = the pfn (0 without VALID).
 * The caller holds a sequence from mmuIntervalReadBegin in range.notifierSeq.
 *
 * Throws EBUSY (the sequence moved: read_begin again and retry), EFAULT (a fault failed, a
 * fault was requested where there is no VMA, no read permission, a pfnmap or a poisoned
 * entry), EPERM (a write fault requested in a VMA without VM_WRITE), EINVAL / ESRCH (bad
 * range, notifier not inserted, mm exited), or WouldBlock (errno EAGAIN: the kernel would
 * sleep here, on a page under migration or a locked page; await e.wait() and retry as for
 * EBUSY). On any error the arrays' contents are unspecified, as in the kernel: refill the
 * request bits before retrying. hmmRangeFaultAsync sleeps instead.
 */
export function hmmRangeFault(range: HmmRange): void {
  const mm = checkRange(range);
  const policy = new PolicyMainline(mm, range);
  policy.last = range.start;
  if (passes(range, policy, new PageWalker(mm)) === WALK_SLEEP) {
    throw new WouldBlock(`hmm_range_fault sleeps at 0x${policy.last.toString(16)}`, policy.wait!);
  }
}

/**
 * The sleeping form of hmmRangeFault: where the kernel sleeps it waits, then checks the
 * sequence and walks on from the same address, exactly as the kernel's loop does. `sleep`
 * lets a scheduler task park while waiting (default: await the promise).
 */
export async function hmmRangeFaultAsync(range: HmmRange, sleep: (p: Promise<void>) => Promise<void> = (p) => p): Promise<void> {
  const mm = checkRange(range);
  const policy = new PolicyMainline(mm, range);
  policy.last = range.start;
  const walker = new PageWalker(mm);
  for (;;) {
    if (passes(range, policy, walker) === 0) return;
    await sleep(policy.wait!());
    mm.assertLive();
  }
}
