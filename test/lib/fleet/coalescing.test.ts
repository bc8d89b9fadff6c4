/**
 * Rollouts around a running one, on the local engine: pushes that arrive during a rollout
 * coalesce into one more, a host that joins later converges, a held rollout waits for promotion.
 */
import { FLEET_BRANCH, FLEET_REPOSITORY } from '../../support/fleet/fleet-hosts';
import { FLEET_COMMIT_PARAMETER, FLEET_TRIGGER, localFleet } from '../../support/fleet/local-fleet';
import { waitFor } from '../../support/wait-for';

const SETTINGS = { canary: 1, batchSize: 1, maxFailedHosts: 0, bakeSeconds: 30, alarms: ['app-errors'], hold: false };

describe('a burst of pushes during a rollout', () => {
  // One host: coalescing is the lock's business, not the fleet's.
  const fleet = localFleet(SETTINGS, 1);

  it('ten pushes during a rollout give one more rollout, of the newest commit', async () => {
    const engine = fleet.engine();
    const hosts = fleet.hosts();
    const owner = engine.start(fleet.push(hosts.repo.commit({ v: 'running' })));
    await waitFor('the first rollout to hold the lock', () => owner.states.includes('Roll out'));
    const burst = Array.from({ length: 10 }, (_, i) => hosts.repo.commit({ v: `burst-${i}` }));
    const waiting = burst.map((commit) => engine.start(fleet.push(commit)));
    const superseded = await Promise.all(waiting.slice(0, -1).map((execution) => execution.done));
    for (const ended of superseded) expect(ended).toMatchObject({ status: 'SUCCEEDED', summary: { outcome: 'superseded', instances: [] } });
    // Superseded before they began: none of them took the lock or sent a command.
    for (const execution of waiting.slice(0, -1)) expect(execution.states).not.toContain('Roll out');
    expect((await owner.done).summary).toMatchObject({ outcome: 'succeeded', commit: owner.input.commit });
    expect((await waiting.at(-1)!.done).summary).toMatchObject({ outcome: 'succeeded', commit: burst.at(-1) });
    expect(await fleet.currents()).toEqual([burst.at(-1)]);
    // Two rollouts in all: the owner's prepare and the newest's, nothing of the nine between.
    const prepared = [...engine.runCommand.logs.values()].flat().filter((line) => line.includes('"status"'));
    expect(prepared.filter((line) => burst.slice(0, -1).some((commit) => line.includes(commit)))).toEqual([]);
  }, 120_000);
});

describe('a rollout stopped by hand', () => {
  const fleet = localFleet(SETTINGS, 1);

  it('leaves its lock behind; the next push finds the owner no longer running and takes the lock over', async () => {
    const engine = fleet.engine();
    const hosts = fleet.hosts();
    const stopped = engine.start(fleet.push(hosts.repo.commit({ v: 'stopped' })));
    await waitFor('the first rollout to hold the lock', () => stopped.states.includes('Roll out'));
    engine.stop(stopped.name);
    expect(await stopped.done).toMatchObject({ status: 'ABORTED' });
    // The lock still names the stopped execution, as on AWS: nothing released it.
    expect((await engine.item(FLEET_TRIGGER))?.owner?.S).toBe(stopped.name);
    const next = hosts.repo.commit({ v: 'after the stop' });
    const taking = engine.start(fleet.push(next));
    expect((await taking.done).summary).toMatchObject({ outcome: 'succeeded', commit: next });
    expect(taking.states).toEqual(expect.arrayContaining(['Is the owner still running?', 'Take over the lock']));
    await engine.runCommand.settle();
    expect(await fleet.currents()).toEqual([next]);
  }, 120_000);
});

describe('a host that joins, and a held rollout', () => {
  const fleet = localFleet({ ...SETTINGS, hold: true }, 2);

  it('hold: the rollout waits after the canary until promoted, then switches the rest', async () => {
    const engine = fleet.engine();
    const commit = fleet.hosts().repo.commit({ v: 'held' });
    const execution = engine.start(fleet.push(commit));
    const token = await waitFor('the hold', () => engine.holdToken(FLEET_TRIGGER).catch(() => undefined));
    expect(token).toBe(execution.token);
    expect(execution.states).toContain('Hold for promotion');
    // Only the canary has switched while it holds.
    expect((await fleet.currents()).filter((current) => current === commit)).toHaveLength(1);
    await engine.promote(FLEET_TRIGGER);
    expect((await execution.done).summary).toMatchObject({ outcome: 'succeeded', commit });
    expect(await fleet.currents()).toEqual([commit, commit]);
    expect((await engine.item(FLEET_TRIGGER))?.holdToken).toBeUndefined();
  }, 120_000);

  it('a host added after a rollout converges to the fleet commit', async () => {
    const engine = fleet.engine();
    const [added] = await fleet.hosts().add(1);
    expect(await fleet.hosts().current(added!.instanceId)).toBeNull();
    expect(await engine.converge(added!.instanceId, FLEET_REPOSITORY, FLEET_BRANCH)).toBe('Success');
    expect(await fleet.hosts().current(added!.instanceId)).toBe(engine.parameters.get(FLEET_COMMIT_PARAMETER));
  }, 120_000);
});
