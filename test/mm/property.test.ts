// Random sequences of mm operations across several processes, against a flat reference model
// of memory contents. The reference knows, per process and per virtual page, what the page
// holds: a private anonymous page (its bytes, or zeros), a page of a file (a named tmpfs file
// or the shmem file behind a shared anonymous mapping; shared mappings of one file alias one
// buffer per file page) with, for a private mapping, its copy-on-write copy. After every step:
// the bytes read equal the reference, failing calls fail exactly when and how the reference
// says, checkInvariants (refcounts, mapcounts, rmap, swap counts) and checkMappings (entries
// agree with their VMAs, rss) are empty. At the end every process exits, the file is closed
// and unlinked, and every frame, swap slot, page-cache page and data slot is free. The reference
// is flat_reference.ts, the operations mm_ops.ts, the notification audit notify_audit.ts.
//
// Reproduce a failure with the seed (and path) fast-check prints:
//   MM_PROP_SEED=<seed> MM_PROP_PATH=<path> npx vitest run test/mm/property.test.ts
// MM_PROP_RUNS=<n> runs more (or fewer) sequences. MM_PROP_OPS='[ops, thp, pressure]' (a
// counterexample as printed, with the pressure flag) runs that one sequence.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KernelError, Machine, MADV_COLLAPSE, MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS,
  MAP_FIXED, MAP_HUGETLB, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE,
  MmuNotifier, mmuNotifierRegister, type Mm, pagemap, PROT_NONE, PROT_READ, PROT_WRITE, SignalError, swapOutPage,
  type Process, type TmpFile,
} from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';
import { checkMappings } from './helpers.js';
import {
  accessFault, checkRead, clonePage, content, cutsHugetlb, expectBytes, oneVma, sizePages, writable, type Backing, type RefFile, type RefPage,
  type RefProc,
} from './flat_reference.js';
import { NotifyAudit } from './notify_audit.js';
import { BASE_VPN, HUGE, HUGE_SLOTS, nestedCall, type Op, opArb, P, REGION, SLOT, SMALL_SLOTS } from './mm_ops.js';

interface Live { proc: Process; ref: RefProc }

const vpnOf = (page: number) => BASE_VPN + page;
const slotPage = (slot: number) => (slot < SMALL_SLOTS ? slot * SLOT : HUGE_SLOTS[slot - SMALL_SLOTS]!);

function errnoOf(f: () => unknown): string | null {
  try {
    f();
    note(`${current}:ok`);
    return null;
  } catch (e) {
    if (e instanceof KernelError) {
      note(`${current}:${e.errno}`);
      return e.errno;
    }
    throw e;
  }
}

// Coverage counters, printed with MM_PROP_STATS=1.
let current = '';
const stats = new Map<string, number>();
function note(key: string): void {
  if (process.env.MM_PROP_STATS) stats.set(key, (stats.get(key) ?? 0) + 1);
}

/**
 * `pressure`: RAM much smaller than what the processes touch, with swap, so that direct
 * reclaim runs (hugetlb memory, which reclaim cannot free, is left out then).
 */
