// An in-memory file system (tmpfs-like) with a page cache. File-backed and shared mappings
// map page-cache pages, so a store through a shared mapping is what read() returns and what
// every other mapping sees. MAP_SHARED|MAP_ANONYMOUS memory is an unlinked file, as shmem is.

import { fail, KernelError } from './errno.js';
import { PAGE_SIZE } from './constants.js';
import { PG_dirty, PG_swapbacked } from './page.js';
import type { Machine } from './machine.js';
import type { Vma } from './vma.js';

let nextFileId = 1;

export class TmpFile {
  readonly id = nextFileId++;
  /** Page cache: page index -> pfn. Each cached page holds one reference of its own. */
  readonly pages = new Map<number, number>();
  /**
   * Pages reclaim wrote to swap (shmem keeps their swap entries in the page cache): index ->
   * swap slot. The next access swaps the page back in; truncation frees the slot.
   */
  readonly swapped = new Map<number, number>();
  /** VMAs mapping this file (i_mmap). */
  readonly mappings = new Set<Vma>();
  /** Open handles (fds); the file goes away when it is unlinked, closed and unmapped. */
  opens = 1;
  linked: boolean;
  size = 0;

  constructor(readonly fs: Tmpfs, readonly name: string | null) {
    this.linked = name !== null;
  }

  private get machine(): Machine {
    return this.fs.machine;
  }

  /**
   * shmem_get_folio for index: the page-cache page, swapped back in if reclaim wrote it to
   * swap (then dirty: its slot is gone), or allocated zeroed if absent. ENOMEM when no page
   * can be had even after reclaim.
   */
  getPage(index: number): number {
    let pfn = this.pages.get(index);
    if (pfn === undefined) {
      const machine = this.machine;
      const phys = machine.phys;
      pfn = phys.allocPages(0);
      const slot = this.swapped.get(index);
      if (slot !== undefined) {
        this.swapped.delete(index);
        const data = machine.swap.takeData(slot);
        if (data >= 0) phys.data.giveSlot(pfn, data);
        phys.frames.flags[pfn]! |= PG_dirty;
      }
      phys.frames.mapping[pfn] = this.id;
      phys.frames.index[pfn] = index;
      phys.frames.flags[pfn]! |= PG_swapbacked;
      this.pages.set(index, pfn);
      phys.lru.add(pfn);
    }
    return pfn;
  }

  /** Reclaim took the page at index out of the cache: written to `slot`, or dropped (-1: it read as zeros). */
  evicted(index: number, slot: number): void {
    this.pages.delete(index);
    if (slot >= 0) this.swapped.set(index, slot);
  }

  /** Pages the file covers (a fault at or past this index is SIGBUS). */
  get sizePages(): number {
    return Math.ceil(this.size / PAGE_SIZE);
  }

  pread(len: number, offset: number): Uint8Array {
    this.assertOpen();
    checkRange(len, offset);
    const n = Math.max(0, Math.min(len, this.size - offset));
    const out = new Uint8Array(n);
    const phys = this.machine.phys;
    for (let done = 0; done < n; ) {
      const pos = offset + done;
      const index = Math.floor(pos / PAGE_SIZE);
      const off = pos % PAGE_SIZE;
      const chunk = Math.min(PAGE_SIZE - off, n - done);
      // A hole reads as zeros without a page (SGP_READ); a swapped page comes back in.
      const pfn = this.swapped.has(index) ? this.getPage(index) : this.pages.get(index);
      if (pfn !== undefined) {
        phys.readPage(pfn, off, out, done, chunk);
        phys.lru.markAccessed(pfn);
      }
      done += chunk;
    }
    return out;
  }

