// What `hmmsim check` prints: the text report (a violation with its minimised schedule as a
// readable trace, or the coverage of a clean run), and the record --record writes for the
// visualizer (docs/check.md describes its shape).

import { taskLetter } from '../sched/token.js';
import type { CheckResult, StrategyReport, ViolationReport } from './check.js';
import { INVARIANTS } from './violation.js';

/** The format name and version of a --record file. */
export const CHECK_TRACE_FORMAT = 'hmmsim-check-trace';
export const CHECK_TRACE_VERSION = 1;

/** One step of a recorded schedule, as the visualizer's swim lanes show it. */
export interface CheckTraceStep {
  /** Index into threads. */
  thread: number;
  /** What the thread did in the step (its first note), or '-> ' and where it stopped when it did nothing else. */
  label: string;
  /** Everything that happened in the step, then where the thread stopped. */
  detail?: string;
  /** The step preempted a thread that could have gone on. */
  preemption: boolean;
  /** The step's notes (operations, invalidations, device page-table changes), in order. */
  notes: string[];
  /** Where the thread stopped at the end of the step: its next preemption point, a sleep, or 'done'. */
  stoppedAt: string;
}

/** A --record file: a failing schedule (or none) of one `hmmsim check` run. */
export interface CheckTraceDoc {
  format: typeof CHECK_TRACE_FORMAT;
  version: number;
  /** The driver module as given on the command line (or the driver's name). */
  driver: string;
  /** The broken invariant and what broke it; '' when nothing did. */
  invariant: string;
  message: string;
  /** The replay token: `hmmsim check <driver> --replay <token>`. */
  token: string;
  scenario: string;
  /** Thread names, by id (a thread's id is its letter's position in the token: a = 0). */
  threads: string[];
  steps: CheckTraceStep[];
  /** Index into steps of the step after which the violation was seen; -1 when it was seen in setup, or no violation. */
  violation: number;
  /** Schedules run in all. */
  schedules: number;
}

/** The --record document of a result. */
export function checkTraceDoc(result: CheckResult, driver = result.driver): CheckTraceDoc {
  const v = result.violation;
  if (!v) {
    return {
      format: CHECK_TRACE_FORMAT, version: CHECK_TRACE_VERSION, driver, invariant: '', message: '', token: '', scenario: '',
      threads: [], steps: [], violation: -1, schedules: result.schedules,
    };
  }
  const steps = v.trace.map((s) => {
    const detail = [...s.notes, `then: ${s.stoppedAt}`].join('\n');
    return { thread: s.thread, label: s.notes[0] ?? `-> ${s.stoppedAt}`, detail, preemption: s.preemption, notes: [...s.notes], stoppedAt: s.stoppedAt };
  });
  return {
    format: CHECK_TRACE_FORMAT, version: CHECK_TRACE_VERSION, driver, invariant: v.invariant, message: v.message, token: v.token,
    scenario: v.scenario, threads: v.threads.map((t) => t.name), steps,
    violation: v.violationStep >= 1 ? Math.min(v.violationStep, steps.length) - 1 : -1, schedules: result.schedules,
  };
}

/** The minimised schedule as lines: each step's thread, what happened, where it stopped. */
export function formatTrace(v: ViolationReport): string[] {
  const lines: string[] = [];
  const width = Math.max(6, ...v.threads.map((t) => t.name.length + 4));
  lines.push(`  ${'step'.padStart(4)}  ${'thread'.padEnd(width)}what happened, then where the thread stopped (* = a preemption)`);
  for (const s of v.trace) {
    const who = `${taskLetter(s.thread)} ${s.threadName}${s.preemption ? ' *' : ''}`;
    const pad = ' '.repeat(8 + width);
    const body = [...s.notes, `-> ${s.stoppedAt}`];
    lines.push(`  ${String(s.step).padStart(4)}  ${who.padEnd(width)}${body[0]}`);
    for (const b of body.slice(1)) lines.push(pad + b);
    if (s.step === v.violationStep) lines.push(`${pad}!! ${v.invariant}`);
  }
  if (v.violationStep > (v.trace.at(-1)?.step ?? 0)) lines.push(`        (teardown: every thread ended, every process exited) !! ${v.invariant}`);
  return lines;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function strategyLine(s: StrategyReport, depth: number, bound: number): string {
  let schedules = 0;
  let distinct = 0;
  let maxSteps = 0;
  for (const sc of s.scenarios) {
    schedules += sc.coverage.schedules;
    distinct += sc.coverage.distinct;
    maxSteps = Math.max(maxSteps, sc.coverage.maxSteps);
  }
  const head = `${s.strategy}${s.strategy === 'pct' ? ` (depth ${depth})` : s.strategy === 'bounded' ? ` (<= ${bound} preemptions)` : ''}`;
  let line = `  ${head}: ${plural(schedules, 'schedule')}, ${distinct} distinct, longest ${plural(maxSteps, 'step')}`;
  if (s.strategy === 'bounded') {
    const per: string[] = [];
    for (let b = 0; b <= bound; b++) {
      let n = 0;
      let complete = true;
      for (const sc of s.scenarios) {
        const x = sc.coverage.bounds?.[b];
        n += x?.schedules ?? 0;
        complete &&= x?.complete ?? false;
      }
      per.push(`${b}: ${n}${complete ? ' (all)' : ''}`);
    }
    line += `; by preemptions ${per.join(', ')}${s.complete ? ' - the bound is exhausted in every scenario' : ''}`;
  }
  return line;
}

/** The text report. */
export function formatCheckResult(result: CheckResult, opts: { driver?: string; depth?: number; preemptions?: number } = {}): string {
  const driver = opts.driver ?? result.driver;
  const lines: string[] = [];
  const v = result.violation;
  if (v) {
    lines.push(`hmmsim check ${driver}: VIOLATION of ${v.invariant}`);
    lines.push(`  invariant: ${INVARIANTS[v.invariant]}`);
    lines.push(`  ${v.message}`);
    const how = v.strategy === 'replay' ? 'replayed' : `found by ${v.strategy} after ${plural(v.foundAt, 'schedule')} (${plural(v.found.preemptions, 'preemption')}, ${plural(v.found.steps, 'step')})`;
    lines.push(`  scenario ${v.scenario}; ${how}; the schedule below has ${plural(v.preemptions, 'preemption')} and ${plural(v.steps, 'step')}`);
    lines.push('');
    lines.push(...formatTrace(v));
    lines.push('');
    lines.push(`  replay: hmmsim check ${driver} --replay ${v.token}`);
    return lines.join('\n');
  }
  lines.push(`hmmsim check ${driver}: no violation in ${plural(result.schedules, 'schedule')}`);
  lines.push(`  scenarios: ${result.scenarios.join(', ')}${result.skipped.length ? `; skipped: ${result.skipped.map((s) => `${s.scenario} (${s.reason})`).join(', ')}` : ''}`);
  for (const s of result.strategies) lines.push(strategyLine(s, opts.depth ?? 3, opts.preemptions ?? 2));
  return lines.join('\n');
}
