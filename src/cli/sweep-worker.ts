// A sweep's worker thread: runs the grid points it is sent, one at a time, and posts each record back.

import { parentPort } from 'node:worker_threads';
import { runSimulation, type RunOptions } from '../sim/simulate.js';

interface Job { index: number; options: Partial<RunOptions> }

parentPort!.on('message', (job: Job | null) => {
  if (job === null) {
    parentPort!.close();
    return;
  }
  try {
    const r = runSimulation(job.options);
    parentPort!.postMessage({ index: job.index, record: r.record });
  } catch (e) {
    parentPort!.postMessage({ index: job.index, error: (e as Error).message });
  }
});
