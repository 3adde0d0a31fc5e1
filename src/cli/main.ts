#!/usr/bin/env node
// The `hmmsim` command: one file per subcommand (src/cli/<command>.ts), registered here.

import { Command } from 'commander';
import { exitQuietlyOnBrokenPipe } from './pipes.js';
import { packageVersion } from './version.js';

exitQuietlyOnBrokenPipe();

type Register = (program: Command) => void;

/** The subcommands' modules, in the order help lists their commands, and how to load each. */
const MODULES: Array<() => Promise<Register>> = [
  async () => (await import('./run.js')).registerRun,
  async () => (await import('./sweep.js')).registerSweep, // sweep and merge
  async () => (await import('./demo.js')).registerDemo,
  async () => (await import('./selftest.js')).registerSelftest,
  async () => (await import('./check.js')).registerCheck,
  async () => (await import('./view.js')).registerView,
];
/** Which module registers each command. */
const MODULE_OF: Record<string, number> = { run: 0, sweep: 1, merge: 1, demo: 2, selftest: 3, check: 4, view: 5 };

const program = new Command()
  .name('hmmsim')
  .description('Linux HMM (Heterogeneous Memory Management), executable')
  .version(packageVersion())
  .enablePositionalOptions(); // `hmmsim selftest -V <variant>` is the subcommand's -V, not --version

// A command line that starts with a subcommand's name loads only its module (the others cost
// about 0.3 s of CPU to load); anything else (help, options of the default command `run`, a
// mistyped name) loads them all.
const first = process.argv[2];
const only = first !== undefined && Object.hasOwn(MODULE_OF, first) ? MODULES[MODULE_OF[first]!]! : null;
for (const load of only ? [only] : MODULES) (await load())(program);

await program.parseAsync();
