// What a GPU kernel's warps do, as the hardware model consumes it: a stream of page-granular
// accesses per warp, read a chunk at a time into parallel typed arrays (no object per
// access: a workload issues hundreds of millions). Workloads (src/sim/workloads) and trace
// readers produce it; the SMs (src/drivers/gpu) execute it.

export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_ATOMIC = 2;
/** A software or hardware prefetch: faults like a read but never stalls the warp. */
export const ACCESS_PREFETCH = 3;
export type AccessType = typeof ACCESS_READ | typeof ACCESS_WRITE | typeof ACCESS_ATOMIC | typeof ACCESS_PREFETCH;

/** A chunk of one warp's accesses: entry i is an access of type[i] to addr[i], after computeNs[i] of compute. */
export class AccessChunk {
  readonly addr: Float64Array;
  readonly type: Uint8Array;
  readonly computeNs: Float32Array;
  length = 0;

  /** With `storage`, the chunk's arrays are views into it at `index * capacity` (see AccessChunk.many). */
  constructor(readonly capacity = 256, storage?: { addr: Float64Array; type: Uint8Array; computeNs: Float32Array; index: number }) {
    if (storage) {
      // views by constructor, not subarray (which looks up a species constructor each time)
      const from = storage.index * capacity;
      this.addr = new Float64Array(storage.addr.buffer, from * 8, capacity);
      this.type = new Uint8Array(storage.type.buffer, from, capacity);
      this.computeNs = new Float32Array(storage.computeNs.buffer, from * 4, capacity);
    } else {
      this.addr = new Float64Array(capacity);
      this.type = new Uint8Array(capacity);
      this.computeNs = new Float32Array(capacity);
    }
  }

  /** n chunks sharing three allocations (thousands of warps get their buffers without thousands of ArrayBuffers). */
  static many(n: number, capacity = 256): AccessChunk[] {
    const addr = new Float64Array(n * capacity);
    const type = new Uint8Array(n * capacity);
    const computeNs = new Float32Array(n * capacity);
    return Array.from({ length: n }, (_, index) => new AccessChunk(capacity, { addr, type, computeNs, index }));
  }

  /** Append an access; false when the chunk is full. */
  push(addr: number, type: AccessType, computeNs = 0): boolean {
    const n = this.length;
    if (n === this.capacity) return false;
    this.addr[n] = addr;
    this.type[n] = type;
    this.computeNs[n] = computeNs;
    this.length = n + 1;
    return true;
  }
}

/** One warp's program. `next` refills `chunk` from index 0 and returns its length; 0 means the warp has finished. */
export interface WarpProgram {
  next(chunk: AccessChunk): number;
}

/** A kernel launch: warps that run concurrently on the GPU's SMs until all have finished. */
export interface GpuKernel {
  readonly name: string;
  readonly warps: readonly WarpProgram[];
}
