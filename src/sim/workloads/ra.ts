// Random access (HPCC RandomAccess / GUPS): read-modify-write updates of seeded random pages of
// one large table. HPCC's rule is four updates per 8-byte word; at page granularity that is
// 2048 per page, so the count is a parameter: `iterations` updates per page (default 4).

import { ACCESS_WRITE } from '../../drivers/gpu/access.js';
import { checkParams, gridKernel, hash32, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

export const ra: WorkloadSpec = {
  name: 'ra',
  description: 'Random access (GUPS): read-modify-write of random pages of one table',
  regular: false,
  defaultComputeNs: 10,
  defaultIterations: 4,
  create(params: WorkloadParams): Workload {
    checkParams(params);
    const { buffers, mappingBytes } = layout([['table', params.footprintBytes]]);
    const pages = buffers[0]!.bytes / PAGE;
    const updates = pages * (params.iterations ?? ra.defaultIterations);
    const cns = params.computeNs;
    const s = hash32(params.seed ^ 0x2545f491);
    return {
      name: 'ra', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const table = base + buffers[0]!.offset;
        yield {
          kind: 'gpu',
          kernel: gridKernel('random_update', params.warps, updates, 1, (i, ch) => {
            const p = Math.floor((hash32(s + Math.imul(i, 0x9e3779b9)) / 4294967296) * pages);
            ch.push(table + p * PAGE, ACCESS_WRITE, cns);
          }),
        };
      },
    };
  },
};
