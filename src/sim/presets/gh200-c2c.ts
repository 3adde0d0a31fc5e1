// GH200 Grace Hopper: an H100 joined to the Grace CPU by NVLink-C2C, cache-coherent, so its
// HBM is device-coherent memory the CPU can address. Link rates are the measured ones
// (375 GB/s to the device, 297 GB/s back); docs/cost-model.md lists every source.

import type { Preset } from '../cost-model.js';
import { h100Pcie5 } from './h100-pcie5.js';

const MHZ = 1980;
const cycles = (n: number): number => (n * 1000) / MHZ;
const base = h100Pcie5;

export const gh200C2c: Preset = {
  name: 'gh200-c2c',
  description: 'GH200 Grace Hopper 96 GB HBM3, NVLink-C2C (device-coherent)',
  gpu: {
    ...base.gpu,
    remoteAccessNs: 500,
    pageWalkNs: cycles(100),
    pageWalk2MNs: cycles(66),
    vramAccessNs: cycles(100),
  },
  transfer: {
    htod: { kind: 'linear', setupNs: 1000, gbPerS: 375 },
    dtoh: { kind: 'linear', setupNs: 1000, gbPerS: 297 },
  },
  hardware: { ...base.hardware, vramBytes: 96 * 2 ** 30, sms: 132, coreClockMHz: MHZ, coherent: true, nativeSysmemAtomics: true },
  sim: { ...base.sim },
  sources: {
    ...base.sources,
    'gpu.vramAccessNs': 'estimate: UVMSmart\'s 100-cycle DRAM latency at the GH200 clock',
    'gpu.remoteAccessNs': 'estimate: a coherent load over NVLink-C2C, taken as half a PCIe round trip; no measured latency in our sources',
    'gpu.pageWalkNs': 'estimate: UVMSmart\'s 100-cycle walk at the GH200 clock',
    'gpu.pageWalk2MNs': 'estimate: UVMSmart\'s 66-cycle walk at the GH200 clock',
    'gpu.batchOverheadNs': 'estimate: UVMSmart\'s Pascal far-fault latency (45 us) kept; no Grace Hopper figure in our sources',
    'transfer.htod': 'measured NVLink-C2C host-to-device 375 GB/s (Schieffer et al. 2024, as summarised by 4nownews.com 2024-07-27); 1 us setup is an estimate',
    'transfer.dtoh': 'measured NVLink-C2C device-to-host 297 GB/s (same source); 1 us setup is an estimate',
    'hardware.vramBytes': 'GH200 96 GB HBM3 (the system measured by Schieffer et al.; datacrunch.io GH200 blog)',
    'hardware.sms': 'GH200: 132 SMs (NVIDIA H100 SXM5 specification; datacrunch.io quotes "up to 144 SMs" for the full die)',
    'hardware.coreClockMHz': 'H100 SXM5 boost clock 1980 MHz (NVIDIA specification)',
    'hardware.nativeSysmemAtomics': 'NVLink-C2C is cache-coherent: GPU atomics to system memory need no migration',
    'hardware.coherent': 'NVLink-C2C is hardware-coherent (datacrunch.io GH200 blog): HBM is MEMORY_DEVICE_COHERENT',
  },
};
