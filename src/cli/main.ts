#!/usr/bin/env node
// The `hmmsim` command: one file per subcommand (src/cli/<command>.ts), registered here.

import { Command } from 'commander';
import { registerCheck } from './check.js';
import { registerDemo } from './demo.js';
import { registerRun } from './run.js';
import { registerSweep } from './sweep.js';
import { registerSelftest } from './selftest.js';
import { registerView } from './view.js';
import { exitQuietlyOnBrokenPipe } from './pipes.js';
import { packageVersion } from './version.js';

exitQuietlyOnBrokenPipe();

const program = new Command()
  .name('hmmsim')
  .description('Linux HMM (Heterogeneous Memory Management), executable')
  .version(packageVersion())
  .enablePositionalOptions(); // `hmmsim selftest -V <variant>` is the subcommand's -V, not --version

registerRun(program);
registerSweep(program);
registerDemo(program);
registerSelftest(program);
registerCheck(program);
registerView(program);

await program.parseAsync();
