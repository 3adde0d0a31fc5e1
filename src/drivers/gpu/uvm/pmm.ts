// The GPU physical memory manager (uvm_pmm_gpu.c) as HMM VA blocks use it: VRAM in 2 MiB root
// chunks (UVM_CHUNK_SIZE_MAX), handed out as PAGE_SIZE chunks (HMM "always allocates
// PAGE_SIZE GPU chunks"). A page is allocated pinned (TEMP_PINNED) while a migration fills
// it, then unpinned into its VA block (uvm_pmm_gpu_unpin_allocated, which moves the root chunk
// to the tail of the USED list), and freed when the kernel calls page_free. Root chunks with a
// pinned page are never picked for eviction. When no page is free, the eviction policy picks
// a root chunk and the driver evicts all of it. Per-frame state in typed arrays.
//
// With `largePages` (UvmOptions) a VA block instead takes a whole root chunk and its page p
// always lives at frame p of it, as UVM allocates managed memory (block_gpu_chunk_size: the
// largest chunk that fits the 2 MiB block, a root chunk), so that its resident pages can be
// mapped by 64 KiB and 2 MiB leaves. The chunk goes back to the free list when its last page
// is freed.

import type { EvictionPolicy, EvictionView } from './policy_types.js';
import { ChunkList } from './pmm_eviction.js';

export const FRAME_FREE = 0;
export const FRAME_PINNED = 1;
export const FRAME_ALLOCATED = 2;

const CHUNK_PAGES = 512;

export class UvmPmm {
  readonly frames: number;
  readonly chunks: number;
  readonly state: Uint8Array;
  /** The VA block (id) and page a frame backs, when allocated. */
  readonly owner: Int32Array;
  readonly page: Uint16Array;
  readonly chunkUsed: Uint16Array;
  readonly chunkPinned: Uint16Array;
  private readonly freeStack: Uint16Array;
  private readonly freeTop: Uint16Array;
  /** Root chunks with free and used pages (allocation packs into these first). */
  private readonly partial: ChunkList;
  /** Root chunks entirely free. */
  private readonly freeChunks: ChunkList;
  freeFrames: number;
  /** largePages: the VA block (id) owning each root chunk, or -1. */
  readonly chunkOwner: Int32Array | null;
  /** largePages: root chunks a block of the fault batch being serviced got (not evicted until its replay), and their list. */
  private readonly held: Uint8Array;
  private readonly heldList: number[] = [];
  readonly view: EvictionView;
  allocs = 0;
  frees = 0;

  constructor(
    readonly firstPfn: number, frames: number, readonly policy: EvictionPolicy, random: () => number, access: { lastNs: Float64Array | null; count: Float64Array | null },
    largePages = false,
  ) {
    // A root chunk is 2 MiB of physically contiguous, aligned VRAM (UVM_CHUNK_SIZE_MAX): what a 2 MiB leaf needs.
    if (largePages && (firstPfn % CHUNK_PAGES || frames % CHUNK_PAGES)) throw new RangeError(`VRAM at pfn ${firstPfn} (${frames} frames) is not in aligned 2 MiB root chunks`);
    this.frames = frames;
    this.chunks = Math.ceil(frames / CHUNK_PAGES);
    this.state = new Uint8Array(frames);
    this.owner = new Int32Array(frames).fill(-1);
    this.page = new Uint16Array(frames);
    this.chunkUsed = new Uint16Array(this.chunks);
    this.chunkPinned = new Uint16Array(this.chunks);
    this.freeStack = new Uint16Array(this.chunks * CHUNK_PAGES);
    this.freeTop = new Uint16Array(this.chunks);
    this.partial = new ChunkList(this.chunks);
    this.freeChunks = new ChunkList(this.chunks);
    this.chunkOwner = largePages ? new Int32Array(this.chunks).fill(-1) : null;
    this.held = new Uint8Array(largePages ? this.chunks : 0);
    for (let c = 0; c < this.chunks; c++) {
      const n = Math.min(CHUNK_PAGES, frames - c * CHUNK_PAGES);
      // Lowest page on top of the stack.
      for (let k = 0; k < n; k++) this.freeStack[c * CHUNK_PAGES + k] = n - 1 - k;
      this.freeTop[c] = n;
      this.freeChunks.pushTail(c);
    }
    this.freeFrames = frames;
    const used = this.chunkUsed;
    const pinned = this.chunkPinned;
    const held = this.held;
    this.view = {
      chunks: this.chunks,
      evictable: largePages ? (c) => used[c]! > 0 && pinned[c] === 0 && held[c] === 0 : (c) => used[c]! > 0 && pinned[c] === 0,
      used: (c) => used[c]!,
      get lastAccessNs() {
        return access.lastNs;
      },
      get accessCount() {
        return access.count;
      },
      random,
    };
    policy.init?.(this.view);
  }

  chunkOf(pfn: number): number {
    return Math.floor((pfn - this.firstPfn) / CHUNK_PAGES);
  }

