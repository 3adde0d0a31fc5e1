// hmm_vma_walk_pmd's loop over a PTE table: PolicyMainline.ptes handles the common entries
// (present with a struct page, none without a fault) in one loop over the table's arrays and
// leaves every other to the per-entry pte(). Property: for any table of mixed entries and any
// per-page requests, a snapshot through the batch gives exactly what the per-entry path gives.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HmmRange, MADV_DONTNEED, MADV_PAGEOUT, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq,
  PROT_READ,
} from '../../src/index.js';
import { PageWalker, type WalkOps } from '../../src/hmm/walk.js';
import { PolicyMainline } from '../../src/hmm/walk-mainline.js';
import { checkInvariants } from '../../src/mm/check.js';
import { anon, installHwpoison, newMachine, P, setProtnone } from './helpers.js';

const PAGES = 1024; // two PTE tables

type Cell = 'none' | 'read' | 'write' | 'ro' | 'swap' | 'protnone' | 'hwpoison';
// Pages cluster in a few spots, so that requests meet the entries they concern.
const pageArb = fc.oneof(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 505, max: 520 }), fc.integer({ min: 0, max: PAGES - 1 }));
const cellArb = fc.constantFrom<Cell>('none', 'read', 'write', 'write', 'write', 'ro', 'swap', 'protnone', 'hwpoison');

/** The policy's callbacks without `ptes`: the walker then takes every PTE through pte(). */
function perEntry(p: PolicyMainline): WalkOps {
  return { testVma: (v, s, e) => p.testVma(v, s, e), noVma: (s, e) => p.noVma(s, e), span: (v, s, e, c) => p.span(v, s, e, c), pte: (v, a, c, e) => p.pte(v, a, c, e) };
}

describe('hmm_range_fault: the PTE-table batch (ptes) agrees with the per-entry walk', () => {
  // Requests per page (a mask, hmmFlags' request bits), or one default request for every page
  // (a mask of 0: ptes then reads no request bits). The output arrays start as garbage: every
  // entry the walk reaches must be written, its pfn 0 without VALID.
  it.each([
    ['per-page requests', true],
    ['a default request and no mask', false],
  ])('snapshot of mixed entries with %s: same flags, pfns and stop address, batch or not', (_what, perPage) => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(pageArb, cellArb), { maxLength: 40 }),
        fc.array(fc.tuple(pageArb, fc.constantFrom(HMM_PFN_REQ_FAULT, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)), { maxLength: 12 }),
        fc.oneof(fc.constant(0), pageArb),
        fc.constantFrom(0, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE),
        (cells, reqs, from, dflt) => {
          // Each path on a machine of its own, built alike: a fault changes the table.
          const run = (batch: boolean) => {
            const m = newMachine(64, 'never');
            const p = m.spawn();
            const a = anon(p, PAGES);
            for (let i = 0; i < PAGES; i += 3) p.writeU8(a + i * P, 1); // a background of present pages
            // The last cell given for a page wins; read-only ones are made so at the end (a write there would fault).
            const last = new Map(cells);
            for (const [i, c] of last) {
              const addr = a + i * P;
              if (c === 'none') p.madvise(addr, P, MADV_DONTNEED);
              else if (c === 'read') p.readU8(addr);
              else if (c === 'write') p.writeU8(addr, 2);
              else if (c === 'ro') p.writeU8(addr, 3);
              else if (c === 'swap') {
                p.writeU8(addr, 4);
                p.madvise(addr, P, MADV_PAGEOUT);
              } else if (c === 'protnone') {
                p.writeU8(addr, 5);
                setProtnone(p.mm, addr);
              } else {
                p.madvise(addr, P, MADV_DONTNEED);
                installHwpoison(p.mm, addr);
              }
            }
            for (const [i, c] of last) if (c === 'ro') p.mprotect(a + i * P, P, PROT_READ); // a read-only present PTE (a VMA of its own)
            const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), true) });
            mmuIntervalNotifierInsert(sub, p.mm, a, PAGES * P);
            const r = perPage
              ? new HmmRange({ notifier: sub, start: a + from * P, end: a + PAGES * P, pfnFlagsMask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE })
              : new HmmRange({ notifier: sub, start: a + from * P, end: a + PAGES * P, defaultFlags: dflt });
            r.hmmPfns.fill(0xdeadbeef);
            if (!perPage) r.hmmFlags.fill(0xff); // no request bits count without a mask
            else for (const [i, q] of reqs) if (i >= from) r.hmmFlags[i - from] = q;
            const policy = new PolicyMainline(p.mm, r);
            policy.last = r.start;
            // One pass: the first fault ends it (WALK_RESTART, or an errno) with `last` where it faulted.
            const code = new PageWalker(p.mm).walkRange(r.start, r.end, batch ? policy : perEntry(policy));
            expect(checkInvariants(m)).toEqual([]);
            return { code, last: policy.last - a, flags: [...r.hmmFlags], pfns: [...r.hmmPfns] };
          };
          const slow = run(false);
          const fast = run(true);
          expect(fast).toEqual(slow);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the batch really covers the common entries: a present table is output without a pte() call', () => {
    const m = newMachine(64, 'never');
    const p = m.spawn();
    const a = anon(p, 512);
    for (let i = 0; i < 512; i++) p.writeU8(a + i * P, 1);
    const sub = new MmuIntervalNotifier({ invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), true) });
    mmuIntervalNotifierInsert(sub, p.mm, a, 512 * P);
    const r = new HmmRange({ notifier: sub, start: a, end: a + 512 * P });
    const policy = new PolicyMainline(p.mm, r);
    let calls = 0;
    const pte = policy.pte.bind(policy);
    policy.pte = (v, ad, c, e) => (calls++, pte(v, ad, c, e));
    expect(new PageWalker(p.mm).walkRange(a, a + 512 * P, policy)).toBe(0);
    expect(calls).toBe(0);
    expect(r.hmmPfns.every((x) => x > 0)).toBe(true);
  });
});
