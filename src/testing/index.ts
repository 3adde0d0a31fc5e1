/**
 * For users' own tests: the machine's invariant checks (reference counts, map counts, the
 * reverse map, page data, swap slots), the checks every hmmsim test runs after an operation.
 * Reference models are added here as they are written; the race explorer's invariants are in
 * `hmmsim/check`.
 *
 * @packageDocumentation
 * @module hmmsim/testing
 */

export { checkInvariants, type CheckOptions } from '../mm/check.js';
