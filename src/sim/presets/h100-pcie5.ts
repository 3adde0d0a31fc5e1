// H100 on PCIe 5.0 x16: UVMSmart's curve at its 64 GB/s setting; driver costs as for A100
// (estimates, docs/cost-model.md).

import type { Preset } from '../cost-model.js';
import { a100Pcie4 } from './a100-pcie4.js';

const MHZ = 1755;
const cycles = (n: number): number => (n * 1000) / MHZ;
const base = a100Pcie4;

export const h100Pcie5: Preset = {
  name: 'h100-pcie5',
  description: 'H100 80 GB, PCIe 5.0 x16',
  gpu: {
    ...base.gpu,
    pageWalkNs: cycles(100),
    pageWalk2MNs: cycles(66),
    vramAccessNs: cycles(100),
  },
  transfer: {
    htod: { kind: 'atan', a: 48.0, b: 0.07292, halveAtBytes: 2 << 20 },
    dtoh: { kind: 'atan', a: 48.0, b: 0.07292, halveAtBytes: 2 << 20 },
  },
  hardware: { ...base.hardware, vramBytes: 80 * 2 ** 30, sms: 114, coreClockMHz: MHZ },
  sim: { ...base.sim },
  sources: {
    ...base.sources,
    'gpu.vramAccessNs': 'estimate: UVMSmart\'s 100-cycle DRAM latency at the H100 clock',
    'gpu.pageWalkNs': 'estimate: UVMSmart\'s 100-cycle walk at the H100 clock',
    'gpu.pageWalk2MNs': 'estimate: UVMSmart\'s 66-cycle walk at the H100 clock',
    'gpu.batchOverheadNs': 'estimate: UVMSmart\'s Pascal far-fault latency (45 us) kept; no Hopper figure in our sources',
    'transfer.htod': 'UVMSmart gpu-sim.cc: a = 48.0 for -pcie_bandwidth 64.0GB/s (PCIe 5.0 x16), b = 0.07292, halved at >= 2 MiB',
    'transfer.dtoh': 'same curve for both directions, as in UVMSmart',
    'hardware.vramBytes': 'H100 PCIe 80 GB (product specification)',
    'hardware.sms': 'H100 PCIe: 114 SMs (NVIDIA H100 specification)',
    'hardware.coreClockMHz': 'H100 PCIe boost clock 1755 MHz (NVIDIA H100 specification)',
    'hardware.warpsPerSm': 'H100: 64 resident warps per SM (2048 threads; NVIDIA H100 specification)',
  },
};
