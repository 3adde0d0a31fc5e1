// CPU and GPU taking turns on shared data: each iteration a GPU kernel reads and writes every
// page of the buffer, then one CPU thread writes every page — so under a migrating driver the
// pages go to VRAM and back (migrate_to_ram on each CPU fault) every iteration, the ping-pong
// UVM's thrashing detector exists for.

import { ACCESS_READ, ACCESS_WRITE, type AccessChunk, type WarpProgram } from '../../drivers/gpu/access.js';
import { checkParams, gridKernel, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

class CpuSweep implements WarpProgram {
  private p = 0;
  constructor(private readonly base: number, private readonly pages: number, private readonly cns: number) {}
  next(ch: AccessChunk): number {
    ch.length = 0;
    while (this.p < this.pages && ch.length < ch.capacity) ch.push(this.base + this.p++ * PAGE, ACCESS_WRITE, this.cns);
    return ch.length;
  }
}

export const pingpong: WorkloadSpec = {
  name: 'pingpong',
  description: 'CPU and GPU alternately write every page of one shared buffer',
  regular: true,
  defaultComputeNs: 100,
  defaultIterations: 4,
  create(params: WorkloadParams): Workload {
    checkParams(params);
    const { buffers, mappingBytes } = layout([['shared', params.footprintBytes]]);
    const pages = buffers[0]!.bytes / PAGE;
    const iterations = params.iterations ?? pingpong.defaultIterations;
    const cns = params.computeNs;
    return {
      name: 'pingpong', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const buf = base + buffers[0]!.offset;
        for (let it = 0; it < iterations; it++) {
          yield {
            kind: 'gpu',
            kernel: gridKernel(`gpu_touch#${it}`, params.warps, pages, 2, (p, ch) => {
              ch.push(buf + p * PAGE, ACCESS_READ, cns);
              ch.push(buf + p * PAGE, ACCESS_WRITE, cns);
            }),
          };
          yield { kind: 'cpu', name: `cpu_touch#${it}`, program: new CpuSweep(buf, pages, cns) };
        }
      },
    };
  },
};
