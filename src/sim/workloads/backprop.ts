// Rodinia backprop: a two-layer network with 16 hidden units, so the input-to-hidden weight
// matrix ((in + 1) x 17 floats) dominates the footprint. Per iteration two kernels, as in
// Rodinia's bpnn_layerforward_CUDA and bpnn_adjust_weights_cuda: the forward pass reads the
// input units and the weights and writes per-block partial sums; the adjustment reads and
// writes the weights and the previous weight deltas. Both stream through the matrices in order.

import { ACCESS_READ, ACCESS_WRITE } from '../../drivers/gpu/access.js';
import { checkParams, gridKernel, layout, PAGE, type Phase, type Workload, type WorkloadParams, type WorkloadSpec } from './workload.js';

const HIDDEN = 16;

export const backprop: WorkloadSpec = {
  name: 'backprop',
  description: 'Rodinia backprop: forward pass and weight adjustment over a (in+1) x 17 weight matrix',
  regular: true,
  defaultComputeNs: 200,
  defaultIterations: 1,
  create(params: WorkloadParams): Workload {
    checkParams(params);
    // bytes per input unit: input 4, weights 4*17, previous deltas 4*17, partial sums 4*16/16 (one row per 16 units)
    const perUnit = 4 + 2 * 4 * (HIDDEN + 1) + 4;
    const inputs = Math.max(1024, Math.floor(params.footprintBytes / perUnit));
    const { buffers, mappingBytes } = layout([
      ['input', 4 * (inputs + 1)],
      ['weights', 4 * (inputs + 1) * (HIDDEN + 1)],
      ['prevDeltas', 4 * (inputs + 1) * (HIDDEN + 1)],
      ['partialSums', 4 * (inputs / HIDDEN + 1) * HIDDEN],
    ]);
    const [input, weights, prev, partial] = buffers;
    const wPages = weights!.bytes / PAGE;
    const inPages = input!.bytes / PAGE;
    const psPages = partial!.bytes / PAGE;
    const iterations = params.iterations ?? backprop.defaultIterations;
    const cns = params.computeNs;
    return {
      name: 'backprop', params, buffers, mappingBytes,
      *phases(base: number): Iterable<Phase> {
        const at = (b: typeof input, page: number) => base + b!.offset + page * PAGE;
        for (let it = 0; it < iterations; it++) {
          // item = one page of the weight matrix; its input rows are the matching fraction of the input
          yield {
            kind: 'gpu',
            kernel: gridKernel(`layerforward#${it}`, params.warps, wPages, 3, (p, ch) => {
              ch.push(at(input, Math.floor((p * inPages) / wPages)), ACCESS_READ, cns);
              ch.push(at(weights, p), ACCESS_READ, cns);
              ch.push(at(partial, Math.floor((p * psPages) / wPages)), ACCESS_WRITE, cns);
            }),
          };
          yield {
            kind: 'gpu',
            kernel: gridKernel(`adjust_weights#${it}`, params.warps, wPages, 4, (p, ch) => {
              ch.push(at(input, Math.floor((p * inPages) / wPages)), ACCESS_READ, cns);
              ch.push(at(weights, p), ACCESS_WRITE, cns);
              ch.push(at(prev, p), ACCESS_WRITE, cns);
            }),
          };
        }
      },
    };
  },
};
