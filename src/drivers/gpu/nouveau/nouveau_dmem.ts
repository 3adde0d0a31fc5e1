// nouveau's device memory (drivers/gpu/drm/nouveau/nouveau_dmem.c): VRAM handed out in
// DMEM_CHUNK_SIZE (2 MiB) chunks, each a BO pinned in VRAM, allocated the first time the free
// list runs dry and never given back while the driver lives ("FIXME when chunk->callocated
// reach 0 we should add the chunk to a reclaim list"): there is no eviction. Free pages sit on
// a LIFO list (drm->dmem->free_pages). Pages move to VRAM only on an explicit request
// (nouveau_dmem_migrate_vma, in pieces of SG_MAX_SINGLE_ALLOC pages, one copy per page) and
// back one page per CPU fault (nouveau_dmem_migrate_to_ram).

/** DMEM_CHUNK_SIZE: 2 MiB, in 4 KiB pages. */
export const DMEM_CHUNK_PAGES = 512;
/**
 * SG_MAX_SINGLE_ALLOC = PAGE_SIZE / sizeof(struct scatterlist): the pages one migrate_vma of
 * nouveau_dmem_migrate_vma covers (128 with 4 KiB pages and a 32-byte scatterlist).
 */
export const SG_MAX_SINGLE_ALLOC = 128;

export class NouveauDmem {
  readonly frames: number;
  /** Chunks allocated so far (their BOs pinned for good). */
  chunks = 0;
  /** Pages allocated per chunk (chunk->callocated). */
  readonly callocated: Uint16Array;
  /** free_pages: a LIFO of pfns. */
  private readonly freeList: Int32Array;
  private freeTop = 0;
  /** The svmm (process) each allocated frame serves (page->zone_device_data), by frame. */
  readonly owner: Int32Array;
  /** Allocations that found no page (every chunk in use, VRAM exhausted). */
  allocFailures = 0;

  constructor(readonly firstPfn: number, frames: number) {
    this.frames = frames;
    this.callocated = new Uint16Array(Math.ceil(frames / DMEM_CHUNK_PAGES));
    this.freeList = new Int32Array(frames);
    this.owner = new Int32Array(frames).fill(-1);
  }

  /** nouveau_dmem_chunk_alloc: pin the next 2 MiB of VRAM and put its pages on the free list. */
  private chunkAlloc(): boolean {
    const first = this.chunks * DMEM_CHUNK_PAGES;
    if (first >= this.frames) return false;
    const n = Math.min(DMEM_CHUNK_PAGES, this.frames - first);
    for (let i = n - 1; i >= 0; i--) this.freeList[this.freeTop++] = this.firstPfn + first + i;
    this.chunks++;
    return true;
  }

  /** nouveau_dmem_page_alloc_locked: a free page, allocating a chunk if none; -1 when VRAM is exhausted. */
  alloc(svmm: number): number {
    if (this.freeTop === 0 && !this.chunkAlloc()) {
      this.allocFailures++;
      return -1;
    }
    const pfn = this.freeList[--this.freeTop]!;
    const f = pfn - this.firstPfn;
    this.callocated[Math.floor(f / DMEM_CHUNK_PAGES)]!++;
    this.owner[f] = svmm;
    return pfn;
  }

  /** nouveau_dmem_page_free: back on the free list; the chunk stays. */
  free(pfn: number): void {
    const f = pfn - this.firstPfn;
    if (f < 0 || f >= this.frames || this.owner[f] === -1) throw new Error(`page_free of VRAM page ${pfn} that nouveau did not hand out`);
    this.owner[f] = -1;
    this.callocated[Math.floor(f / DMEM_CHUNK_PAGES)]!--;
    this.freeList[this.freeTop++] = pfn;
  }

  /** Pages in use. */
  get usedFrames(): number {
    let n = 0;
    for (let c = 0; c < this.chunks; c++) n += this.callocated[c]!;
    return n;
  }

  /** Pages of the chunks allocated (pinned VRAM). */
  get chunkFrames(): number {
    return Math.min(this.frames, this.chunks * DMEM_CHUNK_PAGES);
  }
}
