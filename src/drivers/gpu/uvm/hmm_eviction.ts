// UVM's VRAM allocation under pressure, HMM side: reserving frames with eviction as the
// allocation's retry (block_alloc_gpu_chunk with UVM_PMM_ALLOC_FLAGS_EVICT), and the eviction
// of a root chunk's pages to system memory by pfn through migrate_device_pfns
// (uvm_hmm_va_block_evict_chunks), with the remote mappings that may follow it.

import {
  MIGRATE_PFN_MIGRATE, migrateDeviceFinalize, migrateDevicePages, migrateDevicePfns, migratePfn, migratePfnHas, migratePfnToPage,
} from '../../../mm/migrate.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE } from '../../../hmm/range.js';
import { PROT_READ, PROT_READ_WRITE, PTE_SYSMEM, SIZE_4K } from '../page_table.js';
import { PAGES_PER_UVM_VA_BLOCK, UVM_ID_CPU } from './policy_types.js';
import { UvmVaBlock } from './va_space.js';
import type { UvmDriver } from './uvm.js';
import { copyRuns, gpuUnmapRuns, snapshot } from './hmm_block.js';

/**
 * Reserve up to n pinned VRAM pages, evicting root chunks as needed (the allocation retry
 * of block_alloc_gpu_chunk with UVM_PMM_ALLOC_FLAGS_EVICT). Returns the pages (maybe fewer).
 */
export function reserveVram(uvm: UvmDriver, n: number): number[] {
  const out: number[] = [];
  const pmm = uvm.pmm;
  while (out.length < n) {
    const pfn = pmm.allocPinned();
    if (pfn >= 0) {
      out.push(pfn);
      continue;
    }
    const victim = pmm.pickVictim();
    if (victim < 0) break;
    const before = pmm.freeFrames;
    evictRootChunk(uvm, victim);
    if (pmm.freeFrames === before) break; // nothing could move: give up rather than spin
  }
  return out;
}

/**
 * largePages: pin the frames of `pages` (sorted) in the block's root chunk, page p at frame p
 * of it, taking a root chunk first if the block has none (evicting one if none is free), as
 * block_populate_pages_gpu allocates a managed block's chunk. Returns a frame per page, -1
 * where none could be had.
 */
export function reserveBlockVram(uvm: UvmDriver, block: UvmVaBlock, pages: readonly number[], fault: boolean): number[] {
  const pmm = uvm.pmm;
  let c = pmm.chunkOfBlock(block.id, block.gpuChunk);
  while (c < 0) {
    c = pmm.allocChunk(block.id);
    if (c >= 0) break;
    const victim = pmm.pickVictim();
    if (victim < 0) break;
    const before = pmm.freeFrames;
    evictRootChunk(uvm, victim);
    if (pmm.freeFrames === before) break; // nothing could move: give up rather than spin
  }
  block.gpuChunk = c;
  if (c >= 0 && fault) pmm.hold(c);
  const out = new Array<number>(pages.length);
  for (let i = 0; i < pages.length; i++) out[i] = c >= 0 ? pmm.allocPinnedAt(c, pages[i]!) : -1;
  if (c >= 0) pmm.releaseChunk(c); // only if nothing was pinned
  return out;
}

const sortScratch = new Int32Array(PAGES_PER_UVM_VA_BLOCK);

/** Sort a block's page indices in place, numerically, with a typed array's native sort (a comparator call per comparison cost more than the eviction's copies). */
function sortPages(a: number[]): number[] {
  const n = a.length;
  if (n > sortScratch.length) return a.sort((x, y) => x - y);
  for (let i = 0; i < n; i++) sortScratch[i] = a[i]!;
  const v = sortScratch.subarray(0, n).sort();
  for (let i = 0; i < n; i++) a[i] = v[i]!;
  return a;
}

/**
 * evict_root_chunk: move every allocated page of a 2 MiB root chunk to system memory, one VA
 * block at a time (migrate_device_pfns, the HMM form of uvm_hmm_va_block_evict_chunks).
 * The GPU mappings go first; afterwards the pages may be mapped remotely
 * (uvm_perf_map_remote_on_eviction, effective only with access-counter migrations).
 */