  /** A free page, pinned for a migration in flight; -1 when none is free (evict first). */
  allocPinned(): number {
    if (this.chunkOwner) throw new Error('largePages: VRAM is allocated by root chunk (allocChunk, allocPinnedAt)');
    let c = this.partial.head;
    if (c < 0) c = this.freeChunks.head;
    if (c < 0) return -1;
    const k = this.freeStack[c * CHUNK_PAGES + --this.freeTop[c]!]!;
    const f = c * CHUNK_PAGES + k;
    this.state[f] = FRAME_PINNED;
    this.chunkUsed[c]!++;
    this.chunkPinned[c]!++;
    this.freeFrames--;
    this.allocs++;
    if (this.freeChunks.has(c)) this.freeChunks.remove(c);
    if (this.freeTop[c] === 0) this.partial.remove(c);
    else if (!this.partial.has(c)) this.partial.pushTail(c);
    return this.firstPfn + f;
  }

  /** largePages: a free root chunk for VA block `block` (its pages then come from allocPinnedAt), or -1 when none is free (evict first). */
  allocChunk(block: number): number {
    const c = this.freeChunks.head;
    if (c < 0) return -1;
    this.freeChunks.remove(c);
    this.chunkOwner![c] = block;
    return c;
  }

  /** largePages: root chunk `chunk`'s page `page`, pinned for a migration in flight; -1 when that frame is in use. */
  allocPinnedAt(chunk: number, page: number): number {
    const f = chunk * CHUNK_PAGES + page;
    if (this.state[f] !== FRAME_FREE) return -1;
    this.state[f] = FRAME_PINNED;
    this.chunkUsed[chunk]!++;
    this.chunkPinned[chunk]!++;
    this.freeFrames--;
    this.allocs++;
    return this.firstPfn + f;
  }

  /** largePages: the root chunk VA block `block` holds, or -1 (`hint`: the chunk it last had). */
  chunkOfBlock(block: number, hint: number): number {
    return hint >= 0 && this.chunkOwner![hint] === block ? hint : -1;
  }

  /**
   * largePages: keep a root chunk a faulting block holds from being evicted for another block
   * of the same fault batch before the warps are replayed. UVM would evict it, and with fewer
   * root chunks than blocks in a batch the blocks would evict each other for ever.
   */
  hold(chunk: number): void {
    if (this.held[chunk]) return;
    this.held[chunk] = 1;
    this.heldList.push(chunk);
  }

  /** The batch was replayed: its root chunks may be evicted again. */
  releaseHeld(): void {
    for (const c of this.heldList) this.held[c] = 0;
    this.heldList.length = 0;
  }

  /** largePages: give back a root chunk allocChunk handed out and nothing was allocated from. */
  releaseChunk(chunk: number): void {
    if (this.chunkUsed[chunk] !== 0 || this.chunkOwner![chunk]! < 0) return;
    this.chunkOwner![chunk] = -1;
    this.freeChunks.pushTail(chunk);
  }

  /** uvm_pmm_gpu_unpin_allocated: the page now backs page `page` of VA block `block`. */
  unpinAllocated(pfn: number, block: number, page: number, nowNs: number): void {
    const f = pfn - this.firstPfn;
    if (this.state[f] !== FRAME_PINNED) throw new Error(`VRAM page ${pfn} is not pinned`);
    this.state[f] = FRAME_ALLOCATED;
    this.owner[f] = block;
    this.page[f] = page;
    const c = Math.floor(f / CHUNK_PAGES);
    this.chunkPinned[c]!--;
    this.policy.onAlloc(c, nowNs);
  }

  /** Give a page back (page_free, or a pinned page a migration did not use). A double free throws. */
  free(pfn: number): void {
    const f = pfn - this.firstPfn;
    if (f < 0 || f >= this.frames) throw new Error(`pfn ${pfn} is not VRAM`);
    const s = this.state[f]!;
    if (s === FRAME_FREE) throw new Error(`VRAM page ${pfn} freed twice`);
    const c = Math.floor(f / CHUNK_PAGES);
    if (s === FRAME_PINNED) this.chunkPinned[c]!--;
    this.state[f] = FRAME_FREE;
    this.owner[f] = -1;
    this.chunkUsed[c]!--;
    this.freeFrames++;
    this.frees++;
    if (this.chunkOwner) {
      // The block's root chunk: free again with its last page.
      if (this.chunkUsed[c] === 0) {
        this.chunkOwner[c] = -1;
        this.freeChunks.pushTail(c);
        this.policy.onFree(c);
      }
      return;
    }
    this.freeStack[c * CHUNK_PAGES + this.freeTop[c]!++] = f - c * CHUNK_PAGES;
    if (this.chunkUsed[c] === 0) {
      this.partial.remove(c);
      this.freeChunks.pushTail(c);
      this.policy.onFree(c);
    } else if (!this.partial.has(c)) this.partial.pushTail(c);
  }

  /** The root chunk to evict (the eviction policy's choice among chunks with no pinned page), or -1. */
  pickVictim(): number {
    return this.policy.pick(this.view);
  }

  /** Allocated pages of a root chunk, as pfns. */
  allocatedIn(chunk: number): number[] {
    const out: number[] = [];
    const end = Math.min(this.frames, (chunk + 1) * CHUNK_PAGES);
    for (let f = chunk * CHUNK_PAGES; f < end; f++) if (this.state[f] === FRAME_ALLOCATED) out.push(this.firstPfn + f);
    return out;
  }

  get usedFrames(): number {
    return this.frames - this.freeFrames;
  }
}
