// The flat reference model of test/mm/property.test.ts: per process and per virtual page, what
// the page holds (a private anonymous page's bytes, or a page of a file with, for a private
// mapping, its copy-on-write copy), and what an access to it must do. Plain maps and byte
// arrays: nothing here shares code with src/mm, so the two can disagree.
import { expect } from 'vitest';
import { PAGE_SIZE, PROT_NONE, PROT_WRITE } from '../../src/index.js';

const P = PAGE_SIZE;
const HUGE = 512; // pages in a 2 MiB huge page

export interface RefFile { size: number; pages: Map<number, Uint8Array> }
export type Backing =
  | { t: 'anon'; data: Uint8Array | null; lazy: boolean }
  | { t: 'file'; file: RefFile; index: number; shared: boolean; cow: Uint8Array | null };
export interface RefPage {
  b: Backing;
  prot: number;
  /** Which mmap call made the page, and its page offset there: pages of one token, prot, advice and contiguous pgoff are one VMA. */
  token: number;
  pgoff: number;
  thp: 0 | 1 | 2; // neither, MADV_HUGEPAGE, MADV_NOHUGEPAGE
  hugetlb: boolean;
}
export type RefProc = Map<number, RefPage>; // vpn -> page

export const sizePages = (f: RefFile) => Math.ceil(f.size / P);

/** The bytes a page holds (null: zeros), or 'SIGBUS' past the end of its file. */
export function content(rp: RefPage): Uint8Array | null | 'SIGBUS' {
  const b = rp.b;
  if (b.t === 'anon') return b.data;
  if (b.index >= sizePages(b.file)) return 'SIGBUS';
  if (!b.shared && b.cow) return b.cow;
  return b.file.pages.get(b.index) ?? null;
}

/** The buffer a write to this page lands in (allocating the page, or making the COW copy). */
export function writable(rp: RefPage): Uint8Array {
  const b = rp.b;
  if (b.t === 'anon') {
    b.lazy = false;
    return (b.data ??= new Uint8Array(P));
  }
  if (!b.shared) return (b.cow ??= (b.file.pages.get(b.index) ?? new Uint8Array(P)).slice());
  let page = b.file.pages.get(b.index);
  if (!page) b.file.pages.set(b.index, (page = new Uint8Array(P)));
  return page;
}

export function clonePage(rp: RefPage): RefPage {
  const b = rp.b;
  const nb: Backing = b.t === 'anon' ? { t: 'anon', data: b.data && b.data.slice(), lazy: b.lazy } : { ...b, cow: b.cow && b.cow.slice() };
  return { ...rp, b: nb };
}

/** Whether every page of [vpn, vpn+n) is present and they certainly form one VMA. */
export function oneVma(ref: RefProc, vpn: number, n: number): 'hole' | 'one' | 'maybe' {
  const first = ref.get(vpn);
  if (!first) return 'hole';
  let one = true;
  for (let i = 1; i < n; i++) {
    const rp = ref.get(vpn + i);
    if (!rp) return 'hole';
    const same = rp.token === first.token && rp.prot === first.prot && rp.thp === first.thp && rp.pgoff === first.pgoff + i &&
      rp.b.t === first.b.t && (rp.b.t === 'anon' || (first.b.t === 'file' && rp.b.file === first.b.file && rp.b.shared === first.b.shared));
    if (!same) one = false;
  }
  return one ? 'one' : 'maybe';
}

/** Does [vpn, vpn+n) cut a hugetlb page (hugetlb_vm_op_split)? */
export function cutsHugetlb(ref: RefProc, vpn: number, n: number): boolean {
  const s = ref.get(vpn);
  const e = ref.get(vpn + n - 1);
  return (s !== undefined && s.hugetlb && vpn % HUGE !== 0) || (e !== undefined && e.hugetlb && (vpn + n) % HUGE !== 0);
}

export function expectBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  if (got.length !== want.length || Buffer.compare(got, want) !== 0) {
    let i = 0;
    while (got[i] === want[i]) i++;
    expect.fail(`${what}: byte ${i} is ${got[i]}, the reference says ${want[i]}`);
  }
}

/**
 * Check bytes read from [vpn*P + off, + len) against the reference. A lazily freed page
 * (MADV_FREE) may read as its old bytes or as zeros if reclaim discarded it; zeros settle it.
 */
export function checkRead(ref: RefProc, vpn: number, off: number, got: Uint8Array, what: string): void {
  for (let done = 0; done < got.length;) {
    const v = vpn + Math.floor((off + done) / P);
    const o = (off + done) % P;
    const n = Math.min(P - o, got.length - done);
    const rp = ref.get(v)!;
    const c = content(rp) as Uint8Array | null;
    const want = c ? c.subarray(o, o + n) : new Uint8Array(n);
    const part = got.subarray(done, done + n);
    if (rp.b.t === 'anon' && rp.b.lazy && Buffer.compare(part, want) !== 0 && part.every((x) => x === 0)) {
      rp.b.data = null; // discarded by reclaim
      rp.b.lazy = false;
    } else {
      expectBytes(part, want, `${what} page 0x${(v * P).toString(16)}+${o}`);
    }
    done += n;
  }
}

/** The signal an access must raise, or null (SIGSEGV for a hole or the protection, SIGBUS past EOF, first page first). */
export function accessFault(ref: RefProc, vpn: number, off: number, len: number, write: boolean): string | null {
  for (let v = vpn; v <= vpn + Math.floor((off + len - 1) / P); v++) {
    const rp = ref.get(v);
    if (!rp || (write ? !(rp.prot & PROT_WRITE) : rp.prot === PROT_NONE)) return 'SIGSEGV';
    if (content(rp) === 'SIGBUS') return 'SIGBUS';
  }
  return null;
}
