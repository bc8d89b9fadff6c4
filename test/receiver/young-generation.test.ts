/** The bound on V8's young generation, in fresh processes: V8's flags are the whole process's. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const child = path.join(__dirname, '..', 'support', 'children', 'young-generation-growth.ts');

function largestYoungGeneration(bound: string): number {
  const run = spawnSync(process.execPath, ['--require', 'tsx/cjs', child, bound], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the child failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { largest: number }).largest;
}

const MiB = 1024 * 1024;

describe('boundYoungGeneration', () => {
  it('stops the young generation growing once a scavenge finds it at the bound (one more doubling at most)', () => {
    // The same allocations grow it past four times the bound when nothing holds it.
    expect(largestYoungGeneration('none')).toBeGreaterThan(8 * MiB);
    expect(largestYoungGeneration(String(2 * MiB))).toBeLessThanOrEqual(4 * MiB);
  });
});
