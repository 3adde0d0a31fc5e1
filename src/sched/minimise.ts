// Minimising a failing schedule: the fewest preemptions, then the fewest steps, that still
// fail the same way. A schedule is rewritten as directives, "when task C has run s steps and
// stops, run task T", over the default policy (go on with the current task, else the lowest
// id ready); the failing run's decisions that differ from the default are its directives.
// Then, within a budget of executions:
//   1. drop directives one at a time while the run still fails (greedy, to a fixed point);
//   2. search every schedule with fewer preemptions than the best so far (bounded.ts), and
//      take a failing one;
//   3. move each directive one step earlier while that shortens the run.
// A candidate is taken when it fails with the same failure key and is not worse (preemptions,
// then steps). The result is a local minimum, not a proven one (step 2 makes the preemption
// count minimal whenever its search finishes within the budget).

import { BoundedPreemption } from './bounded.js';
import { execute, type ExecuteOptions, type Execution, type Program } from './explore.js';
import type { Chooser, Decision, Task } from './scheduler.js';
import { defaultChoice } from './strategy.js';

export interface MinimiseOptions extends ExecuteOptions {
  /** Failures with equal keys are the same failure. Default: the error's `invariant` property, else its name. */
  failureKey?: (error: unknown) => string;
  /** Executions to spend at most. Default 400. */
  budget?: number;
}

/** A switch away from the default policy. */
export interface Directive {
  /** The task that just ran (-1 at the first decision). */
  readonly after: number;
  /** How many steps it has run by then. */
  readonly steps: number;
  /** The task to run instead of the default. */
  readonly run: number;
}

/** The default failure key: a check violation's invariant, else the error's name. */
export function defaultFailureKey(error: unknown): string {
  if (error && typeof error === 'object') {
    const inv = (error as { invariant?: unknown }).invariant;
    if (typeof inv === 'string') return inv;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string') return name;
  }
  return String(error);
}

/** Follows directives over the default policy. */
export class DirectiveChooser implements Chooser {
  private readonly map = new Map<number, number>();
  constructor(directives: readonly Directive[]) {
    for (const d of directives) this.map.set(key(d.after, d.steps), d.run);
  }
  choose(d: Decision): Task {
    const cur = d.current;
    const want = this.map.get(cur ? key(cur.id, cur.segments) : -1);
    if (want !== undefined) for (const t of d.ready) if (t.id === want) return t;
    return defaultChoice(d);
  }
}

function key(after: number, steps: number): number {
  return after < 0 ? -1 : after * 1_000_000 + steps;
}

/** The directives that reproduce an execution's decisions. */
export function directivesOf(run: Pick<Execution, 'choices' | 'readyMasks' | 'currentReady'>): Directive[] {
  const out: Directive[] = [];
  const seg: number[] = [];
  for (let i = 0; i < run.choices.length; i++) {
    const cur = i > 0 ? run.choices[i - 1]! : -1;
    const mask = run.readyMasks[i]!;
    const def = run.currentReady[i] ? cur : mask === 0 ? -1 : 31 - Math.clz32(mask & -mask);
    const chosen = run.choices[i]!;
    if (chosen !== def) out.push({ after: cur, steps: cur < 0 ? 0 : seg[cur] ?? 0, run: chosen });
    seg[chosen] = (seg[chosen] ?? 0) + 1;
  }
  return out;
}

function worse(a: Execution, b: Execution): boolean {
  return a.preemptions > b.preemptions || (a.preemptions === b.preemptions && a.steps > b.steps);
}

/** Minimise a failing execution of `program`; returns the best failing execution found (possibly `failing` itself). */
export async function minimiseSchedule(program: Program, failing: Execution, opts: MinimiseOptions = {}): Promise<Execution> {
  if (!failing.failed) throw new Error('minimiseSchedule: the execution did not fail');
  const keyOf = opts.failureKey ?? defaultFailureKey;
  const want = keyOf(failing.error);
  let budget = opts.budget ?? 400;
  let best = failing;

  const attempt = async (make: () => Chooser): Promise<Execution | null> => {
    if (budget <= 0) return null;
    budget--;
    const r = await execute(program, make, opts);
    return r.failed && keyOf(r.error) === want ? r : null;
  };
  const tryDirectives = (dirs: readonly Directive[]): Promise<Execution | null> => attempt(() => new DirectiveChooser(dirs));

  const greedy = async (): Promise<void> => {
    let dirs = directivesOf(best);
    for (let changed = true; changed && budget > 0; ) {
      changed = false;
      for (let i = dirs.length - 1; i >= 0 && budget > 0; i--) {
        const cand = dirs.slice(0, i).concat(dirs.slice(i + 1));
        const r = await tryDirectives(cand);
        if (r && !worse(r, best)) {
          best = r;
          dirs = directivesOf(r);
          changed = true;
          break;
        }
      }
    }
  };

  await greedy();

  // Fewer preemptions: search every schedule below the best count, fewest first.
  if (best.preemptions > 0 && budget > 0) {
    const search = new BoundedPreemption({ preemptions: best.preemptions - 1 });
    for (let spec = search.next(); spec && budget > 0; spec = search.next()) {
      budget--;
      const r = await execute(program, () => spec.chooser(), opts);
      search.done(r);
      if (r.failed && keyOf(r.error) === want && worse(best, r)) {
        best = r;
        await greedy();
        break;
      }
    }
  }

  // Fewer steps: move each switch one step earlier while the run gets shorter.
  for (let changed = true; changed && budget > 0; ) {
    changed = false;
    const dirs = directivesOf(best);
    for (let i = 0; i < dirs.length && budget > 0; i++) {
      const d = dirs[i]!;
      if (d.after < 0 || d.steps <= 1) continue;
      const cand = dirs.slice();
      cand[i] = { ...d, steps: d.steps - 1 };
      const r = await tryDirectives(cand);
      if (r && worse(best, r)) {
        best = r;
        changed = true;
        break;
      }
    }
  }
  return best;
}
