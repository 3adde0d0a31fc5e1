// Rodinia hotspot: a 2D five-point stencil on an N x N float grid of temperatures with a
// power grid beside it; each time step reads the temperature rows above, at and below a
// page, and the power page, and writes the output grid; input and output swap every step.

import { ACCESS_READ, ACCESS_WRITE } from '../../drivers/gpu/access.js';
import { checkParams, gridKernel, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

export const hotspot: WorkloadSpec = {
  name: 'hotspot',
  description: 'Rodinia hotspot: 2D 5-point stencil over temperature and power grids, ping-ponging two temperature grids',
  regular: true,
  defaultComputeNs: 150,
  defaultIterations: 4,
  create(params: WorkloadParams): Workload {
    checkParams(params);
    const n = Math.max(64, Math.floor(Math.sqrt(params.footprintBytes / 12)));
    const grid = 4 * n * n;
    const { buffers, mappingBytes } = layout([['tempA', grid], ['power', grid], ['tempB', grid]]);
    const pages = buffers[0]!.bytes / PAGE;
    // pages between a point and the point one row below it (at least one: a row shorter than a page shares it)
    const rowPages = Math.max(1, Math.round((4 * n) / PAGE));
    const iterations = params.iterations ?? hotspot.defaultIterations;
    const cns = params.computeNs;
    return {
      name: 'hotspot', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const [ta, pw, tb] = buffers.map((x) => base + x.offset) as [number, number, number];
        for (let it = 0; it < iterations; it++) {
          const src = it % 2 === 0 ? ta : tb;
          const dst = it % 2 === 0 ? tb : ta;
          yield {
            kind: 'gpu',
            kernel: gridKernel(`calculate_temp#${it}`, params.warps, pages, 5, (p, ch) => {
              if (p >= rowPages) ch.push(src + (p - rowPages) * PAGE, ACCESS_READ, cns);
              ch.push(src + p * PAGE, ACCESS_READ, cns);
              if (p + rowPages < pages) ch.push(src + (p + rowPages) * PAGE, ACCESS_READ, cns);
              ch.push(pw + p * PAGE, ACCESS_READ, cns);
              ch.push(dst + p * PAGE, ACCESS_WRITE, cns);
            }),
          };
        }
      },
    };
  },
};
