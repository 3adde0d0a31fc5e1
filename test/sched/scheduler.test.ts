import { describe, expect, it } from 'vitest';
import { explore, Scheduler } from '../../src/sched/scheduler.js';

async function interleaving(seed: number): Promise<string> {
  const sched = new Scheduler(seed);
  let out = '';
  for (const name of ['a', 'b', 'c']) {
    sched.spawn(name, async (t) => {
      for (let i = 0; i < 4; i++) {
        out += name;
        await t.yield();
      }
    });
  }
  await sched.run();
  return out;
}

describe('deterministic scheduler', () => {
  it('the same seed gives the same interleaving; different seeds explore others', async () => {
    const a = await interleaving(7);
    expect(await interleaving(7)).toBe(a);
    expect(a.length).toBe(12);
    const seen = new Set<string>();
    for (let s = 1; s <= 30; s++) seen.add(await interleaving(s));
    expect(seen.size).toBeGreaterThan(5);
  });

  it('a sleeping task runs again only after what it sleeps on settles', async () => {
    const sched = new Scheduler(3);
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const order: string[] = [];
    sched.spawn('sleeper', async (t) => {
      order.push('sleep');
      await t.sleep(gate);
      order.push('woke');
    });
    sched.spawn('waker', async (t) => {
      await t.yield();
      order.push('release');
      release();
    });
    await sched.run();
    expect(order.indexOf('woke')).toBeGreaterThan(order.indexOf('release'));
  });

  it('explore finds the seed of a lost-update race and replays it', async () => {
    const scenario = async (sched: Scheduler): Promise<void> => {
      let counter = 0;
      for (const name of ['x', 'y']) {
        sched.spawn(name, async (t) => {
          const v = counter;
          await t.yield('between read and write');
          counter = v + 1;
        });
      }
      await sched.run();
      if (counter !== 2) throw new Error(`lost update: ${counter}`);
    };
    const found = await explore(scenario, 50);
    expect(found).not.toBeNull();
    await expect(scenario(new Scheduler(found!.seed))).rejects.toThrow('lost update');
  });

  it('a task error is reported and a deadlock is detected', async () => {
    const s1 = new Scheduler(1);
    s1.spawn('bad', async () => { throw new Error('boom'); });
    await expect(s1.run()).rejects.toThrow('boom');
    const s2 = new Scheduler(1);
    s2.spawn('stuck', async (t) => { await t.sleep(new Promise(() => {})); });
    await expect(s2.run()).rejects.toThrow('deadlock');
  });
});
