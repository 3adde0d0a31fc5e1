// The device the migration tests drive: hmmsim's simulated device memory (src/sim), with
// the names the tests use. (The kernel's test driver, dmirror, is richer.)
import type { Machine } from '../../src/index.js';
import { DeviceMemory } from '../../src/sim/device-memory.js';

export class TestDevice extends DeviceMemory {
  constructor(machine: Machine, frames = 1024) {
    super(machine, {}, frames);
  }
  get freed(): number {
    return this.pagesFreed;
  }
  get toRam(): number {
    return this.faultsServed;
  }
  set failAllocs(n: number) {
    this.failNextAllocs = n;
  }
}
