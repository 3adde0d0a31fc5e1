// Property: a device that mirrors a process through HMM never maps more than the CPU does.
// Random CPU operations (mmap, munmap, mprotect, fork and the child's writes and exit,
// madvise DONTNEED and PAGEOUT, CPU reads and writes that fault, break COW, split THPs and
// bring device pages back, moves to device memory) are interleaved with a mirror that
// snapshots or faults ranges and keeps its own device page table (vpn -> {pfn, write})
// through the API's callbacks, with the proper retry protocol: a snapshot is committed only
// if hmmVmaRangeDone (4.17) says it is still valid / mmuIntervalReadRetry (mainline) says the
// sequence did not move. Between a snapshot and its commit, any number of CPU operations may
// run. After every step: every device entry maps the frame the CPU maps at that address
// (a present page, or a device-private entry of that frame) with no more permission, so no
// device entry survives its CPU mapping; and the machine's refcounts, mapcounts and reverse
// map are consistent. After the process exits, the device maps nothing.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  HmmRange, hmmRangeFault, KernelError, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin,
  mmuIntervalReadRetry, mmuIntervalSetSeq, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, MADV_DONTNEED,
  MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE, type Process,
} from '../../src/index.js';
import {
  HmmMirror, hmmMirrorRegister, hmmMirrorUnregister, hmmVmaFault, hmmVmaGetPfns, hmmVmaRangeDone, HmmRange as HmmRange417,
} from '../../src/hmm/v417/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { E_WRITE, K_DEVICE_PRIVATE, K_PRESENT, KIND_MASK } from '../../src/mm/pagetable.js';
import { F_DP, F_VALID, F_WRITE, newMachine, P, slotOf, TestDevice, V_ERROR, V_NONE, V_SPECIAL } from './helpers.js';

const BASE = 0x10000000; // 2 MiB aligned
const PAGES = 1024; // two PMD chunks, THP-eligible
const PROTS = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE];

type Op =
  | { t: 'touch'; page: number; write: boolean }
  | { t: 'mmap'; page: number; n: number; prot: number }
  | { t: 'munmap'; page: number; n: number }
  | { t: 'mprotect'; page: number; n: number; prot: number }
  | { t: 'dontneed'; page: number; n: number }
  | { t: 'pageout'; page: number }
  | { t: 'fork' }
  | { t: 'childWrite'; page: number }
  | { t: 'childExit' }
  | { t: 'toDevice'; page: number }
  | { t: 'snap'; page: number; n: number; fault: boolean; write: boolean }
  | { t: 'commit' };

// Pages cluster near a few spots so that operations meet each other.
const pageArb = fc.oneof(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 500, max: 540 }), fc.integer({ min: 0, max: PAGES - 1 }));
const nArb = fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 600 }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('touch' as const), page: pageArb, write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('mmap' as const), page: pageArb, n: nArb, prot: fc.constantFrom(...PROTS) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('munmap' as const), page: pageArb, n: nArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('mprotect' as const), page: pageArb, n: nArb, prot: fc.constantFrom(...PROTS) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dontneed' as const), page: pageArb, n: nArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pageout' as const), page: pageArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'fork' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('childWrite' as const), page: pageArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'childExit' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('toDevice' as const), page: pageArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('snap' as const), page: pageArb, n: fc.integer({ min: 1, max: 40 }), fault: fc.boolean(), write: fc.boolean() }) },
  { weight: 4, arbitrary: fc.constant({ t: 'commit' as const }) },
);

interface DeviceEntry { pfn: number; write: boolean }

/** The mirror's side of one API: start a snapshot, commit it, and what its callbacks do. */
interface Mirror {
  snap(op: Extract<Op, { t: 'snap' }>): void;
  commit(): number;
  teardown(): void;
}

