// The cost model: how the simulator turns what the GPU, its driver and the CPU do into
// simulated time. A preset (src/sim/presets/) is plain data — every constant with the source
// it comes from (docs/cost-model.md) — and `buildGpuCosts` turns it into the GpuCosts the
// hardware and drivers charge. A config file may override any constant; it is checked with
// a schema, and a bad field is named in the error.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_GPU_COSTS, type GpuCosts, type TransferDirection } from '../drivers/gpu/costs.js';

// ---------------------------------------------------------------------------------------
// Transfer-time models

/**
 * UVMSmart's PCIe curve (gmmu_t::calculate_transfer_time in gpgpu-sim_UVMSmart's gpu-sim.cc):
 * speed(GB/s) = 2a/pi * atan(b * size_KiB), halved for transfers of `halveAtBytes` or more;
 * time = size / speed with GB = 2^30 bytes, as that function computes it.
 */
export interface AtanTransfer { kind: 'atan'; a: number; b: number; halveAtBytes: number }
/** Measured points (bytes, ns), linear between them; past the last point at the last point's rate, below the first at its time. */
export interface TableTransfer { kind: 'table'; points: Array<[number, number]> }
/** A fixed setup time, then a constant rate (GB = 10^9 bytes, as interconnect figures are quoted). */
export interface LinearTransfer { kind: 'linear'; setupNs: number; gbPerS: number }
export type TransferModel = AtanTransfer | TableTransfer | LinearTransfer;

const GIB = 2 ** 30;

/** The time, in ns, to move `bytes` in one transfer under `m`. */
export function transferTimeNs(m: TransferModel, bytes: number): number {
  if (bytes <= 0) return 0;
  switch (m.kind) {
    case 'atan': {
      let speed = ((2 * m.a) / Math.PI) * Math.atan(m.b * (bytes / 1024));
      if (bytes >= m.halveAtBytes) speed /= 2;
      return (bytes / (speed * GIB)) * 1e9;
    }
    case 'linear':
      return m.setupNs + bytes / m.gbPerS;
    case 'table': {
      const p = m.points;
      if (bytes <= p[0]![0]) return p[0]![1];
      for (let i = 1; i < p.length; i++) {
        const [b1, t1] = p[i]!;
        if (bytes <= b1) {
          const [b0, t0] = p[i - 1]!;
          return t0 + ((t1 - t0) * (bytes - b0)) / (b1 - b0);
        }
      }
      const [bl, tl] = p[p.length - 1]!;
      return (tl * bytes) / bl;
    }
  }
}

/** Throughput in GB/s (10^9 bytes) of one transfer of `bytes`, for tables and plots. */
export function transferGBps(m: TransferModel, bytes: number): number {
  return bytes / transferTimeNs(m, bytes);
}

// ---------------------------------------------------------------------------------------
// Presets

/** The numeric GpuCosts fields (every field but transferNs), including any a later GpuCosts adds. */
export type GpuCostConstants = { [K in keyof GpuCosts as GpuCosts[K] extends number ? K : never]: number };

/** The hardware a preset describes (what the GPU model is built with). */
export interface HardwareConstants {
  /** Physical VRAM; `--oversub` replaces it with footprint / oversubscription. */
  vramBytes: number;
  sms: number;
  /** Warps resident on one SM at once. */
  warpsPerSm: number;
  coreClockMHz: number;
  /** SMs sharing one uTLB, its entries and ways; the shared L2 TLB's entries and ways. */
  smsPerUtlb: number;
  utlbEntries: number;
  utlbWays: number;
  l2TlbEntries: number;
  l2TlbWays: number;
  /** Replayable fault buffer entries (32 bytes each). */
  faultBufferEntries: number;
  copyEngines: number;
  /** Device memory the CPU can address coherently (NVLink-C2C): MEMORY_DEVICE_COHERENT instead of DEVICE_PRIVATE. */
  coherent: boolean;
  /** The link carries atomics to system memory (NVLink-C2C); PCIe does not. */
  nativeSysmemAtomics: boolean;
}

/** Costs the simulator itself charges, outside the GPU and its driver. */
export interface SimConstants {
  /** From a kernel launch to its first warp running. */
  kernelLaunchNs: number;
  /** A CPU access to a page that is already mapped (a phase's CPU work per page, beyond its compute). */
  cpuAccessNs: number;
}

export interface CostConstants {
  gpu: GpuCostConstants;
  transfer: { htod: TransferModel; dtoh: TransferModel };
  hardware: HardwareConstants;
  sim: SimConstants;
}

export interface Preset extends CostConstants {
  name: string;
  description: string;
  /** Where each constant comes from: key is 'gpu.<field>', 'transfer.htod', 'hardware.<field>', 'sim.<field>'. */
  sources: Record<string, string>;
}

/** The GpuCosts the hardware and drivers charge, from a preset's constants. */
export function buildGpuCosts(c: CostConstants): GpuCosts {
  const { htod, dtoh } = c.transfer;
  // Fields a later GpuCosts adds keep their defaults until a preset sets them.
  return {
    ...DEFAULT_GPU_COSTS,
    ...c.gpu,
    transferNs: (bytes: number, dir: TransferDirection) => transferTimeNs(dir === 'htod' ? htod : dtoh, bytes),
  };
}

