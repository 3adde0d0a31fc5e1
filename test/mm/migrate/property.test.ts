// Property: random migrations both ways (to private and coherent device memory, back by
// migrate_to_system, by CPU faults, by eviction) mixed with CPU and device reads and writes,
// fork, munmap, mprotect and exit, over a THP-eligible range, against a flat reference of
// memory contents. After every step the frame accounting is exact; at the end every frame is
// free and every device page was freed once per use.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MADV_HUGEPAGE, Machine, PROT_READ, type Process } from '../../../src/index.js';
import { TestDevice } from './device.js';
import { ANON, entry, expectAllFree, expectConsistent, K_DEVICE_PRIVATE, K_PRESENT, P, RW } from './helpers.js';

type Kind = 'todev' | 'tocoh' | 'tosys' | 'evict' | 'cpuw' | 'cpur' | 'devw' | 'fork' | 'exit' | 'munmap' | 'ro' | 'rw';
interface Op {
  k: Kind;
  page: number;
  n: number;
  v: number;
}
interface Proc {
  p: Process;
  ref: Map<number, number>;
  ro: Set<number>;
  gone: Set<number>;
}

const PAGES = 512; // one PMD range: the first write makes it a THP
const op: fc.Arbitrary<Op> = fc.record({
  k: fc.constantFrom<Kind>('todev', 'tocoh', 'tosys', 'evict', 'cpuw', 'cpur', 'devw', 'fork', 'exit', 'munmap', 'ro', 'rw', 'cpuw', 'todev'),
  page: fc.oneof(fc.nat(15), fc.nat(PAGES - 1)),
  n: fc.integer({ min: 1, max: 6 }),
  v: fc.integer({ min: 1, max: 0xffffff }),
});

/** Where in its page a process keeps its value (varies, so a page copied at the wrong offset shows). */
const off = (pg: number): number => (pg * 40) % (P - 4);

function u32(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(0, true);
}
function bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

/**
 * No entry grants more than its VMA allows, and a writable anonymous mapping (present or
 * device-private) is the page's only mapping: what COW and the device's writes rely on.
 */
function expectPermissions(m: Machine, t: Proc, a: number, pages: number[]): void {
  for (const pg of pages) {
    if (t.gone.has(pg)) continue;
    const e = entry(t.p, a + pg * P);
    if (!e.write || (e.kind !== K_PRESENT && e.kind !== K_DEVICE_PRIVATE)) continue;
    expect(t.ro.has(pg), `page ${pg} writable in a read-only vma`).toBe(false);
    if (e.level === 0 && m.phys.isAnon(e.val)) expect(m.phys.frames.mapcount[e.val], `page ${pg} writable but shared`).toBe(1);
  }
}

function run(ops: Op[]): void {
  const m = new Machine({ ramBytes: 32 << 20 });
  const priv = new TestDevice(m, { frames: 256 });
  const coh = new TestDevice(m, { frames: 64, type: 'coherent' });
  const p0 = m.spawn();
  const a = p0.mmap(0x40000000, PAGES * P, RW, ANON);
  p0.madvise(a, PAGES * P, MADV_HUGEPAGE);
  const procs: Proc[] = [{ p: p0, ref: new Map(), ro: new Set(), gone: new Set() }];
  const live = (t: Proc, o: Op): number[] => {
    const out: number[] = [];
    for (let pg = o.page; pg < Math.min(PAGES, o.page + o.n); pg++) if (!t.gone.has(pg)) out.push(pg);
    return out;
  };
  /** Migrate the live pages of the op one vma at a time (a migration stays inside one vma). */
  const ranges = (t: Proc, o: Op, fn: (s: number, e: number) => void): void => {
    for (const pg of live(t, o)) {
      const s = a + pg * P;
      fn(s, s + P);
    }
  };
  for (const o of ops) {
    const t = procs[o.v % procs.length]!;
    switch (o.k) {
      case 'todev':
        ranges(t, o, (s, e) => priv.migrateToDevice(t.p.mm, s, e));
        break;
      case 'tocoh':
        ranges(t, o, (s, e) => coh.migrateToDevice(t.p.mm, s, e));
        break;
      case 'tosys':
        ranges(t, o, (s, e) => {
          priv.migrateToSystem(t.p.mm, s, e);
          coh.migrateToSystem(t.p.mm, s, e);
        });
        break;
      case 'evict':
        priv.evictAll();
        break;
      case 'cpuw':
        for (const pg of live(t, o)) {
          if (t.ro.has(pg)) continue;
          t.p.write(a + pg * P + off(pg), bytes(o.v));
          t.ref.set(pg, o.v);
        }
        break;
      case 'cpur':
        for (const pg of live(t, o)) expect(u32(t.p.read(a + pg * P + off(pg), 4))).toBe(t.ref.get(pg) ?? 0);
        break;
      case 'devw':
        // A device writes its own page in place: only one this process alone maps, writably.
        for (const pg of live(t, o)) {
          const e = entry(t.p, a + pg * P);
          if (e.level !== 0 || !e.write || m.phys.frames.refcount[e.val] !== 1) continue;
          const dev = e.kind === K_DEVICE_PRIVATE ? priv : e.kind === K_PRESENT && coh.pgmap.contains(e.val) ? coh : null;
          if (!dev) continue;
          dev.write(e.val, off(pg), bytes(o.v ^ 0x5a5a));
          t.ref.set(pg, o.v ^ 0x5a5a);
        }
        break;
      case 'fork':
        if (procs.length < 3) procs.push({ p: t.p.fork(), ref: new Map(t.ref), ro: new Set(t.ro), gone: new Set(t.gone) });
        break;
      case 'exit':
        if (procs.length > 1) {
          t.p.exit();
          procs.splice(procs.indexOf(t), 1);
        }
        break;
      case 'munmap':
        t.p.munmap(a + o.page * P, o.n * P);
        for (let pg = o.page; pg < o.page + o.n; pg++) {
          t.gone.add(pg);
          t.ref.delete(pg);
        }
        break;
      case 'ro':
      case 'rw': {
        const pages = live(t, o);
        if (pages.length !== Math.min(o.n, PAGES - o.page) || pages.length === 0) break; // mprotect needs a fully mapped range
        t.p.mprotect(a + o.page * P, pages.length * P, o.k === 'ro' ? PROT_READ : RW);
        for (const pg of pages) {
          if (o.k === 'ro') t.ro.add(pg);
          else t.ro.delete(pg);
        }
        break;
      }
    }
    expectConsistent(m);
    for (const q of procs) expectPermissions(m, q, a, [...Array(16).keys(), ...live(q, o)]);
  }
  for (const t of procs) for (let pg = 0; pg < PAGES; pg++) if (!t.gone.has(pg)) expect(u32(t.p.read(a + pg * P + off(pg), 4))).toBe(t.ref.get(pg) ?? 0);
  for (const t of procs) t.p.exit();
  expectAllFree(m, priv, coh);
}

describe('migration property', () => {
  it('random migrations both ways with CPU and device accesses, fork, munmap, mprotect and exit keep every byte and every frame right', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), (ops) => run(ops)), { numRuns: 150 });
  });
});
