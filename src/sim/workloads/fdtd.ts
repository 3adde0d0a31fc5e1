// PolyBench fdtd-2d: three fields (ex, ey, hz) on an NX x NY grid; each time step runs three
// kernels in turn, each updating one field from the others (ey from hz, ex from hz, hz from
// ex and ey), so the working set alternates between pairs of fields.

import { ACCESS_READ, ACCESS_WRITE } from '../../drivers/gpu/access.js';
import { checkParams, gridKernel, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

export const fdtd: WorkloadSpec = {
  name: 'fdtd',
  description: 'PolyBench fdtd-2d: three fields updated by three alternating kernels per time step',
  regular: true,
  defaultComputeNs: 100,
  defaultIterations: 4,
  create(params: WorkloadParams): Workload {
    checkParams(params);
    const n = Math.max(64, Math.floor(Math.sqrt(params.footprintBytes / 12)));
    const field = 4 * n * n;
    const { buffers, mappingBytes } = layout([['ex', field], ['ey', field], ['hz', field]]);
    const pages = buffers[0]!.bytes / PAGE;
    const rowPages = Math.max(1, Math.round((4 * n) / PAGE));
    const iterations = params.iterations ?? fdtd.defaultIterations;
    const cns = params.computeNs;
    return {
      name: 'fdtd', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const [ex, ey, hz] = buffers.map((x) => base + x.offset) as [number, number, number];
        for (let t = 0; t < iterations; t++) {
          // fdtd_step1: ey[i][j] -= k * (hz[i][j] - hz[i-1][j])
          yield {
            kind: 'gpu',
            kernel: gridKernel(`fdtd_step1#${t}`, params.warps, pages, 3, (p, ch) => {
              if (p >= rowPages) ch.push(hz + (p - rowPages) * PAGE, ACCESS_READ, cns);
              ch.push(hz + p * PAGE, ACCESS_READ, cns);
              ch.push(ey + p * PAGE, ACCESS_WRITE, cns);
            }),
          };
          // fdtd_step2: ex[i][j] -= k * (hz[i][j] - hz[i][j-1])
          yield {
            kind: 'gpu',
            kernel: gridKernel(`fdtd_step2#${t}`, params.warps, pages, 2, (p, ch) => {
              ch.push(hz + p * PAGE, ACCESS_READ, cns);
              ch.push(ex + p * PAGE, ACCESS_WRITE, cns);
            }),
          };
          // fdtd_step3: hz[i][j] -= k * (ex[i][j+1] - ex[i][j] + ey[i+1][j] - ey[i][j])
          yield {
            kind: 'gpu',
            kernel: gridKernel(`fdtd_step3#${t}`, params.warps, pages, 4, (p, ch) => {
              ch.push(ex + p * PAGE, ACCESS_READ, cns);
              ch.push(ey + p * PAGE, ACCESS_READ, cns);
              if (p + rowPages < pages) ch.push(ey + (p + rowPages) * PAGE, ACCESS_READ, cns);
              ch.push(hz + p * PAGE, ACCESS_WRITE, cns);
            }),
          };
        }
      },
    };
  },
};
