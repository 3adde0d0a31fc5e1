// STREAM triad (a[i] = b[i] + s * c[i]), the bandwidth benchmark: three equal arrays, each
// kernel reads b and c and writes a, page by page in address order; one launch per iteration.

import { ACCESS_READ, ACCESS_WRITE, type AccessChunk } from '../../drivers/gpu/access.js';
import { checkParams, gridKernel, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

export const stream: WorkloadSpec = {
  name: 'stream',
  description: 'STREAM triad: a = b + s*c over three equal arrays, one kernel per iteration',
  regular: true,
  defaultComputeNs: 50,
  defaultIterations: 4,
  create(params: WorkloadParams): Workload {
    checkParams(params);
    const per = params.footprintBytes / 3;
    const { buffers, mappingBytes } = layout([['a', per], ['b', per], ['c', per]]);
    const pages = buffers[0]!.bytes / PAGE;
    const iterations = params.iterations ?? stream.defaultIterations;
    const cns = params.computeNs;
    return {
      name: 'stream', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const [a, b, c] = buffers.map((x) => base + x.offset) as [number, number, number];
        // one emitter for every launch: the warps' code sees a single call target
        const triad = (p: number, ch: AccessChunk): void => {
          const off = p * PAGE;
          ch.push(b + off, ACCESS_READ, cns);
          ch.push(c + off, ACCESS_READ, cns);
          ch.push(a + off, ACCESS_WRITE, cns);
        };
        for (let it = 0; it < iterations; it++) yield { kind: 'gpu', kernel: gridKernel(`triad#${it}`, params.warps, pages, 3, triad) };
      },
    };
  },
};
