// A100 on PCIe 4.0 x16. The link is UVMSmart's curve at its 32 GB/s setting; the driver's
// fault-handling costs have no published Ampere figure in our sources and keep the Pascal
// ones (docs/cost-model.md says which figures are estimates).

import type { Preset } from '../cost-model.js';
import { gtx1080tiPcie3 } from './gtx1080ti-pcie3.js';

const MHZ = 1410;
const cycles = (n: number): number => (n * 1000) / MHZ;
const base = gtx1080tiPcie3;

export const a100Pcie4: Preset = {
  name: 'a100-pcie4',
  description: 'A100 40 GB, PCIe 4.0 x16',
  gpu: {
    ...base.gpu,
    remoteAccessNs: 1000,
    pageWalkNs: cycles(100),
    pageWalk2MNs: cycles(66),
    vramAccessNs: cycles(100),
  },
  transfer: {
    htod: { kind: 'atan', a: 24.0, b: 0.07292, halveAtBytes: 2 << 20 },
    dtoh: { kind: 'atan', a: 24.0, b: 0.07292, halveAtBytes: 2 << 20 },
  },
  hardware: { ...base.hardware, vramBytes: 40 * 2 ** 30, sms: 108, coreClockMHz: MHZ, smsPerUtlb: 2 },
  sim: { ...base.sim },
  sources: {
    ...base.sources,
    'gpu.vramAccessNs': 'estimate: UVMSmart\'s 100-cycle DRAM latency at the A100 clock',
    'gpu.remoteAccessNs': 'estimate: about one PCIe round trip (1 us); no measured A100 figure in our sources',
    'gpu.pageWalkNs': 'estimate: UVMSmart\'s 100-cycle walk at the A100 clock',
    'gpu.pageWalk2MNs': 'estimate: UVMSmart\'s 66-cycle walk at the A100 clock',
    'gpu.batchOverheadNs': 'estimate: UVMSmart\'s Pascal far-fault latency (45 us) kept; no Ampere figure in our sources',
    'transfer.htod': 'UVMSmart gpu-sim.cc: a = 24.0 for -pcie_bandwidth 32.0GB/s (PCIe 4.0 x16), b = 0.07292, halved at >= 2 MiB',
    'transfer.dtoh': 'same curve for both directions, as in UVMSmart',
    'hardware.vramBytes': 'A100 40 GB (product specification)',
    'hardware.sms': 'A100: 108 SMs (NVIDIA A100 specification)',
    'hardware.coreClockMHz': 'A100 boost clock 1410 MHz (NVIDIA A100 specification)',
    'hardware.utlbEntries': 'estimate: UVMSmart\'s per-SM TLB size kept',
    'hardware.smsPerUtlb': 'estimate: one uTLB per TPC (2 SMs), as UVM\'s fault entries name uTLBs per TPC on Volta and later',
    'hardware.warpsPerSm': 'A100: 64 resident warps per SM (2048 threads; NVIDIA A100 specification)',
    'hardware.copyEngines': 'estimate: two engines busy with UVM migrations at a time',
    'sim.kernelLaunchNs': 'estimate: UVMSmart\'s 150 us launch latency kept',
  },
};
