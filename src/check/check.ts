// The race explorer behind `hmmsim check`: a driver against every scenario (scenarios.ts),
// under each exploration strategy (src/sched), with the invariants checked after every step
// (world.ts). The first failing schedule is minimised, replayed with a trace, and reported
// with its token; `replayCheck` runs a token again.

import { BoundedPreemption } from '../sched/bounded.js';
import { execute, replaySchedule, type Execution, type Program } from '../sched/explore.js';
import { minimiseSchedule } from '../sched/minimise.js';
import { Pct } from '../sched/pct.js';
import { Scheduler } from '../sched/scheduler.js';
import { RandomWalk, type Strategy, type StrategyCoverage } from '../sched/strategy.js';
import type { CheckDriver } from './driver.js';
import { SCENARIOS, scenarioByName, type Scenario } from './scenarios.js';
import { Violation, type Invariant } from './violation.js';
import { World, type TraceStep } from './world.js';

export type StrategyName = 'pct' | 'bounded' | 'random';
export const STRATEGY_NAMES: readonly StrategyName[] = ['pct', 'bounded', 'random'];

export interface CheckOptions {
  /** Strategies to run, in order, each until a violation or its budget (default: pct, bounded, random). */
  strategies?: readonly StrategyName[];
  /** Schedules per strategy, over all scenarios (default 1000). */
  schedules?: number;
  /** PCT's bug depth (default 3). */
  depth?: number;
  /** Bounded search's preemption bound (default 2). */
  preemptions?: number;
  /** Seed of the random strategies (default 1). */
  seed?: number;
  /** Only these scenarios (default: every one the driver can run). */
  scenarios?: readonly string[];
  /** Minimise the failing schedule (default true). */
  minimise?: boolean;
  /** Called after every schedule (progress bars). */
  onSchedule?: (strategy: StrategyName, done: number, budget: number) => void;
}

/** One strategy's work. */
export interface StrategyReport {
  strategy: StrategyName;
  schedules: number;
  /** Per scenario: schedules run and coverage. */
  scenarios: Array<{ scenario: string; coverage: StrategyCoverage }>;
  /** Bounded search: every schedule within the bound ran, in every scenario. */
  complete: boolean;
}

/** A violation, as found and as minimised. */
export interface ViolationReport {
  invariant: Invariant;
  /** What broke it, in words (without the invariant's name). */
  message: string;
  scenario: string;
  /** The strategy that found it ('replay' for replayCheck). */
  strategy: StrategyName | 'replay';
  /** The schedule (1-based, within the strategy's run) that first broke it. */
  foundAt: number;
  /** The minimised schedule's token (scenario:schedule); --replay takes it. */
  token: string;
  preemptions: number;
  steps: number;
  /** The schedule as found, before minimisation. */
  found: { token: string; preemptions: number; steps: number };
  /** The minimised schedule's threads and steps. */
  threads: Array<{ id: number; name: string }>;
  trace: TraceStep[];
  /** The step after which the violation was seen (1-based; 0: during setup; steps + 1: at teardown). */
  violationStep: number;
}

export interface CheckResult {
  driver: string;
  ok: boolean;
  /** Schedules run in all (not counting minimisation and replay). */
  schedules: number;
  strategies: StrategyReport[];
  scenarios: string[];
  skipped: Array<{ scenario: string; reason: string }>;
  violation: ViolationReport | null;
}

function driverName(driver: CheckDriver): string {
  return driver.name ?? 'driver';
}

/** The program (src/sched) of one scenario: a fresh world per execution. */
export function scenarioProgram(driver: CheckDriver, scenario: Scenario, sink?: (w: World) => void): Program {
  return async (sched) => {
    const w = new World(sched, driver, sink !== undefined);
    sink?.(w);
    try {
      await scenario.build(w);
    } catch (e) {
      if (e instanceof Violation) throw e;
      const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      throw new Violation('driver-error', `during setup (probe, attach, first migration): ${msg}`, 0, 'setup');
    }
    await w.run();
  };
}

/** Which scenarios a driver can run: every one, but those needing migration when it has none. */
async function applicable(driver: CheckDriver, names?: readonly string[]): Promise<{ run: Scenario[]; skipped: CheckResult['skipped'] }> {
  const chosen = names ? names.map((n) => {
    const s = scenarioByName(n);
    if (!s) throw new RangeError(`no scenario '${n}' (there are: ${SCENARIOS.map((x) => x.name).join(', ')})`);
    return s;
  }) : [...SCENARIOS];
  // Ask one mirror whether it migrates.
  let migrates = false;
  await scenarioProgram(driver, { name: 'probe', description: '', build: async (w) => {
    await w.boot();
    migrates = typeof w.mirrors[0]!.mirror.migrateToDevice === 'function';
  } })(new Scheduler(1)).catch(() => undefined);
  const run: Scenario[] = [];
  const skipped: CheckResult['skipped'] = [];
  for (const s of chosen) {
    if (s.needsMigration && !migrates) skipped.push({ scenario: s.name, reason: 'the driver has no migrateToDevice' });
    else run.push(s);
  }
  return { run, skipped };
}

function makeStrategy(name: StrategyName, opts: CheckOptions, index: number): Strategy {
  const seed = ((opts.seed ?? 1) + index * 7919) >>> 0;
  switch (name) {
    case 'pct': return new Pct({ depth: opts.depth ?? 3, seed });
    case 'random': return new RandomWalk(seed);
    case 'bounded': return new BoundedPreemption({ preemptions: opts.preemptions ?? 2 });
  }
}