  pwrite(data: Uint8Array, offset: number): number {
    this.assertOpen();
    if (!(data instanceof Uint8Array)) fail('EFAULT', 'the buffer is not a byte array');
    checkRange(data.length, offset);
    const phys = this.machine.phys;
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const index = Math.floor(pos / PAGE_SIZE);
      const off = pos % PAGE_SIZE;
      const chunk = Math.min(PAGE_SIZE - off, data.length - done);
      let pfn: number;
      try {
        pfn = this.getPage(index);
      } catch (e) {
        // generic_perform_write: a short write when some bytes went in, the error when none did.
        if (done === 0 || !(e instanceof KernelError)) throw e;
        break;
      }
      phys.writePage(pfn, off, data, done, chunk);
      phys.setDirty(pfn);
      phys.lru.markAccessed(pfn);
      done += chunk;
    }
    this.size = Math.max(this.size, offset + done);
    return done;
  }

  /** ftruncate: pages past the new end are unmapped from every mapping (even COWed copies) and dropped. */
  truncate(size: number): void {
    this.assertOpen();
    if (!Number.isSafeInteger(size) || size < 0) fail('EINVAL', `bad size ${size}`);
    const keep = Math.ceil(size / PAGE_SIZE);
    if (size < this.size) {
      // The partial last page first (swapped back in if it is out): ENOMEM here changes nothing.
      const tailPfn = size % PAGE_SIZE && (this.pages.has(keep - 1) || this.swapped.has(keep - 1)) ? this.getPage(keep - 1) : undefined;
      for (const vma of [...this.mappings]) vma.mm!.unmapMappingRange(vma, keep);
      const phys = this.machine.phys;
      if (tailPfn !== undefined) phys.writePage(tailPfn, size % PAGE_SIZE, new Uint8Array(PAGE_SIZE - (size % PAGE_SIZE)), 0, PAGE_SIZE - (size % PAGE_SIZE));
      for (const [index, pfn] of this.pages) {
        if (index >= keep) {
          this.pages.delete(index);
          phys.putPage(pfn);
        }
      }
      for (const [index, slot] of this.swapped) {
        if (index >= keep) {
          this.swapped.delete(index);
          this.machine.swap.free(slot);
        }
      }
    }
    this.size = size;
  }

  close(): void {
    if (this.opens <= 0) fail('EINVAL', 'file is not open');
    this.opens--;
    this.maybeFree();
  }

  /** Drop the page cache once nothing can reach the file. */
  maybeFree(): void {
    if (this.linked || this.opens > 0 || this.mappings.size > 0) return;
    const phys = this.machine.phys;
    for (const pfn of this.pages.values()) phys.putPage(pfn);
    this.pages.clear();
    for (const slot of this.swapped.values()) this.machine.swap.free(slot);
    this.swapped.clear();
    this.fs.forget(this);
  }

  private assertOpen(): void {
    if (this.opens <= 0 && this.mappings.size === 0) fail('EINVAL', 'file is closed');
  }
}

function checkRange(len: number, offset: number): void {
  if (!Number.isSafeInteger(len) || len < 0 || !Number.isSafeInteger(offset) || offset < 0) fail('EINVAL', 'bad length or offset');
}

export class Tmpfs {
  private readonly byName = new Map<string, TmpFile>();
  private readonly live = new Set<TmpFile>();
  private readonly byId = new Map<number, TmpFile>();

  constructor(readonly machine: Machine) {}

  /** open(O_CREAT): the named file, created empty if absent; one more open handle. */
  open(name: string): TmpFile {
    if (!name || name.includes('\0')) fail('EINVAL', 'bad file name');
    let f = this.byName.get(name);
    if (f) {
      f.opens++;
      return f;
    }
    f = new TmpFile(this, name);
    this.byName.set(name, f);
    this.live.add(f);
    this.byId.set(f.id, f);
    return f;
  }

  /** O_TMPFILE / memfd: an unlinked file, gone when closed and unmapped. */
  tmpfile(): TmpFile {
    const f = new TmpFile(this, null);
    this.live.add(f);
    this.byId.set(f.id, f);
    return f;
  }

  unlink(name: string): void {
    const f = this.byName.get(name);
    if (!f) fail('ENOENT', `no file ${name}`);
    this.byName.delete(name);
    f.linked = false;
    f.maybeFree();
  }

  lookup(name: string): TmpFile | undefined {
    return this.byName.get(name);
  }

  forget(f: TmpFile): void {
    this.live.delete(f);
    this.byId.delete(f.id);
  }

  /** The live file whose page-cache pages carry this id in their mapping field. */
  fileById(id: number): TmpFile | undefined {
    return this.byId.get(id);
  }

  /** Page-cache pages of every live file. */
  get cachedPages(): number {
    let n = 0;
    for (const f of this.live) n += f.pages.size;
    return n;
  }

  get files(): readonly TmpFile[] {
    return [...this.live];
  }
}
