// Every case `npm run bench` can time, by name, and the module that defines it: the cold
// sampler (bench/cold.ts) loads only that module into its fresh process, so that a sample's
// process start does not compile the rest.

import type { BenchCase } from './model.js';

type CaseModule = () => Promise<Record<string, BenchCase>>;

const model: CaseModule = async () => (await import('./model.js')).MODEL_CASES;
const hmm: CaseModule = async () => (await import('./hmm.js')).HMM_CASES;
const check: CaseModule = async () => (await import('./check.js')).CHECK_CASES;
const demo: CaseModule = async () => (await import('./demo.js')).DEMO_CASES;
const vma: CaseModule = async () => (await import('./vma.js')).VMA_CASES;

const MODULES: Record<string, CaseModule> = {
  anon_write_fault: model, zero_read_fault: model, mprotect: model, madvise_dontneed: model, munmap: model, fork: model, cow_fault: model,
  migrate_eager: hmm, migrate_lazy: hmm, hmm_snapshot: hmm, hmm_range_fault_write: hmm, invalidations: hmm,
  exit_vmas: vma, munmap_vmas: vma,
  check,
  demo, demo_parts: demo,
};

export const CASE_NAMES = Object.keys(MODULES);

export async function loadCase(name: string): Promise<BenchCase | undefined> {
  const load = MODULES[name];
  return load ? (await load())[name] : undefined;
}
