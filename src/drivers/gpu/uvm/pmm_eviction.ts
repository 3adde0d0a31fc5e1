// Eviction orders: which 2 MiB root chunk of VRAM to evict when an allocation finds no free page.
//
// * uvm (pick_root_chunk_to_evict): a free root chunk first, then the head of the alloc lists
//   UNUSED, DISCARDED, USED. A root chunk moves to the tail of USED whenever one of its pages
//   is allocated to a VA block: LRU by allocation time, not by access ("TODO: Bug 1765193:
//   Move the chunks to the tail of the used list whenever they get mapped"). HMM VA blocks
//   never mark their chunks unused or discarded (block_mark_memory_used skips HMM blocks:
//   they allocate PAGE_SIZE chunks), so for HMM memory the order is the USED list.
// * lru: least recently accessed (the GPU's per-chunk access registers), allocation counting as an access.
// * lfu: fewest accesses since the chunk was last allocated from free, ties to the least recent.
// * fifo: the chunk that went from free to used first.
// * random: any evictable chunk, from the run's seed.

import type { EvictionPolicy, EvictionView } from './policy_types.js';

/** A doubly linked list of chunk indices in typed arrays (the kernel's list_head of root chunks). */
export class ChunkList {
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly member: Uint8Array;
  head = -1;
  tail = -1;
  size = 0;
  constructor(n: number) {
    this.next = new Int32Array(n).fill(-1);
    this.prev = new Int32Array(n).fill(-1);
    this.member = new Uint8Array(n);
  }
  has(c: number): boolean {
    return this.member[c] === 1;
  }
  remove(c: number): void {
    if (!this.member[c]) return;
    const n = this.next[c]!;
    const p = this.prev[c]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    this.member[c] = 0;
    this.size--;
  }
  /** list_move_tail */
  pushTail(c: number): void {
    this.remove(c);
    this.next[c] = -1;
    this.prev[c] = this.tail;
    if (this.tail >= 0) this.next[this.tail] = c;
    else this.head = c;
    this.tail = c;
    this.member[c] = 1;
    this.size++;
  }
  nextOf(c: number): number {
    return this.next[c]!;
  }
}

abstract class ListOrder implements EvictionPolicy {
  abstract readonly name: string;
  readonly needsAccessTracking = false;
  private list: ChunkList | null = null;
  protected abstract readonly moveOnAlloc: boolean;
  private ensure(n: number): ChunkList {
    return (this.list ??= new ChunkList(n));
  }
  init(view: EvictionView): void {
    this.ensure(view.chunks);
  }
  onAlloc(chunk: number): void {
    const l = this.list!;
    if (this.moveOnAlloc || !l.has(chunk)) l.pushTail(chunk);
  }
  onFree(chunk: number): void {
    this.list!.remove(chunk);
  }
  pick(view: EvictionView): number {
    const l = this.ensure(view.chunks);
    for (let c = l.head; c >= 0; c = l.nextOf(c)) if (view.evictable(c)) return c;
    return -1;
  }
}

/** UVM's order: USED list by last allocation. */
export class UvmEvictionOrder extends ListOrder {
  readonly name = 'uvm';
  protected readonly moveOnAlloc = true;
}

export class FifoEvictionOrder extends ListOrder {
  readonly name = 'fifo';
  protected readonly moveOnAlloc = false;
}

export class LruEvictionOrder implements EvictionPolicy {
  readonly name: string = 'lru';
  readonly needsAccessTracking = true;
  private allocNs = new Float64Array(0);
  onAlloc(chunk: number, nowNs: number): void {
    if (chunk >= this.allocNs.length) this.grow(chunk + 1);
    this.allocNs[chunk] = nowNs;
  }
  onFree(_chunk: number): void {}
  private grow(n: number): void {
    const g = new Float64Array(Math.max(n, this.allocNs.length * 2));
    g.set(this.allocNs);
    this.allocNs = g;
  }
  /** The last time the chunk was touched: accessed by the GPU or allocated. */
  protected recency(view: EvictionView, c: number): number {
    const a = view.lastAccessNs ? view.lastAccessNs[c]! : 0;
    const b = c < this.allocNs.length ? this.allocNs[c]! : 0;
    return a > b ? a : b;
  }
  pick(view: EvictionView): number {
    let best = -1;
    let bestT = Infinity;
    for (let c = 0; c < view.chunks; c++) {
      if (!view.evictable(c)) continue;
      const t = this.recency(view, c);
      if (t < bestT) {
        best = c;
        bestT = t;
      }
    }
    return best;
  }
}

export class LfuEvictionOrder extends LruEvictionOrder {
  override readonly name = 'lfu';
  private base = new Float64Array(0);
  private view: EvictionView | null = null;
  override onFree(chunk: number): void {
    // Count accesses from the chunk's next allocation on.
    const counts = this.view?.accessCount;
    if (!counts) return;
    if (chunk >= this.base.length) {
      const g = new Float64Array(Math.max(chunk + 1, this.base.length * 2));
      g.set(this.base);
      this.base = g;
    }
    this.base[chunk] = counts[chunk]!;
  }
  override pick(view: EvictionView): number {
    this.view = view;
    let best = -1;
    let bestN = Infinity;
    let bestT = Infinity;
    for (let c = 0; c < view.chunks; c++) {
      if (!view.evictable(c)) continue;
      const n = (view.accessCount ? view.accessCount[c]! : 0) - (c < this.base.length ? this.base[c]! : 0);
      const t = this.recency(view, c);
      if (n < bestN || (n === bestN && t < bestT)) {
        best = c;
        bestN = n;
        bestT = t;
      }
    }
    return best;
  }
  init(view: EvictionView): void {
    this.view = view;
  }
}

export class RandomEvictionOrder implements EvictionPolicy {
  readonly name = 'random';
  readonly needsAccessTracking = false;
  onAlloc(): void {}
  onFree(): void {}
  pick(view: EvictionView): number {
    let n = 0;
    for (let c = 0; c < view.chunks; c++) if (view.evictable(c)) n++;
    if (n === 0) return -1;
    let k = Math.floor(view.random() * n);
    for (let c = 0; c < view.chunks; c++) if (view.evictable(c) && k-- === 0) return c;
    return -1;
  }
}

export const EVICTION_POLICIES: Record<string, () => EvictionPolicy> = {
  uvm: () => new UvmEvictionOrder(),
  lru: () => new LruEvictionOrder(),
  lfu: () => new LfuEvictionOrder(),
  fifo: () => new FifoEvictionOrder(),
  random: () => new RandomEvictionOrder(),
};