function world() {
  const m = newMachine(64);
  const p = m.spawn();
  p.mmap(BASE, PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  p.madvise(BASE, PAGES * P, MADV_HUGEPAGE);
  const device = new Map<number, DeviceEntry>();
  const dev = new TestDevice(m, { owner: {}, frames: 2048 });
  const children: Process[] = [];
  return { m, p, device, dev, children };
}
type World = ReturnType<typeof world>;

function dropDevice(w: World, start: number, end: number): void {
  for (const vpn of [...w.device.keys()]) if (vpn * P >= start && vpn * P < end) w.device.delete(vpn);
}

function mirror417(w: World, sloppy = false, syncAt: 'start' | 'end' = 'start'): Mirror {
  let pending: HmmRange417 | null = null;
  let built = new Float64Array(0);
  const mirror = new HmmMirror({
    syncCpuDevicePagetables: (_m, _u, start, end) => dropDevice(w, start, end),
    release: () => w.device.clear(),
  });
  hmmMirrorRegister(mirror, w.p.mm, { syncAt });
  const done = (): void => {
    if (pending) hmmVmaRangeDone(pending);
    pending = null;
  };
  return {
    snap(op) {
      done();
      const start = BASE + op.page * P;
      const vma = w.p.mm.findVma(start);
      if (!vma || vma.start > start) return;
      const end = Math.min(vma.end, start + op.n * P);
      const r = new HmmRange417({ vma, start, end, flags: [F_VALID, F_WRITE, F_DP], values: [V_ERROR, V_NONE, V_SPECIAL], pfnShift: 6 });
      try {
        if (op.fault) {
          r.pfns.fill(F_VALID | (op.write ? F_WRITE : 0));
          hmmVmaFault(r, true);
        } else {
          hmmVmaGetPfns(r);
        }
        pending = r;
        // Pattern A: build the device update now, outside the device lock; later
        // invalidations zero r.pfns but not this copy, so only range_done protects it.
        built = r.pfns.slice();
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
      }
    },
    commit() {
      const r = pending;
      if (!r) return 0;
      pending = null;
      if (!hmmVmaRangeDone(r) && !sloppy) return 0;
      let n = 0;
      for (let i = 0; i < r.npages; i++) {
        const e = built[i]!;
        const flags = e % 64;
        if (e === V_NONE || e === V_ERROR || e === V_SPECIAL || !(flags & F_VALID)) continue;
        w.device.set(r.start / P + i, { pfn: Math.floor(e / 64), write: (flags & F_WRITE) !== 0 });
        n++;
      }
      return n;
    },
    teardown() {
      done();
      hmmMirrorUnregister(mirror);
    },
  };
}

function mirrorMainline(w: World, sloppy = false): Mirror {
  let pending: HmmRange | null = null;
  const sub = new MmuIntervalNotifier({
    invalidate(s, range, seq) {
      mmuIntervalSetSeq(s, seq);
      dropDevice(w, range.start, range.end);
      return true;
    },
  });
  mmuIntervalNotifierInsert(sub, w.p.mm, BASE, PAGES * P);
  return {
    snap(op) {
      pending = null;
      const start = BASE + op.page * P;
      const end = Math.min(BASE + PAGES * P, start + op.n * P);
      const r = new HmmRange({
        notifier: sub, start, end, devPrivateOwner: w.dev.owner,
        defaultFlags: op.fault ? HMM_PFN_REQ_FAULT | (op.write ? HMM_PFN_REQ_WRITE : 0) : 0,
      });
      for (let tries = 0; tries < 4; tries++) {
        r.notifierSeq = mmuIntervalReadBegin(sub);
        try {
          hmmRangeFault(r);
          pending = r;
          return;
        } catch (e) {
          if (!(e instanceof KernelError)) throw e;
          if (e.errno !== 'EBUSY') return;
        }
      }
    },
    commit() {
      const r = pending;
      if (!r) return 0;
      pending = null;
      if (mmuIntervalReadRetry(sub, r.notifierSeq) && !sloppy) return 0;
      let n = 0;
      for (let i = 0; i < r.npages; i++) {
        if (!(r.hmmFlags[i]! & HMM_PFN_VALID)) continue;
        w.device.set(r.start / P + i, { pfn: r.hmmPfns[i]!, write: (r.hmmFlags[i]! & HMM_PFN_WRITE) !== 0 });
        n++;
      }
      return n;
    },
    teardown() {},
  };
}

function apply(w: World, mirror: Mirror, op: Op): number {
  const { p } = w;
  const at = (page: number): number => BASE + page * P;
  const len = (page: number, n: number): number => Math.min(n, PAGES - page) * P;
  try {
    switch (op.t) {
      case 'touch':
        if (op.write) p.writeU8(at(op.page), op.page & 0xff);
        else p.readU8(at(op.page));
        break;
      case 'mmap':
        p.mmap(at(op.page), len(op.page, op.n), op.prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        break;
      case 'munmap':
        p.munmap(at(op.page), len(op.page, op.n));
        break;
      case 'mprotect':
        p.mprotect(at(op.page), len(op.page, op.n), op.prot);
        break;
      case 'dontneed':
        p.madvise(at(op.page), len(op.page, op.n), MADV_DONTNEED);
        break;
      case 'pageout':
        p.madvise(at(op.page), P, MADV_PAGEOUT);
        break;
      case 'fork':
        if (w.children.length < 3) w.children.push(p.fork());
        break;
      case 'childWrite': {
        const c = w.children[w.children.length - 1];
        c?.writeU8(at(op.page), 0xcc);
        break;
      }
      case 'childExit':
        w.children.shift()?.exit();
        break;
      case 'toDevice': {
        const s = slotOf(p.mm, at(op.page));
        const flg = s.node.flg[s.idx]!;
        if (s.level === 0 && (flg & KIND_MASK) === K_PRESENT && !w.m.phys.isZeroPfn(s.node.val[s.idx]!) && w.m.phys.isAnon(s.node.val[s.idx]!) &&
          w.m.phys.frames.refcount[s.node.val[s.idx]!] === 1) {
          w.dev.migratePageToDevice(p.mm, at(op.page));
        }
        break;
      }
      case 'snap':
        mirror.snap(op);
        break;
      case 'commit':
        return mirror.commit();
    }
  } catch (e) {
    if (!(e instanceof KernelError)) throw e; // SIGSEGV on a protected page, ENOMEM, EBUSY are fine
  }
  return 0;
}

/** Every device entry maps what the CPU maps, with no more permission. */
function checkDevice(w: World): void {
  for (const [vpn, d] of w.device) {
    const s = slotOf(w.p.mm, vpn * P);
    const flg = s.node.flg[s.idx]!;
    const kind = flg & KIND_MASK;
    const span = [1, 512, 262144][s.level]!;
    const cpu = kind === K_PRESENT ? s.node.val[s.idx]! + (vpn % span) : kind === K_DEVICE_PRIVATE ? s.node.val[s.idx]! : -1;
    if (cpu !== d.pfn) throw new Error(`device maps vpn ${vpn} to ${d.pfn}, the CPU to ${cpu} (kind ${kind})`);
    if (d.write && !(flg & E_WRITE)) throw new Error(`device may write vpn ${vpn}, the CPU may not`);
    if (!w.p.mm.findVma(vpn * P)) throw new Error(`device maps vpn ${vpn} outside every VMA`);
  }
}

function run(api: (w: World) => Mirror, ops: Op[], stats: { committed: number }): void {
  const w = world();
  const mirror = api(w);
  for (const op of ops) {
    stats.committed += apply(w, mirror, op);
    checkDevice(w);
    const bad = checkInvariants(w.m);
    if (bad.length) throw new Error(`after ${JSON.stringify(op)}: ${bad.slice(0, 3).join('; ')}`);
  }
  mirror.commit();
  for (const c of w.children) c.exit();
  w.p.exit();
  expect(w.device.size).toBe(0);
  mirror.teardown();
}

describe('HMM mirroring property', () => {
  const apis = [['4.17', mirror417], ['4.17 (syncAt end)', (w: World) => mirror417(w, false, 'end')], ['mainline', mirrorMainline]] as const;
  for (const [name, api] of apis) {
    it(`${name}: device entries always map the CPU's frame with no more permission, and none survive their CPU mapping`, () => {
      const stats = { committed: 0 };
      fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => run(api, ops, stats)), { numRuns: Number(process.env.HMM_PROP_RUNS ?? 300) });
      expect(stats.committed).toBeGreaterThan(100); // the property is not vacuous
    });
  }

  for (const [name, api] of [['4.17', mirror417], ['mainline', mirrorMainline]] as const) {
    it(`${name}: a mirror that commits without the validity check is caught (the property has teeth)`, () => {
      const out = fc.check(fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => run((w) => api(w, true), ops, { committed: 0 })), { numRuns: 300, seed: 7 });
      expect(out.failed).toBe(true);
    });
  }
});
