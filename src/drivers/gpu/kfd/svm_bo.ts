// VRAM as amdkfd's SVM uses it: buffer objects (struct svm_range_bo) that TTM places in VRAM.
// A range's first migration to VRAM creates a BO the size of the whole range
// (svm_range_vram_node_new); the range's VRAM pages are frames of that BO. The BO lives while
// the range holds it or any of its pages is still in use (each device page holds a reference,
// svm_migrate_page_free drops it). When VRAM is short, TTM evicts BOs in its LRU order: the
// eviction fence makes svm_range_evict_svm_bo_worker migrate every VRAM page of every range on
// the BO back to system memory. Frames are plain 4 KiB pages here (amdgpu_vram_mgr hands out
// scattered blocks too); per-frame state sits in typed arrays.

import { fail } from '../../../mm/errno.js';

/** struct svm_range_bo: frames reserved for one range (and the ranges split from it). */
export class SvmBo {
  /** The BO's frames, as pfns. */
  readonly frames: Int32Array;
  /** Frames of the BO not backing a page now (a stack). */
  readonly free: Int32Array;
  freeTop: number;
  /** The ranges that hold the BO (prange->svm_bo), and the device pages in use. */
  rangeRefs = 0;
  pagesInUse = 0;
  released = false;
  /** TTM's LRU position: when the BO was placed in VRAM (svm BOs are not moved on GPU use). */
  readonly createdNs: number;
  /** The last time the driver validated a range on it (the 'lru' order). */
  lastUseNs: number;

  constructor(readonly id: number, frames: Int32Array, nowNs: number) {
    this.frames = frames;
    this.free = new Int32Array(frames.length);
    for (let i = 0; i < frames.length; i++) this.free[i] = frames[frames.length - 1 - i]!;
    this.freeTop = frames.length;
    this.createdNs = nowNs;
    this.lastUseNs = nowNs;
  }

  get size(): number {
    return this.frames.length;
  }
}

/** Which BO TTM evicts first (ttm_mem_evict_first walks the LRU from its head). */
export interface KfdEvictionPolicy {
  readonly name: string;
  /** The BO to evict among `candidates` (never empty). */
  pick(candidates: readonly SvmBo[], random: () => number): SvmBo;
}

/** TTM's LRU: BOs go to the tail when placed; SVM BOs are not bumped by GPU use, so the oldest goes first. */
export const TTM_EVICTION: KfdEvictionPolicy = {
  name: 'ttm',
  pick: (c) => c.reduce((a, b) => (b.createdNs < a.createdNs || (b.createdNs === a.createdNs && b.id < a.id) ? b : a)),
};

/** Least recently validated first (an LRU bumped by each fault the driver services on the BO). */
export const LRU_EVICTION: KfdEvictionPolicy = {
  name: 'lru',
  pick: (c) => c.reduce((a, b) => (b.lastUseNs < a.lastUseNs || (b.lastUseNs === a.lastUseNs && b.id < a.id) ? b : a)),
};

export const RANDOM_EVICTION: KfdEvictionPolicy = {
  name: 'random',
  pick: (c, random) => c[Math.floor(random() * c.length)]!,
};

export const KFD_EVICTION_POLICIES: Readonly<Record<string, KfdEvictionPolicy>> = { ttm: TTM_EVICTION, lru: LRU_EVICTION, random: RANDOM_EVICTION };

export function chooseKfdEviction(p: string | KfdEvictionPolicy): KfdEvictionPolicy {
  if (typeof p === 'string') {
    const e = KFD_EVICTION_POLICIES[p];
    if (!e) fail('EINVAL', `unknown kfd eviction order '${p}' (${Object.keys(KFD_EVICTION_POLICIES).join(', ')})`);
    return e;
  }
  if (!p || typeof p.pick !== 'function' || typeof p.name !== 'string') fail('EINVAL', 'a kfd eviction order needs a name and pick()');
  return p;
}

/** The VRAM manager: a pool of free frames and the live BOs, with each frame's BO. */
export class SvmVram {
  readonly frames: number;
  private readonly pool: Int32Array;
  private poolTop: number;
  /** The BO each frame belongs to (id), or -1 while in the pool. */
  readonly frameBo: Int32Array;
  readonly bos = new Map<number, SvmBo>();
  private nextId = 0;

  constructor(readonly firstPfn: number, frames: number) {
    this.frames = frames;
    this.pool = new Int32Array(frames);
    for (let i = 0; i < frames; i++) this.pool[i] = firstPfn + frames - 1 - i;
    this.poolTop = frames;
    this.frameBo = new Int32Array(frames).fill(-1);
  }

  get freeFrames(): number {
    return this.poolTop;
  }

  get usedFrames(): number {
    return this.frames - this.poolTop;
  }

  /** A BO of n frames, or null when the pool has fewer (the caller evicts and retries). */
  create(n: number, nowNs: number): SvmBo | null {
    if (n > this.poolTop) return null;
    const frames = new Int32Array(n);
    const id = this.nextId++;
    for (let i = 0; i < n; i++) {
      const pfn = this.pool[--this.poolTop]!;
      frames[i] = pfn;
      this.frameBo[pfn - this.firstPfn] = id;
    }
    const bo = new SvmBo(id, frames, nowNs);
    this.bos.set(id, bo);
    return bo;
  }

  boOf(pfn: number): SvmBo | undefined {
    const id = this.frameBo[pfn - this.firstPfn];
    return id === undefined || id < 0 ? undefined : this.bos.get(id);
  }

  /** A frame of the BO for a page (svm_range_vram_node_new reserved it), or -1. */
  allocPage(bo: SvmBo): number {
    if (bo.freeTop === 0) return -1;
    bo.pagesInUse++;
    return bo.free[--bo.freeTop]!;
  }

  /** page_free: the frame goes back to its BO, and the BO to the pool when nothing holds it. */
  freePage(pfn: number): void {
    const bo = this.boOf(pfn);
    if (!bo) throw new Error(`page_free of VRAM page ${pfn} that no kfd BO holds`);
    if (bo.pagesInUse <= 0) throw new Error(`VRAM page ${pfn} freed twice`);
    bo.pagesInUse--;
    bo.free[bo.freeTop++] = pfn;
    this.maybeRelease(bo);
  }

  /** svm_range_bo_unref: a range lets go of its BO. */
  unrefRange(bo: SvmBo): void {
    if (bo.rangeRefs <= 0) throw new Error(`BO ${bo.id} has no range reference`);
    bo.rangeRefs--;
    this.maybeRelease(bo);
  }

  private maybeRelease(bo: SvmBo): void {
    if (bo.rangeRefs > 0 || bo.pagesInUse > 0 || bo.released) return;
    bo.released = true;
    for (let i = 0; i < bo.frames.length; i++) {
      const pfn = bo.frames[i]!;
      this.frameBo[pfn - this.firstPfn] = -1;
      this.pool[this.poolTop++] = pfn;
    }
    this.bos.delete(bo.id);
  }
}