// ---------------------------------------------------------------------------------------
// Overrides (a config file's `costs` section), checked with a schema

const nonneg = z.number().finite().nonnegative();
const positive = z.number().finite().positive();
const posInt = z.number().int().positive();

const transferSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('atan'), a: positive, b: positive, halveAtBytes: positive }).strict(),
  z.object({ kind: z.literal('linear'), setupNs: nonneg, gbPerS: positive }).strict(),
  z.object({
    kind: z.literal('table'),
    points: z.array(z.tuple([positive, positive])).min(1).refine(
      (p) => p.every((x, i) => i === 0 || x[0] > p[i - 1]![0]),
      'points must be sorted by size, sizes distinct',
    ),
  }).strict(),
]);

function numericGpuFields(): string[] {
  return Object.entries(DEFAULT_GPU_COSTS).filter(([, v]) => typeof v === 'number').map(([k]) => k).sort();
}

/** The schema of a `costs` override: any subset of a preset's constants. Built from GpuCosts' defaults, so a new field is accepted at once. */
export function costOverrideSchema() {
  const gpu = Object.fromEntries(numericGpuFields().map((k) => [k, nonneg.optional()]));
  return z.object({
    gpu: z.object(gpu).strict().optional(),
    transfer: z.object({ htod: transferSchema.optional(), dtoh: transferSchema.optional() }).strict().optional(),
    hardware: z.object({
      vramBytes: positive.optional(),
      sms: posInt.optional(),
      warpsPerSm: posInt.optional(),
      coreClockMHz: positive.optional(),
      smsPerUtlb: posInt.optional(),
      utlbEntries: posInt.optional(),
      utlbWays: posInt.optional(),
      l2TlbEntries: posInt.optional(),
      l2TlbWays: posInt.optional(),
      faultBufferEntries: z.number().int().min(2).optional(),
      copyEngines: posInt.optional(),
      coherent: z.boolean().optional(),
      nativeSysmemAtomics: z.boolean().optional(),
    }).strict().optional(),
    sim: z.object({ kernelLaunchNs: nonneg.optional(), cpuAccessNs: nonneg.optional() }).strict().optional(),
  }).strict();
}

export type CostOverride = z.infer<ReturnType<typeof costOverrideSchema>>;

/** A config error: `field` is the dotted path of the bad field ('costs.gpu.perFaultNs'). */
export class ConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(field ? `config: ${field}: ${message}` : `config: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * A ConfigError naming the first bad field of a failed zod parse, under `prefix`, and the file
 * it came from when there is one: `config: run.oversub: unknown field (in grid.yaml)`.
 */
export function zodToConfigError(err: z.ZodError, prefix: string[] = [], file?: string): ConfigError {
  const issue = err.issues[0]!;
  let path = [...prefix, ...issue.path.map(String)];
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0]!];
    msg = 'unknown field';
  }
  return new ConfigError(path.join('.'), file === undefined ? msg : `${msg} (in ${file})`);
}

/** A preset with `o` applied over it (a new object; the preset is not changed). */
export function applyCostOverride(p: Preset, o: CostOverride, sourceNote = 'config file'): Preset {
  const out: Preset = {
    ...p,
    gpu: { ...p.gpu },
    transfer: { ...p.transfer },
    hardware: { ...p.hardware },
    sim: { ...p.sim },
    sources: { ...p.sources },
  };
  const set = (section: string, obj: Record<string, unknown> | undefined, target: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(obj ?? {})) {
      if (v === undefined) continue;
      target[k] = v;
      out.sources[`${section}.${k}`] = sourceNote;
    }
  };
  set('gpu', o.gpu, out.gpu as unknown as Record<string, unknown>);
  set('transfer', o.transfer, out.transfer as unknown as Record<string, unknown>);
  set('hardware', o.hardware, out.hardware as unknown as Record<string, unknown>);
  set('sim', o.sim, out.sim as unknown as Record<string, unknown>);
  return out;
}

/** Parse a JSON or YAML file (by extension; YAML is a superset of JSON, so anything else is read as YAML). */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('', `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError('', `${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

/** A preset as the markdown table docs/cost-model.md shows (a test keeps the two equal). */
export function presetMarkdown(p: Preset): string {
  const fmt = (v: unknown): string => {
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(1);
    if (typeof v === 'object') return JSON.stringify(v).replace(/"/g, '').replace(/,/g, ', ');
    return String(v);
  };
  const lines = [`### ${p.name}`, '', `${p.description}.`, '', '| constant | value | source |', '|---|---|---|'];
  for (const [sec, obj] of [['gpu', p.gpu], ['transfer', p.transfer], ['hardware', p.hardware], ['sim', p.sim]] as const) {
    for (const [k, v] of Object.entries(obj)) lines.push(`| \`${sec}.${k}\` | ${fmt(v)} | ${p.sources[`${sec}.${k}`] ?? ''} |`);
  }
  return lines.join('\n') + '\n';
}
