// The shared option parsers (src/cli/options.ts) and the CLI's seed range end to end.

import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from 'commander';
import { parseSeed } from '../../src/cli/options.js';
import { cliRunOptions, onOff } from '../../src/cli/run.js';
import { configRunOptions, loadConfigFile } from '../../src/sim/run-config.js';
import { loadGridFile } from '../../src/sim/sweep.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SEED_MAX } from '../../src/sched/random.js';
import { hmmsim } from './run-cli.js';

describe('--seed', () => {
  it('accepts every integer from 0 to 2^53-1, as written', () => {
    expect(parseSeed('0')).toBe(0);
    expect(parseSeed('1')).toBe(1);
    expect(parseSeed('4294967296')).toBe(2 ** 32); // no 32-bit wrap
    expect(parseSeed('9007199254740991')).toBe(SEED_MAX);
    expect(SEED_MAX).toBe(2 ** 53 - 1);
  });

  it('refuses anything else with a message that names the range', () => {
    for (const bad of ['-1', '9007199254740992', '1e3', '1.5', '0x10', '', 'seven', '18446744073709551616']) {
      expect(() => parseSeed(bad), bad).toThrow(InvalidArgumentError);
      expect(() => parseSeed(bad), bad).toThrow('a seed is an integer from 0 to 2^53-1 (9007199254740991)');
    }
  });

  it('hmmsim demo: seed 0 and a seed above 2^32 run under that very seed (test/sched/random.test.ts: no two seeds share a stream); 2^53 is refused', () => {
    for (const seed of ['0', '4294967297']) {
      const r = hmmsim('demo', '--size', '1', '--seed', seed, '--json');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout).seed).toBe(Number(seed));
    }
    const bad = hmmsim('demo', '--seed', '9007199254740992');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('a seed is an integer from 0 to 2^53-1');
  });
});

describe('--xnack (kfd)', () => {
  it('takes on or off, and nothing else', () => {
    expect(onOff('on')).toBe(true);
    expect(onOff('OFF')).toBe(false);
    expect(onOff('0')).toBe(false);
    for (const bad of ['', 'yes', 'of', '2']) expect(() => onOff(bad), bad).toThrow(InvalidArgumentError);
    expect(cliRunOptions({ xnack: false })).toEqual({ xnack: false });
  });

  it('a config file sets it under run: (a boolean; anything else is named in the error)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmmsim-xnack-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'run:\n  driver: kfd\n  xnack: false\n');
    expect(configRunOptions(good, loadConfigFile(good))).toMatchObject({ driver: 'kfd', xnack: false });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'run:\n  xnack: sometimes\n');
    expect(() => loadConfigFile(bad)).toThrow(/xnack/);
  });

  it('a bad field of a config or grid file is named once, with the file (config: <field>: <why> (in <file>))', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmmsim-badfield-'));
    try {
      const top = join(dir, 'top.json');
      writeFileSync(top, '{"oversub": 2}');
      expect(() => loadConfigFile(top)).toThrow(`config: oversub: unknown field (in ${top})`);
      const nested = join(dir, 'nested.yaml');
      writeFileSync(nested, 'costs:\n  gpu:\n    perFaultNS: 1\n');
      expect(() => loadConfigFile(nested)).toThrow(`config: costs.gpu.perFaultNS: unknown field (in ${nested})`);
      const grid = join(dir, 'grid.yaml');
      writeFileSync(grid, 'workload: [stream]\nsize: [4]\n');
      expect(() => loadGridFile(grid)).toThrow(`config: size: unknown field (in ${grid})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hmmsim run --driver kfd --xnack off: no GPU fault, the record says so; --xnack with uvm is refused', () => {
    const r = hmmsim('run', '--driver', 'kfd', '--xnack', 'off', '--workload', 'stream', '--footprint', '4', '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.config.xnack).toBe(false);
    expect(j.gpu.faults).toBe(0);
    expect(j.error).toBeNull();
    const bad = hmmsim('run', '--driver', 'uvm', '--xnack', 'off', '--footprint', '4');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--xnack applies to the kfd driver only');
  });
});
