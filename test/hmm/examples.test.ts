// The runnable examples of docs/hmm.md: each runs as `npx tsx examples/...` would, and its
// output must show the driver protocol doing its job.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function run(file: string): string[] {
  const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return out.trimEnd().split('\n');
}

describe('examples', () => {
  it('examples/mirror-mainline.ts: faults, COW retry, read_retry after a racing munmap, RELEASE', () => {
    const lines = run('examples/mirror-mainline.ts');
    const text = lines.join('\n');
    expect(lines[0]).toBe('[mainline] 8-page buffer; the CPU wrote pages 0-3');
    expect(text).toContain('mapped in 1 pass(es): WWWWRRRR');
    expect(text).toContain('invalidate PROTECTION_PAGE pages 0-7: device drops 8 entries');
    expect(text).toContain('pass 1: hmm_range_fault -> EBUSY');
    expect(text).toContain('mapped in 2 pass(es): WWWW....');
    expect(text).toContain('pass 2: read_retry says the range changed since read_begin, again');
    expect(text).toContain('second pass: EFAULT');
    expect(text).toContain('page 4 alone: mapped in 1 pass(es): WWWWW...');
    expect(text).toContain('invalidate RELEASE pages 0-7: device drops 5 entries');
    expect(lines.filter((l) => l.includes('check:')).every((l) => l.includes('check: ok'))).toBe(true);
    expect(lines.at(-1)).toBe('done');
  });

  it('examples/mirror-4.17.ts: per-page requests, sync callbacks, range_done retries, release', () => {
    const lines = run('examples/mirror-4.17.ts');
    const text = lines.join('\n');
    expect(lines[0]).toBe('[4.17] 8-page buffer; the CPU wrote pages 0-3');
    expect(text).toContain('mapped in 1 pass(es): WWWWWW..');
    expect(text).toContain('sync_cpu_device_pagetables(HMM_UPDATE_INVALIDATE): device drops 6 entries');
    expect(text).toContain('pass 1: hmm_vma_range_done = false (the range was invalidated), again');
    expect(text).toContain('mapped in 2 pass(es): WRRR....');
    expect(text).toContain('parent reads 2000, child reads 2000');
    expect(text).toContain('release: device stopped');
    expect(lines.filter((l) => l.includes('check:')).length).toBe(3);
    expect(lines.filter((l) => l.includes('check:')).every((l) => l.includes('check: ok'))).toBe(true);
    expect(lines.at(-1)).toBe('done');
  });
});
