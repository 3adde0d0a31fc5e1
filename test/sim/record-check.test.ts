// Recording a failing `hmmsim check` schedule (src/sim/record/check.ts): the schedule run once
// more from its token, recorded; a mark per step, named as the check trace names its steps; the
// record replayed to its end gives the page tables the world was left with (pagemap for the
// CPU, the mirror's own table for the device).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pagemap, PAGE_SIZE } from '../../src/index.js';
import { checkDriver, checkTraceDoc, loadDriver, DPTE_WRITE } from '../../src/check/index.js';
import { recordCheckSchedule } from '../../src/sim/record/check.js';
import { Replay, ST_NONE, ST_READ, ST_WRITE, decodeRecordNode, stateKind } from '../../src/sim/record/index.js';

describe('hmmsim check --record: the failing schedule, recorded', () => {
  it('has a mark per step and replays to the page tables the schedule left (a zoo driver that maps a freed frame)', async () => {
    const driver = await loadDriver(join(import.meta.dirname, '../../examples/drivers/forgets-set-seq.ts'));
    const result = await checkDriver(driver, { strategies: ['bounded'], schedules: 1000 });
    const trace = checkTraceDoc(result, 'forgets-set-seq.ts');
    expect(trace.invariant).toBe('device-maps-freed-frame');
    const { doc, world } = await recordCheckSchedule(driver, trace.token);
    expect(doc.meta.command).toBe('check');
    // Mark 0 is the setup, mark k step k (its label the trace's), in order and without gaps.
    expect(doc.marks[0]!.label).toBe('setup');
    const steps = doc.marks.slice(1).filter((m) => m.label.startsWith('step '));
    expect(steps.length).toBe(trace.steps.length);
    steps.forEach((m, k) => expect(m.label).toBe(`step ${k + 1}: ${trace.threads[trace.steps[k]!.thread]}: ${trace.steps[k]!.label}`));
    for (let i = 1; i < doc.marks.length; i++) expect(doc.marks[i]!.start).toBe(doc.marks[i - 1]!.end);
    expect(doc.tables.filter((t) => t.kind === 'device').length).toBe(world.mirrors.length);
    // The end state, read independently.
    const replay = new Replay(await decodeRecordNode(doc));
    replay.seek(replay.count);
    let devicePages = 0;
    for (const [start, n] of doc.regions) {
      for (let vpn = start; vpn < start + n; vpn++) {
        for (const t of doc.tables) {
          const got = stateKind(replay.stateAt(t.id, vpn));
          if (t.kind === 'cpu') {
            const proc = world.procs.find((p) => p.mm.id === t.mm)!;
            const e = proc.mm.dead ? { kind: 'none', write: false } : pagemap(proc.mm, vpn * PAGE_SIZE);
            const want = e.kind === 'none' ? ST_NONE : e.kind === 'anon' || e.kind === 'zero' ? (e.write ? ST_WRITE : ST_READ) : -1;
            if (want >= 0 && e.kind !== 'zero') expect(got, `cpu vpn ${vpn}`).toBe(want);
            if (e.kind === 'none') expect(got).toBe(ST_NONE);
          } else {
            const ms = world.mirrors[doc.tables.filter((x) => x.kind === 'device').indexOf(t)]!;
            const pfn = ms.mirror.pt.lookup(vpn);
            const want = pfn < 0 ? ST_NONE : ms.mirror.pt.flagsOf(vpn) & DPTE_WRITE ? ST_WRITE : ST_READ;
            expect(got, `device vpn ${vpn}`).toBe(want);
            if (pfn >= 0) devicePages++;
          }
        }
      }
    }
    // The violation: the device still maps a page after the process exited and its frames were
    // freed; its table outlives the address space.
    expect(devicePages).toBeGreaterThan(0);
    expect(doc.tables.find((t) => t.kind === 'cpu')!.died).toBeDefined();
    expect(doc.tables.find((t) => t.kind === 'device')!.died).toBeUndefined();
    // Device updates name the pages that changed, not the whole table the harness reads.
    const dec = await decodeRecordNode(doc);
    const types = new Set(doc.eventTypes.map((t, i) => (t.name.startsWith('device-') ? i : -1)));
    let updates = 0;
    for (let e = 0; e < dec.events.count; e++) {
      if (!types.has(dec.events.type[e]!)) continue;
      updates++;
      expect(dec.events.n[e]).toBeLessThanOrEqual(4);
    }
    expect(updates).toBeGreaterThan(0);
  }, 120_000);
});
