// The named workloads, as `--workload <name>` finds them.

import type { WorkloadSpec } from './workload.js';
import { stream } from './stream.js';
import { backprop } from './backprop.js';
import { hotspot } from './hotspot.js';
import { fdtd } from './fdtd.js';
import { nw } from './nw.js';
import { bfs } from './bfs.js';
import { sssp } from './sssp.js';
import { ra } from './ra.js';
import { sgemm } from './sgemm.js';
import { pingpong } from './pingpong.js';

export * from './workload.js';
export { stream, backprop, hotspot, fdtd, nw, bfs, sssp, ra, sgemm, pingpong };

export const WORKLOADS: Readonly<Record<string, WorkloadSpec>> = {
  stream, backprop, hotspot, fdtd, nw, bfs, sssp, ra, sgemm, pingpong,
};

export function workloadNames(): string[] {
  return Object.keys(WORKLOADS);
}

/** The workload of that name; a RangeError listing the names otherwise. */
export function getWorkload(name: string): WorkloadSpec {
  const w = WORKLOADS[name];
  if (!w) throw new RangeError(`unknown workload '${name}' (workloads: ${workloadNames().join(', ')})`);
  return w;
}
