// Rodinia nw (Needleman-Wunsch): an (N+1) x (N+1) score matrix and a reference matrix of the
// same size, processed in 16 x 16 blocks along anti-diagonals: one kernel launch per diagonal
// (needle_cuda_shared_1 for the upper-left half, needle_cuda_shared_2 for the lower-right),
// each block reading its reference rows and the score rows from the row above it, and writing
// its score rows. A block's rows are a row-length apart, so each row is its own page once a
// row is longer than a page: few accesses per page, many pages per block.

import { ACCESS_READ, ACCESS_WRITE, type AccessChunk } from '../../drivers/gpu/access.js';
import { checkParams, gridKernel, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

const BLOCK = 16;

export const nw: WorkloadSpec = {
  name: 'nw',
  description: 'Rodinia nw: Needleman-Wunsch wavefront over 16x16 blocks, one kernel per anti-diagonal',
  regular: false,
  defaultComputeNs: 300,
  defaultIterations: 1,
  create(params: WorkloadParams): Workload {
    checkParams(params);
    const n = Math.max(BLOCK * 4, Math.floor(Math.sqrt(params.footprintBytes / 8) / BLOCK) * BLOCK - 1);
    const cols = n + 1;
    const { buffers, mappingBytes } = layout([['itemsets', 4 * cols * cols], ['reference', 4 * cols * cols]]);
    const blocks = Math.floor(n / BLOCK);
    const cns = params.computeNs;
    return {
      name: 'nw', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const items = base + buffers[0]!.offset;
        const ref = base + buffers[1]!.offset;
        const pageOf = (buf: number, row: number, col: number) => buf + Math.floor(((row * cols + col) * 4) / PAGE) * PAGE;
        // one block's accesses: rows by*16 .. by*16+16 (the first is the row above, read only), columns bx*16 + 1 ..
        const emitBlock = (bx: number, by: number, ch: AccessChunk) => {
          const col = bx * BLOCK;
          let lastRef = -1;
          let lastRead = -1;
          for (let r = 0; r <= BLOCK; r++) {
            const row = by * BLOCK + r;
            const ip = pageOf(items, row, col);
            if (ip !== lastRead) { ch.push(ip, ACCESS_READ, cns); lastRead = ip; }
            if (r === 0) continue;
            const rp = pageOf(ref, row, col + 1);
            if (rp !== lastRef) { ch.push(rp, ACCESS_READ, cns); lastRef = rp; }
          }
          let lastWrite = -1;
          for (let r = 1; r <= BLOCK; r++) {
            const wp = pageOf(items, by * BLOCK + r, col + 1);
            if (wp !== lastWrite) { ch.push(wp, ACCESS_WRITE, cns); lastWrite = wp; }
          }
        };
        const maxPerItem = 3 * BLOCK + 1;
        // upper-left half: diagonals d = 0 .. blocks-1 hold blocks (bx, d - bx)
        for (let d = 0; d < blocks; d++) {
          yield { kind: 'gpu', kernel: gridKernel(`needle_1#${d}`, params.warps, d + 1, maxPerItem, (i, ch) => emitBlock(i, d - i, ch)) };
        }
        // lower-right half: diagonals d = blocks .. 2*blocks-2
        for (let d = blocks; d <= 2 * blocks - 2; d++) {
          const first = d - blocks + 1;
          yield { kind: 'gpu', kernel: gridKernel(`needle_2#${d}`, params.warps, 2 * blocks - 1 - d, maxPerItem, (i, ch) => emitBlock(first + i, d - first - i, ch)) };
        }
      },
    };
  },
};
