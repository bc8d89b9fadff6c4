/**
 * The rollout's failure policy, run locally against three real receivers: a canary whose health
 * check fails, a host failing in the second batch with no failures allowed, an alarm during the
 * bake. Each starts from a fleet on one commit (a rollout that succeeded) and must end there.
 */
import type { RolloutSummary } from '../../../protocol/rollout';
import type { RolloutSettings } from '../../../lib/constructs/fleet-rollout';
import { FLEET_COMMIT_PARAMETER, localFleet } from '../../support/fleet/local-fleet';

const SETTINGS: RolloutSettings = { canary: 1, batchSize: 2, maxFailedHosts: 0, bakeSeconds: 30, alarms: ['app-errors'], hold: false };

describe('a rollout that fails', () => {
  /** The commit the whole fleet is on before each scenario. */
  let good: string;
  const fleet = localFleet(SETTINGS, 3, async () => {
    good = fleet.hosts().repo.commit({ v: 'good' });
    expect((await fleet.engine().start(fleet.push(good)).done).summary).toMatchObject({ outcome: 'succeeded' });
  });
  const currents = () => fleet.currents();

  const stepOf = (summary: RolloutSummary, step: 'prepare' | 'switch' | 'rollback') =>
    Object.fromEntries(summary.hosts.filter((host) => host[step]).map((host) => [host.instanceId, host[step]!.invocation]));

  it("the canary's health check fails: nothing else is switched and the canary is back", async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    // Every host would fail the check: only the canary may ever try.
    for (const host of hosts.hosts) hosts.failHealthCheck(host.instanceId, true);
    try {
      const bad = hosts.repo.commit({ v: 'unhealthy' });
      const ended = await engine.start(fleet.push(bad)).done;
      expect(ended).toMatchObject({ status: 'FAILED', error: 'rolled-back', summary: { outcome: 'rolled-back', commit: bad } });
      const switched = stepOf(ended.summary!, 'switch');
      expect(Object.values(switched)).toEqual(['Failed']);
      expect(ended.summary!.reason).toBe('1 hosts failed to switch; the rollout allows 0');
      // Its own health check switched the canary back; the others never left the good commit.
      expect(await currents()).toEqual([good, good, good]);
      expect(stepOf(ended.summary!, 'rollback')).toEqual({});
      expect(engine.parameters.get(FLEET_COMMIT_PARAMETER)).toBe(good);
    } finally {
      for (const host of hosts.hosts) hosts.failHealthCheck(host.instanceId, false);
    }
  }, 120_000);

  it('a host fails in the second batch with maxFailedHosts 0: the batch is cancelled, every switched host rolled back', async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    const bad = hosts.repo.commit({ v: 'second-batch' });
    // When the canary switches, the other two make up the second batch: one fails its health
    // check, the other waits in activate until the batch is cancelled.
    let slow: string | undefined;
    let failing: string | undefined;
    engine.onRunCommand((event) => {
      if (event.type === 'sent' && event.step === 'switch' && event.instanceIds.length === 2 && slow === undefined) {
        [failing, slow] = event.instanceIds as [string, string];
        hosts.failHealthCheck(failing, true);
        hosts.holdActivate(slow, true);
      }
      if (event.type === 'cancelled' && slow !== undefined) hosts.holdActivate(slow, false);
    });
    try {
      const ended = await engine.start(fleet.push(bad)).done;
      const summary = ended.summary!;
      expect(ended).toMatchObject({ status: 'FAILED', summary: { outcome: 'rolled-back', commit: bad } });
      const canary = summary.instances.find((id) => id !== slow && id !== failing)!;
      expect(stepOf(summary, 'switch')).toEqual({ [canary]: 'Success', [failing!]: 'Failed', [slow!]: 'Cancelled' });
      // The canary and the cancelled host (it may have switched) are rolled back to the good commit.
      expect(Object.keys(stepOf(summary, 'rollback')).sort()).toEqual([canary, slow!].sort());
      expect(stepOf(summary, 'rollback')[canary]).toBe('Success');
      expect(await currents()).toEqual([good, good, good]);
      expect(summary.reason).toMatch(/^2 hosts failed to switch; the rollout allows 0$/);
    } finally {
      if (failing) hosts.failHealthCheck(failing, false);
      if (slow) hosts.holdActivate(slow, false);
    }
  }, 120_000);

  it('an alarm fires during the bake: the canary is rolled back', async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    const bad = hosts.repo.commit({ v: 'alarming' });
    engine.onRunCommand((event) => {
      if (event.type === 'invocation' && event.step === 'switch' && event.status === 'Success') engine.alarms.set('app-errors', 'ALARM');
    });
    try {
      const ended = await engine.start(fleet.push(bad)).done;
      expect(ended).toMatchObject({ status: 'FAILED', summary: { outcome: 'rolled-back', reason: 'alarm app-errors is in ALARM' } });
      const switched = stepOf(ended.summary!, 'switch');
      expect(Object.values(switched)).toEqual(['Success']);
      expect(stepOf(ended.summary!, 'rollback')).toEqual(Object.fromEntries(Object.keys(switched).map((id) => [id, 'Success'])));
      expect(await currents()).toEqual([good, good, good]);
    } finally {
      engine.alarms.set('app-errors', 'OK');
    }
  }, 120_000);
});