export function evictRootChunk(uvm: UvmDriver, chunk: number): void {
  const pmm = uvm.pmm;
  const machine = uvm.machine;
  const phys = machine.phys;
  const byBlock = new Map<number, number[]>();
  for (const pfn of pmm.allocatedIn(chunk)) {
    const f = pfn - pmm.firstPfn;
    const id = pmm.owner[f]!;
    let l = byBlock.get(id);
    if (!l) byBlock.set(id, (l = []));
    l.push(pfn);
  }
  let moved = 0;
  let doneAt = uvm.gpu.queue.now();
  for (const [id, pfns] of byBlock) {
    const block = uvm.blocks[id]!;
    const pages = sortPages(pfns.map((pfn) => pmm.page[pfn - pmm.firstPfn]!));
    gpuUnmapRuns(uvm, block, pages, 'evict');
    const n = pfns.length;
    const src = new Float64Array(pfns);
    const dst = new Float64Array(n);
    uvm.ignoreInvalidate = block;
    try {
      migrateDevicePfns(machine, src, n);
      for (let i = 0; i < n; i++) {
        if (!migratePfnHas(src[i]!, MIGRATE_PFN_MIGRATE)) continue;
        const spage = migratePfnToPage(src[i]!);
        const dpage = phys.tryAllocPages(0);
        if (dpage < 0) break; // system memory is out: the rest stays in VRAM
        phys.trylockPage(dpage);
        phys.copyPage(dpage, spage);
        dst[i] = migratePfn(dpage);
      }
      migrateDevicePages(machine, src, dst, n);
      const movedPages: number[] = [];
      for (let i = 0; i < n; i++) {
        if (!migratePfnHas(src[i]!, MIGRATE_PFN_MIGRATE) || migratePfnToPage(dst[i]!) < 0) continue;
        const p = pmm.page[pfns[i]! - pmm.firstPfn]!;
        movedPages.push(p);
      }
      migrateDeviceFinalize(machine, src, dst, n);
      sortPages(movedPages);
      for (const p of movedPages) block.cpuResident[p] = 1;
      moved += movedPages.length;
      uvm.stats.pagesEvicted += movedPages.length;
      uvm.stats.pagesMigratedToSystem += movedPages.length;
      doneAt = Math.max(doneAt, copyRuns(uvm, block, movedPages, 'dtoh', 'eviction', uvm.gpu.queue.now()));
      if (movedPages.length > 0) uvm.thrashing.onMigration(block, movedPages[0]!, 1, UVM_ID_CPU, 'eviction', uvm.gpu.queue.now());
      if (uvm.mapRemoteOnEviction && movedPages.length > 0) mapRemoteAfterEviction(uvm, block, movedPages);
    } finally {
      uvm.ignoreInvalidate = null;
    }
  }
  uvm.stats.chunksEvicted++;
  uvm.evictionDoneAt = Math.max(uvm.evictionDoneAt, doneAt);
  const ev = uvm.gpu.events;
  if (ev.on.evict) ev.emit({ type: 'evict', gpu: uvm.gpu.id, chunk, pages: moved, timeNs: uvm.gpu.queue.now() });
}

/** block_add_eviction_mappings: map the evicted pages where they now are, read the CPU page table with hmm_range_fault (no fault). */
function mapRemoteAfterEviction(uvm: UvmDriver, block: UvmVaBlock, pages: number[]): void {
  const a = pages[0]!;
  const b = pages[pages.length - 1]! + 1;
  const range = snapshot(uvm, block, a, b, null);
  if (!range) return;
  const vs = block.vaSpace.gpuVaSpace;
  for (const p of pages) {
    const f = range.hmmFlags[p - a]!;
    if (!(f & HMM_PFN_VALID)) continue;
    const pfn = range.hmmPfns[p - a]!;
    if (uvm.gpu.vram.contains(pfn)) continue;
    uvm.gpu.mmu.map(vs, block.start / 4096 + p, pfn, SIZE_4K, (f & HMM_PFN_WRITE ? PROT_READ_WRITE : PROT_READ) | PTE_SYSMEM);
    uvm.stats.remoteMaps++;
  }
}
