// A cold sample: `node --import tsx bench/cold.ts CASE ARG [POOL_BYTES]` runs one case once in
// this fresh process and prints its Sample as JSON (bench/measure.ts coldSample).

import { setSlabPoolBytes } from '../src/mm/physmem.js';
import { CASE_NAMES, loadCase } from './cases.js';
import { timeCase } from './measure.js';

const [name, arg, pool] = process.argv.slice(2);
const c = name === undefined ? undefined : await loadCase(name);
if (!c || arg === undefined) {
  process.stderr.write(`usage: bench/cold.ts CASE ARG [POOL_BYTES]; cases: ${CASE_NAMES.join(' ')}\n`);
  process.exit(2);
}
if (pool !== undefined) setSlabPoolBytes(Number(pool));
const sample = await timeCase(c, Number(arg));
process.stdout.write(JSON.stringify(sample) + '\n');
