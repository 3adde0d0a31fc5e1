import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { expandGrid, mergeShards, parseShard, shardIndices, type SweepLine } from '../../src/sim/sweep.js';
import { runPoints } from '../../src/cli/sweep.js';

describe('grids and shards', () => {
  it('expands a grid as a product in a fixed key order, the last key fastest', () => {
    const g = expandGrid({ oversub: [1, 1.5], workload: ['stream', 'bfs'] });
    expect(g).toEqual([
      { workload: 'stream', oversub: 1 }, { workload: 'stream', oversub: 1.5 },
      { workload: 'bfs', oversub: 1 }, { workload: 'bfs', oversub: 1.5 },
    ]);
    expect(expandGrid({})).toEqual([{}]);
  });

  it('the shards of a grid partition it, for any size and shard count', () => {
    fc.assert(fc.property(fc.nat(200), fc.integer({ min: 1, max: 17 }), (size, n) => {
      const seen = new Array<number>(size).fill(0);
      for (let k = 1; k <= n; k++) for (const i of shardIndices(size, k, n)) seen[i]!++;
      expect(seen.every((c) => c === 1)).toBe(true);
    }));
  });

  it('parses K/N and refuses anything else', () => {
    expect(parseShard('2/5')).toEqual({ k: 2, n: 5 });
    for (const bad of ['0/3', '4/3', '1', 'a/b', '1/0']) expect(() => parseShard(bad)).toThrow(RangeError);
  });

  it('merge refuses a missing shard, mixed grids, and a point with two different results', () => {
    const line = (index: number, t = 1): SweepLine => ({ index, gridSize: 2, simulatedTimeUs: t, wallMs: 5 } as unknown as SweepLine);
    expect(() => mergeShards([line(0)])).toThrow(/missing/);
    expect(() => mergeShards([line(0), { ...line(1), gridSize: 3 }])).toThrow(/different grids/);
    expect(() => mergeShards([line(0), line(1), line(1, 2)])).toThrow(/twice/);
    expect(mergeShards([line(1), line(0), { ...line(0), wallMs: 9 }]).map((l) => l.index)).toEqual([0, 1]);
  });
});

describe('sweep runs', () => {
  it('merging the shards gives what the unsharded sweep gives, wall and CPU times aside', async () => {
    const grid = expandGrid({ workload: ['stream', 'ra'], oversub: [1, 1.5], footprintMiB: [2], iterations: [1] });
    const small = { hardware: { sms: 4, warpsPerSm: 8, utlbEntries: 64, l2TlbEntries: 512 } };
    const points = grid.map((options, index) => ({ index, options: { ...options, costs: small } }));
    const collect = async (idx: number[]) => {
      const out: SweepLine[] = [];
      await runPoints(points.filter((p) => idx.includes(p.index)), grid.length, 1, (l) => out.push(l as SweepLine), () => {});
      return out;
    };
    const all = await collect(shardIndices(grid.length, 1, 1));
    const s1 = await collect(shardIndices(grid.length, 1, 2));
    const s2 = await collect(shardIndices(grid.length, 2, 2));
    const norm = (ls: SweepLine[]) => ls.map((l) => ({ ...l, wallMs: 0, cpuMs: 0 }));
    expect(all.map((l) => l.index)).toEqual([0, 1, 2, 3]);
    expect(norm(mergeShards([...s2, ...s1]))).toEqual(norm(all));
    // the records are runs of the grid's points
    expect(all.map((l) => [l.config.workload, l.config.oversub])).toEqual([['stream', 1], ['stream', 1.5], ['ra', 1], ['ra', 1.5]]);
  });
});
