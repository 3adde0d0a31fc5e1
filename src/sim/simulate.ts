// One simulation: a machine, a GPU with its driver, a process whose memory the workload uses,
// the event engine that drives them, and the metrics that listen. `setupRun` builds it all
// (the one place a recorder or a test hooks in), `executeRun` runs the workload's phases in
// order — each kernel after the launch latency, each CPU phase as one thread's accesses
// through the mm — and `runSimulation` does both.

import { totalmem } from 'node:os';
import { AccessChunk, ACCESS_ATOMIC, ACCESS_WRITE } from '../drivers/gpu/access.js';
import type { GpuCosts } from '../drivers/gpu/costs.js';
import { KfdDriver } from '../drivers/gpu/kfd/kfd_svm.js';
import { createGpuSystem, type GpuDriverName, type GpuSystem } from '../drivers/gpu/system.js';
import { faultInPage, followPage } from '../mm/access.js';
import { MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../mm/constants.js';
import { WouldBlock } from '../mm/errno.js';
import { Machine } from '../mm/machine.js';
import type { Process } from '../mm/process.js';
import { applyCostOverride, buildGpuCosts, type CostOverride, type Preset } from './cost-model.js';
import { Engine } from './engine.js';
import { DEFAULT_PRESET, getPreset } from './presets/index.js';
import { RunMetrics, type RunMetricsSnapshot, type TimeSeries } from './run-metrics.js';
import { loadTrace } from './traces/index.js';
import { getWorkload } from './workloads/index.js';
import type { CpuProgram, Workload, WorkloadParams } from './workloads/workload.js';

const MiB = 2 ** 20;
const BLOCK = 2 * MiB;

/** What a run is asked to do (the CLI's options, a config file's `run` section, a sweep's grid point). */
export interface RunOptions {
  workload: string;
  /** A trace file to replay instead of a synthetic workload. */
  trace: string | null;
  driver: string;
  preset: string;
  /** Footprint / VRAM: VRAM is set to footprint / oversub. */
  oversub: number;
  footprintMiB: number;
  /** Driver policies by name (null: the driver's default). */
  prefetch: string | null;
  evict: string | null;
  seed: number;
  /** Compute per page access (ns); null: the workload's default. */
  computeNs: number | null;
  iterations: number | null;
  /** bfs and sssp: 'random' or 'powerlaw'. */
  graph: string | null;
  /** kfd's XNACK (HSA_XNACK): true retries faults, false needs the memory registered first; null: the driver's default (on). */
  xnack: boolean | null;
  /** uvm's largePages: 2 MiB and 64 KiB GPU leaves as for managed memory (null: the driver's default, off as on HMM). */
  largePages: boolean | null;
  /** The config file the costs came from (recorded in the output), and its overrides. */
  config: string | null;
  costs: CostOverride | null;
}

export const DEFAULT_RUN_OPTIONS: RunOptions = {
  workload: 'hotspot', trace: null, driver: 'uvm', preset: DEFAULT_PRESET, oversub: 1.25, footprintMiB: 64, prefetch: null, evict: null,
  seed: 1, computeNs: null, iterations: null, graph: null, xnack: null, largePages: null, config: null, costs: null,
};

/** The run's configuration as its record reports it. */
export interface RunConfigRecord {
  workload: string;
  trace: string | null;
  driver: string;
  preset: string;
  oversub: number;
  footprintMiB: number;
  vramMiB: number;
  prefetch: string;
  evict: string;
  seed: number;
  computeNs: number;
  iterations: number | null;
  graph: string | null;
  /** kfd's XNACK setting when one was asked for (null: the driver's default). */
  xnack: boolean | null;
  /** uvm's largePages when asked for (null: the driver's default, off). */
  largePages: boolean | null;
  warps: number;
  config: string | null;
  /** Cost-model overrides applied over the preset (from a config file), or null. */
  costs: CostOverride | null;
}

/** The `--json` record of one run (docs/simulator.md). */
export interface RunRecord extends RunMetricsSnapshot {
  config: RunConfigRecord;
  wallMs: number;
  /** CPU time the simulation took (this thread's process; wall time depends on the machine's load). */
  cpuMs: number;
  /** Engine events run. */
  events: number;
  /** A kernel killed by a fatal fault, or null. */
  error: string | null;
}

export interface RunResult {
  record: RunRecord;
  series: TimeSeries;
  batches: { sizes: Float64Array; us: Float64Array };
}

export interface RunSetup {
  options: RunOptions;
  preset: Preset;
  costs: GpuCosts;
  machine: Machine;
  engine: Engine;
  system: GpuSystem;
  process: Process;
  workload: Workload;
  /** Start of the workload's mapping. */
  base: number;
  metrics: RunMetrics;
  config: RunConfigRecord;
}

export interface RunHooks {
  /** Called once everything is built, before the first event (subscribe to events here). */
  onSetup?: (s: RunSetup) => void;
  /** Called every few thousand events with the phases done so far and the simulated time. */
  onProgress?: (p: { phasesDone: number; simulatedNs: number; events: number }) => void;
}

/** A run that cannot be set up (too big for this machine, bad option); the message says why. */
export class RunError extends Error {
  override readonly name = 'RunError';
}

/** Bytes of host memory a run needs beyond page data (docs/architecture.md decision 3: workloads carry no bytes). */
export function estimateRunMemory(footprintBytes: number, vramBytes: number): number {
  const pages = footprintBytes / 4096;
  const ramFrames = (footprintBytes * 1.1 + 64 * MiB) / 4096;
  // ~64 bytes per system frame (frame arrays, free lists), ~8 per mapped page of page tables,
  // ~64 per VRAM frame, ~48 per page of GPU-side state (GPU page table, driver bitmaps), plus the
  // engine and the workload's own state (graph frontiers: a few bits per vertex), and Node itself.
  return ramFrames * 64 + pages * (8 + 48) + (vramBytes / 4096) * 64 + 128 * MiB;
}

function workloadFor(o: RunOptions, warps: number): Workload {
  if (o.trace) return loadTrace(o.trace, { computeScale: o.computeNs ?? 1 });
  const spec = getWorkload(o.workload);
  const params: WorkloadParams & { graph?: string } = {
    footprintBytes: o.footprintMiB * MiB,
    computeNs: o.computeNs ?? spec.defaultComputeNs,
    warps,
    seed: o.seed,
  };
  if (o.iterations !== null) params.iterations = o.iterations;
  if (o.graph !== null) {
    if (o.graph !== 'random' && o.graph !== 'powerlaw') throw new RunError(`--graph must be random or powerlaw, not '${o.graph}'`);
    params.graph = o.graph;
  }
  return spec.create(params);
}

/** Build a run: machine, engine, GPU and driver, process and mapping, workload, metrics. */
export function setupRun(options: Partial<RunOptions> = {}, memoryLimitBytes = totalmem() * 0.8): RunSetup {
  const o: RunOptions = { ...DEFAULT_RUN_OPTIONS, ...options };
  if (!(o.oversub > 0 && Number.isFinite(o.oversub))) throw new RunError(`--oversub must be a positive number, not ${o.oversub}`);
  if (!(o.footprintMiB > 0 && Number.isFinite(o.footprintMiB))) throw new RunError(`--footprint must be a positive number of MiB, not ${o.footprintMiB}`);
  let preset: Preset;
  try {
    preset = getPreset(o.preset);
  } catch (e) {
    throw new RunError((e as Error).message);
  }
  if (o.costs) preset = applyCostOverride(preset, o.costs, o.config ?? 'config');
  const hw = preset.hardware;
  const warps = hw.sms * hw.warpsPerSm;
  let workload: Workload;
  try {
    workload = workloadFor(o, warps);
  } catch (e) {
    if (e instanceof RangeError) throw new RunError(e.message);
    throw e;
  }
  const mapping = Math.ceil(workload.mappingBytes / BLOCK) * BLOCK;
  const footprint = workload.mappingBytes;
  // VRAM in whole 2 MiB root chunks: rounded down under oversubscription; at or below 1, enough
  // for every VA block the mapping spans, so that nothing need be evicted
  const vramBytes = o.oversub <= 1
    ? Math.max(BLOCK, Math.ceil(mapping / o.oversub / BLOCK) * BLOCK)
    : Math.max(BLOCK, Math.floor(footprint / o.oversub / BLOCK) * BLOCK);
  const need = estimateRunMemory(mapping, vramBytes);
  if (need > memoryLimitBytes) {
    throw new RunError(
      `this run needs about ${(need / 2 ** 30).toFixed(1)} GiB of host memory for page metadata (a ${(footprint / 2 ** 30).toFixed(1)} GiB footprint, ` +
      `${(vramBytes / 2 ** 30).toFixed(1)} GiB of VRAM), more than the ${(memoryLimitBytes / 2 ** 30).toFixed(1)} GiB this machine can give it; use a smaller --footprint`,
    );
  }
  const machine = new Machine({ ramBytes: Math.ceil((mapping * 1.1 + 64 * MiB) / BLOCK) * BLOCK, swapBytes: 64 * MiB });
  const engine = new Engine();
  const costs = buildGpuCosts(preset);
  // nouveau has no randomised policy: no seed
  const driverOpts: Record<string, unknown> = o.driver === 'nouveau' ? {} : { seed: o.seed };
  if (o.prefetch !== null) driverOpts.prefetch = o.prefetch;
  if (o.evict !== null) driverOpts.evict = o.evict;
  if (o.xnack !== null) {
    if (o.driver !== 'kfd') throw new RunError(`--xnack applies to the kfd driver only, not ${o.driver}`);
    if (typeof o.xnack !== 'boolean') throw new RunError(`--xnack must be on or off, not ${String(o.xnack)}`);
    driverOpts.xnack = o.xnack;
  }
  if (o.largePages !== null) {
    if (o.driver !== 'uvm') throw new RunError(`--large-pages applies to the uvm driver only, not ${o.driver}`);
    if (typeof o.largePages !== 'boolean') throw new RunError(`--large-pages must be on or off, not ${String(o.largePages)}`);
    driverOpts.largePages = o.largePages;
  }
  let system: GpuSystem;
  try {
    system = createGpuSystem(machine, engine, {
      driver: o.driver as GpuDriverName,
      config: {
        sms: hw.sms, warpsPerSm: hw.warpsPerSm, smsPerUtlb: hw.smsPerUtlb, utlbEntries: hw.utlbEntries, utlbWays: hw.utlbWays,
        l2TlbEntries: hw.l2TlbEntries, l2TlbWays: hw.l2TlbWays, faultBufferEntries: hw.faultBufferEntries, vramBytes,
        vramType: hw.coherent ? 'coherent' : 'private', copyEngines: hw.copyEngines, nativeSysmemAtomics: hw.nativeSysmemAtomics,
      },
      costs,
      [o.driver]: driverOpts,
    });
  } catch (e) {
    throw new RunError((e as Error).message);
  }
  const process = machine.spawn();
  const raw = process.mmap(0, mapping + BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const base = Math.ceil(raw / BLOCK) * BLOCK;
  process.madvise(raw, mapping + BLOCK, MADV_NOHUGEPAGE);
  const metrics = new RunMetrics({ replayNs: costs.replayNs, remoteAccessNs: costs.remoteAccessNs, warpSlots: warps });
  metrics.attachGpu(system.gpu.events);
  metrics.attachMm(machine.events);
  const drv = system.driver as unknown as { options?: { prefetch?: unknown; evict?: unknown } };
  const policyName = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : v && typeof v === 'object' && 'name' in v ? String((v as { name: unknown }).name) : fallback);
  const config: RunConfigRecord = {
    workload: o.trace ? workload.name : o.workload,
    trace: o.trace,
    driver: o.driver,
    preset: preset.name,
    oversub: o.oversub,
    footprintMiB: footprint / MiB,
    vramMiB: vramBytes / MiB,
    prefetch: o.prefetch ?? policyName(drv.options?.prefetch, 'default'),
    evict: o.evict ?? policyName(drv.options?.evict, 'default'),
    seed: o.seed,
    computeNs: workload.params.computeNs,
    iterations: o.iterations,
    graph: o.graph,
    xnack: o.xnack,
    largePages: o.largePages,
    warps,
    config: o.config,
    costs: o.costs,
  };
  return { options: o, preset, costs, machine, engine, system, process, workload, base, metrics, config };
}

/** Run a set-up simulation to the end of its last phase. */
export function executeRun(s: RunSetup, hooks: RunHooks = {}): RunResult {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { engine, system, metrics, costs, preset } = s;
  const { gpu, driver } = system;
  hooks.onSetup?.(s);
  const vs = driver.attach(s.process).gpuVaSpace;
  // XNACK off: no retry faults, so the workload's memory is registered with GPU access first,
  // as hipMallocManaged does (KfdDriver.register: svm_range_set_attr with ACCESS).
  if (s.options.xnack === false && driver instanceof KfdDriver) driver.register(s.process, s.base, Math.ceil(s.workload.mappingBytes / 4096) * 4096);
  const phases = s.workload.phases(s.base)[Symbol.iterator]();
  let finished = false;
  let endNs = 0;
  let phasesDone = 0;
  let error: string | null = null;

  const nextPhase = (): void => {
    if (error) { finished = true; endNs = engine.now(); return; }
    const r = phases.next();
    if (r.done) { finished = true; endNs = engine.now(); return; }
    const ph = r.value;
    if (ph.kind === 'gpu') {
      const t0 = engine.now();
      engine.after(preset.sim.kernelLaunchNs, () => {
        metrics.kernelLaunch(t0, engine.now());
        const run = gpu.launch(ph.kernel, vs);
        run.onDone((k) => {
          metrics.kernelRun(k.startNs, k.endNs);
          if (k.error) error = `${k.name}: ${k.error}`;
          phasesDone++;
          engine.at(Math.max(engine.now(), k.endNs), nextPhase);
        });
      });
    } else {
      runCpuPhase(s, ph.program, costs, () => { phasesDone++; nextPhase(); });
    }
  };
  engine.at(0, nextPhase);
  let events = 0;
  while (!finished) {
    if (!engine.step()) throw new Error(`the simulation stalled at ${engine.now()} ns: no event pending and phase ${phasesDone + 1} not finished`);
    if ((++events & 0xffff) === 0) hooks.onProgress?.({ phasesDone, simulatedNs: engine.now(), events });
  }
  const stats = gpu.stats();
  const snap = metrics.snapshot(endNs, stats);
  metrics.detach();
  const cpu = process.cpuUsage(cpu0);
  const record: RunRecord = { config: s.config, ...snap, wallMs: performance.now() - wall0, cpuMs: (cpu.user + cpu.system) / 1000, events, error };
  return { record, series: metrics.series(endNs), batches: metrics.batches() };
}

/** Set a run up and run it. */
export function runSimulation(options: Partial<RunOptions> = {}, hooks: RunHooks = {}, memoryLimitBytes?: number): RunResult {
  return executeRun(setupRun(options, memoryLimitBytes), hooks);
}

/**
 * One CPU thread's accesses through the mm, at their own pace: an access to a mapped page costs
 * its compute and `cpuAccessNs`; one that faults costs `cpuFaultNs`, and if the fault moved a
 * device page back (migrate_to_ram), `cpuMigrateToRamNs` and until the driver's copies end.
 */
function runCpuPhase(s: RunSetup, program: CpuProgram, costs: GpuCosts, done: () => void): void {
  const { engine, metrics, process, system } = s;
  const mm = process.mm;
  const chunk = new AccessChunk(256);
  const start = engine.now();
  let n = 0;
  let i = 0;
  let copyEnd = -1;
  const off = system.gpu.events.subscribe('migrate', (e) => {
    if (!e.toDevice && e.endNs > copyEnd) copyEnd = e.endNs;
  });
  const accessNs = s.preset.sim.cpuAccessNs;
  // the current access's compute is charged once: `charged` says it has been
  let charged = false;
  const step = (): void => {
    let t = engine.now();
    for (;;) {
      if (i === n) {
        n = program.next(chunk);
        i = 0;
        if (n === 0) {
          off();
          metrics.cpuPhase(start, t);
          engine.at(t, done);
          return;
        }
      }
      const addr = chunk.addr[i]!;
      const type = chunk.type[i]!;
      const write = type === ACCESS_WRITE || type === ACCESS_ATOMIC;
      if (!charged) {
        t += chunk.computeNs[i]! + accessNs;
        charged = true;
      }
      if (followPage(mm, Math.floor(addr / 4096), write) >= 0) { i++; charged = false; continue; }
      // a fault: handle it at its own time, so the driver's copies start then
      if (t > engine.now()) { engine.at(t, step); return; }
      const vma = mm.vmas.lookup(addr);
      if (!vma) throw new Error(`CPU access to unmapped 0x${addr.toString(16)}`);
      copyEnd = -1;
      try {
        faultInPage(mm, vma, addr, write, false);
      } catch (e) {
        if (e instanceof WouldBlock) { engine.after(1000, step); return; }
        throw e;
      }
      i++;
      charged = false;
      const migrated = copyEnd >= 0;
      t = Math.max(t + costs.cpuFaultNs + (migrated ? costs.cpuMigrateToRamNs : 0), copyEnd);
      if (t > engine.now()) { engine.at(t, step); return; }
    }
  };
  step();
}
