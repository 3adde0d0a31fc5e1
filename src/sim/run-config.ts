// A run's options from a config file (JSON or YAML) and the command line: the file may name a
// preset, set any run option under `run`, and override any cost-model constant under `costs`
// (docs/cost-model.md). Checked with a schema; a bad field is named in the error.

import { z } from 'zod';
import { costOverrideSchema, readConfigFile, zodToConfigError, type CostOverride } from './cost-model.js';
import type { RunOptions } from './simulate.js';

const runSection = z.object({
  workload: z.string().min(1).optional(),
  trace: z.string().min(1).optional(),
  driver: z.string().min(1).optional(),
  oversub: z.number().finite().positive().optional(),
  footprintMiB: z.number().finite().positive().optional(),
  prefetch: z.string().min(1).optional(),
  evict: z.string().min(1).optional(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  computeNs: z.number().finite().nonnegative().optional(),
  iterations: z.number().int().positive().optional(),
  graph: z.enum(['random', 'powerlaw']).optional(),
  /** kfd's XNACK: true (retry faults, the default) or false (memory registered first; a fault is fatal). */
  xnack: z.boolean().optional(),
  /** uvm's largePages: 2 MiB and 64 KiB GPU leaves as for managed memory (default false, as on HMM). */
  largePages: z.boolean().optional(),
}).strict();

export function configFileSchema() {
  return z.object({
    preset: z.string().min(1).optional(),
    run: runSection.optional(),
    costs: costOverrideSchema().optional(),
  }).strict();
}

export interface ConfigFile {
  preset?: string;
  run?: z.infer<typeof runSection>;
  costs?: CostOverride;
}

/** Read and check a config file. */
export function loadConfigFile(path: string): ConfigFile {
  const raw = readConfigFile(path);
  if (raw === null || raw === undefined) return {};
  const r = configFileSchema().safeParse(raw);
  if (!r.success) throw zodToConfigError(r.error, [], path);
  return r.data as ConfigFile;
}

/** A config file's options as RunOptions fields (command-line options go on top). */
export function configRunOptions(path: string, c: ConfigFile): Partial<RunOptions> {
  const o: Partial<RunOptions> = { config: path };
  if (c.preset) o.preset = c.preset;
  if (c.costs) o.costs = c.costs;
  const r = c.run ?? {};
  for (const [k, v] of Object.entries(r)) if (v !== undefined) (o as Record<string, unknown>)[k] = v;
  return o;
}
