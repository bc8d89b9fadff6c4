/** A run in words, as the runs page and `triggler runs` both say it. */
import { commitWords, deployHealth, lastDeploy, releaseWords, runCommit, timeAgo } from '../../../receiver/http/run-description';
import type { RunRecord } from '../../../receiver/runs/run-record';

const run = (fields: Partial<RunRecord> = {}): RunRecord => ({
  id: 'r_1',
  repository: 'app',
  branch: 'main',
  commit: 'a'.repeat(40),
  scheme: 'standard',
  status: 'succeeded',
  deliveryIds: ['d1'],
  commits: ['a'.repeat(40)],
  deliveries: 1,
  createdAt: '2026-12-01T10:00:00.000Z',
  ...fields,
});

describe('a run in words', () => {
  it('names the commit deployed before the one the push named, and never the all-zero "no commit"', () => {
    expect(runCommit(run())).toBe('a'.repeat(40));
    expect(runCommit(run({ commit: '0'.repeat(40), deploy: { release: 'r', commit: 'b'.repeat(40) } }))).toBe('b'.repeat(40));
    expect(runCommit(run({ commit: '0'.repeat(40) }))).toBeUndefined();
    expect(runCommit(run({ commit: '' }))).toBeUndefined();
  });

  it.each([
    [undefined, { release: 'R2' }, 'R2'],
    [undefined, undefined, undefined],
    [{ type: 'rollback' as const }, { release: 'R1' }, 'rollback → R1'],
    [{ type: 'rollback' as const, to: 'abc1234' }, undefined, 'rollback → abc1234'],
    [{ type: 'rollback' as const }, undefined, 'rollback → the previous release'],
    [{ type: 'prepare' as const, to: 'c'.repeat(40) }, { release: 'R3' }, 'prepared R3'],
    [{ type: 'switch' as const, to: 'c'.repeat(40) }, undefined, `switch → commit ${'c'.repeat(12)}`],
    [{ type: 'recover' as const }, undefined, 'recover'],
    [{ type: 'rebuild' as const }, { release: 'R4' }, 'R4 (rebuilt)'],
  ])('says what a run with action %j and deploy %j did: %s', (action, deploy, words) => {
    expect(releaseWords(run({ ...(action ? { action } : {}), ...(deploy ? { deploy } : {}) }))).toBe(words);
  });

  it('gives the subject and author when the record has them', () => {
    expect(commitWords(run({ deploy: { subject: 'Fix the login', author: 'Ada' } }))).toBe('Fix the login — Ada');
    expect(commitWords(run({ deploy: { subject: 'Fix the login' } }))).toBe('Fix the login');
    expect(commitWords(run({ deploy: { release: 'R' } }))).toBeUndefined();
  });

  it.each([
    [-30_000, 'just now'],
    [4_999, 'just now'],
    [12_000, '12 s ago'],
    [3 * 60_000 + 5_000, '3 min ago'],
    [5 * 3_600_000, '5 h ago'],
    [47 * 3_600_000, '47 h ago'],
    [3 * 86_400_000, '3 days ago'],
  ])('says %d ms before now as %s', (ago, words) => {
    const now = Date.parse('2026-12-06T12:00:00.000Z');
    expect(timeAgo(new Date(now - ago).toISOString(), now)).toBe(words);
  });

  it("takes a trigger's last deploy from its runs newest first, past prepares, recoveries and runs that deployed nothing", () => {
    const pending = run({ id: 'r_live', status: 'pending' });
    const prepare = run({ id: 'r_prep', action: { type: 'prepare', to: 'c'.repeat(40) }, deploy: { release: 'R9' } });
    const deployed = run({ id: 'r_dep', status: 'rolled-back', deploy: { release: 'R8' } });
    const failedEarly = run({ id: 'r_none', status: 'failed' });
    expect(lastDeploy([prepare, failedEarly, deployed])?.id).toBe('r_dep');
    expect(lastDeploy([pending, prepare, deployed])?.id).toBe('r_live');
    expect(deployHealth(deployed)).toBe('unhealthy: activate or the health check failed, switched back');
    expect(deployHealth(pending)).toBe('deploying…');
    expect(deployHealth(run({ deploy: { release: 'R' } }))).toBe('healthy');
  });
});
