import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('examples/cow.ts', () => {
  it('shows the shared read-only frame after fork, the copy on the child write and no leak', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/cow.ts'], { encoding: 'utf8' });
    const frame = (line: string) => Number(/frame (\d+)/.exec(line)![1]);
    const lines = out.split('\n');
    const afterFork = lines.slice(lines.findIndex((l) => l.startsWith('fork:')) + 1, lines.findIndex((l) => l.startsWith('fork:')) + 3);
    expect(frame(afterFork[0]!)).toBe(frame(afterFork[1]!));
    expect(afterFork.every((l) => l.includes('read-only'))).toBe(true);
    const i = lines.findIndex((l) => l.startsWith('child wrote 7'));
    expect(frame(lines[i + 1]!)).not.toBe(frame(lines[i + 2]!));
    expect(lines[i + 1]).toContain('reads 42');
    expect(lines[i + 2]).toContain('reads 7');
    expect(out).toContain('both exited: frames in use: 0');
  });
});