/** Run `driver` through the scenarios under each strategy; stop at the first violation. */
export async function checkDriver(driver: CheckDriver, opts: CheckOptions = {}): Promise<CheckResult> {
  const budget = opts.schedules ?? 1000;
  if (!Number.isSafeInteger(budget) || budget < 1) throw new RangeError(`schedules must be a positive integer, got ${opts.schedules}`);
  const { run: scenarios, skipped } = await applicable(driver, opts.scenarios);
  const result: CheckResult = {
    driver: driverName(driver), ok: true, schedules: 0, strategies: [], scenarios: scenarios.map((s) => s.name), skipped, violation: null,
  };
  for (const name of opts.strategies ?? STRATEGY_NAMES) {
    const runners = scenarios.map((sc, i) => ({ sc, strategy: makeStrategy(name, opts, i), program: scenarioProgram(driver, sc), exhausted: false }));
    let n = 0;
    let rr = 0;
    let failing: { run: Execution; sc: Scenario; at: number } | null = null;
    while (n < budget && !failing) {
      // The runner whose next schedule has the fewest preemptions; round robin among equals.
      let pick = -1;
      let level = Infinity;
      for (let k = 0; k < runners.length; k++) {
        const i = (rr + k) % runners.length;
        const r = runners[i]!;
        if (r.exhausted) continue;
        const lv = r.strategy.level();
        if (lv < level) {
          level = lv;
          pick = i;
        }
      }
      if (pick < 0) break;
      rr = (pick + 1) % runners.length;
      const r = runners[pick]!;
      const spec = r.strategy.next();
      if (!spec) {
        r.exhausted = true;
        continue;
      }
      const run = await execute(r.program, () => spec.chooser());
      n++;
      r.strategy.done(run);
      opts.onSchedule?.(name, n, budget);
      if (run.failed) failing = { run, sc: r.sc, at: n };
    }
    result.schedules += n;
    result.strategies.push({
      strategy: name, schedules: n,
      scenarios: runners.map((r) => ({ scenario: r.sc.name, coverage: r.strategy.coverage() })),
      complete: runners.every((r) => r.strategy.coverage().complete),
    });
    if (failing) {
      result.ok = false;
      result.violation = await report(driver, failing.sc, failing.run, name, failing.at, opts.minimise ?? true);
      break;
    }
  }
  return result;
}

/** Minimise a failing run, replay it with a trace, and describe it. */
async function report(driver: CheckDriver, sc: Scenario, found: Execution, strategy: StrategyName, at: number, minimise: boolean): Promise<ViolationReport> {
  if (!(found.error instanceof Violation)) throw found.error;
  const program = scenarioProgram(driver, sc);
  const min = minimise ? await minimiseSchedule(program, found) : found;
  const traced = await traceSchedule(driver, sc, min.token);
  const v = (traced.run.failed ? traced.run.error : min.error) as Violation;
  return {
    invariant: v.invariant, message: v.detail, scenario: sc.name, strategy, foundAt: at, token: `${sc.name}:${min.token}`,
    preemptions: min.preemptions, steps: min.steps,
    found: { token: `${sc.name}:${found.token}`, preemptions: found.preemptions, steps: found.steps },
    threads: traced.threads, trace: traced.trace, violationStep: v.step,
  };
}

async function traceSchedule(driver: CheckDriver, sc: Scenario, schedule: string): Promise<{ run: Execution; trace: TraceStep[]; threads: ViolationReport['threads'] }> {
  let world: World | null = null;
  const run = await replaySchedule(scenarioProgram(driver, sc, (w) => { world = w; }), schedule);
  const w = world as World | null;
  return {
    run,
    trace: w ? w.trace : [],
    threads: w ? w.sched.tasks.map((t) => ({ id: t.id, name: t.name })) : [],
  };
}

/** Split a check token (scenario:schedule). */
export function parseCheckToken(token: string): { scenario: Scenario; schedule: string } {
  const i = token.indexOf(':');
  if (i < 0) throw new SyntaxError(`a check token is <scenario>:<schedule>, got '${token}'`);
  const scenario = scenarioByName(token.slice(0, i));
  if (!scenario) throw new RangeError(`no scenario '${token.slice(0, i)}' (there are: ${SCENARIOS.map((x) => x.name).join(', ')})`);
  return { scenario, schedule: token.slice(i + 1) };
}

/** Replay a token against a driver: the same violation (with its trace), or none. */
export async function replayCheck(driver: CheckDriver, token: string): Promise<CheckResult> {
  const { scenario, schedule } = parseCheckToken(token);
  const traced = await traceSchedule(driver, scenario, schedule);
  const result: CheckResult = {
    driver: driverName(driver), ok: !traced.run.failed, schedules: 1, strategies: [], scenarios: [scenario.name], skipped: [], violation: null,
  };
  if (traced.run.failed) {
    if (!(traced.run.error instanceof Violation)) throw traced.run.error;
    const v = traced.run.error;
    result.violation = {
      invariant: v.invariant, message: v.detail, scenario: scenario.name, strategy: 'replay', foundAt: 1,
      token: `${scenario.name}:${traced.run.token}`, preemptions: traced.run.preemptions, steps: traced.run.steps,
      found: { token, preemptions: traced.run.preemptions, steps: traced.run.steps }, threads: traced.threads, trace: traced.trace,
      violationStep: v.step,
    };
  }
  return result;
}