function run(ops: Op[], thp: 'madvise' | 'always', pressure = false): void {
  const m = new Machine(pressure ? { ramBytes: 32 * P, swapBytes: 64 << 20, thp } : { ramBytes: 24 << 20, swapBytes: 8 << 20, thp });
  const file: TmpFile = m.fs.open('data');
  const rfile: RefFile = { size: 0, pages: new Map() };
  const procs: Array<Live | null> = [{ proc: m.spawn(), ref: new Map() }];
  const audit = new NotifyAudit(BASE_VPN, REGION);
  let token = 1;
  const pick = (i: number): Live | null => {
    const live = procs.filter((x): x is Live => x !== null);
    return live.length ? live[i % live.length]! : null;
  };
  const allRefs = () => procs.filter((x): x is Live => x !== null).map((x) => x.ref);
  // A 'nested' op arms its mm's probe; the next invalidate callback of that mm makes the call.
  const probes = new Map<Mm, { call: (() => unknown) | null }>();
  const nested: string[] = [];
  const probe = (mm: Mm): void => {
    const pr: { call: (() => unknown) | null } = { call: null };
    probes.set(mm, pr);
    mmuNotifierRegister(new MmuNotifier({
      invalidateRangeStart: () => {
        const call = pr.call;
        if (!call) return;
        pr.call = null;
        const during = current;
        const e = errnoOf(call);
        // An mm that is exiting has no users left: ESRCH before EDEADLK.
        if (e !== 'EDEADLK' && !(e === 'ESRCH' && during === 'exit')) nested.push(`${during}: a nested call gave ${e}`);
      },
    }), mm);
  };
  // Once a failure was injected, an allocation may fail where the reference cannot tell.
  let injected = false;
  // An allocation that failed: ENOMEM, or for hugetlb memory SIGBUS (hugetlb_wp and
  // hugetlb_no_page: no huge page to be had), which the access reports as EFAULT.
  const nomem = (e: unknown, hugetlb = false): boolean =>
    e instanceof KernelError && (e.errno === 'ENOMEM' || (injected && hugetlb && e instanceof SignalError && e.signal === 'SIGBUS'));

  // Start from populated memory so that most operations meet pages: a private anonymous slot,
  // a shared anonymous slot, a private mapping of the file, and a THP.
  {
    const { proc: p, ref } = procs[0]!;
    file.pwrite(new Uint8Array(8 * P).fill(0xf0), 0);
    rfile.size = 8 * P;
    for (let i = 0; i < 8; i++) rfile.pages.set(i, new Uint8Array(P).fill(0xf0));
    const shm: RefFile = { size: SLOT * P, pages: new Map() };
    // Slots 0 and 3: private anonymous; 1: shared anonymous; 2: the file, private; 4: the file, shared; 5: empty.
    const kinds = ['anon', 'shm', 'file', 'anon', 'shared-file'] as const;
    kinds.forEach((kind, slot) => {
      const first = vpnOf(slotPage(slot));
      const flags = kind === 'anon' ? MAP_PRIVATE | MAP_ANONYMOUS : kind === 'shm' ? MAP_SHARED | MAP_ANONYMOUS : kind === 'file' ? MAP_PRIVATE : MAP_SHARED;
      p.mmap(first * P, SLOT * P, PROT_READ | PROT_WRITE, MAP_FIXED | flags, kind === 'file' || kind === 'shared-file' ? file : null);
      const tok = token++;
      for (let i = 0; i < SLOT; i++) {
        const b: Backing = kind === 'anon' ? { t: 'anon', data: null, lazy: false } : kind === 'shm' ? { t: 'file', file: shm, index: i, shared: true, cow: null }
          : { t: 'file', file: rfile, index: i, shared: kind === 'shared-file', cow: null };
        const rp: RefPage = { b, prot: PROT_READ | PROT_WRITE, token: tok, pgoff: kind === 'anon' ? first + i : i, thp: 0, hugetlb: false };
        ref.set(first + i, rp);
        if (i % 2 === 0 || kind === 'anon') {
          const data = new Uint8Array(P).fill(slot * 16 + i + 1);
          p.write((first + i) * P, data);
          writable(rp).set(data);
        }
      }
    });
    const g = vpnOf(HUGE_SLOTS[1]!);
    if (!pressure) {
      p.mmap(g * P, HUGE * P, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
      const gtok = token++;
      for (let i = 0; i < HUGE; i++) ref.set(g + i, { b: { t: 'anon', data: null, lazy: false }, prot: PROT_READ | PROT_WRITE, token: gtok, pgoff: g + i, thp: 0, hugetlb: true });
      p.writeU8((g + 5) * P, 0x42);
      writable(ref.get(g + 5)!)[0] = 0x42;
    }
    const h = vpnOf(HUGE_SLOTS[0]!);
    p.mmap(h * P, HUGE * P, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS);
    p.madvise(h * P, HUGE * P, MADV_HUGEPAGE);
    const tok = token++;
    for (let i = 0; i < HUGE; i++) ref.set(h + i, { b: { t: 'anon', data: null, lazy: false }, prot: PROT_READ | PROT_WRITE, token: tok, pgoff: h + i, thp: 1, hugetlb: false });
    // Under pressure every page of it holds data: most of it lives in swap, and the operations
    // that meet it swap pages in, so that reclaim runs all along.
    for (const i of pressure ? Array.from({ length: HUGE }, (_, k) => k) : [0, 1, 300, 511]) {
      const data = new Uint8Array(P).fill(i & 0xff || 0x77);
      p.write((h + i) * P, data);
      writable(ref.get(h + i)!).set(data);
    }
    if (!pressure) expect(pagemap(p.mm, h * P).order).toBe(9);
    audit.watch(p.mm);
    probe(p.mm);
  }

  /** Resolve lazily freed pages in [vpn, vpn+n) by reading them (a write must know what the rest of the page holds). */
  const settle = (t: Live, vpn: number, n: number) => {
    for (let v = vpn; v < vpn + n; v++) {
      const rp = t.ref.get(v);
      if (rp && rp.b.t === 'anon' && rp.b.lazy && rp.prot !== PROT_NONE) checkRead(t.ref, v, 0, t.proc.read(v * P, P), 'settle');
    }
  };

  let stalls = m.phys.lru.stat.allocstall;
  for (const op of ops) {
    current = op.k === 'madvise' ? `madvise(${op.advice})` : op.k;
    if (op.k === 'nomem') {
      m.phys.failPageAlloc(op.after, 1);
      injected = true;
      continue;
    }
    if (op.k === 'nested') {
      const t = pick(op.p);
      if (t) probes.get(t.proc.mm)!.call = nestedCall(t.proc, op.inner, vpnOf(op.page));
      continue;
    }
    if (op.k === 'pwrite' || op.k === 'pread' || op.k === 'truncate') {
      if (op.k === 'truncate') {
        if (errnoOf(() => file.truncate(op.pages * P)) === 'ENOMEM') {
          expect(checkInvariants(m)).toEqual([]);
          continue; // the partial last page could not come back from swap: nothing changed
        }
        if (op.pages * P < rfile.size) {
          for (const idx of [...rfile.pages.keys()]) if (idx >= op.pages) rfile.pages.delete(idx);
          // unmap_mapping_range(even_cows): private copies past the end go too.
          for (const ref of allRefs()) for (const rp of ref.values()) if (rp.b.t === 'file' && rp.b.file === rfile && rp.b.index >= op.pages) rp.b.cow = null;
        }
        rfile.size = op.pages * P;
      } else {
        const len = Math.min(op.len, rfile.size - op.off);
        if (len <= 0) continue;
        if (op.k === 'pwrite') {
          const buf = new Uint8Array(len).map((_, i) => (op.v + i) & 0xff);
          let wrote = 0;
          if (errnoOf(() => (wrote = file.pwrite(buf, op.off))) === 'ENOMEM') wrote = 0;
          else if (wrote < len) note('pwrite:short');
          for (let i = 0; i < wrote; i++) {
            const idx = Math.floor((op.off + i) / P);
            let pg = rfile.pages.get(idx);
            if (!pg) rfile.pages.set(idx, (pg = new Uint8Array(P)));
            pg[(op.off + i) % P] = buf[i]!;
          }
        } else {
          let got: Uint8Array | null = null;
          if (errnoOf(() => (got = file.pread(len, op.off))) !== 'ENOMEM') {
            const want = new Uint8Array(len).map((_, i) => rfile.pages.get(Math.floor((op.off + i) / P))?.[(op.off + i) % P] ?? 0);
            expectBytes(got!, want, 'pread');
          }
        }
      }
      expect(checkInvariants(m)).toEqual([]);
      continue;
    }
    const t = pick(op.p);
    if (!t) break;
    const { proc: p, ref } = t;
    switch (op.k) {
      case 'mmap': {
        const first = vpnOf(slotPage(op.slot));
        const room = op.slot < SMALL_SLOTS ? SLOT : HUGE;
        const n = op.type === 'hugetlb' ? HUGE : Math.min(op.n, room);
        if (op.type === 'hugetlb' && (op.slot < SMALL_SLOTS || pressure)) break; // no huge page fits a small RAM
        const flags = MAP_FIXED | (op.populate ? MAP_POPULATE : 0) | (op.type === 'anon' || op.type === 'file' ? MAP_PRIVATE : MAP_SHARED) |
          (op.type === 'anon' || op.type === 'shared-anon' ? MAP_ANONYMOUS : 0) | (op.type === 'hugetlb' ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB : 0);
        const isFile = op.type === 'file' || op.type === 'shared-file';
        const call = () => p.mmap(first * P, n * P, op.prot, op.type === 'hugetlb' ? flags & ~MAP_SHARED : flags, isFile ? file : null, isFile ? op.off * P : 0);
        if (cutsHugetlb(ref, first, n)) {
          expect(errnoOf(call)).toBe('EINVAL');
          break;
        }
        expect(call()).toBe(first * P);
        const tok = token++;
        const shm: RefFile | null = op.type === 'shared-anon' ? { size: n * P, pages: new Map() } : null;
        for (let i = 0; i < n; i++) {
          const b: Backing = op.type === 'anon' || op.type === 'hugetlb' ? { t: 'anon', data: null, lazy: false }
            : shm ? { t: 'file', file: shm, index: i, shared: true, cow: null }
              : { t: 'file', file: rfile, index: op.off + i, shared: op.type === 'shared-file', cow: null };
          ref.set(first + i, { b, prot: op.prot, token: tok, pgoff: isFile ? op.off + i : shm ? i : first + i, thp: 0, hugetlb: op.type === 'hugetlb' });
          // MAP_POPULATE write-faults private writable memory (populate_vma_page_range): file pages are copied now.
          // It is best effort (__mm_populate ignores errors): once an allocation may fail, what was copied is read back.
          if (op.populate && op.type === 'file' && op.prot & PROT_WRITE && b.t === 'file' && b.index < sizePages(rfile)) {
            const kind = pagemap(p.mm, (first + i) * P).kind;
            if (!injected || kind === 'anon' || kind === 'swap') writable(ref.get(first + i)!);
          }
        }
        break;
      }
      case 'munmap': {
        const vpn = vpnOf(op.page);
        if (cutsHugetlb(ref, vpn, op.n)) {
          expect(errnoOf(() => p.munmap(vpn * P, op.n * P))).toBe('EINVAL');
          break;
        }
        p.munmap(vpn * P, op.n * P);
        for (let i = 0; i < op.n; i++) ref.delete(vpn + i);
        break;
      }
      case 'mprotect': {
        const vpn = vpnOf(op.page);
        const e = errnoOf(() => p.mprotect(vpn * P, op.n * P, op.prot));
        const hole = oneVma(ref, vpn, op.n) === 'hole';
        expect(e).toBe(hole ? 'ENOMEM' : cutsHugetlb(ref, vpn, op.n) ? 'EINVAL' : null);
        if (!e) for (let i = 0; i < op.n; i++) ref.get(vpn + i)!.prot = op.prot;
        break;
      }
      case 'madvise': {
        const vpn = vpnOf(op.page);
        const pages = Array.from({ length: op.n }, (_, i) => ref.get(vpn + i));
        const e = errnoOf(() => p.madvise(vpn * P, op.n * P, op.advice));
        if (pages.some((rp) => !rp)) {
          expect(e).toBe('ENOMEM');
          break;
        }
        const all = pages as RefPage[];
        const anyHuge = all.some((rp) => rp.hugetlb);
        const privAnon = all.every((rp) => rp.b.t === 'anon' && !rp.hugetlb);
        switch (op.advice) {
          case MADV_DONTNEED:
            expect(e).toBe(all[0]!.hugetlb && vpn % HUGE !== 0 ? 'EINVAL' : null);
            if (e) break;
            for (let i = 0; i < op.n; i++) {
              const rp = all[i]!;
              if (rp.hugetlb && Math.floor((vpn + op.n) / HUGE) <= Math.floor((vpn + i) / HUGE)) continue; // the end rounds down
              if (rp.b.t === 'anon') rp.b = { t: 'anon', data: null, lazy: false };
              else if (!rp.b.shared) rp.b.cow = null;
            }
            break;
          case MADV_FREE:
            expect(e).toBe(privAnon ? null : 'EINVAL');
            if (!e) for (const rp of all) if (rp.b.t === 'anon' && rp.b.data) rp.b.lazy = true;
            break;
          case MADV_PAGEOUT:
            expect(e).toBe(anyHuge ? 'EINVAL' : null);
            break;
          case MADV_HUGEPAGE:
          case MADV_NOHUGEPAGE:
            expect(e).toBe(anyHuge ? 'EINVAL' : null);
            if (!e) for (const rp of all) rp.thp = op.advice === MADV_HUGEPAGE ? 1 : 2;
            break;
          case MADV_COLLAPSE:
            if (!privAnon || all.some((rp) => rp.thp === 2)) expect(e).toBe('EINVAL');
            else expect([null, 'EAGAIN', 'ENOMEM']).toContain(e);
            break;
        }
        break;
      }
      case 'move': {
        const vpn = vpnOf(op.page);
        const dst = vpnOf(slotPage(op.slot));
        const n = op.n;
        if (dst < vpn + n && vpn < dst + n) break; // overlapping: EINVAL, covered by the unit tests
        const shape = oneVma(ref, vpn, n);
        const src = ref.get(vpn);
        const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (op.dontunmap ? MREMAP_DONTUNMAP : 0);
        const e = errnoOf(() => p.mremap(vpn * P, n * P, n * P, flags, dst * P));
        if (shape === 'hole') {
          expect(e).toBe('EFAULT');
          break;
        }
        if (shape === 'maybe' && e === 'EFAULT') break;
        const want = src!.hugetlb ? 'EINVAL'
          : op.dontunmap && !(src!.b.t === 'anon') ? 'EINVAL'
            : cutsHugetlb(ref, dst, n) ? 'EINVAL' : null;
        expect(e).toBe(want);
        if (e) break;
        const moved = Array.from({ length: n }, (_, i) => ref.get(vpn + i)!);
        for (let i = 0; i < n; i++) ref.delete(dst + i);
        for (let i = 0; i < n; i++) {
          if (op.dontunmap) ref.set(vpn + i, { ...moved[i]!, b: { t: 'anon', data: null, lazy: false } });
          else ref.delete(vpn + i);
        }
        moved.forEach((rp, i) => ref.set(dst + i, rp));
        break;
      }
      case 'resize': {
        const vpn = vpnOf(op.page);
        const shape = oneVma(ref, vpn, op.n);
        const src = ref.get(vpn);
        let ret = -1;
        const e = errnoOf(() => (ret = p.mremap(vpn * P, op.n * P, op.to * P, op.maymove ? MREMAP_MAYMOVE : 0)));
        if (shape === 'hole') {
          expect(e).toBe('EFAULT');
          break;
        }
        if (shape === 'maybe' && e === 'EFAULT') break;
        if (src!.hugetlb) {
          expect(e).toBe('EINVAL');
          break;
        }
        if (op.to <= op.n) {
          expect(e).toBe(null);
          expect(ret).toBe(vpn * P);
          for (let i = op.to; i < op.n; i++) ref.delete(vpn + i);
          break;
        }
        if (e === 'ENOMEM' && !op.maymove) {
          // Growing in place needs the pages after the range free.
          expect(Array.from({ length: op.to - op.n }, (_, i) => ref.has(vpn + op.n + i)).some(Boolean) || ref.has(vpn + op.n - 1)).toBe(true);
          break;
        }
        expect(e).toBe(null);
        const to = ret / P;
        for (let i = 0; i < op.to; i++) if (to + i < vpn || to + i >= vpn + op.n) expect(ref.has(to + i), `mremap onto a used page ${to + i}`).toBe(false);
        const moved = Array.from({ length: op.n }, (_, i) => ref.get(vpn + i)!);
        for (let i = 0; i < op.n; i++) ref.delete(vpn + i);
        moved.forEach((rp, i) => ref.set(to + i, rp));
        const last = moved[op.n - 1]!;
        for (let i = op.n; i < op.to; i++) {
          const k = i - op.n + 1;
          const b: Backing = last.b.t === 'anon' ? { t: 'anon', data: null, lazy: false } : { ...last.b, index: last.b.index + k, cow: null };
          ref.set(to + i, { ...last, b, pgoff: last.pgoff + k });
        }
        break;
      }
      case 'fork': {
        if (procs.filter(Boolean).length >= 3) break;
        const child = p.fork();
        const cref: RefProc = new Map();
        for (const [v, rp] of ref) cref.set(v, clonePage(rp));
        procs.push({ proc: child, ref: cref });
        audit.watch(child.mm);
        probe(child.mm);
        break;
      }
      case 'exit':
        p.exit();
        procs[procs.indexOf(t)] = null;
        break;
      case 'swapout': {
        const e = pagemap(p.mm, vpnOf(op.page) * P);
        if (!e.present || e.kind === 'zero') break;
        expect([null, 'EBUSY', 'ENOSPC']).toContain(errnoOf(() => swapOutPage(m, e.pfn)));
        break;
      }
      case 'write':
      case 'read': {
        const vpn = vpnOf(op.page);
        const write = op.k === 'write';
        const len = op.len;
        const sig = accessFault(ref, vpn, op.off, len, write);
        const addr = vpn * P + op.off;
        if (sig) {
          let err: unknown = null;
          try {
            if (write) p.write(addr, new Uint8Array(len).fill(1));
            else p.read(addr, len);
          } catch (x) {
            err = x;
          }
          expect(err).toBeInstanceOf(SignalError);
          expect((err as SignalError).signal).toBe(sig);
          break;
        }
        const huge = ref.get(vpn)!.hugetlb || ref.get(vpn + Math.floor((op.off + len - 1) / P))!.hugetlb;
        if (write) {
          try {
            settle(t, vpn, Math.ceil((op.off + len) / P));
          } catch (e) {
            if (!nomem(e)) throw e;
            note(injected ? 'write:settle:ENOMEM (injected)' : 'write:settle:ENOMEM');
            break;
          }
          const buf = new Uint8Array(len).map((_, i) => (op.v + i) & 0xff);
          let failed = false;
          try {
            p.write(addr, buf);
          } catch (e) {
            if (!nomem(e, huge)) throw e;
            failed = true;
            note(injected ? 'write:ENOMEM (injected)' : 'write:ENOMEM');
          }
          if (!failed) {
            for (let i = 0; i < len; i++) writable(ref.get(vpn + Math.floor((op.off + i) / P))!)[(op.off + i) % P] = buf[i]!;
            break;
          }
          // Out of memory part way: page by page the store either went in or not, and it stopped
          // at the first page it could not fault in.
          let stopped = false;
          for (let done = 0; done < len;) {
            const v = vpn + Math.floor((op.off + done) / P);
            const o = (op.off + done) % P;
            const n = Math.min(P - o, len - done);
            const got = p.read(v * P + o, n);
            const want = buf.subarray(done, done + n);
            if (!stopped && Buffer.compare(got, want) === 0) writable(ref.get(v)!).set(want, o);
            else {
              stopped = true;
              checkRead(ref, v, o, got, 'after a failed write');
            }
            done += n;
          }
        } else {
          let got: Uint8Array | null = null;
          try {
            got = p.read(addr, len);
          } catch (e) {
            if (!nomem(e, huge)) throw e;
          }
          if (got) checkRead(ref, vpn, op.off, got, 'read');
        }
        break;
      }
    }
    expect(checkInvariants(m)).toEqual([]);
    expect(checkMappings(m)).toEqual([]);
    audit.check();
    expect(audit.errors).toEqual([]);
    expect(nested).toEqual([]);
    if (m.phys.lru.stat.allocstall > stalls) note(`${current}: reclaimed`);
    stalls = m.phys.lru.stat.allocstall;
    if (process.env.MM_PROP_STATS) {
      note(`procs ${procs.filter(Boolean).length}`);
      if (m.swap.used) note('swap in use');
      if (m.liveMms.some((mm) => { let huge = false; mm.pt.forEach(0, mm.taskSize / P, (_n, _i, level) => void (huge ||= level === 1)); return huge; })) note('huge leaf mapped');
    }
  }

  // Every readable page of every live process reads as the reference says (a page the
  // reference says is zero: 64 bytes of it, at an offset that depends on the page).
  m.phys.failPageAlloc(0, 0);
  for (const t of procs) {
    if (!t) continue;
    for (const [v, rp] of t.ref) {
      const c = content(rp);
      if (rp.prot === PROT_NONE || c === 'SIGBUS') continue;
      const off = c ? 0 : (v * 64) % P;
      checkRead(t.ref, v, off, t.proc.read(v * P + off, c ? P : 64), 'final read');
    }
  }
  for (const t of procs) t?.proc.exit();
  file.close();
  m.fs.unlink('data');
  expect(checkInvariants(m)).toEqual([]);
  expect(m.liveMms.length).toBe(0);
  expect(m.phys.usedRamFrames).toBe(0);
  expect(m.swap.used).toBe(0);
  expect(m.fs.cachedPages).toBe(0);
  expect(m.phys.data.slotsInUse).toBe(0);
}

describe('mm property: random operations across processes against a flat reference', () => {
  const check = (pressure: boolean, runs: number): void => {
    const seed = process.env.MM_PROP_SEED ? Number(process.env.MM_PROP_SEED) : Date.now() ^ (Math.random() * 2 ** 31);
    const path = process.env.MM_PROP_PATH;
    const numRuns = Number(process.env.MM_PROP_RUNS ?? runs);
    const out = fc.check(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 60, size: 'max' }), fc.constantFrom<'madvise' | 'always'>('madvise', 'always'), (ops, thp) => run(ops, thp, pressure)),
      { seed, numRuns, ...(path ? { path } : {}) },
    );
    if (process.env.MM_PROP_STATS) console.log([...stats].sort().map(([k, v]) => `${k}: ${v}`).join('\n'));
    if (out.failed) {
      const cause = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
      throw new Error(`mm property failed: reproduce with MM_PROP_SEED=${out.seed} MM_PROP_PATH=${out.counterexamplePath}\n${cause}\n${fc.defaultReportMessage(out)}`);
    }
  };

  it('bytes, errors, refcounts, mapcounts, rmap, rss agree with the reference; nothing leaks after exit', () => check(false, 120), 180_000);

  it('the same with RAM pressure: small RAM and swap, so that direct reclaim runs all along', () => check(true, 40), 180_000);
});

if (process.env.MM_PROP_OPS) {
  it('the sequence in MM_PROP_OPS', () => {
    const [ops, thp, pressure] = JSON.parse(process.env.MM_PROP_OPS!) as [Op[], 'madvise' | 'always', boolean];
    run(ops, thp, pressure);
  });
}
