// Access counter servicing (uvm_gpu_access_counters.c): notifications name 2 MiB regions the
// GPU reached over the interconnect `threshold` times. With access-counter migrations
// enabled (uvm_perf_access_counter_migration_enable; off by default without ATS) the pages of
// the region the GPU maps remotely are migrated to VRAM (UVM_MAKE_RESIDENT_CAUSE_ACCESS_COUNTER);
// otherwise the notification only clears the counter.

import type { KThreadBody } from '../kthread.js';
import { PTE_SYSMEM, PTE_VALID, type GpuPtLeaf } from '../page_table.js';
import { blockFindCreate } from './hmm_block.js';
import { UVM_ID_GPU, UVM_ID_INVALID } from './policy_types.js';
import { blockService, commitPlan } from './service.js';
import type { UvmDriver } from './uvm.js';

const leaf: GpuPtLeaf = { flags: 0, pfn: 0, size: 0, baseVpn: 0 };

export function* serviceAccessCounters(uvm: UvmDriver): KThreadBody {
  const gpu = uvm.gpu;
  const counters = gpu.accessCounters;
  if (!counters) return;
  const out: { addr: number; asid: number; count: number }[] = [];
  for (;;) {
    const n = counters.fetch(out);
    if (n === 0) break;
    yield gpu.costs.batchOverheadNs;
    for (let i = 0; i < n; i++) {
      const { addr, asid, count } = out[i]!;
      uvm.stats.accessCounterNotifications++;
      if (gpu.events.on.accessCounter) gpu.events.emit({ type: 'accessCounter', gpu: gpu.id, asid, addr, count, timeNs: gpu.queue.now() });
      if (!uvm.options.accessCounterMigrations) continue;
      const vs = uvm.vaSpaceByAsid(asid);
      if (!vs || vs.dead || vs.mm.dead) continue;
      const end = addr + counters.config.granularity;
      for (let a = addr; a < end; ) {
        const vma = vs.mm.findVma(a);
        if (!vma) {
          const next = vs.mm.vmas.overlapping(a, end)[0];
          if (!next) break;
          a = next.start;
          continue;
        }
        const block = blockFindCreate(uvm, vs, a);
        const segEnd = Math.min(end, vma.end, block.end);
        const first = block.pageIndex(a);
        const outer = block.pageIndex(segEnd - 1) + 1;
        const dest = uvm.scratchDest;
        const rank = uvm.scratchRank;
        dest.fill(UVM_ID_INVALID);
        rank.fill(0);
        let any = false;
        if (!uvm.mustUseSysmem(vma)) {
          for (let p = first; p < outer; p++) {
            vs.gpuVaSpace.pt.walk(block.start / 4096 + p, leaf);
            if (leaf.flags & PTE_VALID && leaf.flags & PTE_SYSMEM && block.vramPfn[p]! < 0) {
              dest[p] = UVM_ID_GPU;
              any = true;
            }
          }
        }
        if (any) {
          const r = blockService(uvm, block, vma, dest, rank, first, outer, 'access-counter');
          uvm.stats.accessCounterMigrations++;
          block.pending = r.plan;
          yield Math.max(0, r.doneAt - gpu.queue.now());
          commitPlan(uvm, block, r.plan);
        }
        a = segEnd;
      }
    }
  }
}
