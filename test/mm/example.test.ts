// examples/cow.ts runs as documented (npx tsx examples/cow.ts) and shows copy-on-write.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('examples/cow.ts', () => {
  it('shows one frame shared read-only after fork, a new frame for the child after its write, the parent reusing its own, and no leak', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/cow.ts'], { encoding: 'utf8' });
    const lines = out.trimEnd().split('\n');
    const after = (prefix: string, n = 0): string => {
      const i = lines.findIndex((l) => l.startsWith(prefix));
      expect(i, `a line starting with "${prefix}" in:\n${out}`).toBeGreaterThanOrEqual(0);
      return lines[i + n]!;
    };
    const pfn = (line: string): number => Number(/pfn (\d+)/.exec(line)![1]);

    expect(after('mmap:')).toContain('not present');
    expect(after('read:')).toContain('zero read-only');
    const written = after('write:');
    expect(written).toMatch(/pfn \d+ anon read-write, frames in use: 1$/);

    const [parent, child] = [after('fork:', 1), after('fork:', 2)];
    expect(parent).toMatch(/^ {2}parent pfn \d+ anon read-only, reads 42$/);
    expect(child).toMatch(/^ {2}child {2}pfn \d+ anon read-only, reads 42$/);
    expect(pfn(parent)).toBe(pfn(child));
    expect(pfn(parent)).toBe(pfn(written));

    const [parent2, child2] = [after('child writes 7', 1), after('child writes 7', 2)];
    expect(parent2).toMatch(/read-only, reads 42$/);
    expect(child2).toMatch(/read-write, reads 7$/);
    expect(pfn(parent2)).toBe(pfn(parent));
    expect(pfn(child2)).not.toBe(pfn(parent));
    expect(after('child writes 7', 3)).toBe('frames in use: 2');

    const reuse = after('parent writes 43');
    expect(pfn(reuse)).toBe(pfn(parent));
    expect(reuse).toMatch(/read-write, reads 43$/);
    expect(lines.at(-1)).toBe('both exited: frames in use: 0');
  });
});
