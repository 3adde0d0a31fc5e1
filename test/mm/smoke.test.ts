import { describe, expect, it } from 'vitest';
import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { checkInvariants } from '../../src/mm/check.js';

describe('smoke', () => {
  it('fork: private anon page is write-protected in both and copied on the first write', () => {
    const m = new Machine({ ramBytes: 64 << 20 });
    const p = m.spawn();
    const a = p.mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.writeU32(a, 42);
    const c = p.fork();
    expect(c.readU32(a)).toBe(42);
    expect(checkInvariants(m)).toEqual([]);
    c.writeU32(a, 7);
    expect(p.readU32(a)).toBe(42);
    expect(c.readU32(a)).toBe(7);
    expect(checkInvariants(m)).toEqual([]);
    c.exit();
    p.exit();
    expect(m.phys.usedRamFrames).toBe(0);
  });
});
