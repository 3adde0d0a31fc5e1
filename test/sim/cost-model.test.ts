import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyCostOverride, buildGpuCosts, presetMarkdown, ConfigError, costOverrideSchema, readConfigFile, transferTimeNs, zodToConfigError,
  type TransferModel,
} from '../../src/sim/cost-model.js';
import { a100Pcie4, gh200C2c, gtx1080tiPcie3, h100Pcie5, PRESETS, getPreset } from '../../src/sim/presets/index.js';
import { DEFAULT_GPU_COSTS } from '../../src/drivers/gpu/costs.js';

const KiB = 1024;
const MiB = 1024 * 1024;

// UVMSmart micro-benchmarks/transferBandwidth.cu: nvprof durations of cudaMemcpy HtoD
// (pageable) on a GTX 1080 Ti, PCIe 3.0 x16.
const MEASURED_US: Array<[number, number]> = [
  [4 * KiB, 1.184], [8 * KiB, 1.568], [16 * KiB, 2.368], [32 * KiB, 3.969], [64 * KiB, 7.2],
  [128 * KiB, 12.673], [256 * KiB, 23.233], [512 * KiB, 44.418], [1 * MiB, 87.011],
];

describe('transfer models', () => {
  const atan = gtx1080tiPcie3.transfer.htod;

  it('gmmu_t::calculate_transfer_time: the atan curve at 4 KiB / 64 KiB / 1 MiB, GB = 2^30', () => {
    // speed = 24/pi * atan(0.07292 * KiB); time = bytes / (speed * 2^30)
    const t = (b: number) => transferTimeNs(atan, b) / 1000;
    expect(t(4 * KiB)).toBeCloseTo(4096 / ((24 / Math.PI) * Math.atan(0.07292 * 4) * 2 ** 30) * 1e6, 6);
    expect(t(4 * KiB)).toBeCloseTo(1.76, 2);
    expect(t(64 * KiB)).toBeCloseTo(5.88, 2);
    expect(t(1 * MiB)).toBeCloseTo(82.1, 1);
  });

  it('calculate_transfer_time halves the speed at 2 MiB and above (so 2 MiB takes about 4x 1 MiB)', () => {
    const oneMiB = transferTimeNs(atan, MiB);
    const justBelow = transferTimeNs(atan, 2 * MiB - 4096);
    const twoMiB = transferTimeNs(atan, 2 * MiB);
    expect(twoMiB / justBelow).toBeGreaterThan(1.95);
    expect(twoMiB / oneMiB).toBeGreaterThan(3.9);
    expect(twoMiB / 1000).toBeCloseTo(327, 0);
  });

  it('the atan curve stays within 35% of the measured cudaMemcpy table from 8 KiB to 1 MiB, and is slower at 4 KiB', () => {
    for (const [bytes, us] of MEASURED_US) {
      const model = transferTimeNs(atan, bytes) / 1000;
      if (bytes === 4 * KiB) expect(model).toBeGreaterThan(us); // the curve under-estimates small-transfer speed
      else expect(Math.abs(model - us) / us).toBeLessThan(0.35);
    }
    // the large transfers, which dominate a migration's time, agree within 6%
    expect(Math.abs(transferTimeNs(atan, MiB) / 1000 - 87.011) / 87.011).toBeLessThan(0.06);
  });

  it('a table model reproduces its points, interpolates between them, extrapolates at the last rate', () => {
    const table: TransferModel = { kind: 'table', points: MEASURED_US.map(([b, us]) => [b, us * 1000]) };
    for (const [b, us] of MEASURED_US) expect(transferTimeNs(table, b)).toBeCloseTo(us * 1000, 6);
    expect(transferTimeNs(table, 6 * KiB)).toBeCloseTo((1184 + 1568) / 2, 6);
    expect(transferTimeNs(table, 2 * MiB)).toBeCloseTo(2 * 87011, 6);
    expect(transferTimeNs(table, 1024)).toBe(1184);
  });

  it('A100 and H100 use the curve at UVMSmart\'s 32 and 64 GB/s settings: 2x and 4x the PCIe 3 speed', () => {
    for (const b of [4 * KiB, 64 * KiB, MiB, 2 * MiB]) {
      const t3 = transferTimeNs(gtx1080tiPcie3.transfer.htod, b);
      expect(transferTimeNs(a100Pcie4.transfer.htod, b)).toBeCloseTo(t3 / 2, 6);
      expect(transferTimeNs(h100Pcie5.transfer.htod, b)).toBeCloseTo(t3 / 4, 6);
    }
  });

  it('GH200: measured NVLink-C2C rates, 375 GB/s to the device and 297 GB/s back', () => {
    const c = buildGpuCosts(gh200C2c);
    const big = 1 << 30;
    expect(big / c.transferNs(big, 'htod')).toBeCloseTo(375, 0);
    expect(big / c.transferNs(big, 'dtoh')).toBeCloseTo(297, 0);
    expect(gh200C2c.hardware.coherent).toBe(true);
    expect(gtx1080tiPcie3.hardware.coherent).toBe(false);
  });
});

