// GeForce GTX 1080 Ti on PCIe 3.0 x16: the configuration UVMSmart (GPGPU-Sim 3.2 with unified
// memory) simulates, so that hmmsim's results can be put beside its published ones. Every
// constant and its source: docs/cost-model.md.

import type { Preset } from '../cost-model.js';

/** UVMSmart's core clock (-gpgpu_clock_domains 1481.0:...), used to turn its cycle counts into ns. */
const MHZ = 1481;
const cycles = (n: number): number => (n * 1000) / MHZ;

export const gtx1080tiPcie3: Preset = {
  name: 'gtx1080ti-pcie3',
  description: 'GeForce GTX 1080 Ti, PCIe 3.0 x16: the UVMSmart configuration (for validation)',
  gpu: {
    vramAccessNs: cycles(100),
    remoteAccessNs: cycles(200),
    l2TlbHitNs: 20,
    pageWalkNs: cycles(100),
    pageWalk2MNs: cycles(66),
    faultInterruptNs: 0,
    batchOverheadNs: cycles(66645),
    perFaultNs: 0,
    replayNs: 0,
    tlbInvalidateNs: 1000,
    cpuFaultNs: 1300,
    cpuMigrateToRamNs: 10_000,
  },
  transfer: {
    htod: { kind: 'atan', a: 12.0, b: 0.07292, halveAtBytes: 2 << 20 },
    dtoh: { kind: 'atan', a: 12.0, b: 0.07292, halveAtBytes: 2 << 20 },
  },
  hardware: {
    vramBytes: 11 * 2 ** 30,
    sms: 28,
    warpsPerSm: 64,
    coreClockMHz: MHZ,
    smsPerUtlb: 1,
    utlbEntries: 4096,
    utlbWays: 16,
    l2TlbEntries: 4096,
    l2TlbWays: 16,
    faultBufferEntries: 8192,
    copyEngines: 2,
    coherent: false,
    nativeSysmemAtomics: false,
  },
  sim: {
    kernelLaunchNs: cycles(222150),
    cpuAccessNs: 0,
  },
  sources: {
    'gpu.vramAccessNs': 'UVMSmart configs/GeForceGTX1080Ti/gpgpusim.config -dram_latency 100 (core cycles at 1481 MHz)',
    'gpu.remoteAccessNs': 'UVMSmart gpu-sim.cc gmmu_t::get_ready_cycle_dma: a remote (DMA) access is ready 200 core cycles later',
    'gpu.l2TlbHitNs': 'estimate: UVMSmart models one TLB level; hmmsim\'s default L2 hit cost',
    'gpu.pageWalkNs': 'UVMSmart gpgpusim.config -page_table_walk_latency 100 (4 KiB pages), core cycles',
    'gpu.pageWalk2MNs': 'UVMSmart gpgpusim.config comment: 66 cycles for 2 MiB pages',
    'gpu.faultInterruptNs': 'lumped into batchOverheadNs, as UVMSmart lumps it into -page_fault_latency',
    'gpu.batchOverheadNs': 'UVMSmart gpgpusim.config -page_fault_latency 66645 cycles = 45 us: the far-fault latency (stall, address, walk, flags, transfer orders)',
    'gpu.perFaultNs': 'lumped into batchOverheadNs (UVMSmart charges one far-fault latency; see docs/cost-model.md)',
    'gpu.replayNs': 'lumped into batchOverheadNs',
    'gpu.tlbInvalidateNs': 'estimate: not modelled by UVMSmart; hmmsim\'s default',
    'gpu.cpuFaultNs': 'bench/README.md: the real kernel\'s anonymous write fault on the development machine (0.77 M/s = 1.3 us)',
    'gpu.cpuMigrateToRamNs': 'GTC Japan 2016 report: a Pascal fault migration "takes 10 us or more" (a lower bound; UVMSmart does not simulate the CPU)',
    'transfer.htod': 'UVMSmart gpu-sim.cc gmmu_t::calculate_transfer_time, a = 12.0 for -pcie_bandwidth 16.0GB/s, b = 0.07292, halved at >= 2 MiB',
    'transfer.dtoh': 'same curve for both directions, as in UVMSmart',
    'hardware.vramBytes': 'GTX 1080 Ti: 11 GB GDDR5X (product specification; UVMSmart scales -gddr_size down to the working set)',
    'hardware.sms': 'UVMSmart gpgpusim.config -gpgpu_n_clusters 28, -gpgpu_n_cores_per_cluster 1',
    'hardware.coreClockMHz': 'UVMSmart gpgpusim.config -gpgpu_clock_domains 1481.0:2962.0:1481.0:2750.0',
    'hardware.warpsPerSm': 'UVMSmart gpgpusim.config -gpgpu_shader_core_pipeline 2048:32 (2048 threads = 64 warps per SM)',
    'hardware.smsPerUtlb': 'UVMSmart: one TLB per SM (-tlb_size is per SM)',
    'hardware.utlbEntries': 'UVMSmart gpgpusim.config -tlb_size 4096 (per SM)',
    'hardware.utlbWays': 'estimate: UVMSmart\'s TLB is fully associative; 16 ways keeps lookups cheap and differs from it only in conflict misses, kept few by indexing sets with an xor-fold of the leaf number (tlb.ts tlbSetIndex: grid strides do not alias)',
    'hardware.l2TlbWays': 'estimate: as utlbWays',
    'hardware.copyEngines': 'UVMSmart: one PCIe read queue and one write queue, each serial (gmmu_t pcie_read/write_stage_queue)',
    'hardware.nativeSysmemAtomics': 'PCIe 3 carries no atomics to system memory for the GPU',
    'hardware.l2TlbEntries': 'estimate: UVMSmart has no shared TLB level; set to one SM\'s TLB',
    'hardware.faultBufferEntries': 'estimate: chip-specific (UVM reads the hardware default, kgmmuSetAndGetDefaultFaultBufferSize); not published; the GPU model\'s default (8192 entries, 256 KiB)',
    'hardware.coherent': 'PCIe: VRAM is device-private to the CPU',
    'sim.kernelLaunchNs': 'UVMSmart gpgpusim.config -gpgpu_kernel_launch_latency 222150 cycles = 150 us',
    'sim.cpuAccessNs': 'a phase\'s CPU work is in its compute time; an access to a mapped page costs nothing extra',
  },
};
