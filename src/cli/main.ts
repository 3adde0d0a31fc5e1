#!/usr/bin/env node
// The `hmmsim` command: one file per subcommand (src/cli/<command>.ts), registered here.

import { Command } from 'commander';
import { registerDemo } from './demo.js';
import { registerSelftest } from './selftest.js';

const program = new Command()
  .name('hmmsim')
  .description('Linux HMM (Heterogeneous Memory Management), executable')
  .version('0.1.0');

registerDemo(program);
registerSelftest(program);

await program.parseAsync();