describe('presets', () => {
  it('gtx1080ti-pcie3 carries UVMSmart\'s figures: 45 us far fault, 150 us launch, 100/66-cycle walks, 4096-entry TLB', () => {
    const p = gtx1080tiPcie3;
    expect(p.gpu.faultInterruptNs + p.gpu.batchOverheadNs + p.gpu.replayNs + p.gpu.perFaultNs).toBeCloseTo(45_000, -1);
    expect(p.sim.kernelLaunchNs).toBeCloseTo(150_000, -1);
    expect(p.gpu.pageWalkNs).toBeCloseTo(67.5, 1);
    expect(p.gpu.pageWalk2MNs).toBeCloseTo(44.6, 1);
    expect(p.hardware.utlbEntries).toBe(4096);
    expect(p.hardware.sms).toBe(28);
  });

  it('every preset sets every GpuCosts field and names a source for each constant', () => {
    for (const p of Object.values(PRESETS)) {
      for (const k of Object.keys(DEFAULT_GPU_COSTS)) {
        if (k === 'transferNs') continue;
        expect(typeof (p.gpu as Record<string, number>)[k], `${p.name} gpu.${k}`).toBe('number');
      }
      const keys = [
        ...Object.keys(p.gpu).map((k) => `gpu.${k}`), 'transfer.htod', 'transfer.dtoh',
        ...Object.keys(p.hardware).map((k) => `hardware.${k}`), ...Object.keys(p.sim).map((k) => `sim.${k}`),
      ];
      for (const k of keys) expect(p.sources[k], `${p.name} ${k}`).toMatch(/\S{3}/);
      const c = buildGpuCosts(p);
      expect(c.transferNs(4096, 'htod')).toBeGreaterThan(0);
    }
  });

  it('docs/cost-model.md shows every preset\'s constants, values and sources as they are', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/cost-model.md', import.meta.url), 'utf8');
    for (const p of Object.values(PRESETS)) expect(doc, p.name).toContain(presetMarkdown(p));
  });

  it('an unknown preset is refused with the list of names', () => {
    expect(() => getPreset('gtx480')).toThrow(/gtx1080ti-pcie3/);
  });
});

describe('config overrides', () => {
  const schema = costOverrideSchema();

  it('overrides any constant without changing the preset', () => {
    const o = schema.parse({ gpu: { perFaultNs: 300 }, transfer: { htod: { kind: 'linear', setupNs: 0, gbPerS: 10 } }, hardware: { sms: 4 } });
    const p = applyCostOverride(gtx1080tiPcie3, o);
    expect(p.gpu.perFaultNs).toBe(300);
    expect(p.hardware.sms).toBe(4);
    expect(buildGpuCosts(p).transferNs(10_000, 'htod')).toBe(1000);
    expect(p.sources['gpu.perFaultNs']).toBe('config file');
    expect(gtx1080tiPcie3.gpu.perFaultNs).toBe(0);
  });

  it('names the bad field: an unknown constant, a negative value, a bad transfer model', () => {
    const fieldOf = (x: unknown) => {
      const r = schema.safeParse(x);
      expect(r.success).toBe(false);
      return zodToConfigError(r.error!, ['costs']).field;
    };
    expect(fieldOf({ gpu: { perFaultNS: 1 } })).toBe('costs.gpu.perFaultNS');
    expect(fieldOf({ gpu: { replayNs: -1 } })).toBe('costs.gpu.replayNs');
    expect(fieldOf({ transfer: { dtoh: { kind: 'atan', a: 12, b: 0 , halveAtBytes: 1 } } })).toBe('costs.transfer.dtoh.b');
    expect(fieldOf({ hardware: { sms: 2.5 } })).toBe('costs.hardware.sms');
    expect(fieldOf({ transfer: { htod: { kind: 'table', points: [[8192, 2], [4096, 1]] } } })).toBe('costs.transfer.htod.points');
  });

  it('reads JSON and YAML files, and says which file is not valid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmmsim-cfg-'));
    writeFileSync(join(dir, 'a.json'), '{"costs": {"gpu": {"perFaultNs": 7}}}');
    writeFileSync(join(dir, 'b.yaml'), 'costs:\n  gpu:\n    perFaultNs: 8\n');
    writeFileSync(join(dir, 'c.json'), '{"costs": ');
    expect(readConfigFile(join(dir, 'a.json'))).toEqual({ costs: { gpu: { perFaultNs: 7 } } });
    expect(readConfigFile(join(dir, 'b.yaml'))).toEqual({ costs: { gpu: { perFaultNs: 8 } } });
    expect(() => readConfigFile(join(dir, 'c.json'))).toThrow(ConfigError);
    expect(() => readConfigFile(join(dir, 'missing.json'))).toThrow(/cannot read/);
  });
});
